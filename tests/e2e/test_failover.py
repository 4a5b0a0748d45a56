"""A Postgres failover that loses the last commits, on a primary and its asynchronous streaming
standby of this test's own (chaos/pg_pair.py): `python -m service` with both hosts in its
DATABASE_URL (`target_session_attrs=read-write`) names both at start and never its password;
the session whose row the failover lost is adopted again from Stripe before anything may act
on its order; until then the calls that act on an order wait (UNAVAILABLE,
LEDGER_RECONCILING), reads are answered, and the replica is not ready; and it recovers by
itself. The same under load, with its counts, is `make chaos`'s failover run (chaos/)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from prometheus_client.parser import text_string_to_metric_families

from chaos.postgres import PAIR_PASSWORD, PostgresPair
from checkout.v1 import checkout_service_pb2 as api
from service.config import describe_dsn
from tests.e2e.helpers import Sandbox, cart_request, detail, new_order_id, reason
from tests.e2e.payments import paid_order, refund, refunds_at_stripe
from tests.e2e.processes import ServiceProcess, service_process
from tests.support import eventually

RECONCILED = "ledger reconciled with Stripe after the database changed"


@pytest_asyncio.fixture
async def pair(postgres_folder: Path) -> AsyncIterator[PostgresPair]:
    started = await PostgresPair.open(postgres_folder, "failover-test")
    yield started
    await started.close()


async def on_standby(pair: PostgresPair, kept: str, paid: str) -> bool:
    """Whether the standby has replayed the row of the session `kept` and the payment of the
    session `paid`."""
    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pair.ports[1]}/postgres")
    try:
        return bool(
            await conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM checkout_sessions WHERE session_id = $1)
                      AND EXISTS (SELECT 1 FROM payments p JOIN checkout_sessions s
                                  ON p.session_row = s.id WHERE s.session_id = $2)""",
                kept,
                paid,
            )
        )
    finally:
        await conn.close()


async def reconciling(replica: ServiceProcess) -> float:
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://127.0.0.1:{replica.http_port}/metrics")
    for family in text_string_to_metric_families(page.text):
        if family.name == "checkout_ledger_reconciling":
            return float(family.samples[0].value)
    raise AssertionError("checkout_ledger_reconciling is not served")


async def ready(replica: ServiceProcess) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{replica.http_port}/readyz")).status_code


async def first_answer_from_the_new_server(
    calls: Iterator[Awaitable[object]],
) -> grpc.aio.AioRpcError:
    """The first refusal other than DATABASE_UNAVAILABLE (the primary is dead, or the standby
    is not yet promoted) among `calls`, made one after the other."""
    for call in calls:
        try:
            await call
        except grpc.aio.AioRpcError as exc:
            if reason(exc) != "DATABASE_UNAVAILABLE":
                return exc
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("a call that acts on a lost order was answered")
    raise AssertionError("the database stayed unavailable")


async def test_a_failover_that_lost_a_session_adopts_it_before_its_order_is_acted_on(
    environ: dict[str, str], pair: PostgresPair, sandbox: Sandbox
) -> None:
    env = {**environ, "DATABASE_URL": pair.dsn, "DB_COMMAND_TIMEOUT_SECONDS": "2"}
    async with service_process(env) as replica:
        starting = replica.lines[0]
        assert starting["postgres"] == f"Postgres {describe_dsn(pair.dsn)}"
        assert f"127.0.0.1:{pair.ports[0]},127.0.0.1:{pair.ports[1]}" in starting["postgres"]

        kept_order, lost_order = new_order_id(), new_order_id()
        kept = (await replica.stub.CreateSession(cart_request(kept_order))).session
        # A paid order, refunded once: its payment is stored (this replica hears no webhook).
        paid = await paid_order(replica.stub, sandbox)
        await replica.stub.RefundPayment(refund(paid.order_id, 100))
        await eventually(lambda: on_standby(pair, kept.id, paid.id))
        await pair.hold()
        # Committed on the primary, and the callers told: the standby never hears of them.
        told = (await replica.stub.CreateSession(cart_request(lost_order))).session
        refund_request = refund(paid.order_id, 500)
        refunded = await replica.stub.RefundPayment(refund_request)
        # Stripe's session list fails for now: the reconciliation cannot finish yet.
        fault = {"path_prefix": "/v1/checkout/sessions", "method": "GET", "status": 500}
        sandbox.control("POST", "/_sandbox/faults", {**fault, "count": 100_000})
        await pair.kill_primary()
        await pair.promote()
        # At once, before the replica's probe reaches the new server: the expiry's own first
        # connection is what tells it the database changed, after the hold was asked, and the
        # order it looks for is gone; it must wait all the same, not be told NOT_FOUND.
        first = await first_answer_from_the_new_server(
            replica.stub.ExpireSession(api.ExpireSessionRequest(order_id=lost_order))
            for _ in range(200)
        )
        assert reason(first) == "LEDGER_RECONCILING", first.details()

        await replica.next_event(
            "database server changed: a failover or a restart, which may have lost the last "
            "commits; new sessions wait until the ledger is reconciled with Stripe"
        )
        with pytest.raises(grpc.aio.AioRpcError) as waited:
            await replica.stub.CreateSession(cart_request(lost_order, metadata={"cart": "changed"}))
        assert waited.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason(waited.value) == "LEDGER_RECONCILING"
        assert detail(waited.value, error_details_pb2.RetryInfo).retry_delay.seconds >= 1
        with pytest.raises(grpc.aio.AioRpcError) as expiry:
            await replica.stub.ExpireSession(api.ExpireSessionRequest(order_id=kept_order))
        assert reason(expiry.value) == "LEDGER_RECONCILING"
        # Reads are answered, from what the database kept.
        read = await replica.stub.GetSession(api.GetSessionRequest(order_id=kept_order))
        assert read.session.id == kept.id
        assert await ready(replica) == 503
        assert await reconciling(replica) == 1

        sandbox.control("DELETE", "/_sandbox/faults")
        await replica.next_event(RECONCILED)

        async def serving() -> bool:
            return await ready(replica) == 200

        await eventually(serving)
        assert await reconciling(replica) == 0
        # The session the failover lost is the order's again, as its caller was told.
        adopted = await replica.stub.GetSession(api.GetSessionRequest(order_id=lost_order))
        assert adopted.session.id == told.id
        # A new cart for that order expires it first: the link the customer has cannot be paid
        # beside the new one.
        replaced = await replica.stub.CreateSession(
            cart_request(lost_order, metadata={"cart": "changed"})
        )
        assert replaced.session.id != told.id
        [at_stripe] = [s for s in await sandbox.sessions_for(lost_order) if s.id == told.id]
        assert at_stripe.status == "expired"
        # The refund's operation was lost too: its caller's retry refunds nothing more.
        again = await replica.stub.RefundPayment(refund_request)
        assert again.refund.id == refunded.refund.id
        intent = again.session.payment.payment_intent_id
        made = [r.id for r in await refunds_at_stripe(sandbox, intent) if r.amount == 500]
        assert made == [refunded.refund.id]

        assert await pair.lost_commits() >= 1
        replica.process.terminate()
        await asyncio.wait_for(replica.drain_output(), timeout=30)
    assert not [line for line in replica.lines if PAIR_PASSWORD in str(line)]
    assert not [line for line in replica.lines if line.get("code") in ("INTERNAL", "UNKNOWN")]
