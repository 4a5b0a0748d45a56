"""Idle StreamEvents streams, then payments: what the streams cost the server and Postgres while
nothing happens, and how long until every stream has each payment's event: from the webhook's
effect (the event's writing, its `create_time`, as the service applies the webhook), and from
the payment at the sandbox, which adds the sandbox's sending of the webhook.

Run in a process of its own (`python -m bench.feed`, the spec as JSON on stdin, the result as
JSON on stdout), as the other workloads run in the load generator's. Every stream is the local
caller's (the bench's service runs without CALLERS_FILE), so all of them share one reader on
the replica: what the issue asks of 1,000 idle streams (docs/architecture.md, "The event feed").
Postgres transactions/s are measured as bench/watchers.py measures them, and the streams are
counted open by the service's own gauge (`checkout_feed_streams`), since a stream of an idle feed
sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field

import asyncpg
import grpc

from bench import procfs
from bench.carts import cart, new_order
from bench.sandbox_api import pay
from bench.stats import percentile
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import event_pb2 as events

# Statistics a backend has not reported yet would land in the idle window (bench/watchers.py).
_STATS_SETTLE_S = 10.5
_OPEN_POLL_S = 0.2


@dataclass(frozen=True)
class Feed:
    """`streams` StreamEvents streams, idle for `idle_s`; then `payments` sessions paid through
    the sandbox at once, each event awaited on every stream."""

    target: str
    metrics_url: str
    server_pid: int
    sandbox_url: str
    dsn: str
    streams: int
    payments: int
    idle_s: float
    timeout_s: float


@dataclass(frozen=True)
class FeedResult:
    streams: int
    opened: int
    open_s: float
    baseline_db_tps: float
    """Before any stream was opened, over as long: what the rest of the service costs (its
    readiness probe, the change feed's heartbeat, a sweep pass that falls in the window)."""
    idle_db_tps: float
    idle_server_cores: float
    rss_before_mb: float
    rss_after_mb: float
    expected: int
    """Events the streams should have received: each payment's, on every stream."""
    delivered: int
    delivery_p50_ms: float
    delivery_p99_ms: float
    delivery_max_ms: float
    """From the payment asked of the sandbox (its webhook, then the event) to the stream."""
    written_p50_ms: float
    written_p99_ms: float
    """From the event's writing (its `create_time`) to the stream: the feed's own part."""
    stream_errors: int
    first_error: str


@dataclass
class _Received:
    at: dict[str, list[float]] = field(default_factory=dict)
    """For each order, when each stream received its payment's event."""
    since_written: list[float] = field(default_factory=list)
    """Seconds from each event's writing to its receipt (wall clock, this machine's)."""
    errors: int = 0
    first_error: str = ""


def run_feed(spec: Feed) -> FeedResult:
    """The workload in a process of its own."""
    answer = subprocess.run(
        [sys.executable, "-m", "bench.feed"],
        input=json.dumps(asdict(spec)),
        capture_output=True,
        text=True,
        timeout=2 * (_STATS_SETTLE_S + spec.idle_s) + spec.timeout_s * 4 + 120,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the feed workload failed ({answer.returncode}):\n{answer.stderr}")
    return FeedResult(**json.loads(answer.stdout))


async def feed(spec: Feed) -> FeedResult:
    received = _Received()
    async with grpc.aio.insecure_channel(spec.target) as channel:
        stub = api_grpc.CheckoutServiceStub(channel)
        sessions = [
            (await stub.CreateSession(cart(new_order()))).session for _ in range(spec.payments)
        ]
        after = await _latest_cursor(stub)
        baseline_tps, _ = await _idle(spec)
        rss_before = procfs.rss_mb(spec.server_pid)
        began = time.perf_counter()
        streams = [
            asyncio.create_task(_stream(stub, after, {s.order_id for s in sessions}, received))
            for _ in range(spec.streams)
        ]
        opened = await _opened(spec, began)
        open_s = time.perf_counter() - began
        idle_tps, idle_cores = await _idle(spec)
        rss_after = procfs.rss_mb(spec.server_pid)
        # All at once, as bench/watchers.py pays: a burst of events, each to every stream.
        paid = await asyncio.gather(
            *(asyncio.to_thread(_pay_at, spec.sandbox_url, s.id) for s in sessions)
        )
        paid_at = {s.order_id: at for s, at in zip(sessions, paid, strict=True)}
        await asyncio.wait(streams, timeout=spec.timeout_s)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
    delays = sorted(
        (at - paid_at[order]) * 1000 for order, times in received.at.items() for at in times
    )
    written = sorted(1000 * seconds for seconds in received.since_written)
    return FeedResult(
        streams=spec.streams,
        opened=opened,
        open_s=open_s,
        baseline_db_tps=baseline_tps,
        idle_db_tps=idle_tps,
        idle_server_cores=idle_cores,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        expected=spec.streams * spec.payments,
        delivered=len(delays),
        delivery_p50_ms=percentile(delays, 0.50),
        delivery_p99_ms=percentile(delays, 0.99),
        delivery_max_ms=delays[-1] if delays else 0.0,
        written_p50_ms=percentile(written, 0.50),
        written_p99_ms=percentile(written, 0.99),
        stream_errors=received.errors,
        first_error=received.first_error,
    )


async def _latest_cursor(stub: api_grpc.CheckoutServiceAsyncStub) -> str:
    """Where the feed stands: the streams follow it from there, live."""
    cursor = ""
    while True:
        page = await stub.ListEvents(events.ListEventsRequest(after=cursor, page_size=1000))
        cursor = page.next_cursor
        if len(page.events) < 1000:
            return cursor


async def _stream(
    stub: api_grpc.CheckoutServiceAsyncStub, after: str, orders: set[str], got: _Received
) -> None:
    """Read until each order's payment has come, noting when."""
    call = stub.StreamEvents(events.StreamEventsRequest(after=after))
    waiting = set(orders)
    try:
        async for response in call:
            event = response.event
            if event.type == events.Event.ORDER_PAID and event.order_id in waiting:
                got.at.setdefault(event.order_id, []).append(time.perf_counter())
                got.since_written.append(time.time() - event.create_time.ToMicroseconds() / 1e6)
                waiting.discard(event.order_id)
                if not waiting:
                    return
    except grpc.aio.AioRpcError as exc:
        got.errors += 1
        got.first_error = got.first_error or f"{exc.code().name}: {exc.details()}"[:300]
    finally:
        call.cancel()


async def _opened(spec: Feed, began: float) -> int:
    """Streams open at the service, once all are (or the bound passes)."""
    open_now = 0
    while time.perf_counter() - began < spec.timeout_s:
        open_now = int(await asyncio.to_thread(_gauge, spec.metrics_url, "checkout_feed_streams"))
        if open_now >= spec.streams:
            break
        await asyncio.sleep(_OPEN_POLL_S)
    return open_now


async def _idle(spec: Feed) -> tuple[float, float]:
    """Postgres transactions/s and server cores over `idle_s` of streams doing nothing."""
    conn = await asyncpg.connect(spec.dsn)
    try:
        await asyncio.sleep(_STATS_SETTLE_S)
        xacts, cpu, began = (
            await _xacts(conn),
            procfs.cpu_seconds(spec.server_pid),
            time.perf_counter(),
        )
        await asyncio.sleep(spec.idle_s)
        xacts_after, cpu_after = await _xacts(conn), procfs.cpu_seconds(spec.server_pid)
    finally:
        await conn.close()
    elapsed = time.perf_counter() - began
    # Our own first sample is one of the transactions counted.
    return (xacts_after - xacts - 1) / elapsed, (cpu_after - cpu) / elapsed


async def _xacts(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval(
        "select xact_commit + xact_rollback from pg_stat_database"
        " where datname = current_database()"
    )
    return int(value)


def _gauge(metrics_url: str, name: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return 0.0


def _pay_at(sandbox_url: str, session_id: str) -> float:
    began = time.perf_counter()
    pay(sandbox_url, session_id)
    return began


def main() -> None:
    spec = Feed(**json.load(sys.stdin))
    print(json.dumps(asdict(asyncio.run(feed(spec)))))


if __name__ == "__main__":
    main()
