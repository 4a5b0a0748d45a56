"""Callers cannot starve one another or outlive their revocation: each holds at most its own
number of open streams and its own share of calls to Stripe (RESOURCE_EXHAUSTED with RetryInfo
beyond them), what is answered without Stripe costs nothing, and a caller removed from, or
changed in, CALLERS_FILE loses its open streams too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import callers_document, new_token
from tests.e2e.helpers import Sandbox, Stub, cart_request, detail, new_order_id, reason
from tests.support import eventually

ORDERS, BILLING, REPORTS = new_token("orders"), new_token("billing"), new_token("reports")
CALLERS: list[dict[str, Any]] = [
    {"name": "orders", "token": ORDERS, "max_streams": 2},
    {"name": "billing", "token": BILLING},
    # Two calls to Stripe, then one every 100 s: none comes back during a test.
    {"name": "reports", "token": REPORTS, "stripe_calls_per_second": 0.01, "stripe_burst": 2},
]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Served:
    app: Application
    stub: Stub
    callers_file: Path

    async def metric(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient() as http:
            page = (await http.get(f"http://127.0.0.1:{self.app.http_port}/metrics")).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in page.splitlines():
            if line.startswith(f"{name}{{{wanted}}} "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest_asyncio.fixture
async def served(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Served]:
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(CALLERS))
    # The defaults as shipped, not the suite's: each caller here has its own share.
    settings = Settings.from_environ(
        {
            **{k: v for k, v in environ.items() if not k.startswith("CALLER_")},
            "CALLERS_FILE": str(callers_file),
            "CALLERS_RELOAD_SECONDS": "0.1",
        }
    )
    app = await start(settings)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield Served(app, api_grpc.CheckoutServiceStub(channel), callers_file)
    await app.stop()


async def exhausted(call: Any) -> grpc.aio.AioRpcError:
    """The call is refused with RESOURCE_EXHAUSTED, saying which share and when to retry."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    assert detail(error, error_details_pb2.RetryInfo).retry_delay.ToTimedelta().total_seconds() > 0
    assert detail(error, error_details_pb2.QuotaFailure).violations[0].subject.startswith("caller:")
    return error


async def first_message(stream: Any) -> api.WatchSessionResponse:
    message = await asyncio.wait_for(stream.read(), timeout=20)
    assert isinstance(message, api.WatchSessionResponse)
    return message


async def test_a_caller_holds_at_most_its_own_streams_and_others_still_get_theirs(
    served: Served,
) -> None:
    stub, order_id = served.stub, new_order_id()
    await stub.CreateSession(cart_request(order_id), metadata=bearer(ORDERS))
    watch = api.WatchSessionRequest(order_id=order_id)
    held = [stub.WatchSession(watch, metadata=bearer(ORDERS)) for _ in range(2)]
    for stream in held:
        await first_message(stream)

    third = stub.WatchSession(watch, metadata=bearer(ORDERS))
    refused = await exhausted(third.read())
    assert reason(refused) == "TOO_MANY_STREAMS"

    # Another caller is not starved by the first one's streams.
    billing_order = new_order_id()
    await stub.CreateSession(cart_request(billing_order), metadata=bearer(BILLING))
    billing_streams = [
        stub.WatchSession(api.WatchSessionRequest(order_id=billing_order), metadata=bearer(BILLING))
        for _ in range(3)
    ]
    for stream in billing_streams:
        await first_message(stream)

    # A stream that ends gives its place back.
    held[0].cancel()

    async def admitted_again() -> bool:
        stream = stub.WatchSession(watch, metadata=bearer(ORDERS))
        try:
            await first_message(stream)
        except grpc.aio.AioRpcError:
            return False
        held.append(stream)
        return True

    await eventually(admitted_again, within_seconds=10)
    assert (
        await served.metric(
            "checkout_caller_quota_refusals_total", caller="orders", limit="streams"
        )
        >= 1
    )
    for stream in (*held, *billing_streams):
        stream.cancel()


async def test_a_callers_calls_to_stripe_are_its_own_share(
    served: Served, sandbox: Sandbox
) -> None:
    stub, order_id = served.stub, new_order_id()
    reports = bearer(REPORTS)
    created = await stub.CreateSession(cart_request(order_id), metadata=reports)
    refresh = api.GetSessionRequest(order_id=order_id, refresh=True)
    await stub.GetSession(refresh, metadata=reports)
    # Two calls to Stripe, its burst: the next one is refused, and says when to come back.
    refused = await exhausted(stub.GetSession(refresh, metadata=reports))
    assert reason(refused) == "STRIPE_CALLS_EXHAUSTED"
    assert detail(refused, error_details_pb2.RetryInfo).retry_delay.seconds >= 50

    # What needs no call to Stripe costs nothing: the same create again, a read of the ledger.
    again = await stub.CreateSession(cart_request(order_id), metadata=reports)
    assert (again.reused, again.session.id) == (True, created.session.id)
    read = await stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=reports)
    assert read.session.id == created.session.id

    # A create that would reach Stripe is refused before anything is written or sent.
    fresh = new_order_id()
    await exhausted(stub.CreateSession(cart_request(fresh), metadata=reports))
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=fresh), metadata=reports)
    assert list(listed.sessions) == []
    assert await sandbox.sessions_for(fresh) == []
    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await stub.ExpireSession(api.ExpireSessionRequest(order_id=fresh), metadata=reports)
    assert nothing.value.code() == grpc.StatusCode.NOT_FOUND

    # Another caller's share is its own.
    billing_order = new_order_id()
    await stub.CreateSession(cart_request(billing_order), metadata=bearer(BILLING))
    refreshed = await stub.GetSession(
        api.GetSessionRequest(order_id=billing_order, refresh=True), metadata=bearer(BILLING)
    )
    assert refreshed.session.status == pb.Session.OPEN
    assert await served.metric("checkout_caller_stripe_requests_total", caller="reports") == 2
    assert (
        await served.metric(
            "checkout_caller_quota_refusals_total", caller="reports", limit="stripe_calls"
        )
        == 2
    )


@pytest_asyncio.fixture
async def revocable(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Served]:
    """Callers with no limits of their own: what is revoked here is their entry itself."""
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(PLAIN))
    settings = Settings.from_environ(
        {**environ, "CALLERS_FILE": str(callers_file), "CALLERS_RELOAD_SECONDS": "0.1"}
    )
    app = await start(settings)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield Served(app, api_grpc.CheckoutServiceStub(channel), callers_file)
    await app.stop()


PLAIN: list[dict[str, Any]] = [
    {"name": "orders", "token": ORDERS, "role": "caller"},
    {"name": "billing", "token": BILLING, "role": "caller"},
]


async def test_a_revoked_callers_open_streams_end_and_the_others_go_on(
    revocable: Served, sandbox: Sandbox, app: Application
) -> None:
    """A removed caller's new calls were refused at once, but its open WatchSession (which may
    last 30 minutes) kept receiving updates."""
    # The suite's server (`app`) receives the sandbox's webhooks; this one hears of them
    # through Postgres.
    del app
    served, stub = revocable, revocable.stub
    orders_order, billing_order = new_order_id(), new_order_id()
    await stub.CreateSession(cart_request(orders_order), metadata=bearer(ORDERS))
    billing_session = (
        await stub.CreateSession(cart_request(billing_order), metadata=bearer(BILLING))
    ).session
    orders_stream = stub.WatchSession(
        api.WatchSessionRequest(order_id=orders_order), metadata=bearer(ORDERS)
    )
    billing_stream = stub.WatchSession(
        api.WatchSessionRequest(order_id=billing_order), metadata=bearer(BILLING)
    )
    await first_message(orders_stream)
    await first_message(billing_stream)

    served.callers_file.write_text(callers_document([c for c in PLAIN if c["name"] != "orders"]))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(orders_stream.read(), timeout=10)
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "CALLERS_FILE" in (ended.value.details() or "")

    # The caller the change left as it was keeps its stream: the payment still reaches it.
    sandbox.pay(billing_session.id, payment_status="paid")
    paid = await first_message(billing_stream)
    assert paid.session.payment_status == pb.Session.PAID

    # A changed entry (here, its role) is a revocation too.
    other_order = new_order_id()
    await stub.CreateSession(cart_request(other_order), metadata=bearer(BILLING))
    watched = stub.WatchSession(
        api.WatchSessionRequest(order_id=other_order), metadata=bearer(BILLING)
    )
    await first_message(watched)
    served.callers_file.write_text(
        callers_document([{"name": "billing", "token": BILLING, "role": "operator"}])
    )
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await asyncio.wait_for(watched.read(), timeout=10)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Its token still names it, now an operator: it watches again at once, naming the owner.
    again = stub.WatchSession(
        api.WatchSessionRequest(order_id=other_order, caller="billing"), metadata=bearer(BILLING)
    )
    await first_message(again)
    again.cancel()


async def test_a_changed_limit_is_a_revocation_too(served: Served) -> None:
    stub, order_id = served.stub, new_order_id()
    await stub.CreateSession(cart_request(order_id), metadata=bearer(BILLING))
    watched = stub.WatchSession(
        api.WatchSessionRequest(order_id=order_id), metadata=bearer(BILLING)
    )
    await first_message(watched)
    served.callers_file.write_text(
        callers_document(
            [{**c, "max_streams": 5} if c["name"] == "billing" else c for c in CALLERS]
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await asyncio.wait_for(watched.read(), timeout=10)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_without_a_callers_file_the_local_caller_has_the_default_shares(
    environ: dict[str, str],
) -> None:
    """One client held 4,059 stream slots in 1.2 s, and 200 GetSession(refresh) calls made
    200 calls to Stripe: the defaults bound the one local caller too."""
    settings = Settings.from_environ(
        {
            **environ,
            "CALLER_MAX_STREAMS": "2",
            "CALLER_STRIPE_CALLS_PER_SECOND": "0.01",
            "CALLER_STRIPE_BURST": "3",
        }
    )
    app = await start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub: Stub = api_grpc.CheckoutServiceStub(channel)
            order_id = new_order_id()
            await stub.CreateSession(cart_request(order_id))
            refresh = api.GetSessionRequest(order_id=order_id, refresh=True)
            for _ in range(2):
                await stub.GetSession(refresh)
            assert reason(await exhausted(stub.GetSession(refresh))) == "STRIPE_CALLS_EXHAUSTED"

            watch = api.WatchSessionRequest(order_id=order_id)
            held = [stub.WatchSession(watch) for _ in range(2)]
            for stream in held:
                await first_message(stream)
            assert reason(await exhausted(stub.WatchSession(watch).read())) == "TOO_MANY_STREAMS"
            for stream in held:
                stream.cancel()
    finally:
        await app.stop()
