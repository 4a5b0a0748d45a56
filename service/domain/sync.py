"""Keeping the ledger converging on Stripe, which is the truth about payment: signed webhooks as
they come, and a sweep for whatever they missed (docs/architecture.md, "Webhooks and the sweep").
The sweep also keeps the event feed to its retention.

A webhook is a hint, not a state: events arrive late, twice, or out of order
(https://docs.stripe.com/webhooks#event-ordering,
https://docs.stripe.com/webhooks#handle-duplicate-events), so each one makes us re-read the
session from Stripe, and the ledger only ever moves a session forward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from service.domain.adoption import Adoption
from service.domain.checkout import Checkout
from service.domain.errors import (
    CheckoutError,
    OrderPaidTwice,
    Unavailable,
    UpstreamMissing,
    UpstreamRejected,
)
from service.domain.model import (
    ORDER_ID_KEY,
    LedgerEntry,
    LedgerState,
    SessionSnapshot,
    StripeEvent,
)
from service.domain.payment_model import PAYMENT_EVENTS, MoneySweep, PaymentEvent
from service.domain.ports import Clock, PaymentGateway, SyncLedger

if TYPE_CHECKING:
    from service.domain.payment_sync import PaymentSync

COMPLETED = "checkout.session.completed"
ASYNC_PAYMENT_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_PAYMENT_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
# A row the sweep fails on waits 30 s, then 1, 2, 4… minutes, at most an hour, before the next
# try: a broken row costs little, and a fixed one is picked up soon.
_FIRST_RETRY_SECONDS = 30.0
_MAX_RETRY_SECONDS = 3600.0
# The first catch-up reads this far back; later ones start at the watermark, less an
# overlap, since an event may be listed a little after its `created` time.
_FIRST_CATCH_UP_SECONDS = 3600
_OVERLAP_SECONDS = 60
# Stripe's idempotency keys and open sessions both last at most a day: anything older is not
# an attempt of ours in flight.
_EVENTS, _OPEN_SESSIONS, _LAST_PASS = "events", "open_sessions", "last_pass"
_ORPHAN_WINDOW = timedelta(hours=24)
# The feed's old events go in small batches, each its own short transaction, so that pruning
# never holds locks for long; a pass prunes at most this many batches and leaves the rest to
# the next one.
_PRUNE_BATCH = 500
_PRUNE_BATCHES_PER_PASS = 100
SESSION_EVENTS = frozenset({COMPLETED, ASYNC_PAYMENT_SUCCEEDED, ASYNC_PAYMENT_FAILED, EXPIRED})
HANDLED_EVENTS = SESSION_EVENTS | PAYMENT_EVENTS


class EventOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass
class Orphans:
    """What a scan of Stripe's sessions did with those no ledger row held (StripeSync.orphans)."""

    adopted: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    paid_twice: list[OrderPaidTwice] = field(default_factory=list)
    failed: list[tuple[str, CheckoutError]] = field(default_factory=list)
    """(session id, error) for sessions that could not be judged; tried again next time."""
    held_back: int | None = None
    """When the oldest of those was made: the next scan starts there."""


@dataclass(frozen=True, slots=True)
class SweepReport:
    examined: int
    failed: tuple[tuple[str, CheckoutError], ...]
    """(ledger row or session id, error) for rows that could not be brought up to date."""
    missing: tuple[str, ...] = ()
    """Sessions Stripe no longer knows, whose rows were ended."""
    caught_up: int = 0
    """Events read from Stripe's list that no webhook had brought, now applied."""
    orphans: tuple[str, ...] = ()
    """Open sessions at Stripe that no row held, now expired."""
    adopted: tuple[str, ...] = ()
    """Sessions at Stripe that no row held, now the ledger's (adoption.py)."""
    paid_twice: tuple[OrderPaidTwice, ...] = ()
    """Orders found paid through two sessions, for an operator."""
    updated: int = 0
    """Rows whose stored state changed: they lagged Stripe's."""
    oldest_pending_seconds: float = 0.0
    """Age of the oldest row still waiting for Stripe's answer after the pass (0: none)."""
    pruned: int = 0
    """Events of the feed deleted as older than its retention."""
    payments_updated: int = 0
    """Payments whose stored state changed: they lagged Stripe's (payment_sync.py)."""
    operations_resumed: int = 0
    """Captures, cancels and refunds left pending whose outcome is now known."""


class StripeSync:
    def __init__(
        self,
        ledger: SyncLedger,
        gateway: PaymentGateway,
        checkout: Checkout,
        clock: Clock,
        *,
        pending_grace: timedelta = timedelta(seconds=10),
        quiet_after: timedelta = timedelta(minutes=10),
        batch_size: int = 100,
        event_retention: timedelta = timedelta(days=30),
        money: PaymentSync | None = None,
    ) -> None:
        """`money`: the payments after checkout, their events and their part of the sweep."""
        self._ledger = ledger
        self._gateway = gateway
        self._checkout = checkout
        self._clock = clock
        # How long the event feed keeps an event (EVENT_RETENTION_DAYS).
        self._event_retention = event_retention
        # A pending row younger than this is most likely still in its creator's hands.
        self._pending_grace = pending_grace
        # A session that is not final and has heard nothing for this long is re-read.
        self._quiet_after = quiet_after
        self._batch_size = batch_size
        self._adoption = Adoption(ledger, checkout)
        self._money = money

    async def handle_event(self, event: StripeEvent | PaymentEvent) -> EventOutcome:
        """Apply a verified event exactly once. Raises Unavailable when it cannot be applied
        yet, so that Stripe delivers it again; the event is recorded only with its effect."""
        if isinstance(event, PaymentEvent):
            if self._money is None:
                return EventOutcome.IGNORED
            return await self._money.handle_event(event)
        if event.type not in SESSION_EVENTS:
            return EventOutcome.IGNORED
        if await self._ledger.event_seen(event.id):
            return EventOutcome.DUPLICATE
        entry = await self._ledger.by_session_id(event.session_id)
        if entry is None:
            entry = await self._unknown(event)
            if entry is None:
                # Another integration's on the same Stripe account, or nothing to adopt.
                await self._ledger.skip_event(event)
                return EventOutcome.IGNORED
        snapshot = await self._gateway.retrieve_session(event.session_id)
        applied = await self._ledger.apply_event(
            event, entry.row_id, snapshot, payment_failed=event.type == ASYNC_PAYMENT_FAILED
        )
        return EventOutcome.APPLIED if applied else EventOutcome.DUPLICATE

    async def _unknown(self, event: StripeEvent) -> LedgerEntry | None:
        """The row of an event's session the ledger does not know: adopted if it may be
        (adoption.py), or None. Raises Unavailable while its creator may still store it."""
        legacy = event.caller is None and event.recovered_from is None
        if event.order_id is not None and (
            # Made before sessions named their caller (or another integration's): the session
            # of an order the ledger knows is its creator's, not stored yet, as it was.
            await self._ledger.knows_order(event.order_id)
            if legacy
            # Most likely the session of the order's row on its way into the ledger.
            else await self._ledger.has_pending(event.order_id)
        ):
            raise Unavailable(
                f"session {event.session_id} is not in the ledger yet",
                reason="SESSION_NOT_YET_STORED",
                retry_after_seconds=5.0,
            )
        if legacy:
            return None
        session = await self._gateway.retrieve_session(event.session_id)
        return await self._adoption.adopt_or_wait(session)

    async def due(self, interval: timedelta) -> bool:
        """Whether a pass is due: the lock keeps two replicas from sweeping at once, and this
        keeps them from each sweeping every interval (one pass per interval in all)."""
        last = await self._ledger.watermark(_LAST_PASS)
        now = self._clock.now().timestamp()
        # A little early rather than a whole interval late, as the replicas' timers drift.
        return last is None or now - last >= interval.total_seconds() * 0.8

    async def sweep(self) -> SweepReport:
        """One pass of the sweep: the ledger's lagging rows, then Stripe's events that no
        webhook brought, then the sessions Stripe made that no row holds. Each step runs on its
        own; one that fails is reported and the others still run."""
        try:
            report = await self.reconcile()
        except CheckoutError as exc:
            report = SweepReport(examined=0, failed=(("rows", exc),))
        caught_up = 0
        orphans = Orphans()
        step_failures = list(report.failed)
        try:
            caught_up = await self.catch_up()
        except CheckoutError as exc:
            step_failures.append(("events", exc))
        try:
            orphans = await self.orphans()
        except CheckoutError as exc:
            step_failures.append(("orphans", exc))
        step_failures += orphans.failed
        pruned = 0
        try:
            pruned = await self.prune_feed()
        except CheckoutError as exc:
            step_failures.append(("feed", exc))
        money = await self._money_sweep(step_failures)
        await self._ledger.advance_watermark(_LAST_PASS, int(self._clock.now().timestamp()))
        oldest = await self._ledger.oldest_pending()
        waited = 0.0 if oldest is None else (self._clock.now() - oldest).total_seconds()
        return dataclasses.replace(
            report,
            failed=tuple(step_failures),
            caught_up=caught_up,
            orphans=tuple(orphans.expired),
            adopted=tuple(orphans.adopted),
            paid_twice=tuple(orphans.paid_twice),
            oldest_pending_seconds=max(0.0, waited),
            pruned=pruned,
            payments_updated=money.updated,
            operations_resumed=money.resumed,
        )

    async def _money_sweep(self, failures: list[tuple[str, CheckoutError]]) -> MoneySweep:
        """The payments' part of the pass, on its own like each step."""
        if self._money is None:
            return MoneySweep()
        try:
            money = await self._money.sweep()
        except CheckoutError as exc:
            failures.append(("payments", exc))
            return MoneySweep()
        failures += money.failed
        return money

    async def reconcile(self) -> SweepReport:
        """One pass of the sweep over the rows whose stored state may lag Stripe's. Each row
        is handled on its own: one that fails is retried later with a growing delay and never
        holds up the others; one whose session Stripe no longer knows is ended."""
        now = self._clock.now()
        entries = await self._ledger.needing_reconciliation(
            pending_before=now - self._pending_grace,
            now=now,
            quiet_since=now - self._quiet_after,
            limit=self._batch_size,
        )
        failed: list[tuple[str, CheckoutError]] = []
        missing: list[str] = []
        updated = 0
        for entry in entries:
            name = entry.session_id or f"row {entry.row_id}"
            try:
                latest = await self._checkout.bring_up_to_date(entry)
            except UpstreamMissing as exc:
                if await self._ledger.end_missing(entry.row_id) is not None:
                    missing.append(name)
                else:
                    failed.append((name, exc))
                    await self._retry_later(entry, now)
            except CheckoutError as exc:
                failed.append((name, exc))
                await self._retry_later(entry, now)
            else:
                updated += latest.updated_at != entry.updated_at
                # Nothing new or up to date now: look again after a quiet period, so that the
                # next pass reaches other rows first.
                await self._ledger.schedule_sweep(
                    entry.row_id, at=now + self._quiet_after, failed=False
                )
        return SweepReport(
            examined=len(entries), failed=tuple(failed), missing=tuple(missing), updated=updated
        )

    async def catch_up(self) -> int:
        """Apply the Checkout events Stripe made since the last pass (minus an overlap for
        events that became visible late) that no webhook brought; returns how many applied.
        The watermark only moves past events that applied or never will."""
        now = int(self._clock.now().timestamp())
        watermark = await self._ledger.watermark(_EVENTS)
        since = (now - _FIRST_CATCH_UP_SECONDS if watermark is None else watermark) - (
            _OVERLAP_SECONDS
        )
        applied = 0
        held_back: int | None = None
        for event in await self._gateway.session_events(HANDLED_EVENTS, created_since=since):
            try:
                if await self.handle_event(event) == EventOutcome.APPLIED:
                    applied += 1
            except CheckoutError:
                # Not yet (its session is still being stored, or Stripe or Postgres failed):
                # the next pass reads it again.
                held_back = event.created if held_back is None else min(held_back, event.created)
        await self._ledger.advance_watermark(_EVENTS, now if held_back is None else held_back)
        return applied

    async def orphans(self) -> Orphans:
        """Sessions this service made (they carry an order id) that no ledger row holds,
        made since the last scan: adopted, or expired at Stripe (adoption.py): a creator's
        answer lost for good, a row dropped while Stripe made its session, a recovered cart's
        copy, or a row a database failover lost. Sessions younger than the pending grace may
        still be on their way into the ledger and are left to the next scan."""
        now = self._clock.now()
        # Younger sessions may still be on their way into the ledger: judged next time.
        young = int((now - self._pending_grace).timestamp())
        found = await self._orphans(until=young)
        # Only sessions made since the last scan: a session is an orphan or not from the moment
        # it is made, so an older one was judged before; one whose judgement failed holds the
        # watermark back. No overlap is needed, unlike events: a session this old is listed
        # already. Each session is listed once, which matters at hundreds of creates a second.
        await self._ledger.advance_watermark(_OPEN_SESSIONS, found.held_back or young)
        return found

    async def reconcile_after_failover(self) -> Orphans:
        """After the database changed (a failover, which may have lost the last commits: the
        rows of sessions Stripe has): every session made since the last scan up to now, young
        ones included, adopted or expired as the scan does, so that no order is given a new
        session beside one the database lost (service/store/failover.py). The watermark stays
        where it is: the sweep's own scan goes over these sessions again, and finds them
        judged. A session made since the last commits the database kept is after the
        watermark: the watermark moves only in a commit of its own, past what was committed
        before it, and a standby receives the commits in order."""
        return await self._orphans(until=None)

    async def _orphans(self, *, until: int | None) -> Orphans:
        now = self._clock.now()
        oldest = int((now - _ORPHAN_WINDOW).timestamp())
        scanned_to = await self._ledger.watermark(_OPEN_SESSIONS)
        since = oldest if scanned_to is None else max(oldest, scanned_to)
        candidates = [
            session
            for session in await self._gateway.sessions(created_since=since, created_before=until)
            # Another integration's.
            if ORDER_ID_KEY in session.metadata
        ]
        known = (
            await self._ledger.by_session_ids([session.id for session in candidates])
            if candidates
            else {}
        )
        found = Orphans()
        for session in candidates:
            try:
                await self._orphan(session, known.get(session.id), found, reconciling=until is None)
            except OrderPaidTwice as exc:
                # Said now, and again by the session's events: nothing a later scan can do.
                found.paid_twice.append(exc)
            except CheckoutError as exc:
                found.failed.append((session.id, exc))
                held = found.held_back
                found.held_back = session.created if held is None else min(held, session.created)
        return found

    async def _orphan(
        self,
        session: SessionSnapshot,
        entry: LedgerEntry | None,
        found: Orphans,
        *,
        reconciling: bool,
    ) -> None:
        """One session of a scan, adopted or expired if it is an orphan. `reconciling`: after
        the database changed, rows on their way into the ledger are resumed first rather than
        waited for, since no order may be left with a session it does not know of."""
        if entry is None:
            # Its row may have been stored since the list was read (by a row resumed above).
            entry = await self._ledger.by_session_id(session.id)
        if entry is not None:
            if session.status == LedgerState.OPEN and not entry.is_active:
                # Its row let go of it (a changed cart) and Stripe still has it open.
                if await self._expire(session):
                    found.expired.append(session.id)
                await self._checkout.bring_up_to_date(entry)
            return
        if (
            not reconciling
            and session.status == LedgerState.OPEN
            and await self._ledger.has_pending(session.metadata[ORDER_ID_KEY])
        ):
            # Most likely that row's own session, its answer lost: resuming the row (above,
            # or by its caller's retry) stores it. Expiring it would hand the resumed row an
            # expired session.
            return
        adopted = await self._adoption.adopt(session, resume_pending=True)
        if adopted is None and session.status == LedgerState.OPEN:
            if await self._expire(session):
                found.expired.append(session.id)
                return
            # No longer open: paid meanwhile, and then the order's payment.
            latest = await self._gateway.retrieve_session(session.id)
            adopted = await self._adoption.adopt(latest, resume_pending=True)
        if adopted is not None and adopted.new:
            found.adopted.append(session.id)

    async def _expire(self, session: SessionSnapshot) -> bool:
        """Expire an open session at Stripe; False if it is no longer open."""
        try:
            await self._checkout.expire_at_stripe(session.id)
        except UpstreamRejected:
            return False
        return True

    async def prune_feed(self) -> int:
        """Delete the feed's events older than its retention, oldest first, a small batch at a
        time; how many were deleted."""
        created_before = self._clock.now() - self._event_retention
        pruned = 0
        for _ in range(_PRUNE_BATCHES_PER_PASS):
            deleted = await self._ledger.prune_feed(
                created_before=created_before, limit=_PRUNE_BATCH
            )
            pruned += deleted
            if deleted < _PRUNE_BATCH:
                break
        return pruned

    async def _retry_later(self, entry: LedgerEntry, now: datetime) -> None:
        delay = min(_FIRST_RETRY_SECONDS * 2**entry.sweep_attempts, _MAX_RETRY_SECONDS)
        await self._ledger.schedule_sweep(
            entry.row_id, at=now + timedelta(seconds=delay), failed=True
        )
