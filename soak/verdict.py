"""Whether a replica grew without bound during a soak, from its samples: the rules the README
states, as pure functions of the numbers.

After the warm-up (the samples before it are not judged):
- resident memory fails when its last sample is more than `rss_growth` (10 %) above its first;
- a count (open file descriptors, asyncio tasks, the pool's connections, the replica's
  connections in pg_stat_activity) grows without bound when it rose at each of the last
  `monotone_samples` (6) samples, a steady climb; or when the lowest of its last third of
  samples is above the highest of its first third by more than 10 % and by 3 or more, a level
  that only moved up; the pool's connections also fail above DB_POOL_MAX_SIZE, and the
  replica's Postgres connections above that plus the change feed's and the sweep lock's two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from soak.plan import Plan

COUNTS = ("open_fds", "asyncio_tasks", "pool_connections", "postgres_connections")
# The change feed's LISTEN connection and the sweep's lock, beside the pool.
_OWN_CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Seconds since the load began."""
    rss_bytes: float
    open_fds: float
    asyncio_tasks: float
    pool_connections: float
    postgres_connections: float


@dataclass(frozen=True, slots=True)
class Finding:
    replica: str
    figure: str
    why: str


def judged(samples: list[Sample], plan: Plan) -> list[Sample]:
    """The samples after the warm-up."""
    return [s for s in samples if s.at >= plan.warmup_minutes * 60]


def judge(samples: dict[str, list[Sample]], plan: Plan) -> list[Finding]:
    findings = []
    for replica, all_samples in samples.items():
        kept = judged(all_samples, plan)
        if len(kept) < 2:
            findings.append(Finding(replica, "samples", f"only {len(kept)} after the warm-up"))
            continue
        first, last = kept[0].rss_bytes, kept[-1].rss_bytes
        if last > first * (1 + plan.rss_growth):
            findings.append(
                Finding(
                    replica,
                    "rss_bytes",
                    f"grew {100 * (last / first - 1):.1f} % ({first / 2**20:.0f} → "
                    f"{last / 2**20:.0f} MB), more than {100 * plan.rss_growth:.0f} %",
                )
            )
        for figure in COUNTS:
            values = [float(getattr(s, figure)) for s in kept]
            why = unbounded(values, plan) or _over_bound(figure, values, plan)
            if why:
                findings.append(Finding(replica, figure, why))
    return findings


def unbounded(values: Sequence[float], plan: Plan) -> str:
    """Why a count grows without bound, or "" if it does not."""
    climb = values[-plan.monotone_samples :]
    if len(climb) == plan.monotone_samples and all(b > a for a, b in pairwise(climb)):
        return f"rose at each of the last {plan.monotone_samples} samples: {climb}"
    third = len(values) // 3
    if third >= 2:
        highest_first, lowest_last = max(values[:third]), min(values[-third:])
        if lowest_last > highest_first + max(3.0, 0.1 * highest_first):
            return (
                f"its lowest in the last third ({lowest_last:g}) is above its highest in the "
                f"first third ({highest_first:g})"
            )
    return ""


def _over_bound(figure: str, values: Sequence[float], plan: Plan) -> str:
    bound = {
        "pool_connections": plan.pool_max_size,
        "postgres_connections": plan.pool_max_size + _OWN_CONNECTIONS,
    }.get(figure)
    if bound is not None and max(values) > bound:
        return f"reached {max(values):g}, above its bound of {bound}"
    return ""
