"""Capture, cancel and refund through gRPC, against the sandbox over real HTTP (the README's "The
money's life after checkout"): each request moves money once, and everything that can be refused
without asking Stripe is refused first."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2 as pay
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import (
    Sandbox,
    Stub,
    cart_request,
    detail,
    new_order_id,
    reason,
    until_stored,
    violated_fields,
)
from tests.e2e.payments import (
    TOTAL,
    cancel,
    capture,
    intent_at_stripe,
    money_calls,
    paid_order,
    posts,
    refund,
    refunds_at_stripe,
    request_id,
    until_payment,
)


async def test_a_manual_payment_is_authorised_then_captured_in_part_and_the_rest_released(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox, manual=True)

    authorised = await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)
    captured = (await stub.CapturePayment(capture(session.order_id, 3000))).session

    assert authorised.capture_method == pay.Payment.MANUAL
    assert (authorised.amount_authorized, authorised.amount_capturable) == (TOTAL, TOTAL)
    assert (authorised.amount_captured, authorised.amount_refunded) == (0, 0)
    assert authorised.capture_before.seconds > 0
    payment = captured.payment
    assert payment.status == pay.Payment.SUCCEEDED
    assert (payment.amount_authorized, payment.amount_captured) == (TOTAL, 3000)
    assert (payment.amount_capturable, payment.amount_refunded) == (0, 0)
    # The rest of the authorisation went back to the customer's card, but it is no refund.
    assert list(payment.refunds) == []
    assert not payment.HasField("capture_before")
    at_stripe = await intent_at_stripe(sandbox, payment.payment_intent_id)
    assert (at_stripe.status, at_stripe.amount_received) == ("succeeded", 3000)
    assert captured.update_time.ToDatetime() > session.update_time.ToDatetime()


async def test_a_capture_retried_with_its_request_id_captures_once(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox, manual=True)
    request = capture(session.order_id, 2500)

    first = await stub.CapturePayment(request)
    posts_before = posts(sandbox)
    again = await stub.CapturePayment(request)

    assert again.session.payment.amount_captured == 2500
    assert again.session.payment.payment_intent_id == first.session.payment.payment_intent_id
    assert posts(sandbox) == posts_before  # answered from the ledger
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stub.CapturePayment(
            api.CapturePaymentRequest(
                order_id=session.order_id, request_id=request.request_id, amount=2000
            )
        )
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (violated_fields(reused.value), reason(reused.value)) == (
        ["request_id"],
        "REQUEST_ID_REUSED",
    )
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.CapturePayment(capture(session.order_id))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(twice.value) == "ALREADY_CAPTURED"


@pytest.mark.parametrize(
    ("amount", "code", "why"),
    [
        (TOTAL + 1, grpc.StatusCode.FAILED_PRECONDITION, "AMOUNT_EXCEEDS_CAPTURABLE"),
        (30, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
        (0, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
    ],
)
async def test_only_what_is_capturable_is_captured_and_nothing_is_sent_otherwise(
    stub: Stub, sandbox: Sandbox, amount: int, code: grpc.StatusCode, why: str
) -> None:
    session = await paid_order(stub, sandbox, manual=True)
    await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)
    posts_before = posts(sandbox)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CapturePayment(capture(session.order_id, amount))

    assert (refused.value.code(), reason(refused.value)) == (code, why)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert violated_fields(refused.value) == ["amount"]
    assert posts(sandbox) == posts_before
    still = await until_payment(stub, session.order_id)
    assert (still.status, still.amount_capturable) == (pay.Payment.REQUIRES_CAPTURE, TOTAL)


async def test_a_request_without_a_request_id_or_a_session_is_refused_naming_each_field(
    stub: Stub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RefundPayment(api.RefundPaymentRequest(amount=0))

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(refused.value)) == ["amount", "request_id"]
    with pytest.raises(grpc.aio.AioRpcError) as no_session:
        await stub.CancelPayment(api.CancelPaymentRequest(request_id=request_id()))
    assert violated_fields(no_session.value) == ["session_id"]


async def test_a_payment_captured_at_once_cannot_be_captured_or_released(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)

    for call in money_calls(stub, session.order_id, "capture", "cancel"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "ALREADY_CAPTURED"
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    assert payment.capture_method == pay.Payment.AUTOMATIC
    assert payment.amount_captured == TOTAL


async def test_an_authorisation_is_released_once_and_then_neither_captured_nor_refunded(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox, manual=True)

    released = await stub.CancelPayment(
        cancel(session.order_id, reason=pay.Payment.REQUESTED_BY_CUSTOMER)
    )
    again = await stub.CancelPayment(cancel(session.order_id))

    payment = released.session.payment
    assert payment.status == pay.Payment.CANCELED
    assert payment.cancellation_reason == pay.Payment.REQUESTED_BY_CUSTOMER
    assert (payment.amount_captured, payment.amount_refunded, list(payment.refunds)) == (0, 0, [])
    assert again.session.payment == payment
    at_stripe = await intent_at_stripe(sandbox, payment.payment_intent_id)
    assert (at_stripe.status, at_stripe.cancellation_reason) == (
        "canceled",
        "requested_by_customer",
    )
    for call, why in zip(
        money_calls(stub, session.order_id, "capture", "refund"),
        ("AUTHORIZATION_RELEASED", "NOTHING_CAPTURED"),
        strict=True,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        assert (refused.value.code(), reason(refused.value)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            why,
        )


async def test_partial_refunds_follow_one_another_up_to_what_was_captured(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)

    first = await stub.RefundPayment(
        refund(session.order_id, 1000, reason=pay.Refund.REQUESTED_BY_CUSTOMER)
    )
    second = await stub.RefundPayment(refund(session.order_id, 990))
    with pytest.raises(grpc.aio.AioRpcError) as too_much:
        await stub.RefundPayment(refund(session.order_id, 2001))
    rest = await stub.RefundPayment(refund(session.order_id))
    with pytest.raises(grpc.aio.AioRpcError) as nothing_left:
        await stub.RefundPayment(refund(session.order_id))

    assert first.refund.amount == 1000
    assert first.refund.reason == pay.Refund.REQUESTED_BY_CUSTOMER
    assert first.refund.status == pay.Refund.SUCCEEDED
    assert first.refund.id.startswith("re_")
    assert first.session.payment.amount_refunded == 1000
    assert second.session.payment.amount_refunded == 1990
    assert too_much.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(too_much.value) == "REFUND_EXCEEDS_CAPTURED"
    violation = detail(too_much.value, error_details_pb2.PreconditionFailure).violations[0]
    assert "2000" in violation.description
    assert rest.refund.amount == 2000
    payment = rest.session.payment
    assert payment.amount_refunded == TOTAL == payment.amount_captured
    assert [r.amount for r in payment.refunds] == [1000, 990, 2000]
    assert [r.id for r in payment.refunds] == [first.refund.id, second.refund.id, rest.refund.id]
    assert reason(nothing_left.value) == "ALREADY_REFUNDED"
    at_stripe = await refunds_at_stripe(sandbox, payment.payment_intent_id)
    assert sorted(r.amount for r in at_stripe) == [990, 1000, 2000]


async def test_a_refund_retried_with_its_request_id_refunds_once(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    request = refund(session.order_id, 500)

    first = await stub.RefundPayment(request)
    again = await stub.RefundPayment(request)

    assert again.refund == first.refund
    assert first.refund.request_id == request.request_id
    at_stripe = await refunds_at_stripe(sandbox, first.session.payment.payment_intent_id)
    assert [r.id for r in at_stripe] == [first.refund.id]
    metadata = at_stripe[0].metadata
    assert metadata is not None
    assert metadata["checkout_request_id"] == request.request_id
    assert metadata["order_id"] == session.order_id


async def test_only_a_captured_payment_is_refunded(stub: Stub, sandbox: Sandbox) -> None:
    authorised = await paid_order(stub, sandbox, manual=True)
    unpaid = (await stub.CreateSession(cart_request(new_order_id()))).session

    with pytest.raises(grpc.aio.AioRpcError) as not_captured:
        await stub.RefundPayment(refund(authorised.order_id, 100))
    with pytest.raises(grpc.aio.AioRpcError) as not_paid:
        await stub.RefundPayment(refund(unpaid.order_id))

    assert reason(not_captured.value) == "NOT_CAPTURED"
    assert not_captured.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (not_paid.value.code(), reason(not_paid.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SESSION_NOT_PAID",
    )


async def test_a_session_just_paid_is_read_from_stripe_before_its_webhook_lands(
    stub: Stub, sandbox: Sandbox
) -> None:
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        session = await paid_order(stub, sandbox, manual=True)
        captured = await stub.CapturePayment(capture(session.order_id))
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert captured.session.status == pb.Session.COMPLETE
    assert captured.session.payment.amount_captured == TOTAL


@pytest.mark.parametrize(
    ("mode", "where"),
    [(pb.Session.SETUP, "Stripe Dashboard"), (pb.Session.SUBSCRIPTION, "Stripe Billing")],
)
async def test_setup_and_subscription_sessions_say_where_their_money_is_handled(
    stub: Stub, sandbox: Sandbox, mode: int, where: str
) -> None:
    order_id = new_order_id()
    if mode == pb.Session.SETUP:
        request = api.CreateSessionRequest(
            order_id=order_id,
            mode=pb.Session.SETUP,
            currency="eur",
            success_url="https://shop.example/saved",
        )
    else:
        request = cart_request(
            order_id,
            mode=pb.Session.SUBSCRIPTION,
            line_items=[
                api.CreateSessionRequest.LineItem(
                    price_data=api.CreateSessionRequest.PriceData(
                        unit_amount=900,
                        product_name="Coffee club",
                        recurring=api.CreateSessionRequest.Recurring(
                            interval=api.CreateSessionRequest.Recurring.MONTH
                        ),
                    ),
                    quantity=1,
                )
            ],
        )
    created = await stub.CreateSession(request)
    sandbox.pay(created.session.id, payment_status="paid")

    for call in money_calls(stub, order_id, "capture", "cancel", "refund"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(refused.value) == "NOT_A_PAYMENT_SESSION"
        assert where in (refused.value.details() or "")


async def test_capture_method_is_for_payment_sessions_only(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateSession(
            api.CreateSessionRequest(
                order_id=new_order_id(),
                mode=pb.Session.SETUP,
                currency="eur",
                success_url="https://shop.example/saved",
                capture_method=pay.Payment.MANUAL,
            )
        )

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == ["capture_method"]


async def test_the_payment_is_in_every_read_of_the_session(stub: Stub, sandbox: Sandbox) -> None:
    session = await paid_order(stub, sandbox)
    refunded = await stub.RefundPayment(refund(session.order_id, 100))

    got = await stub.GetSession(api.GetSessionRequest(session_id=session.id))
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=session.order_id))
    watched = [
        m.session
        async for m in stub.WatchSession(
            api.WatchSessionRequest(order_id=session.order_id), timeout=5
        )
    ]

    assert got.session.payment == refunded.session.payment
    assert [s.payment for s in listed.sessions] == [refunded.session.payment]
    assert [s.payment for s in watched] == [refunded.session.payment]
    assert refunded.session.payment.payment_intent_id == got.session.payment_intent_id


async def test_two_capture_requests_at_once_capture_once(stub: Stub, sandbox: Sandbox) -> None:
    session = await paid_order(stub, sandbox, manual=True)
    await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)

    answers = await asyncio.gather(
        stub.CapturePayment(capture(session.order_id, 2000)),
        stub.CapturePayment(capture(session.order_id, 3000)),
        return_exceptions=True,
    )

    [won] = [a for a in answers if isinstance(a, api.CapturePaymentResponse)]
    [lost] = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert lost.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(lost) in ("PAYMENT_BUSY", "ALREADY_CAPTURED")
    captured = won.session.payment.amount_captured
    at_stripe = await intent_at_stripe(sandbox, won.session.payment.payment_intent_id)
    assert at_stripe.amount_received == captured in (2000, 3000)


async def test_a_bank_debit_is_neither_captured_nor_refunded_until_it_settles(
    stub: Stub, sandbox: Sandbox
) -> None:
    created = (await stub.CreateSession(cart_request(new_order_id()))).session
    sandbox.pay(created.id, payment_status="unpaid")  # a bank debit, under way

    calls = money_calls(stub, created.order_id, "capture", "refund")
    refusals = []
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        refusals.append((refused.value.code(), reason(refused.value)))
    sandbox.control(
        "POST", f"/_sandbox/checkout/sessions/{created.id}/async_payment", {"outcome": "failed"}
    )
    await until_stored(stub, created.order_id, async_payment_failed=True)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.RefundPayment(refund(created.order_id))

    assert refusals == [
        (grpc.StatusCode.FAILED_PRECONDITION, "NOT_AUTHORIZED"),
        (grpc.StatusCode.FAILED_PRECONDITION, "NOTHING_CAPTURED"),
    ]
    assert (failed.value.code(), reason(failed.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOTHING_PAID",
    )
