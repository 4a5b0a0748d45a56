"""What goes wrong during the run, and when: Stripe fault episodes at the sandbox one after
another, a Postgres outage once, a replica killed once; and the tally of what was done.

A Stripe fault applies to the next `count` requests that match it (sandbox/faults.py), so an
episode installs one, leaves it a few seconds, then reads how much of it was used before
clearing it: the report counts requests that were actually hit, not faults that were asked for.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.sandbox import SandboxControl
from chaos.scenario import Scenario

SESSIONS = "/v1/checkout/sessions"
EVENTS = "/v1/events"
REFUNDS = "/v1/refunds"
PAYMENT_INTENTS = "/v1/payment_intents"


@dataclass(frozen=True, slots=True)
class FaultKind:
    name: str
    fault: dict[str, Any]
    needs_phase: str | None = None
    """A phase not every sandbox knows; the kind is skipped (and said so) where it is not."""


KINDS = (
    FaultKind("Stripe 500 (before it runs)", {"status": 500, "phase": "before"}),
    FaultKind("Stripe 500 (after it ran: answer lost)", {"status": 500, "phase": "after"}),
    FaultKind("Stripe 429", {"status": 429}),
    FaultKind("Stripe latency 1.5-4 s", {"delay_ms": 0}),
    FaultKind("dropped connection (before)", {"drop": True, "phase": "before"}),
    FaultKind("dropped connection (after it ran)", {"drop": True, "phase": "after"}),
    FaultKind(
        "saved 500 (during: replayed for the key)",
        {"status": 500, "phase": "during"},
        needs_phase="during",
    ),
)
# Where an episode's fault lands: creates and expiries, every session call (the sweep's and
# the webhooks' reads too), refunds, every payment read (a refund's answer, the webhooks'
# re-reads), or the event list the sweep catches up from.
_TARGETS: tuple[tuple[dict[str, str], float], ...] = (
    ({"path_prefix": SESSIONS, "method": "POST"}, 0.45),
    ({"path_prefix": SESSIONS}, 0.25),
    ({"path_prefix": REFUNDS, "method": "POST"}, 0.15),
    ({"path_prefix": PAYMENT_INTENTS}, 0.05),
    ({"path_prefix": EVENTS, "method": "GET"}, 0.1),
)


@dataclass
class FaultTally:
    episodes: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    """Requests the fault was applied to, by kind."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(kind, what was done) for the outages: Postgres, replicas."""
    skipped: list[str] = field(default_factory=list)
    """Kinds this sandbox cannot inject."""


class Injector:
    def __init__(self, scenario: Scenario, sandbox: SandboxControl, seed: int) -> None:
        self._scenario = scenario
        self._sandbox = sandbox
        self._rng = random.Random(seed)
        self.tally = FaultTally()

    async def stripe_faults(self, kinds: list[FaultKind], until: float) -> None:
        """Episodes of each kind in turn (shuffled, so that every kind comes up even in a
        short run) until the monotonic time `until`."""
        order = list(kinds)
        self._rng.shuffle(order)
        turn = 0
        while time.monotonic() + self._scenario.episode_seconds <= until:
            await self._episode(order[turn % len(order)])
            turn += 1
            await asyncio.sleep(self._scenario.calm_seconds)

    async def at(self, when: float, kind: str, outage: Callable[[], Awaitable[str]]) -> None:
        """Run `outage` at the monotonic time `when`, and note what it did."""
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        self.tally.events.append((kind, await outage()))

    async def clear(self) -> None:
        await self._sandbox.clear_faults()

    async def usable(self) -> list[FaultKind]:
        kinds = []
        for kind in KINDS:
            if kind.needs_phase is None or await self._sandbox.supports_phase(kind.needs_phase):
                kinds.append(kind)
            else:
                self.tally.skipped.append(kind.name)
        return kinds

    async def _episode(self, kind: FaultKind) -> None:
        target = self._rng.choices([t for t, _ in _TARGETS], [w for _, w in _TARGETS])[0]
        fault = {**kind.fault, **target}
        if "delay_ms" in fault:
            # Sometimes within the callers' 3 s deadline, sometimes past it.
            fault["delay_ms"] = self._rng.randrange(1500, 4000)
            count = self._rng.randint(10, 30)
        else:
            count = self._rng.randint(4, 15)
        fault["count"] = count
        answer = await self._sandbox.add_fault(fault)
        answer.raise_for_status()
        fault_id = str(answer.json()["id"])
        await asyncio.sleep(self._scenario.episode_seconds)
        # What is left of it says how much was used: a fault used up is no longer listed.
        left = next((f["count"] for f in await self._sandbox.faults() if f["id"] == fault_id), 0)
        await self._sandbox.clear_faults()
        self.tally.episodes[kind.name] += 1
        self.tally.hits[kind.name] += count - int(left)
