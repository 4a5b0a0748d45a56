"""One open-loop window of new-order creates, run inside a load-generator process of its own
(bench/loadgen.py): a call every `1 / rate` s on a fixed schedule, whether or not the earlier
ones have been answered, as callers that do not wait for one another send them (Stripe allows
about 100 requests/s per account in live mode: https://docs.stripe.com/rate-limits).

Each call's latency runs from the time it was due, not the time it was sent, so that a
generator that falls behind its schedule cannot hide the wait (it is reported too). Calls keep
coming for a while after the measured window, so that the CPU read at both ends of the window
is that of the same steady load; CPU per call is the CPU used over the window divided by the
calls due in it. For DIRECT_CREATE the client is this process, whose CPU is read from /proc
like the service's."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from bench import procfs
from bench.calls import Call, prepare_create
from bench.stats import percentile
from bench.workloads import OpenLoad, OpenResult

# Calls go on this long after the window: longer than one create takes at the sandbox (200 ms).
_TAIL_S = 1.0
_ANSWER_WAIT_S = 60.0


@dataclass(frozen=True)
class _Sample:
    client: float
    server: float
    sandbox: float
    postgres: float

    @classmethod
    def take(cls, load: OpenLoad) -> _Sample:
        return cls(
            client=procfs.cpu_seconds(os.getpid()),
            server=procfs.cpu_seconds(load.server_pid) if load.server_pid else 0.0,
            sandbox=procfs.cpu_seconds(load.sandbox_pid) if load.sandbox_pid else 0.0,
            postgres=procfs.tree_cpu_seconds(load.postgres_pid) if load.postgres_pid else 0.0,
        )


@dataclass
class _Window:
    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def counts(self, due: float) -> bool:
        return self.start <= due < self.end


async def _one(call: Call, due: float, window: _Window) -> None:
    measured = window.counts(due)
    if measured:
        window.late.append(time.perf_counter() - due)
    try:
        await call(0)
    except Exception as exc:
        if measured:
            window.errors += 1
            window.first_error = window.first_error or f"{type(exc).__name__}: {exc}"[:300]
        return
    if measured:
        window.latencies.append(time.perf_counter() - due)


async def _samples(window: _Window, load: OpenLoad) -> tuple[_Sample, _Sample, float]:
    """The CPU samples at the window's two ends, and its length as measured."""
    await asyncio.sleep(window.start - time.perf_counter())
    before, opened = _Sample.take(load), time.perf_counter()
    await asyncio.sleep(window.end - time.perf_counter())
    after, closed = _Sample.take(load), time.perf_counter()
    return before, after, closed - opened


async def open_window(load: OpenLoad) -> OpenResult:
    async with AsyncExitStack() as stack:
        call = await prepare_create(load, stack)
        # One create before the schedule: the first answer makes stripe-python import its
        # object classes and each side open its first connections, which would hold up the
        # calls due meanwhile.
        await call(0)
        first = time.perf_counter() + 0.1
        window = _Window(start=first + load.warmup_s, end=first + load.warmup_s + load.duration_s)
        sampling = asyncio.create_task(_samples(window, load))
        calls: dict[asyncio.Task[None], float] = {}
        for n in range(int((window.end + _TAIL_S - first) * load.rate)):
            due = first + n / load.rate
            await asyncio.sleep(due - time.perf_counter())
            calls[asyncio.create_task(_one(call, due, window))] = due
        before, after, seconds = await sampling
        rss = procfs.rss_mb(load.server_pid) if load.server_pid else 0.0
        _, unanswered = await asyncio.wait(calls, timeout=_ANSWER_WAIT_S)
        for task in unanswered:
            task.cancel()
            if window.counts(calls[task]):
                window.errors += 1
                window.first_error = window.first_error or f"no answer in {_ANSWER_WAIT_S:g} s"
    return _result(load, window, before, after, seconds, rss)


def _result(
    load: OpenLoad, window: _Window, before: _Sample, after: _Sample, seconds: float, rss: float
) -> OpenResult:
    calls = len(window.latencies) + window.errors
    ordered = sorted(window.latencies)

    def per_call_us(used: float) -> float:
        return used / calls * 1e6 if calls else 0.0

    return OpenResult(
        kind=load.kind,
        round=load.round,
        rate=load.rate,
        calls=calls,
        errors=window.errors,
        first_error=window.first_error,
        seconds=seconds,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
        late_max_ms=max(window.late, default=0.0) * 1000,
        client_cpu_us=per_call_us(after.client - before.client),
        server_cpu_us=per_call_us(after.server - before.server),
        server_rss_mb=rss,
        sandbox_cpu_us=per_call_us(after.sandbox - before.sandbox),
        postgres_cpu_us=per_call_us(after.postgres - before.postgres),
    )
