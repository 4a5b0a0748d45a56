"""No double charges, nothing lost, across real replicas: several `python -m service` processes
sharing one Postgres and one Stripe sandbox (docs/architecture.md, "Invariants")."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import suppress

import asyncpg
import grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.config import CRASH_AFTER_STRIPE_CREATE
from service.gateway.faults import CRASH_EXIT_CODE
from tests.e2e.helpers import Sandbox, cart_request, new_order_id
from tests.e2e.processes import replicas, service_process
from tests.support import eventually


async def test_100_concurrent_creates_over_3_replicas_make_one_stripe_session(
    environ: dict[str, str], pg_dsn: str, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    request = cart_request(order_id)
    async with replicas({**environ, "DATABASE_URL": pg_dsn}, 3) as processes:
        responses = await asyncio.gather(
            *(processes[i % 3].stub.CreateSession(request) for i in range(100)),
            return_exceptions=True,
        )

    failures = [r for r in responses if isinstance(r, BaseException)]
    assert failures == []
    ids = Counter(r.session.id for r in responses if isinstance(r, api.CreateSessionResponse))
    at_stripe = await sandbox.sessions_for(order_id)
    assert [s.id for s in at_stripe] == list(ids)
    assert ids[at_stripe[0].id] == 100
    assert (
        sum(1 for r in responses if isinstance(r, api.CreateSessionResponse) and not r.reused) == 1
    )
    rows = await db.fetchval("SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id)
    assert rows == 1


async def test_a_crash_between_stripe_and_the_ledger_recovers_the_same_session(
    environ: dict[str, str], pg_dsn: str, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    request = cart_request(order_id)
    env = {**environ, "DATABASE_URL": pg_dsn}

    async with service_process({**env, "CHECKOUT_FAULT": CRASH_AFTER_STRIPE_CREATE}) as doomed:
        call = doomed.stub.CreateSession(request)
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE  # the connection died with it
        assert await asyncio.wait_for(doomed.process.wait(), timeout=30) == CRASH_EXIT_CODE

    [created_at_stripe] = await sandbox.sessions_for(order_id)
    row = await db.fetchrow(
        "SELECT state, session_id FROM checkout_sessions WHERE order_id = $1", order_id
    )
    assert row is not None
    assert (row["state"], row["session_id"]) == ("pending", None)

    async with service_process(env) as survivor:
        recovered = await survivor.stub.CreateSession(request)

    assert recovered.session.id == created_at_stripe.id
    assert recovered.session.status == pb.Session.OPEN
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [created_at_stripe.id]


async def test_the_sweep_alone_resumes_a_crashed_creation(
    environ: dict[str, str], pg_dsn: str, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    env = {**environ, "DATABASE_URL": pg_dsn}
    async with service_process({**env, "CHECKOUT_FAULT": CRASH_AFTER_STRIPE_CREATE}) as doomed:
        with suppress(grpc.aio.AioRpcError):
            await doomed.stub.CreateSession(cart_request(order_id))
        await doomed.process.wait()
    [created_at_stripe] = await sandbox.sessions_for(order_id)
    # Age the pending row past the grace the sweep gives a creator that is still at work.
    await db.execute(
        "UPDATE checkout_sessions SET updated_at = now() - interval '1 minute' WHERE order_id = $1",
        order_id,
    )

    async def resumed() -> bool:
        state = await db.fetchval(
            "SELECT state FROM checkout_sessions WHERE order_id = $1", order_id
        )
        return bool(state == "open")

    async with service_process({**env, "SWEEP_INTERVAL_SECONDS": "0.2"}):
        await eventually(resumed)

    stored = await db.fetchval(
        "SELECT session_id FROM checkout_sessions WHERE order_id = $1", order_id
    )
    assert stored == created_at_stripe.id
    assert len(await sandbox.sessions_for(order_id)) == 1


async def test_with_webhooks_off_the_sweep_alone_brings_an_expired_session_to_expired(
    environ: dict[str, str], pg_dsn: str, sandbox: Sandbox
) -> None:
    env = {
        **environ,
        "DATABASE_URL": pg_dsn,
        "STRIPE_WEBHOOK_SECRET": "",
        "SWEEP_INTERVAL_SECONDS": "0.2",
        "SWEEP_QUIET_SECONDS": "0",
    }
    order_id = new_order_id()
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    async with service_process(env) as replica:
        created = await replica.stub.CreateSession(cart_request(order_id))
        # Expired at Stripe behind the service's back, and no webhook tells any replica.
        await sandbox.client.v1.checkout.sessions.expire_async(created.session.id)

        async def expired() -> bool:
            got = await replica.stub.GetSession(api.GetSessionRequest(order_id=order_id))
            return bool(got.session.status == pb.Session.EXPIRED)

        try:
            await eventually(expired)
        finally:
            sandbox.control("POST", "/_sandbox/webhooks/resume")
