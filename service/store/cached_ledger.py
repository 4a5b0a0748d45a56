"""A SessionLedger that keeps what this process read of another one (PostgresLedger; in unit
tests, the in-memory fake) and answers the reads callers repeat without asking it: a session by
id, a row by id, an order's latest session, and the claim of an order whose holder it knows.

Coherent through the change feed (change_feed.py): every change to a row is notified by
whichever replica made it, and the notice removes what it names (its session and its caller's
order) from every replica's cache; a write made through this ledger removes it at once, before
the write returns, so a read after a write never sees the older state. While the feed is
disconnected notices may be lost, so nothing is kept then. A read that started before an
invalidation does not keep what it read, and concurrent misses for one key share one query
(read_cache.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from service.domain.errors import AttemptDropped
from service.domain.model import (
    Attempt,
    Claim,
    FeedPosition,
    FeedRead,
    LedgerEntry,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
    holds_order,
)
from service.domain.ports import SessionLedger
from service.store.read_cache import ReadCache


class CachedLedger:
    def __init__(self, ledger: SessionLedger) -> None:
        self._ledger = ledger
        self._cache = ReadCache()

    # -- what the change feed hears (change_feed.ChangeListener) --

    def connected(self) -> None:
        """From now on every change is heard of: keep what is read, starting afresh."""
        self._cache.enable(True)

    def disconnected(self) -> None:
        """Changes may go unheard until the feed is back: keep nothing meanwhile."""
        self._cache.enable(False)

    def changed(self, session_id: str | None, caller: str, order_id: str) -> None:
        self._cache.forget(session_id=session_id, order=(caller, order_id))

    def changed_unknown(self) -> None:
        """Something changed, and the notice does not say what."""
        self._cache.clear()

    # -- the reads it answers --

    async def claim(
        self, *, caller: str, order_id: str, fingerprint: str, attempt: Callable[[], Attempt]
    ) -> Claim:
        # The order's latest session, if it holds the order, is the row that holds it (at most
        # one does): the claim loses to it, as the database's would.
        latest = self._cache.peek(_latest(caller, order_id))
        if latest is not None and holds_order(latest.state, latest.async_payment_failed):
            return Claim(False, latest)  # positional: the most common create makes one
        read_at = self._cache.generation
        claim = await self._ledger.claim(
            caller=caller, order_id=order_id, fingerprint=fingerprint, attempt=attempt
        )
        if not claim.won and claim.entry.session_id is not None:
            # The row that holds the order and has a session is the order's latest session:
            # kept, the next call that repeats this one is answered without a query.
            self._cache.offer(_latest(caller, order_id), claim.entry, read_at=read_at)
        return claim

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        return await self._cache.read(
            ("session", session_id),
            lambda: self._ledger.by_session_id(session_id),
            session_id=session_id,
        )

    async def by_row_id(self, row_id: int) -> LedgerEntry:
        entry = await self._cache.read(("row", row_id), lambda: self._row_if_any(row_id))
        if entry is None:
            raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
        return entry

    async def list_for_order(
        self, caller: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        if limit != 1 or after is not None:
            return await self._ledger.list_for_order(caller, order_id, limit=limit, after=after)

        # An order's latest session, the most common read of all.
        async def load() -> LedgerEntry | None:
            rows = await self._ledger.list_for_order(caller, order_id, limit=1, after=None)
            return rows[0] if rows else None

        latest = await self._cache.read(_latest(caller, order_id), load, order=(caller, order_id))
        return [] if latest is None else [latest]

    # -- the writes, each forgetting what it changed --

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        entry = await self._ledger.record_snapshot(row_id, snapshot)
        self._forget(entry)
        return entry

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        applied = await self._ledger.apply_event(
            event, row_id, snapshot, payment_failed=payment_failed
        )
        # The row had the session already (it was found by it), so what is kept of the row,
        # as its order's latest session too, is known by the session.
        self._cache.forget(session_id=snapshot.id, order=None)
        return applied

    async def replace_key(self, row_id: int, *, old_key: str, new_key: str) -> LedgerEntry:
        entry = await self._ledger.replace_key(row_id, old_key=old_key, new_key=new_key)
        self._forget(entry)
        return entry

    async def end_missing(self, row_id: int) -> LedgerEntry | None:
        entry = await self._ledger.end_missing(row_id)
        if entry is not None:
            self._forget(entry)
        return entry

    async def adopt(
        self,
        *,
        caller: str,
        order_id: str,
        fingerprint: str,
        stripe_params: Mapping[str, Any],
        snapshot: SessionSnapshot,
    ) -> Claim:
        claim = await self._ledger.adopt(
            caller=caller,
            order_id=order_id,
            fingerprint=fingerprint,
            stripe_params=stripe_params,
            snapshot=snapshot,
        )
        # A new row is its order's latest session, and its session was no row's before.
        self._cache.forget(session_id=snapshot.id, order=(caller, order_id))
        return claim

    async def discard_pending(self, row_id: int) -> None:
        # A pending row has no session and is no order's latest session: it can only be kept
        # by its row id.
        await self._ledger.discard_pending(row_id)
        self._cache.drop(("row", row_id))

    # -- the rest, asked every time --

    async def active_or_latest(self, caller: str, order_id: str) -> LedgerEntry | None:
        return await self._ledger.active_or_latest(caller, order_id)

    async def find_request(self, caller: str, request_id: str) -> RequestRecord | None:
        return await self._ledger.find_request(caller, request_id)

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        return await self._ledger.save_request(record)

    async def event_seen(self, event_id: str) -> bool:
        return await self._ledger.event_seen(event_id)

    async def knows_order(self, order_id: str) -> bool:
        return await self._ledger.knows_order(order_id)

    async def skip_event(self, event: StripeEvent) -> bool:
        return await self._ledger.skip_event(event)

    async def needing_reconciliation(
        self, *, pending_before: datetime, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        return await self._ledger.needing_reconciliation(
            pending_before=pending_before, now=now, quiet_since=quiet_since, limit=limit
        )

    async def schedule_sweep(self, row_id: int, *, at: datetime, failed: bool) -> None:
        await self._ledger.schedule_sweep(row_id, at=at, failed=failed)

    async def oldest_pending(self) -> datetime | None:
        return await self._ledger.oldest_pending()

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        return await self._ledger.by_session_ids(session_ids)

    async def has_pending(self, order_id: str) -> bool:
        return await self._ledger.has_pending(order_id)

    async def watermark(self, name: str) -> int | None:
        return await self._ledger.watermark(name)

    async def advance_watermark(self, name: str, to: int) -> None:
        await self._ledger.advance_watermark(name, to)

    async def prune_feed(self, *, created_before: datetime, limit: int) -> int:
        return await self._ledger.prune_feed(created_before=created_before, limit=limit)

    # The event feed is read by each caller's one reader (service/domain/feed.py), which keeps
    # its own place: nothing here to keep.

    async def read_feed(
        self, caller: str, after: FeedPosition, *, limit: int, types: Collection[str] = ()
    ) -> FeedRead:
        return await self._ledger.read_feed(caller, after, limit=limit, types=types)

    async def feed_position_at_or_before(
        self, caller: str, position: FeedPosition
    ) -> FeedPosition | None:
        return await self._ledger.feed_position_at_or_before(caller, position)

    # -- internals --

    async def _row_if_any(self, row_id: int) -> LedgerEntry | None:
        """The row, or None for one that is gone (row ids are never used again, so that
        answer is kept like any other)."""
        try:
            return await self._ledger.by_row_id(row_id)
        except AttemptDropped:
            return None

    def _forget(self, entry: LedgerEntry) -> None:
        self._cache.forget(session_id=entry.session_id, order=(entry.caller, entry.order_id))


def _latest(caller: str, order_id: str) -> tuple[str, str, str]:
    """The key of an order's latest session."""
    return ("latest", caller, order_id)
