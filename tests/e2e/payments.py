"""What the tests of the money after checkout share: an order paid through the sandbox, and the
payment as the service answers it or as Stripe (the sandbox) says it is."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import stripe

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2 as pay
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id, stored
from tests.support import eventually

# The README's cart: two T-shirts at 15.00 and a mug at 9.90.
TOTAL = 3990


def request_id() -> str:
    return str(uuid.uuid4())


async def paid_order(
    stub: Stub, sandbox: Sandbox, *, manual: bool = False, **overrides: Any
) -> pb.Session:
    """A new order's session, paid by card: captured at once, or only authorised (`manual`).
    Returns the session as created (the payment is Stripe's until a webhook or a call tells the
    service)."""
    capture = pay.Payment.MANUAL if manual else pay.Payment.CAPTURE_METHOD_UNSPECIFIED
    created = await stub.CreateSession(
        cart_request(new_order_id(), capture_method=capture, **overrides)
    )
    sandbox.pay(created.session.id, payment_status="paid")
    return created.session


async def until_payment(stub: Stub, order_id: str, **expected: Any) -> pay.Payment:
    """The session's payment as the ledger holds it, once it says what is expected (webhooks
    land in the background)."""

    async def landed() -> bool:
        payment = (await stored(stub, order_id)).payment
        return all(getattr(payment, k) == v for k, v in expected.items())

    await eventually(landed, within_seconds=15)
    return (await stored(stub, order_id)).payment


def capture(order_id: str, amount: int | None = None, **fields: Any) -> api.CapturePaymentRequest:
    request = api.CapturePaymentRequest(order_id=order_id, request_id=request_id(), **fields)
    if amount is not None:
        request.amount = amount
    return request


def refund(order_id: str, amount: int | None = None, **fields: Any) -> api.RefundPaymentRequest:
    request = api.RefundPaymentRequest(order_id=order_id, request_id=request_id(), **fields)
    if amount is not None:
        request.amount = amount
    return request


def cancel(order_id: str, **fields: Any) -> api.CancelPaymentRequest:
    return api.CancelPaymentRequest(order_id=order_id, request_id=request_id(), **fields)


async def intent_at_stripe(sandbox: Sandbox, payment_intent_id: str) -> stripe.PaymentIntent:
    return await sandbox.client.v1.payment_intents.retrieve_async(
        payment_intent_id, {"expand": ["latest_charge"]}
    )


async def refunds_at_stripe(sandbox: Sandbox, payment_intent_id: str) -> list[stripe.Refund]:
    """Every refund of the payment at Stripe, releases of the authorisation included."""
    page = await sandbox.client.v1.refunds.list_async(
        {"payment_intent": payment_intent_id, "limit": 100}
    )
    return [r async for r in page.auto_paging_iter()]


def posts(sandbox: Sandbox) -> int:
    """POST requests the sandbox has answered: every call that would move money is one (reads,
    which webhooks also make, are not)."""
    requests = sandbox.stats()["requests"]
    return sum(n for key, n in requests.items() if key.startswith("POST /v1/"))


def money_calls(stub: Stub, order_id: str, *kinds: str) -> list[Callable[[], Awaitable[object]]]:
    """CapturePayment, CancelPayment or RefundPayment (`capture`, `cancel`, `refund`) of the
    order, each with a request id of its own."""
    made: dict[str, Callable[[], Awaitable[object]]] = {
        "capture": lambda: stub.CapturePayment(capture(order_id)),
        "cancel": lambda: stub.CancelPayment(cancel(order_id)),
        "refund": lambda: stub.RefundPayment(refund(order_id)),
    }
    return [made[kind] for kind in kinds]
