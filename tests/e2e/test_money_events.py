"""The money after checkout on the event feed, end to end: a capture, a release, a refund, a
refund that fails and a dispute, made through the service or at Stripe (the sandbox), reach the
caller's StreamEvents and ListEvents as the change's event type, each with the session as the
change stored it and, for a refund's events, the refund; once each, whatever webhooks about the
same change Stripe sends afterwards."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from checkout.v1 import event_pb2 as events
from checkout.v1 import payments_pb2 as pay
from service.app import Application
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id
from tests.e2e.payments import TOTAL, cancel, capture, paid_order, refund, until_payment
from tests.e2e.test_events import events_after, latest_cursor, next_event
from tests.e2e.test_observability import webhooks_settled
from tests.e2e.test_payment_webhooks import _event as stripe_event
from tests.e2e.test_webhooks import deliver, signature
from tests.support import eventually

Event = events.Event


async def order_events(stream: Any, order_id: str, count: int) -> list[events.Event]:
    """The order's next `count` events on an open stream (other tests' events pass by)."""
    seen: list[events.Event] = []
    while len(seen) < count:
        if (event := await next_event(stream)).order_id == order_id:
            seen.append(event)
    return seen


async def all_of(stub: Stub, sandbox: Sandbox, since: str, order_id: str) -> list[events.Event]:
    """Every event of the order after `since`, once Stripe has nothing more to deliver: a
    webhook about a change already announced announces nothing."""
    await eventually(lambda: webhooks_settled(sandbox))
    page = await stub.ListEvents(events.ListEventsRequest(after=since, page_size=1000))
    return [e for e in page.events if e.order_id == order_id]


async def test_an_authorisation_captured_on_shipment_is_announced_on_the_stream(
    stub: Stub, sandbox: Sandbox
) -> None:
    since = await latest_cursor(stub)
    stream = stub.StreamEvents(events.StreamEventsRequest(after=since), timeout=60)
    session = await paid_order(stub, sandbox, manual=True)
    paid, authorized = await order_events(stream, session.order_id, 2)

    answer = await stub.CapturePayment(capture(session.order_id, 3000))
    [captured] = await order_events(stream, session.order_id, 1)
    stream.cancel()

    assert (paid.type, authorized.type, captured.type) == (
        Event.ORDER_PAID,
        Event.PAYMENT_AUTHORIZED,
        Event.PAYMENT_CAPTURED,
    )
    assert authorized.session.payment.status == pay.Payment.REQUIRES_CAPTURE
    assert authorized.session.payment.amount_authorized == TOTAL
    assert captured.session.payment.status == pay.Payment.SUCCEEDED
    assert captured.session.payment == answer.session.payment
    assert captured.session.payment.amount_captured == 3000
    assert (authorized.refund_id, captured.refund_id) == ("", "")
    assert [e.id for e in await all_of(stub, sandbox, since, session.order_id)] == [
        e.id for e in (paid, authorized, captured)
    ]
    only = await stub.ListEvents(
        events.ListEventsRequest(after=since, types=[Event.PAYMENT_CAPTURED], page_size=1000)
    )
    assert [e.id for e in only.events if e.order_id == session.order_id] == [captured.id]


async def test_an_authorisation_released_is_announced(stub: Stub, sandbox: Sandbox) -> None:
    since = await latest_cursor(stub)
    session = await paid_order(stub, sandbox, manual=True)
    await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)

    await stub.CancelPayment(cancel(session.order_id))

    found = await all_of(stub, sandbox, since, session.order_id)
    assert [e.type for e in found] == [
        Event.ORDER_PAID,
        Event.PAYMENT_AUTHORIZED,
        Event.AUTHORIZATION_RELEASED,
    ]
    assert found[-1].session.payment.status == pay.Payment.CANCELED


async def test_a_refund_and_its_failure_are_announced_with_the_refund(
    stub: Stub, sandbox: Sandbox
) -> None:
    since = await latest_cursor(stub)
    session = await paid_order(stub, sandbox)
    await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)

    made = await stub.RefundPayment(refund(session.order_id, 1500))
    sandbox.control(
        "POST",
        f"/_sandbox/refunds/{made.refund.id}/fail",
        {"failure_reason": "expired_or_canceled_card"},
    )
    await until_payment(stub, session.order_id, amount_refunded=0)

    found = await all_of(stub, sandbox, since, session.order_id)
    assert [(e.type, e.refund_id) for e in found] == [
        (Event.ORDER_PAID, ""),
        (Event.PAYMENT_CAPTURED, ""),
        (Event.PAYMENT_REFUNDED, made.refund.id),
        (Event.REFUND_FAILED, made.refund.id),
    ]
    refunded, failed = found[2].session.payment, found[3].session.payment
    assert refunded.amount_refunded == 1500
    assert [(r.id, r.status) for r in refunded.refunds] == [(made.refund.id, pay.Refund.SUCCEEDED)]
    [gone] = failed.refunds
    assert (gone.id, gone.status, gone.failure_reason) == (
        made.refund.id,
        pay.Refund.FAILED,
        "expired_or_canceled_card",
    )


async def test_a_dispute_is_announced_when_it_opens_and_when_it_is_decided(
    stub: Stub, sandbox: Sandbox
) -> None:
    since = await latest_cursor(stub)
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    stream = stub.StreamEvents(events.StreamEventsRequest(after=since), timeout=60)
    await order_events(stream, session.order_id, 2)  # paid, captured

    dispute = sandbox.control(
        "POST",
        f"/_sandbox/charges/{payment.charge_id}/dispute",
        {"amount": 2000, "reason": "product_not_received"},
    )
    [opened] = await order_events(stream, session.order_id, 1)
    sandbox.control("POST", f"/_sandbox/disputes/{dispute['id']}/close", {"status": "lost"})
    [closed] = await order_events(stream, session.order_id, 1)
    stream.cancel()

    assert (opened.type, closed.type) == (Event.DISPUTE_OPENED, Event.DISPUTE_CLOSED)
    assert opened.session.payment.dispute.id == dispute["id"]
    assert opened.session.payment.dispute.status == pay.Dispute.NEEDS_RESPONSE
    assert closed.session.payment.dispute.status == pay.Dispute.LOST
    assert [e.type for e in await all_of(stub, sandbox, since, session.order_id)] == [
        Event.ORDER_PAID,
        Event.PAYMENT_CAPTURED,
        Event.DISPUTE_OPENED,
        Event.DISPUTE_CLOSED,
    ]


async def test_a_retried_refund_whose_answer_stripe_replays_announces_no_refund_again(
    stub: Stub, sandbox: Sandbox
) -> None:
    """The first answer to a refund is lost; another refund is made meanwhile; the retry's
    answer is Stripe's replay of the first, with the PaymentIntent as it was then. Stored, that
    older view would drop the other refund until the next read brought it back, announced a
    second time (found by make chaos)."""
    session = await paid_order(stub, sandbox)
    await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    since = await latest_cursor(stub)
    first = refund(session.order_id, 1000)
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        sandbox.control(
            "POST",
            "/_sandbox/faults",
            {
                "path_prefix": "/v1/refunds",
                "method": "POST",
                "status": 500,
                "count": 1,
                "phase": "after",
            },
        )
        try:
            with pytest.raises(grpc.aio.AioRpcError) as lost:
                await stub.RefundPayment(first)
        finally:
            sandbox.control("DELETE", "/_sandbox/faults")
        other = await stub.RefundPayment(refund(session.order_id, 500))
        retried = await stub.RefundPayment(first)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
    made = {retried.refund.id, other.refund.id}
    assert {r.id for r in retried.session.payment.refunds} == made
    assert retried.session.payment.amount_refunded == 1500
    found = await all_of(stub, sandbox, since, session.order_id)
    assert sorted((e.type, e.refund_id) for e in found) == sorted(
        (Event.PAYMENT_REFUNDED, refund_id) for refund_id in made
    )


async def test_a_delayed_payments_money_told_first_announces_the_order_paid_before_it(
    app: Application, stub: Stub, sandbox: Sandbox, webhook_secret: str
) -> None:
    """A bank debit settles; Stripe's webhook about the PaymentIntent comes before the one
    about the session: the session is read first, and the order announced paid before its
    payment's capture."""
    since = await latest_cursor(stub)
    created = (await stub.CreateSession(cart_request(new_order_id()))).session
    sandbox.pay(created.id, payment_status="unpaid")
    await events_after(stub, since, created.order_id, 1)
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        sandbox.control(
            "POST",
            f"/_sandbox/checkout/sessions/{created.id}/async_payment",
            {"outcome": "succeeded"},
        )
        at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
        payload = await stripe_event(
            sandbox, "payment_intent.succeeded", str(at_stripe.payment_intent), "payment_intents"
        )
        delivered = await deliver(app.http_port, payload, signature(payload, webhook_secret))
        page = await stub.ListEvents(events.ListEventsRequest(after=since, page_size=1000))
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert delivered == (200, {"received": True, "outcome": "applied"})
    assert [e.type for e in page.events if e.order_id == created.order_id] == [
        Event.PAYMENT_PROCESSING,
        Event.ORDER_PAID,
        Event.PAYMENT_CAPTURED,
    ]
