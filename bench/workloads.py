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
# Open-loop creates of new orders (bench/openloop.py): through the service, or straight at the
# sandbox with stripe-python.
CREATE = "CreateSession new order"
DIRECT_CREATE = "stripe-python create_async"


@dataclass(frozen=True)
class Load:
    """A closed loop: `concurrency` callers, each calling again as soon as its call returns;
    `warmup_s` unmeasured, then `duration_s` measured, in each round of its suite."""

    kind: str
    target: str
    """The gRPC address."""
    concurrency: int
    warmup_s: float
    duration_s: float
    server_pid: int
    """The process whose CPU and RSS are reported (0: none)."""
    postgres_pid: int = 0
    """The postmaster: its backends' CPU is reported too (0: not on this machine)."""
    fixtures: int = 0
    """Sessions created before the warm-up, for the reads to read."""


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
    postgres_cpu_us: float
    generator_cores: float
    round_throughputs: list[float]
    """Calls/s in each round's window, in round order: what the headline ratios pair up."""


@dataclass(frozen=True)
class OpenLoad:
    """An open loop: a new-order create every `1 / rate` s on a fixed schedule, whether or not
    the earlier ones have been answered; `warmup_s` unmeasured, then `duration_s` measured (the
    calls scheduled in it), in a generator process of its own."""

    kind: str
    """CREATE through the service, or DIRECT_CREATE straight at the sandbox."""
    round: int
    target: str
    """The service's gRPC address, or the Stripe API base for DIRECT_CREATE."""
    rate: float
    warmup_s: float
    duration_s: float
    server_pid: int
    """The service (0 for DIRECT_CREATE, whose client is the generator itself)."""
    sandbox_pid: int
    postgres_pid: int
    """0 for DIRECT_CREATE: no Postgres on that path."""
    direct_client: str = "aiohttp"
    """stripe-python's HTTP client for DIRECT_CREATE: "aiohttp" or "httpx" (bench/calls.py)."""


@dataclass(frozen=True)
class OpenResult:
    kind: str
    round: int
    rate: float
    calls: int
    """Calls scheduled in the measured window."""
    errors: int
    first_error: str
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    """Latencies from each call's scheduled time, so that a generator running late is not
    hidden (it is reported: `late_max_ms`)."""
    late_max_ms: float
    """How far behind its schedule the generator sent a call, at most."""
    client_cpu_us: float
    """The generator process's own CPU per call: for DIRECT_CREATE, the direct client's."""
    server_cpu_us: float
    server_rss_mb: float
    sandbox_cpu_us: float
    postgres_cpu_us: float


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
    budget = sum(load.warmup_s + load.duration_s + 30 for load in loads) * rounds + 120
    request = {"kind": "suite", "loads": [asdict(load) for load in loads], "rounds": rounds}
    return [LoadResult(**fields) for fields in _in_generator(request, budget)]


def run_open(load: OpenLoad) -> OpenResult:
    """Run one open-loop window in a load-generator process of its own."""
    budget = load.warmup_s + load.duration_s + 120
    return OpenResult(**_in_generator({"kind": "open", "load": asdict(load)}, budget))


def run_watch(watch: Watch) -> WatchResult:
    """Run the watch workload in a load-generator process of its own."""
    budget = watch.baseline_s + watch.idle_s + watch.timeout_s * 6 + 210
    return WatchResult(**_in_generator({"kind": "watch", "spec": asdict(watch)}, budget))
