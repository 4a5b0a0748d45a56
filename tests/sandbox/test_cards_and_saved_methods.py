"""Paying by card through `/pay`: Stripe's test cards (declines, 3D Secure), the PaymentIntent's
`payment_intent_data` fields, the cards Checkout saves on a Customer and paying with one, and
the invoice a session with `invoice_creation` issues."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import pay, session_params

ALWAYS_3DS = "4000002760003184"
ON_SESSION_3DS = "4000002500003155"


async def attempt(raw: httpx.AsyncClient, session_id: str, **details: Any) -> httpx.Response:
    return await raw.post(f"/_sandbox/checkout/sessions/{session_id}/pay", json=details)


async def status_of(client: stripe.StripeClient, session_id: str) -> str | None:
    return (await client.v1.checkout.sessions.retrieve_async(session_id)).status


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [("4000000000000002", "generic_decline"), ("4000 0000 0000 9995", "insufficient_funds")],
)
async def test_declined_cards_leave_the_session_open(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    number: str,
    decline_code: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await attempt(raw, session.id, card_number=number)
    assert answer.status_code == 402
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        decline_code,
    )
    assert await status_of(client, session.id) == "open"
    assert (await client.v1.events.list_async()).data == []
    await pay(raw, session.id, card_number="4242 4242 4242 4242")
    assert await status_of(client, session.id) == "complete"


async def test_an_incorrect_number_is_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await attempt(raw, session.id, card_number="4242424242424241")
    assert answer.status_code == 402
    assert (answer.json()["error"]["code"], answer.json()["error"]["param"]) == (
        "incorrect_number",
        "card_number",
    )


@pytest.mark.parametrize(
    ("number", "request_three_d_secure"),
    [(ALWAYS_3DS, None), (ON_SESSION_3DS, None), ("4242424242424242", "any")],
)
async def test_3d_secure_asks_and_a_failed_challenge_leaves_the_session_open(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    number: str,
    request_three_d_secure: str | None,
) -> None:
    options: Any = (
        None
        if request_three_d_secure is None
        else {"card": {"request_three_d_secure": request_three_d_secure}}
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params(payment_method_options=options)
    )
    unanswered = await attempt(raw, session.id, card_number=number)
    assert unanswered.status_code == 400
    assert (unanswered.json()["error"]["param"], unanswered.json()["error"]["code"]) == (
        "three_d_secure",
        "parameter_missing",
    )
    failed = await attempt(raw, session.id, card_number=number, three_d_secure="fail")
    assert failed.status_code == 402
    assert failed.json()["error"]["code"] == "payment_intent_authentication_failure"
    assert await status_of(client, session.id) == "open"
    await pay(raw, session.id, card_number=number, three_d_secure="complete")
    assert await status_of(client, session.id) == "complete"


async def test_no_challenge_is_answered_unasked(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await attempt(raw, session.id, three_d_secure="complete")
    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "three_d_secure")


async def test_the_payment_intent_carries_payment_intent_data(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "ada@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            customer=customer.id,
            payment_intent_data={
                "description": "Order 42",
                "statement_descriptor_suffix": "ORDER 42",
                "receipt_email": "receipts@example.com",
                "setup_future_usage": "off_session",
            },
        )
    )
    await pay(raw, session.id)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent"]}
    )
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert (intent.description, intent.statement_descriptor_suffix, intent.receipt_email) == (
        "Order 42",
        "ORDER 42",
        "receipts@example.com",
    )
    assert intent.setup_future_usage == "off_session"
    # Saved for later without asking: shown again only where `limited` is allowed.
    assert isinstance(intent.payment_method, str)
    method = await client.v1.payment_methods.retrieve_async(intent.payment_method)
    assert isinstance(method, stripe.PaymentMethod)
    assert (method.customer, method.allow_redisplay, method.type) == (
        customer.id,
        "limited",
        "card",
    )
    assert method.card is not None and (method.card.brand, method.card.last4) == ("visa", "4242")


async def test_a_guest_payment_saves_nothing(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(payment_intent_data={"setup_future_usage": "on_session"})
    )
    await pay(raw, session.id)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent"]}
    )
    assert isinstance(paid.payment_intent, stripe.PaymentIntent)
    assert isinstance(paid.payment_intent.payment_method, str)
    method = await client.v1.payment_methods.retrieve_async(paid.payment_intent.payment_method)
    assert (method.customer, method.allow_redisplay) == (None, "unspecified")


async def test_a_returning_customer_pays_with_a_card_saved_with_consent(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "ada@example.com"})
    saving = session_params(
        customer=customer.id,
        saved_payment_method_options={"payment_method_save": "enabled"},
    )
    first = await client.v1.checkout.sessions.create_async(saving)
    await pay(raw, first.id, card_number="5555555555554444", save_payment_method=True)
    methods = await client.v1.customers.payment_methods.list_async(customer.id)
    assert [(m.allow_redisplay, m.card and m.card.brand) for m in methods.data] == [
        ("always", "mastercard")
    ]
    saved = methods.data[0].id

    second = await client.v1.checkout.sessions.create_async(session_params(customer=customer.id))
    await pay(raw, second.id, payment_method=saved)
    paid = await client.v1.checkout.sessions.retrieve_async(
        second.id, {"expand": ["payment_intent"]}
    )
    assert isinstance(paid.payment_intent, stripe.PaymentIntent)
    assert paid.payment_intent.payment_method == saved
    # Paying with it saves no second copy.
    assert len((await client.v1.customers.payment_methods.list_async(customer.id)).data) == 1

    stranger = await client.v1.customers.create_async({"email": "bob@example.com"})
    theirs = await client.v1.checkout.sessions.create_async(session_params(customer=stranger.id))
    error = (await attempt(raw, theirs.id, payment_method=saved)).json()["error"]
    assert error["param"] == "payment_method"
    both = await attempt(raw, theirs.id, payment_method=saved, card_number="4242424242424242")
    assert both.json()["error"]["param"] == "payment_method"


async def test_only_cards_the_filters_allow_are_offered(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "ada@example.com"})
    first = await client.v1.checkout.sessions.create_async(
        session_params(
            customer=customer.id, payment_intent_data={"setup_future_usage": "off_session"}
        )
    )
    await pay(raw, first.id, card_number=ON_SESSION_3DS, three_d_secure="complete")
    (limited,) = (await client.v1.customers.payment_methods.list_async(customer.id)).data
    default = await client.v1.checkout.sessions.create_async(session_params(customer=customer.id))
    error = (await attempt(raw, default.id, payment_method=limited.id)).json()["error"]
    assert error["param"] == "payment_method"
    wider = await client.v1.checkout.sessions.create_async(
        session_params(
            customer=customer.id,
            saved_payment_method_options={"allow_redisplay_filters": ["always", "limited"]},
        )
    )
    # Saved for off-session use, the card needs no new challenge.
    await pay(raw, wider.id, payment_method=limited.id)
    assert await status_of(client, wider.id) == "complete"


async def test_setup_mode_saves_the_card(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(mode="setup", line_items=None, currency="eur")
    )
    await pay(raw, session.id, email="ada@example.com")
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert isinstance(done.customer, str)
    listed = await client.v1.customers.payment_methods.list_async(done.customer)
    assert [m.customer for m in listed.data] == [done.customer]


async def test_saved_methods_are_missing_for_unknown_ids(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as method:
        await client.v1.payment_methods.retrieve_async("pm_nope")
    assert (method.value.http_status, method.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as customer:
        await client.v1.customers.payment_methods.list_async("cus_nope")
    assert customer.value.http_status == 404


async def test_a_paid_invoice_is_issued(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            customer_email="erika@example.com",
            invoice_creation={
                "enabled": True,
                "invoice_data": {
                    "description": "Order 42",
                    "footer": "Muster GmbH, Berlin",
                    "custom_fields": [{"name": "PO", "value": "4711"}],
                    "metadata": {"order_id": "42"},
                },
            },
        )
    )
    await pay(raw, session.id, name="Erika Mustermann")
    paid = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["invoice"]})
    invoice = paid.invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 1500, 0)
    assert (invoice.customer_email, invoice.customer_name) == (
        "erika@example.com",
        "Erika Mustermann",
    )
    assert (invoice.description, invoice.footer) == ("Order 42", "Muster GmbH, Berlin")
    assert invoice.custom_fields is not None and invoice.custom_fields[0].value == "4711"
    assert invoice.metadata is not None and invoice.metadata["order_id"] == "42"
    assert [line.amount for line in invoice.lines.data] == [1500]
    fetched = await client.v1.invoices.retrieve_async(invoice.id)
    assert fetched.id == invoice.id and fetched.status_transitions.paid_at is not None
    # The payment's own events (payment_intent.*, charge.*) come in between; these are the
    # invoice's, in their order around the session's completion.
    types = [
        event.type
        for event in (await client.v1.events.list_async()).data[::-1]
        if event.type.startswith(("invoice.", "checkout.session."))
    ]
    assert types == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "checkout.session.completed",
    ]


async def test_a_delayed_payments_invoice_is_paid_when_it_settles(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(invoice_creation={"enabled": True})
    )
    await pay(raw, session.id, payment_status="unpaid")
    pending = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert isinstance(pending.invoice, str)
    assert (await client.v1.invoices.retrieve_async(pending.invoice)).status == "open"
    settled = await raw.post(
        f"/_sandbox/checkout/sessions/{session.id}/async_payment", json={"outcome": "succeeded"}
    )
    settled.raise_for_status()
    assert (await client.v1.invoices.retrieve_async(pending.invoice)).status == "paid"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.invoices.retrieve_async("in_nope")
    assert missing.value.http_status == 404


async def test_a_session_without_invoice_creation_has_none(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    await pay(raw, session.id)
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).invoice is None
