"""How long a soak runs, how often it samples, and the load it keeps up: the full run of
`make soak` and the short one of `make test`, differing in length, not in kind."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rates:
    """Operations started per second, whatever became of the earlier ones (an open loop)."""

    creates: float = 4.0
    """New orders; a fifth of them get a changed cart a moment later."""
    reads: float = 12.0
    """GetSession by order and by id, ListSessions."""
    payments: float = 2.0
    """A customer pays an open session on the sandbox's control API."""
    refunds: float = 0.5
    """A partial refund of a paid order."""
    expiries: float = 0.5
    watchers: float = 1.0
    """WatchSession streams opened, each held a few seconds (or until its session ends)."""
    feed_readers: float = 0.3
    """StreamEvents streams opened by the callers' order services, each held a few seconds and
    resumed later from its cursor."""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    minutes: float
    warmup_minutes: float
    """Samples before this are not judged: caches fill, pools grow to what the load needs."""
    sample_seconds: float
    replicas: int = 2
    rates: Rates = field(default_factory=Rates)
    monotone_samples: int = 6
    """A count that rises at each of this many samples in a row grows without bound."""
    rss_growth: float = 0.10
    """Resident memory may grow this much (a fraction) from the first judged sample."""
    deadline_seconds: float = 5.0
    max_in_flight: int = 200
    """Operations of one kind under way at once; beyond, a due one is skipped (and counted)."""
    pool_max_size: int = 10
    """DB_POOL_MAX_SIZE of each replica."""


def full(minutes: float) -> Plan:
    return Plan(name="full", minutes=minutes, warmup_minutes=5.0, sample_seconds=30.0)


SHORT = Plan(
    name="short", minutes=1.5, warmup_minutes=0.5, sample_seconds=5.0, rates=Rates(creates=3.0)
)
"""For `make test`: a minute and a half, samples every 5 s after half a minute."""
