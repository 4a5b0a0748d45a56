"""What the load generator is asked to do and what it answers, as JSON between the bench and
the generator's own process (`python -m bench.loadgen`), which this module starts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

# Closed-loop calls (bench/calls.py).
BARE_HEALTH = "bare Health/Check"
HEALTH = "Health/Check"
GET_BY_ID = "GetSession by id"
GET_BY_ORDER = "GetSession by order"
REUSE = "CreateSession reused"
CREATE = "CreateSession new order"
DIRECT_CREATE = "stripe-python create_async"


@dataclass(frozen=True)
class Load:
    """A closed loop: `concurrency` callers, each calling again as soon as its call returns;
    `warmup_s` unmeasured, then `duration_s` measured, in each round of its suite."""

    kind: str
    target: str
    """The gRPC address, or the Stripe API base for DIRECT_CREATE."""
    concurrency: int
    warmup_s: float
    duration_s: float
    server_pid: int
    """The process whose CPU and RSS are reported (0: none)."""
    sandbox_pid: int = 0
    postgres_pid: int = 0
    """The postmaster: its backends' CPU is reported too (0: not on this machine)."""
    max_warmup_s: float = 0.0
    """The warm-up goes on past `warmup_s`, up to this, until as many calls have returned as
    are in flight."""
    fixtures: int = 0
    """Sessions created before the warm-up, for the reads to read."""
    direct_client: str = "aiohttp"
    """stripe-python's HTTP client for DIRECT_CREATE: "aiohttp" or "httpx" (bench/calls.py)."""


@dataclass(frozen=True)
class LoadResult:
    kind: str
    concurrency: int
    calls: int
    errors: int
    first_error: str
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_us: float
    """Server CPU time over the measured window divided by the calls that completed in it."""
    server_cores: float
    server_rss_mb: float
    sandbox_cpu_us: float
    postgres_cpu_us: float
    generator_cores: float
    round_throughputs: list[float]
    """Calls/s in each round's window, in round order: what the headline ratios pair up."""


@dataclass(frozen=True)
class Watch:
    """`watchers` WatchSession streams over `sessions` sessions: idle for `idle_s`, then each
    session is paid through the sandbox and every watcher waits for the update."""

    target: str
    server_pid: int
    sandbox_url: str
    dsn: str
    watchers: int
    sessions: int
    baseline_s: float
    """The same idle measurement without watchers, first (0: none)."""
    idle_s: float
    timeout_s: float


@dataclass(frozen=True)
class WatchResult:
    watchers: int
    sessions: int
    opened: int
    open_s: float
    """From the first stream opened to the first message on every stream."""
    baseline_db_tps: float | None
    idle_db_tps: float
    baseline_server_cores: float | None
    idle_server_cores: float
    rss_before_mb: float
    rss_after_mb: float
    updated: int
    missed: int
    ended_by_server: int
    """Watchers that read on after the update: how many saw the server end the stream."""
    cancelled_by_client: int
    update_p50_ms: float
    update_p99_ms: float
    update_max_ms: float
    stream_errors: int
    first_error: str


def _in_generator(request: dict[str, Any], timeout: float) -> Any:
    answer = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if answer.returncode != 0:
        raise RuntimeError(f"the load generator failed ({answer.returncode}):\n{answer.stderr}")
    if answer.stderr.strip():
        sys.stderr.write(answer.stderr)
    return json.loads(answer.stdout)


def run_suite(loads: list[Load], rounds: int) -> list[LoadResult]:
    """Run the loads in a load-generator process of their own, interleaved: `rounds` rounds of
    every load in turn (in reverse order every other round), so that a machine that gets busier
    or quieter meanwhile weighs on each load alike. One result per load, over all rounds."""
    budget = sum(load.max_warmup_s + load.warmup_s + load.duration_s + 30 for load in loads)
    budget = budget * rounds + 120
    request = {"kind": "suite", "loads": [asdict(load) for load in loads], "rounds": rounds}
    return [LoadResult(**fields) for fields in _in_generator(request, budget)]


def run_watch(watch: Watch) -> WatchResult:
    """Run the watch workload in a load-generator process of its own."""
    budget = watch.baseline_s + watch.idle_s + watch.timeout_s * 6 + 210
    return WatchResult(**_in_generator({"kind": "watch", "spec": asdict(watch)}, budget))
