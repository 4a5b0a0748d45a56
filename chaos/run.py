"""One chaos run from start to finish: Postgres, the sandbox and the replicas up; the load and
the faults together; the faults off; the system left to settle; the ledger audited against
Stripe. Everything started here is stopped here, whatever fails."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.audit import Audit, RefundAudit, audit, audit_refunds
from chaos.callers import run_callers, write_callers_file
from chaos.cluster import Cluster, Settings
from chaos.consumers import FeedConsumers
from chaos.faults import FaultKind, FaultTally, Injector
from chaos.feed_audit import FeedAudit, fold, read_ledger
from chaos.load import Load, Tally
from chaos.postgres import Postgres
from chaos.processes import ReplicaLog
from chaos.sandbox import SandboxControl, SandboxProcess
from chaos.scenario import Scenario

# How often the settling loop audits: each audit lists every session at Stripe.
_SETTLE_POLL_SECONDS = 2.0
# Clean this many audits in a row (one sweep pass and more apart) before it counts as settled.
_CLEAN_AUDITS = 2
# How long the feed's consumers may take, once the run has settled, to have read every event
# the database holds.
_FEED_CATCH_UP_SECONDS = 30.0


@dataclass
class Settled:
    seconds: float
    how: str


@dataclass
class Outcome:
    scenario: Scenario
    seed: int
    run_dir: Path
    postgres: str
    order_prefix: str
    tally: Tally
    faults: FaultTally
    audit: Audit
    replica_logs: dict[str, ReplicaLog]
    settled: Settled
    load_seconds: float
    wall_seconds: float
    """From the start of the run to the audit (stopping everything takes a few seconds more)."""
    feed: FeedAudit
    webhooks: dict[str, Any] = field(default_factory=dict)
    refunds: RefundAudit = field(default_factory=RefundAudit)

    def answered(self, code: str) -> tuple[int, int, int]:
        """(the count, as callers saw it, as replicas logged it): a replica logs an answer
        whose caller had given up, a caller sees one that never reached a log (the process
        was killed); the larger of the two is the count."""
        seen = sum(n for (_, c), n in self.tally.answers.items() if c == code)
        logged = sum(
            n
            for log in self.replica_logs.values()
            for key, n in log.codes.items()
            if key.endswith(f" {code}")
        )
        return max(seen, logged), seen, logged

    def checks(self) -> dict[str, int]:
        """The counts that must be 0."""
        return {
            "orders with more than one open Stripe session": len(self.audit.orders_with_two_open),
            "paid Stripe sessions whose ledger row is not complete": len(
                self.audit.paid_not_complete
            ),
            "open Stripe sessions without a ledger row": len(self.audit.open_without_row),
            "INTERNAL answers": self.answered("INTERNAL")[0],
            "UNKNOWN answers": self.answered("UNKNOWN")[0],
            "feed: paid orders a consumer did not see paid exactly once": len(
                self.feed.paid_not_once
            ),
            "feed: events of its caller a consumer missed": len(self.feed.missed),
            "feed: events of another caller a consumer saw": len(self.feed.foreign),
            "feed: orders whose events a consumer saw out of order": len(self.feed.out_of_order),
            "feed: streams or pages refused (OUT_OF_RANGE, a bad request, a bug)": (
                self.feed.refused
            ),
            "feed: refunds told made a consumer of their caller did not see refunded once": len(
                self.feed.refund_not_once
            ),
            "charges whose refunds exceed their capture": len(self.refunds.over_refunded),
            "refunds callers were told were made, not at Stripe once": len(
                self.refunds.told_made_not_once
            ),
            "refunds at Stripe for a request callers were told was refused": len(
                self.refunds.refused_but_made
            ),
        }

    @property
    def passed(self) -> bool:
        return not any(self.checks().values())


async def run_chaos(
    scenario: Scenario,
    run_dir: Path,
    *,
    seed: int,
    progress: Callable[[str], None] = lambda _: None,
    postgres_folder: Path | None = None,
) -> Outcome:
    """`postgres_folder` holds the run's own Postgres, if not `run_dir` (the tests keep theirs
    apart: see `postgres_root` in tests/conftest.py)."""
    began = time.monotonic()

    def say(message: str) -> None:
        progress(f"[{time.monotonic() - began:6.1f} s] {message}")

    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    prefix = f"chaos-{run_id}-"
    postgres = await Postgres.open(postgres_folder or run_dir, f"chaos-{run_id}")
    say(f"Postgres: {postgres.describe()}")
    try:
        sandbox = await SandboxProcess.start(log_dir)
        try:
            say(f"sandbox at {sandbox.url}")
            return await _with_sandbox(
                scenario, run_dir, seed, postgres, sandbox, prefix, say, began
            )
        finally:
            await sandbox.stop()
    finally:
        await postgres.close()
        say(f"done in {time.monotonic() - began:.1f} s")


async def _with_sandbox(
    scenario: Scenario,
    run_dir: Path,
    seed: int,
    postgres: Postgres,
    sandbox_process: SandboxProcess,
    prefix: str,
    say: Callable[[str], None],
    began: float,
) -> Outcome:
    sandbox = SandboxControl(sandbox_process.url)
    callers = run_callers()
    callers_file = write_callers_file(run_dir / "callers.json", callers)
    cluster = Cluster(Settings(postgres.dsn, sandbox.url, callers_file), sandbox, run_dir / "logs")
    try:
        await cluster.start(scenario.replicas)
        say(f"{scenario.replicas} replicas serving")
        injector = Injector(scenario, sandbox, seed)
        kinds = await injector.usable()
        for skipped in injector.tally.skipped:
            say(f"skipped, this sandbox cannot inject it: {skipped}")
        load = Load(
            scenario, cluster, sandbox, prefix, seed, run_dir / "logs" / "calls.jsonl", callers
        )
        consumers = FeedConsumers(scenario, cluster, callers, seed)
        stop_following = asyncio.Event()
        following = asyncio.create_task(consumers.follow(stop_following))
        try:
            load_seconds = await _load_and_faults(
                scenario, load, injector, kinds, postgres, cluster, say
            )
            orders = load.tally.orders
            say(f"load done: {orders} orders in {load_seconds:.1f} s; faults off, settling")
            settled, result = await _settle(scenario, postgres, sandbox, prefix)
            say(f"settled: {settled.how} after {settled.seconds:.1f} s")
        finally:
            stop_following.set()
            await following
        told = [(r.order_id, r.refund_id) for r in load.tally.refunds if r.code == "OK"]
        feed = await _audit_feed(postgres, prefix, consumers, told, say)
        result.dump(run_dir / "logs")
        refunds = await audit_refunds(sandbox, result.sessions, load.tally.refunds)
        say(
            f"refunds audited at Stripe: {refunds.payments} payments, "
            f"{refunds.refunds_at_stripe} refunds"
        )
        webhooks = await sandbox.deliveries()
        return Outcome(
            scenario=scenario,
            seed=seed,
            run_dir=run_dir,
            postgres=postgres.describe(),
            order_prefix=prefix,
            tally=load.tally,
            faults=injector.tally,
            audit=result,
            replica_logs=cluster.logs,
            settled=settled,
            load_seconds=load_seconds,
            wall_seconds=time.monotonic() - began,
            feed=feed,
            webhooks=webhooks,
            refunds=refunds,
        )
    finally:
        await cluster.stop()
        await sandbox.close()


async def _load_and_faults(
    scenario: Scenario,
    load: Load,
    injector: Injector,
    kinds: list[FaultKind],
    postgres: Postgres,
    cluster: Cluster,
    say: Callable[[str], None],
) -> float:
    """The load and the faults together, then the faults off; how long the load took."""
    start = time.monotonic()
    length = scenario.load_seconds
    say(f"load and faults for {length:g} s ({scenario.workers} orders at a time)")
    # A task group: if one of them fails, the others are cancelled, not left running
    # while everything is torn down.
    async with asyncio.TaskGroup() as group:
        group.create_task(load.run(until=start + length))
        group.create_task(
            injector.stripe_faults(kinds, until=start + length * (1 - scenario.calm_tail))
        )
        group.create_task(
            injector.at(
                start + length * scenario.postgres_restart_at,
                postgres.outage_kind,
                lambda: _noted(say, "Postgres", postgres.outage(scenario.postgres_down_seconds)),
            )
        )
        group.create_task(
            injector.at(
                start + length * scenario.replica_kill_at,
                "replica SIGKILL and restart",
                lambda: _noted(
                    say, "replica", cluster.kill_and_restart(scenario.replica_down_seconds)
                ),
            )
        )
    await injector.clear()
    return time.monotonic() - start


async def _audit_feed(
    postgres: Postgres,
    prefix: str,
    consumers: FeedConsumers,
    refunds: list[tuple[str, str]],
    say: Callable[[str], None],
) -> FeedAudit:
    """The database's events first, then each consumer reads on until it has them all (or
    the bound passes), then what each saw is held against them and against the refunds
    (order, refund) callers were told were made."""
    ledger = await read_ledger(postgres.admin_dsn, prefix)
    try:
        await consumers.catch_up(ledger.expected(), within=_FEED_CATCH_UP_SECONDS)
    except TimeoutError:
        say(f"feed: consumers still short of events after {_FEED_CATCH_UP_SECONDS:g} s")
    audit = fold(ledger, consumers.consumers, prefix, refunds)
    say(f"feed: {audit.events_in_feed} events, {len(consumers.consumers)} consumers audited")
    return audit


async def _noted(say: Callable[[str], None], what: str, outage: Awaitable[str]) -> str:
    say(f"{what}: outage begins")
    done = await outage
    say(f"{what}: {done}")
    return done


async def _settle(
    scenario: Scenario, postgres: Postgres, sandbox: SandboxControl, prefix: str
) -> tuple[Settled, Audit]:
    """Audit until the ledger and Stripe agree (clean a few times in a row), or nothing has
    changed for `stable_seconds` (it will not converge by waiting), or the bound passes."""
    started = time.monotonic()
    last_key: tuple[int, ...] | None = None
    unchanged_since = started
    clean = 0
    while True:
        result = await audit(postgres.admin_dsn, sandbox, prefix)
        now = time.monotonic()
        if result.key() != last_key:
            last_key, unchanged_since = result.key(), now
        clean = clean + 1 if not any(result.key()) else 0
        waited = now - started
        if clean >= _CLEAN_AUDITS:
            return Settled(waited, "ledger and Stripe agree"), result
        if now - unchanged_since >= scenario.stable_seconds:
            return Settled(waited, f"unchanged for {scenario.stable_seconds:g} s"), result
        if waited >= scenario.settle_seconds:
            return Settled(waited, f"bound of {scenario.settle_seconds:g} s reached"), result
        await asyncio.sleep(_SETTLE_POLL_SECONDS)
