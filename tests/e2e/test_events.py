"""The event feed end to end (ListEvents, StreamEvents): payments made in the sandbox reach the
feed through Stripe's webhooks, on whichever replica applies them, and reach a caller's open
stream on another; each caller reads its own events (operators any caller's, without a
client_secret); a cursor the feed cannot go on from is OUT_OF_RANGE with the cursor to go on
from; streams count against the caller's limit and end on revocation and at a drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import event_pb2 as events
from checkout.v1 import session_pb2 as pb
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import callers_document, new_token
from tests.e2e.helpers import Sandbox, Stub, cart_request, detail, new_order_id, reason
from tests.e2e.test_checkout_options import recovered_copy
from tests.support import eventually

Metadata = Sequence[tuple[str, str]]
SHOP, BILLING, ONCALL = new_token("shop"), new_token("billing"), new_token("oncall")
BUSY = new_token("busy")
CALLERS: list[dict[str, Any]] = [
    {"name": "shop", "token": SHOP, "role": "caller", "max_streams": 2},
    {"name": "billing", "token": BILLING, "role": "caller"},
    {"name": "oncall", "token": ONCALL, "role": "operator"},
    {"name": "busy", "token": BUSY, "role": "caller"},
]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def latest_cursor(stub: Stub, metadata: Metadata = (), **request: Any) -> str:
    """Where the caller's feed stands now: the cursor after its last event."""
    cursor = ""
    while True:
        page = await stub.ListEvents(
            events.ListEventsRequest(after=cursor, page_size=1000, **request), metadata=metadata
        )
        cursor = page.next_cursor
        if len(page.events) < 1000:
            return cursor


async def events_after(
    stub: Stub, cursor: str, order_id: str, count: int, metadata: Metadata = ()
) -> list[events.Event]:
    """The order's first `count` events after the cursor, once they are there."""
    found: list[events.Event] = []

    async def arrived() -> bool:
        page = await stub.ListEvents(
            events.ListEventsRequest(after=cursor, page_size=1000), metadata=metadata
        )
        found[:] = [e for e in page.events if e.order_id == order_id]
        return len(found) >= count

    await eventually(arrived, within_seconds=20)
    return found[:count]


async def next_event(stream: Any) -> events.Event:
    message = await asyncio.wait_for(stream.read(), timeout=20)
    assert isinstance(message, events.StreamEventsResponse), message
    return message.event


async def test_a_payment_is_an_event_with_the_session_as_get_session_showed_it(
    stub: Stub, sandbox: Sandbox
) -> None:
    since = await latest_cursor(stub)
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session

    sandbox.pay(created.id, payment_status="paid")
    # The session's completion, then its payment's capture once Stripe's webhook about the
    # PaymentIntent is applied: each event with the session as that change stored it.
    paid, captured = await events_after(stub, since, order_id, 2)
    shown = (await stub.GetSession(api.GetSessionRequest(order_id=order_id))).session

    assert (paid.type, captured.type) == (events.Event.ORDER_PAID, events.Event.PAYMENT_CAPTURED)
    assert captured.session == shown
    assert paid.session.payment_status == pb.Session.PAID
    assert not paid.session.HasField("payment")
    assert paid.session.update_time.ToDatetime() < shown.update_time.ToDatetime()
    assert captured.session.payment.amount_captured == shown.amount_total
    # Resumed from its own cursor, the feed goes on after it.
    after = await stub.ListEvents(events.ListEventsRequest(after=paid.cursor, page_size=1000))
    assert paid.id not in {e.id for e in after.events}


async def test_a_delayed_payment_and_an_expiry_are_announced_in_order(
    stub: Stub, sandbox: Sandbox
) -> None:
    since = await latest_cursor(stub)
    settled, failed, expired = new_order_id(), new_order_id(), new_order_id()
    sessions = {}
    for order_id in (settled, failed, expired):
        sessions[order_id] = (await stub.CreateSession(cart_request(order_id))).session.id
    for order_id, outcome in ((settled, "succeeded"), (failed, "failed")):
        sandbox.pay(sessions[order_id], payment_status="unpaid")
        await events_after(stub, since, order_id, 1)
        sandbox.control(
            "POST",
            f"/_sandbox/checkout/sessions/{sessions[order_id]}/async_payment",
            {"outcome": outcome},
        )
    await stub.ExpireSession(api.ExpireSessionRequest(order_id=expired))

    types = {
        order_id: [e.type for e in await events_after(stub, since, order_id, count)]
        for order_id, count in ((settled, 3), (failed, 2), (expired, 1))
    }
    only_paid = await stub.ListEvents(
        events.ListEventsRequest(after=since, types=[events.Event.ORDER_PAID], page_size=1000)
    )

    Event = events.Event
    assert types == {
        # The debit's money arrives: the order paid, then its payment captured, whichever of
        # Stripe's webhooks about the two comes first.
        settled: [Event.PAYMENT_PROCESSING, Event.ORDER_PAID, Event.PAYMENT_CAPTURED],
        failed: [Event.PAYMENT_PROCESSING, Event.PAYMENT_FAILED],
        expired: [Event.SESSION_EXPIRED],
    }
    mine = [e for e in only_paid.events if e.order_id in (settled, failed, expired)]
    assert [(e.order_id, e.type) for e in mine] == [(settled, Event.ORDER_PAID)]


async def test_a_recovered_cart_paid_announces_the_order_paid_with_the_copy(
    stub: Stub, sandbox: Sandbox
) -> None:
    """The copy Stripe made of an expired session (recovery.py) is adopted with its event."""
    since = await latest_cursor(stub)
    order_id = new_order_id()
    recovery = api.CreateSessionRequest.AfterExpiration(
        recovery=api.CreateSessionRequest.Recovery(enabled=True)
    )
    abandoned = (
        await stub.CreateSession(cart_request(order_id, after_expiration=recovery))
    ).session
    expired = (await stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id))).session

    copy_id = recovered_copy(expired.recovery.url)
    sandbox.pay(copy_id, payment_status="paid")
    gone, paid = await events_after(stub, since, order_id, 2)

    assert (gone.type, gone.session.id) == (events.Event.SESSION_EXPIRED, abandoned.id)
    assert (paid.type, paid.session.id) == (events.Event.ORDER_PAID, copy_id)
    assert paid.session.recovered_from == abandoned.id


async def test_a_stream_follows_payments_live_and_ends_at_the_callers_deadline(
    stub: Stub, sandbox: Sandbox, app: Application
) -> None:
    since = await latest_cursor(stub)
    stream = stub.StreamEvents(events.StreamEventsRequest(after=since), timeout=30)
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session

    sandbox.pay(created.id, payment_status="paid")
    # The order is paid, then its payment's capture is stored: its last event.
    seen: list[events.Event] = []
    while len(seen) < 2:
        if (event := await next_event(stream)).order_id == order_id:
            seen.append(event)
    stream.cancel()
    idle = stub.StreamEvents(events.StreamEventsRequest(after=seen[-1].cursor), timeout=1)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await idle.read()

    assert [e.type for e in seen] == [events.Event.ORDER_PAID, events.Event.PAYMENT_CAPTURED]
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"http://127.0.0.1:{app.http_port}/metrics")).text
    assert 'checkout_feed_events_total{type="order_paid"}' in metrics
    delivered = [
        line
        for line in metrics.splitlines()
        if line.startswith("checkout_feed_delivery_seconds_count")
    ]
    assert delivered and float(delivered[0].split()[-1]) >= 1


async def test_bad_requests_name_the_field(stub: Stub) -> None:
    cases = [
        (events.ListEventsRequest(after="not-a-cursor"), "after"),
        # A type from a newer contract than this server's.
        (
            events.ListEventsRequest(
                types=[events.Event.ORDER_PAID, events.Event.Type.ValueType(99)]
            ),
            "types[1]",
        ),
        (events.ListEventsRequest(page_size=1001), "page_size"),
        (events.ListEventsRequest(caller="billing"), "caller"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListEvents(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = [
            v.field for v in detail(caught.value, error_details_pb2.BadRequest).field_violations
        ]
        assert fields == [field]
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        await stub.StreamEvents(events.StreamEventsRequest(after="x" * 300)).read()
    assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class Served:
    app: Application
    stub: Stub
    callers_file: Path

    async def metric(self, name: str, **labels: str) -> float:
        """The value of one series of the replica's metrics (0 if it has none yet)."""
        async with httpx.AsyncClient() as http:
            page = (await http.get(f"http://127.0.0.1:{self.app.http_port}/metrics")).text
        wanted = {f'{k}="{v}"' for k, v in labels.items()}
        for line in page.splitlines():
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            found = set(series.partition("{")[2].rstrip("}").split(",")) - {""}
            if found >= wanted:
                return float(value)
        return 0.0


@pytest_asyncio.fixture
async def served(
    environ: dict[str, str], tmp_path: Path, app: Application
) -> AsyncIterator[Served]:
    """A second replica, with callers: the suite's server (`app`) receives the sandbox's
    webhooks and writes the events; this one hears of them through Postgres."""
    del app
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(CALLERS))
    settings = Settings.from_environ(
        {**environ, "CALLERS_FILE": str(callers_file), "CALLERS_RELOAD_SECONDS": "0.1"}
    )
    replica = await start(settings)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
        yield Served(replica, api_grpc.CheckoutServiceStub(channel), callers_file)
    await replica.stop()


async def expired_order(stub: Stub, metadata: Metadata, **overrides: Any) -> str:
    order_id = new_order_id()
    await stub.CreateSession(cart_request(order_id, **overrides), metadata=metadata)
    await stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id), metadata=metadata)
    return order_id


async def test_each_caller_reads_its_own_events_and_operators_any_without_secrets(
    served: Served,
) -> None:
    stub, shop = served.stub, bearer(SHOP)
    embedded = {
        "ui_mode": pb.Session.EMBEDDED_PAGE,
        "success_url": "",
        "return_url": "https://shop.example/back",
    }
    since = await latest_cursor(stub, shop)
    order_id = await expired_order(stub, shop, **embedded)

    [own] = await events_after(stub, since, order_id, 1, shop)
    operator = await stub.ListEvents(
        events.ListEventsRequest(after=since, caller="shop", page_size=1000),
        metadata=bearer(ONCALL),
    )
    billing = await stub.ListEvents(
        events.ListEventsRequest(page_size=1000), metadata=bearer(BILLING)
    )

    [seen] = [e for e in operator.events if e.order_id == order_id]
    assert own.session.client_secret.startswith("cs_")
    assert seen.id == own.id and seen.session.client_secret == ""
    assert order_id not in {e.order_id for e in billing.events}
    # Another caller's cursor opens nothing.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListEvents(events.ListEventsRequest(after=own.cursor), metadata=bearer(BILLING))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_cursor_whose_event_the_database_lost_is_out_of_range_with_the_latest_before(
    served: Served, db: asyncpg.Pool
) -> None:
    """As after a failover that lost the last commits: the consumer's cursor names an event the
    database does not have. It is told so, with the latest cursor from before, and reads on
    from there what was written since."""
    stub, shop = served.stub, bearer(SHOP)
    since = await latest_cursor(stub, shop)
    first = await expired_order(stub, shop)
    [kept] = await events_after(stub, since, first, 1, shop)
    second = await expired_order(stub, shop)
    [lost] = await events_after(stub, since, second, 1, shop)
    await db.execute("DELETE FROM feed_events WHERE id = $1::uuid", lost.id)
    written_since = await expired_order(stub, shop)
    await events_after(stub, since, written_since, 1, shop)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListEvents(events.ListEventsRequest(after=lost.cursor), metadata=shop)
    stream = stub.StreamEvents(events.StreamEventsRequest(after=lost.cursor), metadata=shop)
    with pytest.raises(grpc.aio.AioRpcError) as streamed:
        await stream.read()

    error = caught.value
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert streamed.value.code() == grpc.StatusCode.OUT_OF_RANGE
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info.reason == "CURSOR_UNKNOWN"
    assert [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations] == [
        "after"
    ]
    resumed = await stub.ListEvents(
        events.ListEventsRequest(after=info.metadata["latest_cursor"], page_size=1000),
        metadata=shop,
    )
    assert [e.order_id for e in resumed.events] == [written_since]
    assert kept.id not in {e.id for e in resumed.events}


async def test_streams_count_against_the_callers_limit_and_end_when_it_is_revoked(
    served: Served,
) -> None:
    stub, shop = served.stub, bearer(SHOP)
    await expired_order(stub, shop)  # so that a stream from the start has a first message
    held = [stub.StreamEvents(events.StreamEventsRequest(), metadata=shop) for _ in range(2)]
    for stream in held:
        await next_event(stream)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.StreamEvents(events.StreamEventsRequest(), metadata=shop).read()
    served.callers_file.write_text(callers_document([c for c in CALLERS if c["name"] != "shop"]))
    ended = []
    for stream in held:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await asyncio.wait_for(stream.read(), timeout=10)
        ended.append(caught.value.code())

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason(refused.value) == "TOO_MANY_STREAMS"
    assert ended == [grpc.StatusCode.UNAUTHENTICATED] * 2


async def test_a_drain_ends_streams_with_unavailable_to_resume_elsewhere(
    environ: dict[str, str], stub: Stub
) -> None:
    await expired_order(stub, ())
    replica = await start(Settings.from_environ(environ))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
            other: Stub = api_grpc.CheckoutServiceStub(channel)
            stream = other.StreamEvents(events.StreamEventsRequest())
            await next_event(stream)
            stopping = asyncio.create_task(replica.stop())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                while True:
                    await asyncio.wait_for(stream.read(), timeout=20)
            await stopping
    finally:
        if not replica.stopping.is_set():
            await replica.stop()

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(caught.value) == "SERVER_SHUTTING_DOWN"


async def test_a_consumer_that_hangs_up_mid_stream_is_cancelled_not_unknown(
    served: Served, db: asyncpg.Pool
) -> None:
    """A consumer leaving while events are on their way (grpc closes the stream's generator
    then) is the caller going away, not a failure of the service's."""
    stub, busy = served.stub, bearer(BUSY)
    since = await latest_cursor(stub, busy)
    order_id = await expired_order(stub, busy)
    [event] = await events_after(stub, since, order_id, 1, busy)
    await db.execute(
        """INSERT INTO feed_events (caller, order_id, type, session)
           SELECT caller, order_id, type, session FROM feed_events, generate_series(1, 2000)
           WHERE id = $1::uuid""",
        event.id,
    )

    for n in range(30):
        stream = stub.StreamEvents(events.StreamEventsRequest(after=since), metadata=busy)
        for _ in range(1 + 61 * n):
            await next_event(stream)
        stream.cancel()

    async def all_ended() -> bool:
        return await served.metric("checkout_feed_streams") == 0

    await eventually(all_ended, within_seconds=10)
    handled = "grpc_server_handled_total"
    stream_events = {"grpc_method": "StreamEvents", "grpc_service": "checkout.v1.CheckoutService"}
    cancelled = await served.metric(handled, grpc_code="CANCELLED", **stream_events)
    unknown = await served.metric(handled, grpc_code="UNKNOWN", **stream_events)
    assert (cancelled, unknown) == (30, 0)
