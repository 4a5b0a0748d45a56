"""The Refunds API through stripe-python: full and partial refunds of captured payments by
PaymentIntent or Charge, Stripe's list shape and filters, its refusals, bank debits' refunds
pending until the sandbox clock settles them, refunds that fail through the control API, and
the events of each."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import (
    Receiver,
    advance_clock,
    charge_of,
    checkout_payment,
    endpoint,
    event_types,
    ids,
    missing_fields,
    settled,
    stripe_client,
)

DAY = 24 * 60 * 60
REFUND_EVENTS = (
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refunded",
    "charge.refund.updated",
)


async def refused(client: stripe.StripeClient, params: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.refunds.create_async(params)
    return caught.value


async def fail(raw: httpx.AsyncClient, refund_id: str, **params: str) -> httpx.Response:
    return await raw.post(f"/_sandbox/refunds/{refund_id}/fail", json=params)


async def test_partial_refunds_until_nothing_remains(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000)
    first = await client.v1.refunds.create_async(
        {
            "payment_intent": intent.id,
            "amount": 1200,
            "reason": "requested_by_customer",
            "metadata": {"return": "r-1"},
        }
    )
    assert isinstance(first, stripe.Refund)
    assert missing_fields(first) == []
    assert first.id.startswith("re_")
    assert (first.amount, first.currency, first.status) == (1200, "usd", "succeeded")
    assert (first.payment_intent, first.charge) == (intent.id, charge_of(intent).id)
    assert first.metadata is not None
    assert (first.reason, first.metadata.to_dict()) == ("requested_by_customer", {"return": "r-1"})
    assert first.destination_details is not None and first.destination_details.card is not None
    assert first.destination_details.card.type == "refund"
    # By charge, what remains: 38.00.
    rest = await client.v1.refunds.create_async({"charge": charge_of(intent).id})
    assert (rest.amount, rest.reason) == (3800, None)
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id, {"expand": ["refunds"]})
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    assert charge.refunds is not None and ids(charge.refunds.data) == [rest.id, first.id]
    done = await refused(client, {"payment_intent": intent.id, "amount": 1})
    assert (done.code, done.http_status) == ("charge_already_refunded", 400)
    assert await event_types(client, *REFUND_EVENTS) == ["refund.created", "charge.refunded"] * 2
    [refunded] = (await client.v1.events.list_async({"type": "charge.refunded", "limit": 1})).data
    assert isinstance(refunded.data.object, stripe.Charge)
    assert refunded.data.object.amount_refunded == 5000


async def test_a_refund_is_never_more_than_what_remains(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000)
    await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 3000})
    too_much = await refused(client, {"payment_intent": intent.id, "amount": 2001})
    assert (too_much.code, too_much.param) == ("amount_too_large", "amount")
    exact = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 2000})
    assert exact.amount == 2000


async def test_a_partly_captured_payment_refunds_what_was_captured(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000, capture_method="manual")
    await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 3000})
    too_much = await refused(client, {"payment_intent": intent.id, "amount": 3001})
    assert too_much.code == "amount_too_large"
    refund = await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert refund.amount == 3000
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    # What was refunded of what was captured: amount_refunded - (amount - amount_captured).
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (3000, 5000, True)


async def test_what_cannot_be_refunded(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    authorised = await checkout_payment(client, raw, capture_method="manual")
    processing = await checkout_payment(client, raw, payment_status="unpaid")
    for intent in (authorised, processing):
        for target in ({"payment_intent": intent.id}, {"charge": charge_of(intent).id}):
            answer = await refused(client, target)
            assert answer.code == "charge_not_refundable"
    assert "cancel the PaymentIntent" in str(
        (await refused(client, {"payment_intent": authorised.id})).user_message
    )
    await client.v1.payment_intents.cancel_async(authorised.id)
    released = await refused(client, {"payment_intent": authorised.id})
    assert released.code == "charge_already_refunded"
    assert (await client.v1.refunds.list_async({"charge": charge_of(processing).id})).data == []


PAID = "the paid PaymentIntent"


@pytest.mark.parametrize(
    ("params", "code", "param", "status"),
    [
        ({}, "parameter_missing", "payment_intent", 400),
        ({"payment_intent": "pi_nope"}, "resource_missing", "payment_intent", 400),
        ({"charge": "ch_nope"}, "resource_missing", "charge", 400),
        ({"payment_intent": PAID, "amount": 0}, "parameter_invalid_integer", "amount", 400),
        ({"payment_intent": PAID, "reason": "changed_mind"}, None, "reason", 400),
        ({"payment_intent": PAID, "metadata": {"k[1]": "v"}}, None, "metadata[k[1]]", 400),
        (
            {"payment_intent": PAID, "reverse_transfer": True},
            "parameter_unknown",
            "reverse_transfer",
            400,
        ),
    ],
)
async def test_refusals_of_the_parameters(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    params: dict[str, Any],
    code: str | None,
    param: str,
    status: int,
) -> None:
    intent = await checkout_payment(client, raw)
    sent = {name: intent.id if value == PAID else value for name, value in params.items()}
    answer = await refused(client, sent)
    assert (answer.http_status, answer.code, answer.param) == (status, code, param)
    assert (await client.v1.charges.retrieve_async(charge_of(intent).id)).amount_refunded == 0


async def test_a_refund_names_one_payment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw)
    both = await refused(client, {"payment_intent": intent.id, "charge": charge_of(intent).id})
    assert both.code == "parameters_exclusive"


async def test_refunds_are_listed_as_stripe_lists(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    one = await checkout_payment(client, raw, unit_amount=5000)
    other = await checkout_payment(client, raw, unit_amount=5000)
    made = [
        await client.v1.refunds.create_async({"payment_intent": one.id, "amount": 100})
        for _ in range(3)
    ]
    theirs = await client.v1.refunds.create_async({"payment_intent": other.id, "amount": 100})
    page = await client.v1.refunds.list_async({"payment_intent": one.id, "limit": 2})
    assert isinstance(page, stripe.ListObject)
    assert (ids(page.data), page.has_more, page.url) == (
        [made[2].id, made[1].id],
        True,
        "/v1/refunds",
    )
    rest = await client.v1.refunds.list_async(
        {"payment_intent": one.id, "limit": 2, "starting_after": made[1].id}
    )
    assert (ids(rest.data), rest.has_more) == ([made[0].id], False)
    every = await client.v1.refunds.list_async()
    assert ids(every.data) == [theirs.id, *ids(made[::-1])]
    assert ids((await client.v1.refunds.list_async({"charge": charge_of(other).id})).data) == [
        theirs.id
    ]
    fetched = await client.v1.refunds.retrieve_async(made[0].id, {"expand": ["payment_intent"]})
    assert isinstance(fetched.payment_intent, stripe.PaymentIntent)
    assert fetched.payment_intent.id == one.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.refunds.retrieve_async("re_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    # A charge's refunds have a list of their own.
    charge_id = charge_of(one).id
    answer = await client.raw_request_async("get", f"/v1/charges/{charge_id}/refunds", limit=1)
    listed = client.deserialize(answer, api_mode="V1")
    assert isinstance(listed, stripe.ListObject)
    assert (ids(listed.data), listed.has_more) == ([made[2].id], True)
    assert listed.url == f"/v1/charges/{charge_id}/refunds"


async def test_a_refund_is_replayed_under_its_idempotency_key(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000)
    params: Any = {"payment_intent": intent.id, "amount": 1000}
    options: Any = {"idempotency_key": "refund-1"}
    first = await client.v1.refunds.create_async(params, options)
    again = await client.v1.refunds.create_async(params, options)
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert charge.amount_refunded == 1000
    [created] = (await client.v1.events.list_async({"type": "refund.created"})).data
    assert created.request is not None and created.request.idempotency_key == "refund-1"
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 2000}, options)


async def test_a_bank_debit_refund_is_pending_until_the_clock_settles_it(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000, payment_status="unpaid")
    sessions = await client.v1.checkout.sessions.list_async({"payment_intent": intent.id})
    settle = f"/_sandbox/checkout/sessions/{sessions.data[0].id}/async_payment"
    (await raw.post(settle, json={"outcome": "succeeded"})).raise_for_status()
    refund = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 2000})
    assert (refund.status, refund.pending_reason, refund.destination_details) == (
        "pending",
        "processing",
        None,
    )
    # A pending refund counts: what remains is 30.00.
    assert (await refused(client, {"payment_intent": intent.id, "amount": 3001})).code == (
        "amount_too_large"
    )
    await advance_clock(raw, 3 * DAY - 60)
    assert (await client.v1.refunds.retrieve_async(refund.id)).status == "pending"
    await advance_clock(raw, 60)
    settled = await client.v1.refunds.retrieve_async(refund.id)
    assert (settled.status, settled.pending_reason) == ("succeeded", None)
    assert await event_types(client, *REFUND_EVENTS) == [
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "charge.refund.updated",
    ]
    [updated] = (await client.v1.events.list_async({"type": "charge.refund.updated"})).data
    assert isinstance(updated.data.object, stripe.Refund)
    assert updated.data.object.status == "succeeded"


async def test_a_failed_refund_gives_its_amount_back(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000)
    refund = await client.v1.refunds.create_async({"payment_intent": intent.id})
    answer = await fail(raw, refund.id, failure_reason="expired_or_canceled_card")
    assert answer.status_code == 200 and answer.json()["status"] == "failed"
    failed = await client.v1.refunds.retrieve_async(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert await event_types(client, *REFUND_EVENTS) == [
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "charge.refund.updated",
        "refund.failed",
    ]
    again = await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert again.amount == 5000
    # Once failed, it stays failed; `unknown` when no reason is given.
    assert (await fail(raw, refund.id)).status_code == 400
    assert (await fail(raw, again.id)).json()["failure_reason"] == "unknown"


async def test_what_cannot_fail(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000, capture_method="manual")
    await client.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 3000})
    [released] = (await client.v1.refunds.list_async({"payment_intent": intent.id})).data
    assert (await fail(raw, released.id)).status_code == 400
    assert (await fail(raw, "re_nope")).status_code == 404
    bad = await fail(raw, released.id, failure_reason="bored")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "failure_reason")
    assert (await client.v1.refunds.retrieve_async(released.id)).status == "succeeded"


async def test_refund_events_are_delivered_signed(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(client, receiver.url, ["refund.created", "charge.refunded"])
    assert hook.secret is not None
    intent = await checkout_payment(client, raw, unit_amount=5000)
    refund = await client.v1.refunds.create_async(
        {"payment_intent": intent.id, "amount": 700}, {"idempotency_key": "refund-7"}
    )
    received = await receiver.count(2)
    events = {
        event.type: event
        for event in (
            stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], hook.secret)
            for r in received
        )
    }
    created, refunded = events["refund.created"], events["charge.refunded"]
    assert isinstance(created.data.object, stripe.Refund)
    assert (created.data.object.id, created.data.object.amount) == (refund.id, 700)
    assert isinstance(refunded.data.object, stripe.Charge)
    assert refunded.data.object.amount_refunded == 700
    for event in (created, refunded):
        assert event.request is not None and event.request.idempotency_key == "refund-7"
    await settled(raw)


async def test_a_refund_made_in_the_dashboard_is_seen_like_any_other(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    http_client: stripe.HTTPXClient,
    raw: httpx.AsyncClient,
) -> None:
    """The Dashboard is the API with another key: the service learns of its refund from the
    events and from listing the payment's refunds."""
    intent = await checkout_payment(client, raw, unit_amount=5000)
    dashboard = stripe_client(sandbox.url, http_client, "sk_test_dashboard_user")
    made = await dashboard.v1.refunds.create_async({"payment_intent": intent.id, "amount": 900})
    listed = await client.v1.refunds.list_async({"payment_intent": intent.id})
    assert ids(listed.data) == [made.id]
    [created] = (await client.v1.events.list_async({"type": "refund.created"})).data
    assert isinstance(created.data.object, stripe.Refund) and created.data.object.id == made.id
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert charge.amount_refunded == 900
