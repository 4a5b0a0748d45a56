"""The failover run (`make chaos`, after the faults run; issue 22): replicas whose DATABASE_URL
lists a primary and its asynchronous streaming standby (`target_session_attrs=read-write`),
callers creating, changing and paying orders, customers who pay every link they were given;
then the standby stops receiving, the primary commits alone for a while (the commits a failover
loses), is SIGKILLed with every backend, and the standby is promoted.

What must hold, counted in the table: every replica's readiness drops and comes back by itself
within 10 s of the promotion; nothing is answered INTERNAL or UNKNOWN; once the sweep has run,
every session at Stripe is known to the ledger or expired there (a paid one adopted as its
order's payment, an open one adopted or expired), no order has two sessions paid or open, and
no session a caller was told of is missing from the ledger without being expired. The figures
say how much the failover took away: the commits lost (counted in the dead primary's WAL), and
the sessions callers had been told of that the promoted standby did not have.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from chaos.audit import Audit, RefundAudit, audit, audit_refunds
from chaos.callers import run_callers, write_callers_file
from chaos.cluster import Cluster, Settings
from chaos.consumers import FeedConsumers
from chaos.feed_audit import FeedAudit, Ledger, fold, read_ledger
from chaos.load import Load, Tally
from chaos.postgres import PAIR_PASSWORD, PostgresPair
from chaos.processes import ReplicaLog
from chaos.sandbox import SandboxControl, SandboxProcess
from chaos.scenario import Failover

_READY_POLL_SECONDS = 0.1
# How long the feed's consumers may take, once the run has settled, to have read every event
# the database holds.
_FEED_CATCH_UP_SECONDS = 30.0
_SETTLE_POLL_SECONDS = 2.0
_CLEAN_AUDITS = 2


@dataclass
class Readiness:
    """Each replica's /readyz as the run saw it: (seconds since the run began, ready)."""

    seen: dict[str, list[tuple[float, bool]]] = field(default_factory=lambda: defaultdict(list))

    def note(self, name: str, at: float, ready: bool) -> None:
        changes = self.seen[name]
        if not changes or changes[-1][1] != ready:
            changes.append((at, ready))

    def dropped(self, name: str, after: float) -> float | None:
        """When it first turned unready after `after`, if it did."""
        return next((t for t, ready in self.seen[name] if t >= after and not ready), None)

    def back(self, name: str, after: float) -> float | None:
        """When it was ready again after `after` (and stayed so), if it was."""
        changes = [(t, ready) for t, ready in self.seen[name] if t >= after]
        if not changes or not changes[-1][1]:
            return None
        return changes[-1][0]


@dataclass
class Timeline:
    """When the failover's steps happened, in seconds since the run began."""

    held: float = 0.0
    killed: float = 0.0
    promoted: float = 0.0
    settled: float = 0.0


@dataclass
class FailoverOutcome:
    scenario: Failover
    seed: int
    run_dir: Path
    postgres: str
    order_prefix: str
    tally: Tally
    audit: Audit
    replica_logs: dict[str, ReplicaLog]
    readiness: Readiness
    timeline: Timeline
    lost_commits: int
    told_lost: list[str]
    """Sessions callers had been told of that the promoted standby did not have."""
    password_lines: int
    """Replica log lines that show the database password (must be 0)."""
    wall_seconds: float
    feed: FeedAudit
    feed_ledger: Ledger
    """The events and the paid orders the database holds at the end."""
    refunds: RefundAudit = field(default_factory=RefundAudit)

    def feed_paid_unseen(self) -> list[tuple[str, str]]:
        """(consumer, order) of paid orders a consumer never saw paid."""
        return [(c, o) for c, o, seen in self.feed.paid_not_once if seen == 0]

    def feed_paid_not_paid(self) -> list[tuple[str, str]]:
        """(consumer, order) a consumer saw paid that the ledger does not hold paid."""
        paid = {o for orders in self.feed_ledger.paid.values() for o in orders}
        return [(c, o) for c, o, seen in self.feed.paid_not_once if seen and o not in paid]

    def feed_paid_twice(self) -> int:
        """Orders a consumer saw paid twice: the event the failover lost, then the one the
        ledger wrote again when it learnt of the payment again (a new id: expected)."""
        return sum(1 for _, _, seen in self.feed.paid_not_once if seen > 1)

    @property
    def known(self) -> set[str]:
        return {row.session_id for row in self.audit.rows if row.session_id is not None}

    def unknown_not_expired(self) -> list[tuple[str, str, str]]:
        """(session, order, status) at Stripe, neither in the ledger nor expired."""
        return [
            (s.id, s.order_id, s.status)
            for s in self.audit.sessions
            if s.id not in self.known and s.status != "expired"
        ]

    def paid_twice(self) -> dict[str, list[str]]:
        paid: defaultdict[str, list[str]] = defaultdict(list)
        for s in self.audit.sessions:
            if s.status == "complete" and s.payment_status == "paid":
                paid[s.order_id].append(s.id)
        return {order: ids for order, ids in sorted(paid.items()) if len(ids) > 1}

    def told_not_kept(self) -> list[tuple[str, str]]:
        """(session, order) a caller was told of, not in the ledger and not expired."""
        status = {s.id: s.status for s in self.audit.sessions}
        return [
            (session, order)
            for order, sessions in self.tally.told.items()
            for session in dict.fromkeys(sessions)
            if session not in self.known and status.get(session) != "expired"
        ]

    def slow_readiness(self) -> list[tuple[str, str]]:
        """(replica, what) for each replica whose readiness did not drop, or did not come back
        within the bound after the promotion."""
        bound = self.scenario.ready_within_seconds
        slow = []
        for name in self.replica_logs:
            if self.readiness.dropped(name, self.timeline.killed) is None:
                slow.append((name, "never turned unready"))
                continue
            back = self.readiness.back(name, self.timeline.promoted)
            if back is None or back - self.timeline.promoted > bound:
                took = "never" if back is None else f"{back - self.timeline.promoted:.1f} s"
                slow.append((name, f"ready again after {took}"))
        return slow

    def answered(self, code: str) -> int:
        seen = sum(n for (_, c), n in self.tally.answers.items() if c == code)
        logged = sum(
            n
            for log in self.replica_logs.values()
            for key, n in log.codes.items()
            if key.endswith(f" {code}")
        )
        return max(seen, logged)

    def checks(self) -> dict[str, int]:
        """The counts that must be 0."""
        return {
            "replicas not ready again within "
            f"{self.scenario.ready_within_seconds:g} s of the promotion": len(
                self.slow_readiness()
            ),
            "INTERNAL answers": self.answered("INTERNAL"),
            "UNKNOWN answers": self.answered("UNKNOWN"),
            "Stripe sessions neither in the ledger nor expired": len(self.unknown_not_expired()),
            "paid Stripe sessions whose ledger row is not complete": len(
                self.audit.paid_not_complete
            ),
            "orders with two paid sessions": len(self.paid_twice()),
            "orders with more than one open Stripe session": len(self.audit.orders_with_two_open),
            "sessions callers were told of, not in the ledger nor expired": len(
                self.told_not_kept()
            ),
            "charges whose refunds exceed their capture": len(self.refunds.over_refunded),
            "refunds callers were told were made, not at Stripe once": len(
                self.refunds.told_made_not_once
            ),
            "refunds at Stripe for a request callers were told was refused": len(
                self.refunds.refused_but_made
            ),
            "feed: paid orders a consumer never saw paid": len(self.feed_paid_unseen()),
            "feed: orders a consumer saw paid that the ledger has not paid": len(
                self.feed_paid_not_paid()
            ),
            "feed: events of its caller a consumer missed": len(self.feed.missed),
            "feed: events of another caller a consumer saw": len(self.feed.foreign),
            "feed: orders whose events a consumer saw out of order": len(self.feed.out_of_order),
            "feed: refunds told made a consumer never saw refunded": sum(
                1 for _, _, seen in self.feed.refund_not_once if seen == 0
            ),
            "feed: streams or pages refused (but cursors the failover lost)": self.feed.refused,
            "log lines showing the database password": self.password_lines,
        }

    @property
    def passed(self) -> bool:
        return not any(self.checks().values())


async def run_failover(
    scenario: Failover,
    run_dir: Path,
    *,
    seed: int,
    progress: Callable[[str], None] = lambda _: None,
    postgres_folder: Path | None = None,
) -> FailoverOutcome:
    """`postgres_folder` holds the pair's data, if not `run_dir` (as for run_chaos)."""
    began = time.monotonic()

    def say(message: str) -> None:
        progress(f"[{time.monotonic() - began:6.1f} s] {message}")

    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    pair = await PostgresPair.open(postgres_folder or run_dir, f"chaos-{run_id}")
    say(f"Postgres: {pair.describe()}")
    try:
        sandbox = await SandboxProcess.start(log_dir)
        try:
            say(f"sandbox at {sandbox.url}")
            run = _Run(scenario, run_dir, seed, pair, sandbox, f"failover-{run_id}-", say, began)
            return await run.run()
        finally:
            await sandbox.stop()
    finally:
        await pair.close()
        say(f"done in {time.monotonic() - began:.1f} s")


class _Run:
    def __init__(
        self,
        scenario: Failover,
        run_dir: Path,
        seed: int,
        pair: PostgresPair,
        sandbox: SandboxProcess,
        prefix: str,
        say: Callable[[str], None],
        began: float,
    ) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.seed = seed
        self.pair = pair
        self.control = SandboxControl(sandbox.url)
        self.prefix = prefix
        self.say = say
        self.began = began
        self.callers = run_callers()
        callers_file = write_callers_file(run_dir / "callers.json", self.callers)
        self.cluster = Cluster(
            Settings(pair.dsn, sandbox.url, callers_file), self.control, run_dir / "logs"
        )
        self.readiness = Readiness()
        self.timeline = Timeline()
        self.told_lost: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.began

    async def run(self) -> FailoverOutcome:
        try:
            await self.cluster.start(self.scenario.replicas)
            self.say(f"{self.scenario.replicas} replicas serving")
            load = Load(
                self.scenario.load,
                self.cluster,
                self.control,
                self.prefix,
                self.seed,
                self.run_dir / "logs" / "calls.jsonl",
                self.callers,
            )
            consumers = FeedConsumers(
                self.scenario.load, self.cluster, self.callers, self.seed, rewind_unknown=True
            )
            stop = asyncio.Event()
            watcher = asyncio.create_task(self._watch_readiness(stop))
            following = asyncio.create_task(consumers.follow(stop))
            try:
                await self._load_and_failover(load)
                result = await self._settle()
            finally:
                stop.set()
                await watcher
                await following
            result.dump(self.run_dir / "logs")
            told = [(r.order_id, r.refund_id) for r in load.tally.refunds if r.code == "OK"]
            feed_ledger = await read_ledger(self.pair.admin_dsn, self.prefix)
            try:
                await consumers.catch_up(feed_ledger.expected(), within=_FEED_CATCH_UP_SECONDS)
            except TimeoutError:
                self.say(f"feed: consumers short of events after {_FEED_CATCH_UP_SECONDS:g} s")
            feed = fold(feed_ledger, consumers.consumers, self.prefix, told)
            refunds = await audit_refunds(self.control, result.sessions, load.tally.refunds)
            lost = await self.pair.lost_commits()
            return FailoverOutcome(
                scenario=self.scenario,
                seed=self.seed,
                run_dir=self.run_dir,
                postgres=self.pair.describe(),
                order_prefix=self.prefix,
                tally=load.tally,
                audit=result,
                replica_logs=self.cluster.logs,
                readiness=self.readiness,
                timeline=self.timeline,
                lost_commits=lost,
                told_lost=self.told_lost,
                password_lines=_lines_with(self.run_dir / "logs", PAIR_PASSWORD),
                wall_seconds=time.monotonic() - self.began,
                feed=feed,
                feed_ledger=feed_ledger,
                refunds=refunds,
            )
        finally:
            await self.cluster.stop()
            await self.control.close()

    async def _load_and_failover(self, load: Load) -> None:
        length = self.scenario.load.load_seconds
        start = time.monotonic()
        self.say(f"load for {length:g} s ({self.scenario.load.workers} orders at a time)")
        async with asyncio.TaskGroup() as group:
            group.create_task(load.run(until=start + length))
            group.create_task(self._failover(start + length * self.scenario.hold_at, load.tally))
        self.say(f"load done: {load.tally.orders} orders; settling")

    async def _failover(self, at: float, tally: Tally) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        held_at = await self.pair.hold()
        self.timeline.held = self.now()
        self.say(f"the standby stopped receiving at {held_at}; the primary commits alone")
        await asyncio.sleep(self.scenario.hold_seconds)
        told = {s for sessions in tally.told.values() for s in sessions}
        await self.pair.kill_primary()
        self.timeline.killed = self.now()
        self.say("the primary SIGKILLed")
        await asyncio.sleep(self.scenario.down_seconds)
        await self.pair.promote()
        self.timeline.promoted = self.now()
        self.say("the standby promoted")
        kept = await self._sessions_kept()
        self.told_lost = sorted(s for s in told if s.startswith("cs_") and s not in kept)
        self.say(f"sessions callers were told of that the failover lost: {len(self.told_lost)}")

    async def _sessions_kept(self) -> set[str]:
        conn = await asyncpg.connect(self.pair.admin_dsn, timeout=30)
        try:
            rows = await conn.fetch(
                "SELECT session_id FROM checkout_sessions WHERE session_id IS NOT NULL"
            )
        finally:
            await conn.close()
        return {row["session_id"] for row in rows}

    async def _watch_readiness(self, done: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            while not done.is_set():
                for name, port in self.cluster.http_ports().items():
                    try:
                        answer = await http.get(f"http://127.0.0.1:{port}/readyz")
                        ready = answer.status_code == 200
                    except httpx.HTTPError:
                        ready = False
                    self.readiness.note(name, self.now(), ready)
                await asyncio.sleep(_READY_POLL_SECONDS)

    async def _settle(self) -> Audit:
        """Audit until the ledger and Stripe agree twice in a row (a sweep pass and more
        apart), or nothing changed for the load's `stable_seconds`, or its bound passes."""
        load = self.scenario.load
        started = time.monotonic()
        last_key: tuple[int, ...] | None = None
        unchanged_since = started
        clean = 0
        while True:
            result = await audit(self.pair.admin_dsn, self.control, self.prefix)
            now = time.monotonic()
            if result.key() != last_key:
                last_key, unchanged_since = result.key(), now
            clean = clean + 1 if not any(result.key()) else 0
            if (
                clean >= _CLEAN_AUDITS
                or now - unchanged_since >= load.stable_seconds
                or now - started >= load.settle_seconds
            ):
                self.timeline.settled = self.now()
                self.say(f"settled after {now - started:.1f} s")
                return result
            await asyncio.sleep(_SETTLE_POLL_SECONDS)


def _lines_with(log_dir: Path, secret: str) -> int:
    return sum(
        secret in line
        for path in log_dir.glob("replica-*.log")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    )
