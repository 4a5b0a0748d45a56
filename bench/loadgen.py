"""The load generator, in a process of its own: `python -m bench.loadgen` reads a suite of
closed-loop loads (or one open-loop window, or the watch workload) as JSON on stdin, runs it,
and writes the figures as JSON on stdout.

A closed loop: `concurrency` callers on one grpc.aio channel, each calling again as soon as its
call returns. (The open loop is bench/openloop.py.) Calls that complete during the warm-up are not
counted; the measured window opens and closes with a sample of the server's CPU time, so that
CPU per call is the server's CPU over the window divided by the calls completed in it.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import procfs
from bench.calls import Call, prepare
from bench.openloop import open_window
from bench.stats import percentile
from bench.workloads import Load, LoadResult, OpenLoad, Watch

_DRAIN_S = 2.0


@dataclass
class _Window:
    start: float = math.inf
    end: float = math.inf
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def counts(self, ended: float) -> bool:
        return self.start <= ended <= self.end


@dataclass(frozen=True)
class _Sample:
    at: float
    generator: float
    server: float
    postgres: float

    @classmethod
    def take(cls, load: Load) -> _Sample:
        return cls(
            at=time.perf_counter(),
            generator=time.process_time(),
            server=procfs.cpu_seconds(load.server_pid) if load.server_pid else 0.0,
            postgres=procfs.tree_cpu_seconds(load.postgres_pid) if load.postgres_pid else 0.0,
        )


@dataclass
class _Totals:
    """One load's measured windows, summed over the rounds."""

    load: Load
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    server: float = 0.0
    postgres: float = 0.0
    generator: float = 0.0
    rss_mb: float = 0.0
    round_throughputs: list[float] = field(default_factory=list)

    def add(self, window: _Window, before: _Sample, after: _Sample, rss_mb: float) -> None:
        self.round_throughputs.append(len(window.latencies) / (after.at - before.at))
        self.seconds += after.at - before.at
        self.latencies += window.latencies
        self.errors += window.errors
        self.first_error = self.first_error or window.first_error
        self.server += after.server - before.server
        self.postgres += after.postgres - before.postgres
        self.generator += after.generator - before.generator
        self.rss_mb = max(self.rss_mb, rss_mb)

    def result(self) -> LoadResult:
        calls = len(self.latencies)
        ordered = sorted(self.latencies)
        seconds = self.seconds or 1.0

        def per_call_us(used: float) -> float:
            return used / calls * 1e6 if calls else 0.0

        return LoadResult(
            kind=self.load.kind,
            concurrency=self.load.concurrency,
            calls=calls,
            errors=self.errors,
            first_error=self.first_error,
            seconds=self.seconds,
            throughput=calls / seconds,
            p50_ms=percentile(ordered, 0.50) * 1000,
            p99_ms=percentile(ordered, 0.99) * 1000,
            max_ms=(ordered[-1] if ordered else 0.0) * 1000,
            server_cpu_us=per_call_us(self.server),
            server_cores=self.server / seconds,
            server_rss_mb=self.rss_mb,
            postgres_cpu_us=per_call_us(self.postgres),
            generator_cores=self.generator / seconds,
            round_throughputs=self.round_throughputs,
        )


async def _caller(call: Call, i: int, window: _Window) -> None:
    while time.perf_counter() < window.end:
        began = time.perf_counter()
        try:
            await call(i)
        except Exception as exc:
            if window.counts(time.perf_counter()):
                window.errors += 1
                window.first_error = window.first_error or f"{type(exc).__name__}: {exc}"[:300]
            continue
        ended = time.perf_counter()
        if window.counts(ended):
            window.latencies.append(ended - began)


async def _one_window(call: Call, totals: _Totals) -> None:
    load = totals.load
    window = _Window()
    callers = [asyncio.create_task(_caller(call, i, window)) for i in range(load.concurrency)]
    await asyncio.sleep(load.warmup_s)
    before = _Sample.take(load)
    window.start = before.at
    await asyncio.sleep(load.duration_s)
    after = _Sample.take(load)
    # Closing the window in the same step as the sample: no call completes in between.
    window.end = after.at
    rss = procfs.rss_mb(load.server_pid) if load.server_pid else 0.0
    # The next load starts once the calls of this one have returned, or at most _DRAIN_S later
    # (then they are cancelled; the next warm-up absorbs what the servers still do for them).
    _, late = await asyncio.wait(callers, timeout=_DRAIN_S)
    for task in late:
        task.cancel()
    totals.add(window, before, after, rss)


async def suite(loads: list[Load], rounds: int) -> list[LoadResult]:
    async with AsyncExitStack() as stack:
        calls = [await prepare(load, stack) for load in loads]
        totals = [_Totals(load) for load in loads]
        turns = list(zip(calls, totals, strict=True))
        for n in range(rounds):
            for call, total in turns if n % 2 == 0 else reversed(turns):
                await _one_window(call, total)
    return [total.result() for total in totals]


async def _run(request: dict[str, Any]) -> Any:
    if request["kind"] == "suite":
        loads = [Load(**fields) for fields in request["loads"]]
        return [asdict(result) for result in await suite(loads, request["rounds"])]
    if request["kind"] == "open":
        return asdict(await open_window(OpenLoad(**request["load"])))
    from bench.watchers import watch  # only this workload needs asyncpg

    return asdict(await watch(Watch(**request["spec"])))


def main() -> None:
    request = json.load(sys.stdin)
    json.dump(asyncio.run(_run(request)), sys.stdout)


if __name__ == "__main__":
    main()
