"""How big a chaos run is: the same scenario at three sizes (full, quick, and the short one that
runs in `make test`), differing only in duration and load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    load_seconds: float
    """How long callers keep starting orders while faults are injected."""
    workers: int
    """Orders in flight at once: the bound on the load, with `max_orders`."""
    max_orders: int
    settle_seconds: float
    """The most the run waits, after the load, for the sweep to converge."""
    stable_seconds: float
    """Checks unchanged this long count as converged, even if not all zero."""
    episode_seconds: float
    """How long each Stripe fault stays installed."""
    calm_seconds: float
    """The gap between two Stripe fault episodes."""
    replicas: int = 3
    deadline_seconds: float = 3.0
    """The gRPC deadline of every call, as a caller with a budget sets it."""
    attempts: int = 8
    """A caller gives up on a request after this many answers worth retrying."""
    postgres_restart_at: float = 0.3
    replica_kill_at: float = 0.6
    """When, as fractions of `load_seconds`, Postgres restarts and a replica is killed."""
    postgres_down_seconds: float = 2.5
    replica_down_seconds: float = 3.0
    calm_tail: float = 0.15
    """The last fraction of the load runs without Stripe faults, as after an incident."""
    think_seconds: tuple[float, float] = (0.05, 0.4)
    """A caller's pause between two steps of an order."""
    feed_consumers: int = 2
    """Consumers of each caller's event feed, each on whichever replica it lands on."""
    feed_hangup_seconds: tuple[float, float] = (0.3, 4.0)
    """A consumer hangs up after a random time in this range, and goes on elsewhere."""
    stubborn_customers: bool = False
    """At the end of each order, its customer tries to pay every session the order's caller
    was ever told of, each link they were given: the service must let at most one be paid."""


FULL = Scenario(
    name="full",
    load_seconds=150.0,
    workers=24,
    max_orders=5000,
    settle_seconds=240.0,
    stable_seconds=45.0,
    episode_seconds=5.0,
    calm_seconds=3.0,
)
QUICK = Scenario(
    name="quick",
    load_seconds=45.0,
    workers=16,
    max_orders=1500,
    settle_seconds=120.0,
    stable_seconds=30.0,
    episode_seconds=3.0,
    calm_seconds=1.5,
)
# For `make test`: every kind of fault once, the restart and the kill, in about 40 s.
SHORT = Scenario(
    name="short",
    load_seconds=22.0,
    workers=12,
    max_orders=600,
    settle_seconds=60.0,
    stable_seconds=20.0,
    episode_seconds=2.0,
    calm_seconds=0.8,
)


@dataclass(frozen=True, slots=True)
class Failover:
    """The failover run (chaos/failover.py): a load of orders on replicas whose DATABASE_URL
    lists a primary and its asynchronous standby; the standby stops receiving, the primary
    commits alone for a while (what the failover loses), dies, and the standby is promoted."""

    name: str
    load: Scenario
    """The callers (its faults, Postgres restart and replica kill are not used here)."""
    hold_at: float
    """When, as a fraction of the load's length, the standby stops receiving the primary's WAL."""
    hold_seconds: float
    """How long the primary commits alone: what the failover loses."""
    down_seconds: float
    """From the primary's death to the promotion: the time a failover takes to decide."""
    replicas: int = 2
    ready_within_seconds: float = 10.0
    """Each replica is ready again this long after the promotion, by itself."""


def _failover_load(name: str, load_seconds: float, workers: int) -> Scenario:
    return Scenario(
        name=name,
        load_seconds=load_seconds,
        workers=workers,
        max_orders=5000,
        settle_seconds=120.0,
        stable_seconds=30.0,
        episode_seconds=0.0,
        calm_seconds=0.0,
        stubborn_customers=True,
    )


FAILOVER_FULL = Failover(
    name="failover",
    load=_failover_load("failover", 60.0, 16),
    hold_at=0.4,
    hold_seconds=3.0,
    down_seconds=2.0,
    replicas=3,
)
FAILOVER_QUICK = Failover(
    name="failover quick",
    load=_failover_load("failover quick", 30.0, 12),
    hold_at=0.4,
    hold_seconds=2.0,
    down_seconds=1.5,
)
# For `make test`: one failover under a small load, in about half a minute.
FAILOVER_SHORT = Failover(
    name="failover short",
    load=_failover_load("failover short", 16.0, 8),
    hold_at=0.35,
    hold_seconds=1.5,
    down_seconds=1.0,
)
