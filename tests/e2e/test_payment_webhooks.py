"""What happens to a payment outside the service reaches it: Stripe's webhooks about
PaymentIntents, charges, refunds and disputes, each applied once by reading the payment again
(docs/architecture.md, "Payments after checkout"); refunds made in Stripe's Dashboard too."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from checkout.v1 import payments_pb2 as pay
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.helpers import Sandbox, Stub, reason, stored
from tests.e2e.payments import (
    TOTAL,
    capture,
    intent_at_stripe,
    paid_order,
    posts,
    refund,
    until_payment,
)
from tests.e2e.test_webhooks import deliver, signature
from tests.support import eventually


async def test_a_refund_made_in_the_dashboard_shows_and_counts_against_what_may_be_refunded(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)

    elsewhere = await sandbox.client.v1.refunds.create_async(
        {"payment_intent": payment.payment_intent_id, "amount": 1500, "reason": "duplicate"}
    )
    seen = await until_payment(stub, session.order_id, amount_refunded=1500)
    posts_before = posts(sandbox)
    with pytest.raises(grpc.aio.AioRpcError) as too_much:
        await stub.RefundPayment(refund(session.order_id, TOTAL - 1500 + 1))

    [shown] = seen.refunds
    assert (shown.id, shown.amount, shown.request_id) == (elsewhere.id, 1500, "")
    assert shown.reason == pay.Refund.DUPLICATE
    assert (too_much.value.code(), reason(too_much.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REFUND_EXCEEDS_CAPTURED",
    )
    assert posts(sandbox) == posts_before
    rest = await stub.RefundPayment(refund(session.order_id))
    assert rest.refund.amount == TOTAL - 1500


async def test_a_refund_that_fails_later_shows_why_and_its_amount_may_be_refunded_again(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    made = await stub.RefundPayment(refund(session.order_id))

    sandbox.control(
        "POST",
        f"/_sandbox/refunds/{made.refund.id}/fail",
        {"failure_reason": "expired_or_canceled_card"},
    )
    payment = await until_payment(stub, session.order_id, amount_refunded=0)
    again = await stub.RefundPayment(refund(session.order_id))

    [failed] = payment.refunds
    assert (failed.id, failed.status) == (made.refund.id, pay.Refund.FAILED)
    assert failed.failure_reason == "expired_or_canceled_card"
    assert again.refund.amount == TOTAL
    assert [r.status for r in again.session.payment.refunds] == [
        pay.Refund.FAILED,
        pay.Refund.SUCCEEDED,
    ]


@pytest.mark.parametrize(("decision", "then_refundable"), [("won", True), ("lost", False)])
async def test_a_dispute_shows_and_holds_refunds_until_it_is_decided(
    stub: Stub, sandbox: Sandbox, decision: str, then_refundable: bool
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)

    dispute = sandbox.control(
        "POST",
        f"/_sandbox/charges/{payment.charge_id}/dispute",
        {"amount": 2000, "reason": "product_not_received"},
    )
    disputed = await _until_dispute(stub, session.order_id, pay.Dispute.NEEDS_RESPONSE)
    with pytest.raises(grpc.aio.AioRpcError) as held:
        await stub.RefundPayment(refund(session.order_id, 100))
    sandbox.control("POST", f"/_sandbox/disputes/{dispute['id']}/close", {"status": decision})
    decided = await _until_dispute(
        stub, session.order_id, pay.Dispute.WON if decision == "won" else pay.Dispute.LOST
    )

    assert (disputed.dispute.id, disputed.dispute.amount) == (dispute["id"], 2000)
    assert disputed.dispute.reason == "product_not_received"
    assert disputed.dispute.evidence_due_by.seconds > disputed.dispute.create_time.seconds
    assert (held.value.code(), reason(held.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CHARGE_DISPUTED",
    )
    assert decided.dispute.id == dispute["id"]
    if then_refundable:
        assert (await stub.RefundPayment(refund(session.order_id, 100))).refund.amount == 100
    else:
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await stub.RefundPayment(refund(session.order_id, 100))
        assert reason(lost.value) == "CHARGE_DISPUTED"


async def test_a_payment_event_is_applied_once_by_reading_the_payment_again(
    app: Application, stub: Stub, sandbox: Sandbox, db: asyncpg.Pool, webhook_secret: str
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        # An event about the charge as it was before its refund, delivered after it: the
        # service reads the payment again rather than trusting the event.
        payload = await _event(sandbox, "charge.refunded", payment.charge_id, "charges")
        made = await sandbox.client.v1.refunds.create_async(
            {"payment_intent": payment.payment_intent_id, "amount": 700}
        )
        first = await deliver(app.http_port, payload, signature(payload, webhook_secret))
        again = await deliver(app.http_port, payload, signature(payload, webhook_secret))
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert first == (200, {"received": True, "outcome": "applied"})
    assert again == (200, {"received": True, "outcome": "duplicate"})
    seen = (await stored(stub, session.order_id)).payment
    assert [(r.id, r.amount) for r in seen.refunds] == [(made.id, 700)]
    event_id = json.loads(payload)["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM stripe_events WHERE event_id = $1", event_id) == 1
    )


async def test_the_payments_first_event_stores_the_session_it_outran(
    app: Application, stub: Stub, sandbox: Sandbox, webhook_secret: str
) -> None:
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        session = await paid_order(stub, sandbox, manual=True)
        assert (await stored(stub, session.order_id)).status == pb.Session.OPEN
        at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
        assert at_stripe.payment_intent is not None
        payload = await _event(
            sandbox,
            "payment_intent.amount_capturable_updated",
            str(at_stripe.payment_intent),
            "payment_intents",
        )
        delivered = await deliver(app.http_port, payload, signature(payload, webhook_secret))
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert delivered == (200, {"received": True, "outcome": "applied"})
    now = await stored(stub, session.order_id)
    assert now.status == pb.Session.COMPLETE
    assert (now.payment.status, now.payment.amount_capturable) == (
        pay.Payment.REQUIRES_CAPTURE,
        TOTAL,
    )


async def test_an_event_about_another_integrations_payment_is_acknowledged_and_ignored(
    app: Application, sandbox: Sandbox, webhook_secret: str
) -> None:
    foreign = await sandbox.client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 700,
                        "product_data": {"name": "Not ours"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://elsewhere.example/done",
        }
    )
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        paid = sandbox.pay(foreign.id, payment_status="paid")
        payload = await _event(
            sandbox, "payment_intent.succeeded", paid["payment_intent"], "payment_intents"
        )
        delivered = await deliver(app.http_port, payload, signature(payload, webhook_secret))
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert delivered == (200, {"received": True, "outcome": "ignored"})


async def test_stripes_refusal_is_mapped_and_answered_alike_to_a_retry(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox, manual=True)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        # Released in Stripe's Dashboard, and no webhook tells the service.
        await sandbox.client.v1.payment_intents.cancel_async(payment.payment_intent_id)
        request = capture(session.order_id)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CapturePayment(request)
        posts_before = posts(sandbox)
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.CapturePayment(request)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(refused.value) == "STRIPE_REFUSED"
    assert (again.value.code(), again.value.details()) == (
        refused.value.code(),
        refused.value.details(),
    )
    assert posts(sandbox) == posts_before
    # The refusal made the service read the payment again: it knows it was released.
    assert (await stored(stub, session.order_id)).payment.status == pay.Payment.CANCELED
    at_stripe = await intent_at_stripe(sandbox, payment.payment_intent_id)
    assert at_stripe.amount_received == 0


async def _until_dispute(stub: Stub, order_id: str, status: int) -> pay.Payment:
    async def decided() -> bool:
        return (await stored(stub, order_id)).payment.dispute.status == status

    await eventually(decided, within_seconds=15)
    return (await stored(stub, order_id)).payment


async def _event(sandbox: Sandbox, kind: str, object_id: str, resource: str) -> bytes:
    """A signed-able Stripe event carrying the object as it is at Stripe now."""
    subject: Any
    if resource == "charges":
        subject = await sandbox.client.v1.charges.retrieve_async(object_id)
    else:
        subject = await sandbox.client.v1.payment_intents.retrieve_async(object_id)
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": subject.to_dict()},
    }
    return json.dumps(event).encode()


async def test_evidence_handed_in_puts_the_dispute_under_review(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    dispute = sandbox.control("POST", f"/_sandbox/charges/{payment.charge_id}/dispute", {})
    await _until_dispute(stub, session.order_id, pay.Dispute.NEEDS_RESPONSE)

    await sandbox.client.v1.disputes.update_async(
        dispute["id"],
        {"evidence": {"uncategorized_text": "Delivered, signed for."}, "submit": True},
    )
    reviewed = await _until_dispute(stub, session.order_id, pay.Dispute.UNDER_REVIEW)

    assert (reviewed.dispute.id, reviewed.dispute.amount) == (dispute["id"], TOTAL)


async def test_an_authorisation_released_in_the_dashboard_shows_released(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox, manual=True)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)

    await sandbox.client.v1.payment_intents.cancel_async(
        payment.payment_intent_id, {"cancellation_reason": "abandoned"}
    )
    released = await until_payment(stub, session.order_id, status=pay.Payment.CANCELED)

    assert released.cancellation_reason == pay.Payment.ABANDONED
    assert (released.amount_capturable, released.amount_captured) == (0, 0)
