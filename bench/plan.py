"""How long and how hard each workload runs: the full bench and `make bench QUICK=1`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool
    rounds: int
    """Each suite runs its loads in turn this many times (bench/workloads.py, `run_suite`)."""
    warmup_s: float
    window_s: float
    """Measured seconds per load and round: each load is measured `rounds * window_s`."""
    create_rounds: int
    """Rounds of open-loop creates: each rate through the service and straight at the sandbox."""
    create_warmup_s: float
    create_window_s: float
    timed_starts: int
    """Starts with the migrations already applied, timed to "serving"; the last one stays up."""
    watch_baseline_s: float
    """Postgres transactions/s and server CPU without watchers first, for comparison (0: not)."""
    watch_idle_s: float
    concurrency: int = 32
    create_rates: tuple[float, ...] = (10, 50, 100)
    """New-order creates per second, up to what Stripe allows an account in live mode."""
    stripe_latency_ms: int = 200
    profile_rate: float = 100
    profile_s: float = 20
    """`--profile`: py-spy samples the service for this long, creates arriving at this rate."""
    read_fixtures: int = 200
    watchers: int = 1000
    watch_sessions: int = 10
    watch_timeout_s: float = 15.0
    feed_streams: int = 1000
    feed_payments: int = 10
    direct_client: str = "aiohttp"


FULL = Plan(
    quick=False,
    rounds=6,
    warmup_s=1,
    window_s=2.5,
    create_rounds=3,
    create_warmup_s=2,
    create_window_s=10,
    timed_starts=3,
    watch_baseline_s=10,
    watch_idle_s=15,
)
QUICK = Plan(
    quick=True,
    rounds=2,
    warmup_s=0.5,
    window_s=1.5,
    create_rounds=1,
    create_warmup_s=2,
    create_window_s=4,
    timed_starts=1,
    watch_baseline_s=0,
    watch_idle_s=5,
    read_fixtures=50,
)
