"""An authorisation not captured lapses 7 days later (Stripe releases it:
https://docs.stripe.com/payments/place-a-hold-on-a-payment-method), and nothing can be captured
after. Against a sandbox of its own, whose clock the test moves a week on, and a service on it.
The sandbox then signs its webhooks a week ahead of the service's clock, which refuses them (a
signature from the future): the lapse reaches the service through the sweep, which reads
Stripe's list of events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import payments_pb2 as pay
from service.app import start
from service.config import Settings
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH
from tests.e2e.helpers import Sandbox, Stub, reason
from tests.e2e.payments import cancel, capture, paid_order, until_payment
from tests.support import FAST_RETRIES, run_sandbox, stop_sandbox

WEEK = 7 * 24 * 3600


@pytest_asyncio.fixture
async def week_later(environ: dict[str, str]) -> AsyncIterator[tuple[Stub, Sandbox]]:
    """A sandbox of this test's own, and a service that receives its webhooks."""
    running = await run_sandbox("--port", "0", *FAST_RETRIES)
    sandbox = Sandbox(running.url)
    events: list[Any] = sorted(HANDLED_EVENTS)
    endpoint = await sandbox.client.v1.webhook_endpoints.create_async(
        {"url": f"http://127.0.0.1:9{WEBHOOK_PATH}", "enabled_events": events}
    )
    assert endpoint.secret is not None
    app = await start(
        Settings.from_environ(
            {
                **environ,
                "STRIPE_API_BASE": running.url,
                "STRIPE_WEBHOOK_SECRET": endpoint.secret,
                "SWEEP_INTERVAL_SECONDS": "0.2",
            }
        )
    )
    try:
        await sandbox.client.v1.webhook_endpoints.update_async(
            endpoint.id, {"url": f"http://127.0.0.1:{app.http_port}{WEBHOOK_PATH}"}
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield api_grpc.CheckoutServiceStub(channel), sandbox
    finally:
        await app.stop()
        await sandbox.http.close_async()  # type: ignore[no-untyped-call]
        assert await stop_sandbox(running) == 0


async def test_an_authorisation_not_captured_lapses_and_then_cannot_be_captured(
    week_later: tuple[Stub, Sandbox],
) -> None:
    stub, sandbox = week_later
    session = await paid_order(stub, sandbox, manual=True)
    authorised = await until_payment(stub, session.order_id, status=pay.Payment.REQUIRES_CAPTURE)

    sandbox.control("POST", "/_sandbox/clock/advance", {"seconds": WEEK})
    lapsed = await until_payment(stub, session.order_id, status=pay.Payment.CANCELED)
    with pytest.raises(grpc.aio.AioRpcError) as too_late:
        await stub.CapturePayment(capture(session.order_id))
    released = await stub.CancelPayment(cancel(session.order_id))

    assert authorised.capture_before.seconds > 0
    assert lapsed.cancellation_reason == pay.Payment.LAPSED
    assert (lapsed.amount_captured, lapsed.amount_refunded, list(lapsed.refunds)) == (0, 0, [])
    assert (too_late.value.code(), reason(too_late.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "AUTHORIZATION_RELEASED",
    )
    assert released.session.payment == lapsed
