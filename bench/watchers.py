"""Idle WatchSession streams, then a payment: what they cost the server and Postgres while
nothing happens, and how long until every watcher hears of the payment.

Postgres transactions/s are `xact_commit + xact_rollback` of the service's database in
`pg_stat_database`, diffed over the idle period, which starts once the statistics of what came
before have been reported (`_STATS_SETTLE_S`). Half the watchers cancel their stream once they have
seen the payment; the other half read on until the server ends the stream.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass, field

import asyncpg
import grpc

from bench import procfs
from bench.carts import cart, new_order
from bench.sandbox_api import pay
from bench.stats import percentile
from bench.workloads import Watch, WatchResult
from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb

# A backend reports its transactions at most once a second, and one that goes idle within a
# second of its last report holds them for up to 10 s (PGSTAT_MIN_INTERVAL and
# PGSTAT_IDLE_INTERVAL in Postgres' pgstat.c): a burst just before a measured period would be
# counted in it. Each period starts once the last burst has been reported.
_STATS_SETTLE_S = 10.5
_END_OF_STREAM_WAIT_S = 10.0


@dataclass
class _Watchers:
    total: int
    opened: int = 0
    settled: int = 0
    """Streams that have their first message, or failed before it."""
    all_settled: asyncio.Event = field(default_factory=asyncio.Event)
    updated_at: dict[int, float] = field(default_factory=dict)
    ended_by_server: int = 0
    cancelled: int = 0
    errors: int = 0
    first_error: str = ""

    def settle(self) -> None:
        self.settled += 1
        if self.settled == self.total:
            self.all_settled.set()

    def failed(self, exc: BaseException, *, before_first: bool) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:300]
        if before_first:
            self.settle()


async def _watcher(
    stub: api_grpc.CheckoutServiceAsyncStub, i: int, session_id: str, seen: _Watchers
) -> None:
    stream = stub.WatchSession(api.WatchSessionRequest(session_id=session_id))
    opened = False
    try:
        first = await stream.read()
        if first is grpc.aio.EOF:
            raise RuntimeError("the stream ended before its first message")
        opened = True
        seen.opened += 1
        seen.settle()
        while True:
            update = await stream.read()
            if not isinstance(update, api.WatchSessionResponse):
                raise RuntimeError("the stream ended before the payment")
            if update.session.payment_status == pb.Session.PAID:
                seen.updated_at[i] = time.perf_counter()
                break
        if i % 2 == 0:
            stream.cancel()
            seen.cancelled += 1
            return
        async with asyncio.timeout(_END_OF_STREAM_WAIT_S):
            while await stream.read() is not grpc.aio.EOF:
                pass
        seen.ended_by_server += 1
    except Exception as exc:
        seen.failed(exc, before_first=not opened)
        stream.cancel()


async def _transactions(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval(
        "select xact_commit + xact_rollback from pg_stat_database"
        " where datname = current_database()"
    )
    return int(value)


async def _idle(conn: asyncpg.Connection, pid: int, seconds: float) -> tuple[float, float]:
    """Postgres transactions/s and server cores over `seconds` of doing nothing."""
    await asyncio.sleep(_STATS_SETTLE_S)
    xacts, cpu, began = await _transactions(conn), procfs.cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    xacts_after, cpu_after = await _transactions(conn), procfs.cpu_seconds(pid)
    elapsed = time.perf_counter() - began
    # Our own first sample is one of the transactions counted.
    return (xacts_after - xacts - 1) / elapsed, (cpu_after - cpu) / elapsed


async def watch(spec: Watch) -> WatchResult:
    seen = _Watchers(spec.watchers)
    async with grpc.aio.insecure_channel(spec.target) as channel:
        stub = api_grpc.CheckoutServiceStub(channel)
        sessions = [
            (await stub.CreateSession(cart(new_order()))).session.id for _ in range(spec.sessions)
        ]
        conn = await asyncpg.connect(spec.dsn)
        try:
            baseline: tuple[float | None, float | None] = (None, None)
            if spec.baseline_s:
                baseline = await _idle(conn, spec.server_pid, spec.baseline_s)
            rss_before = procfs.rss_mb(spec.server_pid)
            began = time.perf_counter()
            watchers = [
                asyncio.create_task(_watcher(stub, i, sessions[i % spec.sessions], seen))
                for i in range(spec.watchers)
            ]
            with suppress(TimeoutError):
                # Streams that never open are counted as errors and missed updates.
                await asyncio.wait_for(seen.all_settled.wait(), timeout=spec.timeout_s * 4)
            open_s = time.perf_counter() - began
            idle_tps, idle_cores = await _idle(conn, spec.server_pid, spec.idle_s)
            rss_after = procfs.rss_mb(spec.server_pid)
        finally:
            await conn.close()
        times = await asyncio.gather(
            *(asyncio.to_thread(_pay_at, spec.sandbox_url, s) for s in sessions)
        )
        paid_at = dict(zip(sessions, times, strict=True))
        _, late = await asyncio.wait(watchers, timeout=spec.timeout_s + _END_OF_STREAM_WAIT_S)
        for task in late:
            task.cancel()
    delays = sorted(
        (at - paid_at[sessions[i % spec.sessions]]) * 1000 for i, at in seen.updated_at.items()
    )
    return WatchResult(
        watchers=spec.watchers,
        sessions=spec.sessions,
        opened=seen.opened,
        open_s=open_s,
        baseline_db_tps=baseline[0],
        idle_db_tps=idle_tps,
        baseline_server_cores=baseline[1],
        idle_server_cores=idle_cores,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        updated=len(delays),
        missed=spec.watchers - len(delays),
        ended_by_server=seen.ended_by_server,
        cancelled_by_client=seen.cancelled,
        update_p50_ms=percentile(delays, 0.50),
        update_p99_ms=percentile(delays, 0.99),
        update_max_ms=delays[-1] if delays else 0.0,
        stream_errors=seen.errors,
        first_error=seen.first_error,
    )


def _pay_at(sandbox_url: str, session_id: str) -> float:
    """Pays through the sandbox; when the payment was asked for."""
    began = time.perf_counter()
    pay(sandbox_url, session_id)
    return began
