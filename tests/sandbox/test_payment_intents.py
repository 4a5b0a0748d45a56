"""The PaymentIntent and Charge behind a paid session, through stripe-python: card payments
captured at once or authorised for a manual capture, bank debits that settle later; capture
(all, part, refusals), cancel, and the lapse of an authorisation on the sandbox clock, each
with Stripe's events."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import (
    advance_clock,
    charge_of,
    checkout_payment,
    event_types,
    line_item,
    missing_fields,
    pay,
    session_params,
)

DAY = 24 * 60 * 60
INTENT_EVENTS = (
    "payment_intent.created",
    "payment_intent.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.processing",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.succeeded",
    "charge.pending",
    "charge.failed",
    "charge.captured",
    "charge.expired",
    "charge.refunded",
    "refund.created",
)


async def capture_refused(
    client: stripe.StripeClient, intent_id: str, params: Any = None
) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.payment_intents.capture_async(intent_id, params)
    return caught.value


async def test_a_card_payment_has_a_captured_charge(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(
        client,
        raw,
        unit_amount=2500,
        capture_method="automatic",
        paid_by={"email": "ada@example.com"},
    )
    assert isinstance(intent, stripe.PaymentIntent)
    assert missing_fields(intent) == []
    assert (intent.status, intent.capture_method) == ("succeeded", "automatic")
    assert (intent.amount, intent.amount_received, intent.amount_capturable) == (2500, 2500, 0)
    charge = charge_of(intent)
    assert missing_fields(charge, "refunds") == []
    assert "refunds" not in charge
    assert charge.id.startswith("ch_") and charge.payment_intent == intent.id
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, True)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (2500, 2500, 0)
    assert (charge.refunded, charge.disputed) == (False, False)
    assert charge.billing_details.email == "ada@example.com"
    details = charge.payment_method_details
    assert details is not None and details.type == "card" and details.card is not None
    assert missing_fields(details.card) == []
    assert (details.card.last4, details.card.capture_before) == ("4242", None)
    assert intent.payment_method == charge.payment_method
    assert intent.client_secret is not None and intent.client_secret.startswith(intent.id)
    fetched = await client.v1.charges.retrieve_async(charge.id, {"expand": ["payment_intent"]})
    assert isinstance(fetched.payment_intent, stripe.PaymentIntent)
    assert fetched.payment_intent.id == intent.id
    assert await event_types(client, *INTENT_EVENTS) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


async def test_capture_method_defaults_to_automatic_async(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw)
    assert (intent.capture_method, intent.status) == ("automatic_async", "succeeded")


async def test_a_manual_capture_authorises_and_shows_when_it_lapses(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    assert (intent.status, intent.capture_method) == ("requires_capture", "manual")
    assert (intent.amount_capturable, intent.amount_received) == (4000, 0)
    charge = charge_of(intent)
    assert (charge.status, charge.paid, charge.captured) == ("succeeded", True, False)
    assert charge.amount_captured == 0
    details = charge.payment_method_details
    assert details is not None and details.card is not None
    assert details.card.capture_before == charge.created + 7 * DAY
    assert details.card.amount_authorized == 4000
    assert await event_types(client, *INTENT_EVENTS) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
    ]


async def test_capturing_all_of_it(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    captured = await client.v1.payment_intents.capture_async(
        intent.id, {"metadata": {"shipment": "parcel-1"}, "expand": ["latest_charge"]}
    )
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        4000,
        0,
    )
    assert captured.metadata["shipment"] == "parcel-1"
    charge = charge_of(captured)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded) == (True, 4000, 0)
    assert (await client.v1.refunds.list_async({"payment_intent": intent.id})).data == []
    assert (await event_types(client, *INTENT_EVENTS))[3:] == [
        "charge.captured",
        "payment_intent.succeeded",
    ]
    # Stripe captures once.
    again = await capture_refused(client, intent.id)
    assert again.code == "payment_intent_unexpected_state"


async def test_a_partial_capture_releases_the_rest(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    captured = await client.v1.payment_intents.capture_async(
        intent.id, {"amount_to_capture": 2500, "final_capture": True}
    )
    assert (captured.status, captured.amount_received, captured.amount_capturable) == (
        "succeeded",
        2500,
        0,
    )
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    # As on Stripe, the released 15.00 is a refund of the authorisation.
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (2500, 1500, False)
    [released] = (await client.v1.refunds.list_async({"payment_intent": intent.id})).data
    assert (released.amount, released.status, released.reason) == (1500, "succeeded", None)
    assert released.destination_details is not None
    assert released.destination_details.card is not None
    assert released.destination_details.card.type == "reversal"
    assert (await event_types(client, *INTENT_EVENTS))[3:] == [
        "refund.created",
        "charge.refunded",
        "charge.captured",
        "payment_intent.succeeded",
    ]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"amount_to_capture": 4001}, "amount_too_large", "amount_to_capture"),
        ({"amount_to_capture": 49}, "amount_too_small", "amount_to_capture"),
        ({"final_capture": False}, None, "final_capture"),
        ({"statement_descriptor": "SHOP"}, None, "statement_descriptor"),
        ({"application_fee_amount": 10}, "parameter_unknown", "application_fee_amount"),
        ({"amount_to_capture": -1}, "parameter_invalid_integer", "amount_to_capture"),
    ],
)
async def test_capture_refusals(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    params: Any,
    code: str | None,
    param: str,
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    refused = await capture_refused(client, intent.id, params)
    assert (refused.http_status, refused.code, refused.param) == (400, code, param)
    unchanged = await client.v1.payment_intents.retrieve_async(intent.id)
    assert (unchanged.status, unchanged.amount_capturable) == ("requires_capture", 4000)


async def test_only_an_authorisation_can_be_captured(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    card = await checkout_payment(client, raw)
    debit = await checkout_payment(client, raw, payment_status="unpaid")
    for intent in (card, debit):
        refused = await capture_refused(client, intent.id)
        assert refused.code == "payment_intent_unexpected_state"
        assert intent.status in refused.user_message
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.payment_intents.capture_async("pi_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


async def test_a_capture_is_replayed_under_its_idempotency_key(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    options: Any = {"idempotency_key": "capture-1"}
    first = await client.v1.payment_intents.capture_async(
        intent.id, {"amount_to_capture": 3000}, options
    )
    again = await client.v1.payment_intents.capture_async(
        intent.id, {"amount_to_capture": 3000}, options
    )
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.to_dict() == first.to_dict()
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.payment_intents.capture_async(
            intent.id, {"amount_to_capture": 2000}, options
        )
    # A refusal made once the capture had begun is replayed too, as Stripe does.
    other = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    too_much: Any = {"amount_to_capture": 5000}
    for _ in range(2):
        refused = await capture_refused(client, other.id, too_much)
        assert refused.code == "amount_too_large"
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert charge.amount_captured == 3000


async def test_cancelling_an_authorisation_releases_it(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    canceled = await client.v1.payment_intents.cancel_async(
        intent.id, {"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert canceled.canceled_at is not None and canceled.amount_capturable == 0
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert (charge.captured, charge.amount_refunded, charge.refunded) == (False, 4000, True)
    assert (await event_types(client, *INTENT_EVENTS))[3:] == [
        "refund.created",
        "charge.refunded",
        "payment_intent.canceled",
    ]
    for refused in (
        await capture_refused(client, intent.id),
        await cancel_refused(client, intent.id),
    ):
        assert refused.code == "payment_intent_unexpected_state"


async def cancel_refused(
    client: stripe.StripeClient, intent_id: str, params: Any = None
) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.payment_intents.cancel_async(intent_id, params)
    return caught.value


async def test_cancel_refusals(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    succeeded = await checkout_payment(client, raw)
    processing = await checkout_payment(client, raw, payment_status="unpaid")
    for intent in (succeeded, processing):
        refused = await cancel_refused(client, intent.id)
        assert refused.code == "payment_intent_unexpected_state"
    authorised = await checkout_payment(client, raw, capture_method="manual")
    bad = await cancel_refused(client, authorised.id, {"cancellation_reason": "automatic"})
    assert bad.param == "cancellation_reason"
    assert (await client.v1.payment_intents.retrieve_async(authorised.id)).status == (
        "requires_capture"
    )


async def test_an_authorisation_lapses_after_seven_days(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=4000, capture_method="manual")
    await advance_clock(raw, 7 * DAY - 60)
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == (
        "requires_capture"
    )
    await advance_clock(raw, 60)
    lapsed = await client.v1.payment_intents.retrieve_async(
        intent.id, {"expand": ["latest_charge"]}
    )
    assert (lapsed.status, lapsed.cancellation_reason) == ("canceled", "automatic")
    charge = charge_of(lapsed)
    assert (charge.captured, charge.amount_refunded, charge.refunded) == (False, 4000, True)
    [refund] = (await client.v1.refunds.list_async({"charge": charge.id})).data
    assert (refund.amount, refund.reason) == (4000, "expired_uncaptured_charge")
    assert (await event_types(client, *INTENT_EVENTS))[3:] == [
        "refund.created",
        "charge.refunded",
        "charge.expired",
        "payment_intent.canceled",
    ]
    [expired] = (await client.v1.events.list_async({"type": "charge.expired"})).data
    assert expired.request is not None and expired.request.id is None
    assert isinstance(expired.data.object, stripe.Charge)
    refused = await capture_refused(client, intent.id)
    assert refused.code == "payment_intent_unexpected_state"


async def test_a_bank_debit_is_processing_until_it_settles(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    settles = await checkout_payment(client, raw, payment_status="unpaid", currency="eur")
    fails = await checkout_payment(client, raw, payment_status="unpaid")
    for intent in (settles, fails):
        assert (intent.status, intent.amount_received) == ("processing", 0)
        assert (charge_of(intent).status, charge_of(intent).paid) == ("pending", False)
    details = charge_of(settles).payment_method_details
    assert details is not None and details.type == "sepa_debit"
    other = charge_of(fails).payment_method_details
    assert other is not None and other.type == "us_bank_account"

    for intent, outcome in ((settles, "succeeded"), (fails, "failed")):
        session = (await client.v1.checkout.sessions.list_async({"payment_intent": intent.id})).data
        answer = await raw.post(
            f"/_sandbox/checkout/sessions/{session[0].id}/async_payment", json={"outcome": outcome}
        )
        answer.raise_for_status()
    succeeded = await client.v1.payment_intents.retrieve_async(
        settles.id, {"expand": ["latest_charge"]}
    )
    assert (succeeded.status, succeeded.amount_received) == ("succeeded", 1500)
    assert (charge_of(succeeded).status, charge_of(succeeded).paid) == ("succeeded", True)
    failed = await client.v1.payment_intents.retrieve_async(fails.id, {"expand": ["latest_charge"]})
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == "insufficient_funds"
    assert failed.last_payment_error.charge == charge_of(failed).id
    assert (charge_of(failed).status, charge_of(failed).failure_code) == (
        "failed",
        "insufficient_funds",
    )
    assert await event_types(client, *INTENT_EVENTS) == [
        *("payment_intent.created", "charge.pending", "payment_intent.processing") * 2,
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.failed",
        "payment_intent.payment_failed",
    ]
    # A payment that failed can be given up.
    canceled = await client.v1.payment_intents.cancel_async(failed.id)
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", None)


async def test_a_manual_capture_session_cannot_be_paid_by_bank_debit(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(), payment_intent_data={"capture_method": "manual"})
    )
    refused = await raw.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay", json={"payment_status": "unpaid"}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "payment_status")
    still = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (still.status, still.payment_intent) == ("open", None)
    await pay(raw, session.id)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent"]}
    )
    assert isinstance(paid.payment_intent, stripe.PaymentIntent)
    assert paid.payment_intent.status == "requires_capture"


async def test_a_payment_intent_is_retrieved_and_expanded(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent = await checkout_payment(client, raw, customer_creation="always")
    fetched = await client.v1.payment_intents.retrieve_async(
        intent.id, {"expand": ["customer", "latest_charge.payment_intent"]}
    )
    assert isinstance(fetched.customer, stripe.Customer)
    nested = charge_of(fetched).payment_intent
    assert isinstance(nested, stripe.PaymentIntent) and nested.id == intent.id
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.payment_intents.retrieve_async("pi_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unexpandable:
        await client.v1.payment_intents.retrieve_async(intent.id, {"expand": ["payment_method"]})
    assert unexpandable.value.param == "expand"
    # The expansion above left the stored charge as it was.
    listed = await client.v1.charges.list_async({"payment_intent": intent.id})
    assert [charge.id for charge in listed.data] == [charge_of(intent).id]
    assert (await client.v1.charges.list_async({"payment_intent": "pi_other"})).data == []
