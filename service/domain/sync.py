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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from service.domain.checkout import Checkout
from service.domain.errors import (
    CheckoutError,
    Unavailable,
    UpstreamMissing,
    UpstreamRejected,
)
from service.domain.model import ORDER_ID_KEY, LedgerEntry, StripeEvent
from service.domain.payment_model import PAYMENT_EVENTS, MoneySweep, PaymentEvent
from service.domain.ports import Clock, PaymentGateway, SyncLedger
from service.domain.recovery import RecoveredCarts

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
        self._recovered = RecoveredCarts(ledger, gateway, checkout)
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
            ours = event.order_id is not None and await self._ledger.knows_order(event.order_id)
            if not ours:
                # Another integration on the same Stripe account.
                await self._ledger.skip_event(event)
                return EventOutcome.IGNORED
            if event.recovered_from:
                # A recovered cart's copy, which Stripe made without asking (recovery.py).
                entry = await self._recovered.adopt(event.session_id)
                if entry is None:
                    # Not the order's to keep (another session holds it), or not ours.
                    await self._ledger.skip_event(event)
                    return EventOutcome.IGNORED
        if entry is None:
            # Stripe created it and its creator has not stored it yet (or crashed; then the
            # sweep resumes the pending row). Stripe retries the delivery.
            raise Unavailable(
                f"session {event.session_id} is not in the ledger yet",
                reason="SESSION_NOT_YET_STORED",
                retry_after_seconds=5.0,
            )
        snapshot = await self._gateway.retrieve_session(event.session_id)
        applied = await self._ledger.apply_event(
            event, entry.row_id, snapshot, payment_failed=event.type == ASYNC_PAYMENT_FAILED
        )
        return EventOutcome.APPLIED if applied else EventOutcome.DUPLICATE

    async def due(self, interval: timedelta) -> bool:
        """Whether a pass is due: the lock keeps two replicas from sweeping at once, and this
        keeps them from each sweeping every interval (one pass per interval in all)."""
        last = await self._ledger.watermark(_LAST_PASS)
        now = self._clock.now().timestamp()
        # A little early rather than a whole interval late, as the replicas' timers drift.
        return last is None or now - last >= interval.total_seconds() * 0.8

    async def sweep(self) -> SweepReport:
        """One pass of the sweep: the ledger's lagging rows, then Stripe's events that no
        webhook brought, then Stripe's open sessions that no row holds. Each step runs on its
        own; one that fails is reported and the others still run."""
        try:
            report = await self.reconcile()
        except CheckoutError as exc:
            report = SweepReport(examined=0, failed=(("rows", exc),))
        caught_up = 0
        orphans: tuple[str, ...] = ()
        step_failures = list(report.failed)
        try:
            caught_up = await self.catch_up()
        except CheckoutError as exc:
            step_failures.append(("events", exc))
        try:
            orphans = tuple(await self.expire_orphans())
        except CheckoutError as exc:
            step_failures.append(("orphans", exc))
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
            orphans=orphans,
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

    async def expire_orphans(self) -> list[str]:
        """Expire, at Stripe, open sessions this service made (they carry an order id) that
        no ledger row holds: a creator's answer lost for good, or a row dropped while Stripe
        made its session. Sessions younger than the pending grace may still be on their way
        into the ledger and are left alone."""
        now = self._clock.now()
        expired = []
        # Younger sessions may still be on their way into the ledger: judged next time.
        young = int((now - self._pending_grace).timestamp())
        # Only sessions made since the last scan: a session is an orphan or not from the moment
        # it is made, so an older one was judged before. No overlap is needed, unlike events:
        # a session this old is listed already. Each session is listed once, which matters at
        # hundreds of creates a second.
        oldest = int((now - _ORPHAN_WINDOW).timestamp())
        scanned_to = await self._ledger.watermark(_OPEN_SESSIONS)
        since = oldest if scanned_to is None else max(oldest, scanned_to)
        candidates = [
            session
            for session in await self._gateway.open_sessions(
                created_since=since, created_before=young
            )
            # Another integration's.
            if ORDER_ID_KEY in session.metadata
        ]
        known = (
            await self._ledger.by_session_ids([session.id for session in candidates])
            if candidates
            else {}
        )
        for session in candidates:
            order_id = session.metadata[ORDER_ID_KEY]
            entry = known.get(session.id)
            if entry is not None and entry.is_active:
                continue
            if entry is None and await self._ledger.has_pending(order_id):
                # Most likely that row's own session, its answer lost: resuming the row
                # (above, or by its caller's retry) stores it. Expiring it would hand the
                # resumed row an expired session.
                continue
            if (
                entry is None
                and session.recovered_from
                and await self._recovered.adopt(session.id) is not None
            ):
                continue  # a recovered cart's copy, now the order's (recovery.py)
            try:
                await self._checkout.expire_at_stripe(session.id)
            except UpstreamRejected:
                continue  # no longer open (paid meanwhile): the row, if any, hears of it
            if entry is not None:
                await self._checkout.bring_up_to_date(entry)
            expired.append(session.id)
        await self._ledger.advance_watermark(_OPEN_SESSIONS, young)
        return expired

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
