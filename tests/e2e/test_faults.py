"""Faults a payment system meets, through the real server: the caller's deadline bounds every
wait, Stripe's rate limits are ridden out, streams are bounded, and SIGTERM drains."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.helpers import Sandbox, Stub, cart_request, detail, new_order_id, reason
from tests.e2e.processes import service_process
from tests.support import eventually

SESSIONS = "/v1/checkout/sessions"


def session_posts(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["requests"].get(f"POST {SESSIONS}", 0))


async def test_with_too_little_time_left_stripe_is_not_called(
    stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    before = session_posts(sandbox)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(cart_request(order_id), timeout=0.4)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.5)
    assert session_posts(sandbox) == before
    # The attempt is kept with its key; a retry with time to spare makes the one session.
    retried = await stub.CreateSession(cart_request(order_id), timeout=10)
    assert retried.session.status == pb.Session.OPEN
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [retried.session.id]


async def test_a_slow_stripe_is_cut_off_at_the_callers_deadline_and_the_retry_converges(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": SESSIONS, "method": "POST", "delay_ms": 3000, "count": 1, "phase": "after"},
    )
    try:
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(cart_request(order_id), timeout=1.5)
        waited = time.monotonic() - began
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    # The server cut its Stripe call short to answer inside the deadline, with a retryable
    # status, instead of letting the caller's deadline run out on a call still waiting.
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(caught.value) == "STRIPE_TIMEOUT"
    assert waited < 1.5
    # A good caller retries the same request after the delay it was given. While Stripe
    # still works on the first attempt, the key is busy (409, UNAVAILABLE again).
    retried = None
    for _ in range(20):
        try:
            retried = await stub.CreateSession(cart_request(order_id), timeout=10)
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(0.5)
    assert retried is not None
    # Stripe made the session after the caller gave up; the stored key found that one.
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [retried.session.id]


async def test_a_rate_limit_is_ridden_out_with_backoff(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": SESSIONS, "method": "POST", "status": 429, "count": 2},
    )
    try:
        created = await stub.CreateSession(cart_request(order_id), timeout=10)
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    assert created.session.status == pb.Session.OPEN


async def test_a_rate_limit_that_outlasts_the_deadline_is_unavailable_with_retry_info(
    stub: Stub, sandbox: Sandbox
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": SESSIONS, "method": "POST", "status": 429, "count": 1000},
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(cart_request(new_order_id()), timeout=3)
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(caught.value) == "STRIPE_RATE_LIMITED"
    delay = detail(caught.value, error_details_pb2.RetryInfo).retry_delay
    assert 1 <= delay.seconds + delay.nanos / 1e9 <= 3


@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["503", "dropped"])
async def test_stripe_errors_and_dropped_connections_are_unavailable(
    stub: Stub, sandbox: Sandbox, fault: dict[str, object]
) -> None:
    sandbox.control(
        "POST", "/_sandbox/faults", {"path_prefix": SESSIONS, "method": "POST", "count": 1, **fault}
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(cart_request(new_order_id()), timeout=10)
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert detail(caught.value, error_details_pb2.RetryInfo).retry_delay is not None


async def test_watch_streams_are_capped_and_end_after_their_lifetime(
    environ: dict[str, str],
) -> None:
    env = {**environ, "WATCH_MAX_STREAMS": "1", "WATCH_MAX_SECONDS": "1"}
    async with service_process(env) as replica:
        order_id = new_order_id()
        await replica.stub.CreateSession(cart_request(order_id))
        first = replica.stub.WatchSession(api.WatchSessionRequest(order_id=order_id))
        assert isinstance(await first.read(), api.WatchSessionResponse)

        second = replica.stub.WatchSession(api.WatchSessionRequest(order_id=order_id))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await second.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1 WatchSession" in (refused.value.details() or "")

        # The first ends by itself, with OK, once its lifetime is over.
        assert await asyncio.wait_for(first.read(), timeout=5) == grpc.aio.EOF
        assert await first.code() == grpc.StatusCode.OK
        # Its slot is free again.
        third = replica.stub.WatchSession(api.WatchSessionRequest(order_id=order_id))
        assert isinstance(await third.read(), api.WatchSessionResponse)
        third.cancel()


async def test_sigterm_turns_readiness_off_serves_through_the_drain_delay_then_exits(
    environ: dict[str, str],
) -> None:
    env = {**environ, "DRAIN_DELAY_SECONDS": "4", "SHUTDOWN_GRACE_SECONDS": "5"}
    async with service_process(env) as replica:
        assert replica.channel is not None
        health = health_pb2_grpc.HealthStub(replica.channel)
        order_id = new_order_id()
        began = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)

        async def not_serving() -> bool:
            answer = await health.Check(health_pb2.HealthCheckRequest())  # type: ignore[attr-defined]
            return bool(answer.status == health_pb2.HealthCheckResponse.NOT_SERVING)

        await eventually(not_serving, within_seconds=3)
        # Still serving calls while load balancers catch up.
        created = await replica.stub.CreateSession(cart_request(order_id), timeout=5)
        assert created.session.status == pb.Session.OPEN
        assert time.monotonic() - began < 4

        assert await asyncio.wait_for(replica.process.wait(), timeout=20) == 0
        assert time.monotonic() - began >= 4


async def test_an_attempt_whose_key_only_replays_a_saved_500_goes_on_with_a_new_key(
    stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": SESSIONS, "method": "POST", "status": 500, "phase": "during"},
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(cart_request(order_id), timeout=10)
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    first_key = await db.fetchval(
        "SELECT idempotency_key FROM checkout_sessions WHERE order_id = $1", order_id
    )

    # Stripe would replay that 500 to this key for a day; the retry checks that the failed
    # attempt made nothing, and goes on with a key of its own.
    retried = await stub.CreateSession(cart_request(order_id), timeout=10)

    assert retried.session.status == pb.Session.OPEN
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [retried.session.id]
    assert (
        await db.fetchval(
            "SELECT idempotency_key FROM checkout_sessions WHERE order_id = $1", order_id
        )
        != first_key
    )


async def test_watchers_that_leave_after_the_last_update_leave_no_unretrieved_task(
    environ: dict[str, str], sandbox: Sandbox, app: Application
) -> None:
    """A caller that cancels as soon as it sees the final state used to leave the server's
    next step (which ended with StopAsyncIteration) uncollected: asyncio then printed "Task
    exception was never retrieved" once per watcher, which would flood a production log."""
    async with service_process(environ) as replica:
        order_id = new_order_id()
        created = (await replica.stub.CreateSession(cart_request(order_id))).session
        streams = [
            replica.stub.WatchSession(api.WatchSessionRequest(order_id=order_id)) for _ in range(40)
        ]
        for stream in streams:
            assert isinstance(await stream.read(), api.WatchSessionResponse)
        sandbox.pay(created.id, payment_status="paid")

        async def until_paid_then_leave(stream: Any) -> None:
            while True:
                update = await stream.read()
                if update.session.payment_status == pb.Session.PAID:
                    stream.cancel()
                    return

        # The suite's in-process server (`app`) takes the webhook and writes the shared ledger;
        # this replica's watchers hear of it through Postgres.
        await asyncio.wait_for(
            asyncio.gather(*(until_paid_then_leave(s) for s in streams)), timeout=30
        )
        await asyncio.sleep(1)  # let the server finish its steps and the garbage collector run
        replica.process.send_signal(signal.SIGTERM)
        await replica.next_event("stopped")
        assert replica.process.stdout is not None
        rest = (await replica.process.stdout.read()).decode()

    printed = "\n".join(str(line) for line in replica.lines) + rest
    assert "Task exception was never retrieved" not in printed
