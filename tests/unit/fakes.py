"""In-memory stand-ins for the domain's ports (service/domain/ports.py), for fast unit tests of
Checkout and StripeSync.

- `InMemoryLedger` keeps PostgresLedger's semantics (service/store/repository.py and its
  migration), and tests/contract/ holds the two to the same tests: at most one row per order
  holds it (`model.holds_order`, the unique index's predicate); `record_snapshot` only moves a
  row forward by Progress and is a no-op (no new `updated_at`, no notification) when nothing
  changed; an event id is recorded once, together with its effect; `discard_pending` takes the
  row's request ids with it (ON DELETE CASCADE); the sweep's selection and order are the SQL's.
  Values go through JSON as they would through jsonb. Each method runs without awaiting, so it
  is atomic like the statement or transaction it stands for. A constraint Postgres would enforce
  (unique idempotency key, unique session id, a request's row) raises `IntegrityError`: a bug.
- `FakeStripe` keeps Stripe's: deterministic session ids, idempotency keys (the same key and
  parameters replay the first response, other parameters are an error), sessions that lapse at
  their `expires_at`, expiring only open sessions. A test can make the next call of an
  operation refuse or fail (before or after Stripe acted), hold it mid-way, and pay, settle,
  expire or forget a session "at Stripe".
- `InMemoryLedger` writes the event feed's events as PostgresLedger does, with the change that
  causes them and by the domain's rule (service/domain/outcomes.py), in transaction-id order;
  it reads a caller's feed below a horizon, which `running_transaction` holds back as a
  transaction still running in Postgres does, and prunes it as Postgres does.
- `InMemoryChanges` fans change notifications out to the watchers of a session and, for a change
  that wrote an event, to the feed readers of its caller, and tells its listeners (a
  CachedLedger) as the change feed does; a test can disconnect and reconnect it.
- `FakeClock` is set by the test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import uuid4

from service.domain.errors import (
    AttemptDropped,
    CheckoutError,
    IdempotencyKeySpent,
    Unavailable,
    UpstreamMissing,
    UpstreamRejected,
)
from service.domain.model import (
    ACTIVE_STATES,
    Attempt,
    Claim,
    FeedEvent,
    FeedPosition,
    FeedRead,
    LedgerEntry,
    LedgerState,
    LineItemSnapshot,
    PaymentStatus,
    Progress,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
    holds_order,
    ledger_state,
    may_store,
    progress_of,
)
from service.domain.outcomes import (
    EventType,
    PaymentAnnouncement,
    announced,
    event_for,
    payment_events,
)
from service.domain.payment_model import (
    Failure,
    IntentStatus,
    NewOperation,
    OperationClaim,
    OperationKind,
    OperationState,
    PaymentEvent,
    PaymentRecord,
    PaymentSnapshot,
    PaymentWrite,
    Settlement,
    WriteOutcome,
)
from service.domain.payment_model import Operation as PaymentOperation
from service.domain.signals import Signal

if TYPE_CHECKING:
    from service.domain.ports import (
        Clock,
        PaymentGateway,
        PaymentLedger,
        SessionChanges,
        SessionLedger,
    )
    from service.store.change_feed import ChangeListener

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _jsonb(value: Any) -> Any:
    """The value as it comes back from a jsonb column (asyncpg's codec is json.dumps/loads)."""
    return json.loads(json.dumps(value))


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, by: timedelta) -> datetime:
        self._now += by
        return self._now


class InMemoryChanges:
    """SessionChanges: `notify` wakes every current watcher of the session and tells the
    listeners, as the change feed does with a notice."""

    def __init__(self) -> None:
        self._watchers: defaultdict[str, set[Signal]] = defaultdict(set)
        self._feeds: defaultdict[str, set[Signal]] = defaultdict(set)
        self._listeners: list[ChangeListener] = []
        self._connected = True
        self.notified: list[str] = []
        """Every session id notified, in order."""

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Signal]:
        signal = Signal()
        self._watchers[session_id].add(signal)
        try:
            yield signal
        finally:
            self._watchers[session_id].discard(signal)
            if not self._watchers[session_id]:
                del self._watchers[session_id]

    @asynccontextmanager
    async def subscribe_feed(self, caller: str) -> AsyncIterator[Signal]:
        signal = Signal()
        self._feeds[caller].add(signal)
        try:
            yield signal
        finally:
            self._feeds[caller].discard(signal)
            if not self._feeds[caller]:
                del self._feeds[caller]

    def listen(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)
        if self._connected:
            listener.connected()

    def notify(
        self, session_id: str, caller: str, order_id: str, *, event: str | None = None
    ) -> None:
        """A change of the session's row, which wrote `event` to the feed (None: none)."""
        self.notified.append(session_id)
        if not self._connected:
            return  # lost, as a notice sent while the feed is down is
        for listener in self._listeners:
            listener.changed(session_id, caller, order_id)
        for signal in self._watchers.get(session_id, ()):
            signal.set()
        if event is not None:
            for signal in self._feeds.get(caller, ()):
                signal.set()

    def disconnect(self) -> None:
        """The feed's connection drops: listeners hear nothing until `reconnect`, and every
        watcher wakes to read its session again."""
        self._connected = False
        for listener in self._listeners:
            listener.disconnected()
        self._wake_all()

    def reconnect(self) -> None:
        """Back: listeners hear again, every watcher reads its session once more and every
        feed reader its caller's feed (the change feed wakes only those then)."""
        self._connected = True
        for listener in self._listeners:
            listener.connected()
        self._wake_all()
        for readers in self._feeds.values():
            for signal in readers:
                signal.set()

    def _wake_all(self) -> None:
        for watchers in self._watchers.values():
            for signal in watchers:
                signal.set()

    def watchers(self, session_id: str) -> int:
        return len(self._watchers.get(session_id, ()))

    def feed_readers(self, caller: str) -> int:
        return len(self._feeds.get(caller, ()))


class IntegrityError(Exception):
    """A write Postgres would refuse with a constraint violation: a bug in the caller."""


@dataclass(slots=True)
class _Row:
    """One row of `checkout_sessions`, as stored."""

    id: int
    caller: str
    order_id: str
    state: LedgerState
    progress: Progress
    fingerprint: str
    idempotency_key: str
    stripe_params: dict[str, Any]
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    session_id: str | None = None
    snapshot: dict[str, Any] | None = None
    async_payment_failed: bool = False
    sweep_attempts: int = 0
    next_sweep_at: datetime | None = None
    missing_at_stripe: bool = False
    payment: dict[str, Any] | None = None

    def entry(self) -> LedgerEntry:
        return LedgerEntry(
            row_id=self.id,
            caller=self.caller,
            order_id=self.order_id,
            state=self.state,
            fingerprint=self.fingerprint,
            idempotency_key=self.idempotency_key,
            stripe_params=_jsonb(self.stripe_params),
            created_at=self.created_at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
            session_id=self.session_id,
            snapshot=None if self.snapshot is None else SessionSnapshot.from_json(self.snapshot),
            async_payment_failed=self.async_payment_failed,
            sweep_attempts=self.sweep_attempts,
            missing_at_stripe=self.missing_at_stripe,
            payment=None if self.payment is None else PaymentSnapshot.from_json(self.payment),
        )


class InMemoryLedger:
    """SessionLedger with PostgresLedger's semantics (see the module's docstring)."""

    def __init__(self, clock: Clock, changes: InMemoryChanges | None = None) -> None:
        self._clock = clock
        self._changes = changes
        self._rows: dict[int, _Row] = {}
        self._ids = itertools.count(1)
        self._requests: dict[tuple[str, str], RequestRecord] = {}
        """By (caller, request_id), the primary key of `create_requests`."""
        self._events: dict[str, StripeEvent | PaymentEvent] = {}
        self._last_stamp: datetime | None = None
        self._watermarks: dict[str, int] = {}
        self._feed: list[FeedEvent] = []
        """Every caller's events, in feed order."""
        self._txids = itertools.count(1)
        self._running: list[int] = []
        """Transaction ids of `running_transaction`s: the horizon is the oldest."""
        self._pruned: dict[str, FeedPosition] = {}
        self.feed_reads = 0
        """How many times `read_feed` was asked."""

    # -- the port --

    async def claim(
        self, *, caller: str, order_id: str, fingerprint: str, attempt: Callable[[], Attempt]
    ) -> Claim:
        holder = self._holder(caller, order_id)
        if holder is not None:
            return Claim(won=False, entry=holder.entry())
        new = attempt()
        if any(row.idempotency_key == new.idempotency_key for row in self._rows.values()):
            raise IntegrityError(f"idempotency key {new.idempotency_key} is already stored")
        stamp = self._stamp()
        row = _Row(
            id=next(self._ids),
            caller=caller,
            order_id=order_id,
            state=LedgerState.PENDING,
            progress=Progress.PENDING,
            fingerprint=fingerprint,
            idempotency_key=new.idempotency_key,
            stripe_params=_jsonb(dict(new.stripe_params)),
            expires_at=new.expires_at,
            created_at=stamp,
            updated_at=stamp,
        )
        self._rows[row.id] = row
        return Claim(won=True, entry=row.entry())

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        return self._record(row_id, snapshot, payment_failed=False)

    async def discard_pending(self, row_id: int) -> None:
        row = self._rows.get(row_id)
        if row is None or row.state != LedgerState.PENDING:
            return
        del self._rows[row_id]
        for key, record in list(self._requests.items()):
            if record.row_id == row_id:
                del self._requests[key]

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        row = next((r for r in self._rows.values() if r.session_id == session_id), None)
        return None if row is None else row.entry()

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        wanted = set(session_ids)
        return {
            row.session_id: row.entry()
            for row in self._rows.values()
            if row.session_id is not None and row.session_id in wanted
        }

    async def by_row_id(self, row_id: int) -> LedgerEntry:
        row = self._rows.get(row_id)
        if row is None:
            raise AttemptDropped(f"ledger row {row_id} is gone")
        return row.entry()

    async def active_or_latest(self, caller: str, order_id: str) -> LedgerEntry | None:
        rows = self._order(caller, order_id)
        if not rows:
            return None
        return max(rows, key=lambda row: (row.state in ACTIVE_STATES, *_newest(row))).entry()

    async def list_for_order(
        self, caller: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        rows = [
            row
            for row in self._order(caller, order_id)
            if row.session_id is not None and (after is None or _newest(row) < after)
        ]
        rows.sort(key=_newest, reverse=True)
        return [row.entry() for row in rows[:limit]]

    async def find_request(self, caller: str, request_id: str) -> RequestRecord | None:
        return self._requests.get((caller, request_id))

    async def has_pending(self, order_id: str) -> bool:
        return any(
            r.order_id == order_id and r.state == LedgerState.PENDING for r in self._rows.values()
        )

    async def knows_order(self, order_id: str) -> bool:
        return any(row.order_id == order_id for row in self._rows.values())

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        if event.id in self._events:
            return False
        # One transaction: if the write fails, the event is not recorded either.
        self._record(row_id, snapshot, payment_failed=payment_failed)
        self._events[event.id] = event
        return True

    async def skip_event(self, event: StripeEvent) -> bool:
        if event.id in self._events:
            return False
        self._events[event.id] = event
        return True

    async def adopt(
        self,
        *,
        caller: str,
        order_id: str,
        fingerprint: str,
        stripe_params: Mapping[str, Any],
        snapshot: SessionSnapshot,
    ) -> Claim:
        own = next((r for r in self._rows.values() if r.session_id == snapshot.id), None)
        if own is not None:
            return Claim(won=True, entry=own.entry())
        state = ledger_state(snapshot)
        holder = self._holder(caller, order_id)
        if holder is not None:
            return Claim(won=False, entry=holder.entry())
        stamp = self._stamp()
        row = _Row(
            id=next(self._ids),
            caller=caller,
            order_id=order_id,
            state=state,
            progress=progress_of(state, snapshot.payment_status),
            fingerprint=fingerprint,
            idempotency_key=f"adopted-{snapshot.id}",
            stripe_params=_jsonb(dict(stripe_params)),
            expires_at=datetime.fromtimestamp(snapshot.expires_at, UTC),
            created_at=stamp,
            updated_at=stamp,
            session_id=snapshot.id,
            snapshot=_jsonb(snapshot.to_json()),
        )
        self._rows[row.id] = row
        event = self._write_event(row, None)
        if self._changes is not None:
            self._changes.notify(snapshot.id, caller, order_id, event=event)
        return Claim(won=True, entry=row.entry())

    async def event_seen(self, event_id: str) -> bool:
        return event_id in self._events

    async def oldest_pending(self) -> datetime | None:
        pending = [r.updated_at for r in self._rows.values() if r.state == LedgerState.PENDING]
        return min(pending, default=None)

    async def watermark(self, name: str) -> int | None:
        return self._watermarks.get(name)

    async def advance_watermark(self, name: str, to: int) -> None:
        self._watermarks[name] = to

    async def needing_reconciliation(
        self, *, pending_before: datetime, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        def lagging(row: _Row) -> bool:
            if row.state == LedgerState.PENDING:
                return row.updated_at < pending_before
            if row.state == LedgerState.OPEN:
                return row.expires_at < now or row.updated_at < quiet_since
            if row.state == LedgerState.COMPLETE:
                return (
                    row.progress < Progress.SETTLED
                    and not row.async_payment_failed
                    and row.updated_at < quiet_since
                )
            return False

        def due(row: _Row) -> bool:
            return row.next_sweep_at is None or row.next_sweep_at <= now

        # ORDER BY coalesce(next_sweep_at, updated_at); Postgres leaves ties in any order, the
        # row id fixes one here.
        rows = sorted(
            (row for row in self._rows.values() if lagging(row) and due(row)),
            key=lambda row: (row.next_sweep_at or row.updated_at, row.id),
        )
        return [row.entry() for row in rows[:limit]]

    async def replace_key(self, row_id: int, *, old_key: str, new_key: str) -> LedgerEntry:
        row = self._rows.get(row_id)
        if row is None:
            raise AttemptDropped(f"ledger row {row_id} is gone")
        if row.state == LedgerState.PENDING and row.idempotency_key == old_key:
            row.idempotency_key = new_key
            row.updated_at = self._stamp()
        return row.entry()

    async def schedule_sweep(self, row_id: int, *, at: datetime, failed: bool) -> None:
        row = self._rows.get(row_id)
        if row is not None:
            row.next_sweep_at = at
            row.sweep_attempts = row.sweep_attempts + 1 if failed else 0

    async def end_missing(self, row_id: int) -> LedgerEntry | None:
        row = self._rows.get(row_id)
        if row is None or row.state != LedgerState.OPEN:
            return None
        before = _announced(row)
        row.state, row.progress = LedgerState.EXPIRED, Progress.CLOSED
        row.missing_at_stripe = True
        row.updated_at = self._stamp()
        event = self._write_event(row, before)
        if row.session_id is not None and self._changes is not None:
            self._changes.notify(row.session_id, row.caller, row.order_id, event=event)
        return row.entry()

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        # ON CONFLICT finds a stored id before the foreign key is checked.
        key = (record.caller, record.request_id)
        if key in self._requests:
            return self._requests[key]
        if record.row_id not in self._rows:
            raise IntegrityError(f"request {record.request_id} names no ledger row")
        self._requests[key] = record
        return record

    async def read_feed(
        self, caller: str, after: FeedPosition, *, limit: int, types: Collection[str] = ()
    ) -> FeedRead:
        self.feed_reads += 1
        horizon = min(self._running, default=None)
        mine = [e for e in self._feed if e.caller == caller]
        below = [e for e in mine if horizon is None or e.position.txid < horizon]
        page = [e for e in below if e.position > after and (not types or e.type in types)]
        return FeedRead(
            events=tuple(page[:limit]),
            tail=below[-1].position if below else None,
            held_back=len(below) < len(mine),
            pruned_through=self._pruned.get(caller),
            after_found=any(e.position == after for e in mine),
        )

    async def feed_position_at_or_before(
        self, caller: str, position: FeedPosition
    ) -> FeedPosition | None:
        horizon = min(self._running, default=None)
        found = [
            e.position
            for e in self._feed
            if e.caller == caller
            and e.position <= position
            and e.position.written_at <= position.written_at
            and (horizon is None or e.position.txid < horizon)
        ]
        return found[-1] if found else None

    async def prune_feed(self, *, created_before: datetime, limit: int) -> int:
        oldest = self._feed[:limit]
        doomed = list(itertools.takewhile(lambda e: e.created_at < created_before, oldest))
        del self._feed[: len(doomed)]
        for event in doomed:
            self._pruned[event.caller] = max(
                self._pruned.get(event.caller, event.position), event.position
            )
        return len(doomed)

    # -- for tests to look at --

    @contextmanager
    def running_transaction(self) -> Iterator[None]:
        """A transaction that took its id now and is still running: the events written
        meanwhile are held back (above the horizon) until it ends."""
        txid = next(self._txids)
        self._running.append(txid)
        try:
            yield
        finally:
            self._running.remove(txid)

    @property
    def feed(self) -> list[FeedEvent]:
        """Every caller's events, in feed order."""
        return list(self._feed)

    def lose_last_events(self, count: int) -> None:
        """A failover to a standby that had not received the last `count` events: they are
        gone, and their transaction ids are handed out again."""
        lost = self._feed[-count:]
        del self._feed[-count:]
        self._txids = itertools.count(lost[0].position.txid)

    def forget(self, row_id: int) -> None:
        """Drop a row as if it never was (a test's way to make an orphan at Stripe)."""
        del self._rows[row_id]

    def entries(self, order_id: str | None = None) -> list[LedgerEntry]:
        """Rows in insertion order, all of them or one order's."""
        return [
            row.entry()
            for row in sorted(self._rows.values(), key=lambda row: row.id)
            if order_id is None or row.order_id == order_id
        ]

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self._requests.values())

    @property
    def event_ids(self) -> frozenset[str]:
        return frozenset(self._events)

    # -- internals --

    def _order(self, caller: str, order_id: str) -> list[_Row]:
        return [
            row for row in self._rows.values() if (row.caller, row.order_id) == (caller, order_id)
        ]

    def _holder(self, caller: str, order_id: str) -> _Row | None:
        """The row the unique index `checkout_sessions_one_holder_per_order` allows one of."""
        return next(
            (
                row
                for row in self._order(caller, order_id)
                if holds_order(row.state, row.async_payment_failed)
            ),
            None,
        )

    def _stamp(self) -> datetime:
        """clock_timestamp(): the clock's time, strictly later than any stamp before it."""
        stamp = self._clock.now()
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = stamp
        return stamp

    def _record(
        self, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> LedgerEntry:
        row = self._rows.get(row_id)
        if row is None or not may_store(
            snapshot, session_id=row.session_id, caller=row.caller, order_id=row.order_id
        ):
            raise AttemptDropped(f"ledger row {row_id} is gone")
        state = ledger_state(snapshot)
        rank = progress_of(state, snapshot.payment_status)
        stored = _jsonb(snapshot.to_json())
        changed = (
            row.snapshot != stored
            or row.state != state
            or (not row.async_payment_failed and payment_failed)
        )
        if row.progress > rank or not changed:
            return row.entry()
        if any(r.session_id == snapshot.id and r.id != row_id for r in self._rows.values()):
            raise IntegrityError(f"session {snapshot.id} is already stored on another row")
        before = _announced(row)
        row.state = state
        row.progress = rank
        row.session_id = snapshot.id
        row.snapshot = stored
        row.expires_at = datetime.fromtimestamp(snapshot.expires_at, UTC)
        row.async_payment_failed = row.async_payment_failed or payment_failed
        row.updated_at = self._stamp()
        event = self._write_event(row, before)
        if self._changes is not None:
            self._changes.notify(snapshot.id, row.caller, row.order_id, event=event)
        return row.entry()

    def _write_event(self, row: _Row, before: EventType | None) -> str | None:
        """The event the change of `row` from announcing `before` causes, written to the feed
        with a new transaction id, as PostgresLedger's statement does; its type, or None."""
        event = event_for(before, _announced(row))
        if event is None:
            return None
        self._feed.append(
            FeedEvent(
                position=FeedPosition(next(self._txids), uuid4(), row.updated_at),
                type=event,
                caller=row.caller,
                order_id=row.order_id,
                session=replace(row.entry(), stripe_params={}),
            )
        )
        return event

    def _write_payment_events(
        self, row: _Row, events: Collection[PaymentAnnouncement]
    ) -> str | None:
        """The events a payment's write decided, written to the feed in their order under one
        new transaction id, as PostgresPayments' statement does; one of their types, or None."""
        txid = next(self._txids)
        for event_id, event in zip(sorted(uuid4() for _ in events), events, strict=True):
            self._feed.append(
                FeedEvent(
                    position=FeedPosition(txid, event_id, row.updated_at),
                    type=event.type,
                    caller=row.caller,
                    order_id=row.order_id,
                    session=replace(row.entry(), stripe_params={}),
                    refund_id=event.refund_id,
                )
            )
        return max((event.type for event in events), default=None)


def _announced(row: _Row) -> EventType | None:
    payment_status = None if row.snapshot is None else row.snapshot.get("payment_status")
    return announced(row.state, payment_status, row.async_payment_failed)


def _newest(row: _Row) -> tuple[datetime, int]:
    return (row.created_at, row.id)


@dataclass(slots=True)
class _PaymentRow:
    """One row of `payments`."""

    payment_intent_id: str
    captured: int
    refunded_elsewhere: int
    settled: bool
    next_sweep_at: datetime | None
    updated_at: datetime
    reserved: int = 0
    version: int = 0


class InMemoryPayments:
    """PaymentLedger with PostgresPayments' semantics (service/store/payment_ledger.py and
    migration 0005), over an InMemoryLedger's rows: a payment's write changes its session's row
    (`payment`, `updated_at`) and notifies, as the SQL does; a refund is reserved with its
    operation, never beyond what was captured (the CHECK raises IntegrityError); a write whose
    version moved on is stale. Each method runs without awaiting, so it is atomic like the
    transaction it stands for."""

    def __init__(self, ledger: InMemoryLedger) -> None:
        self._ledger = ledger
        self._payments: dict[int, _PaymentRow] = {}
        self._operations: dict[int, PaymentOperation] = {}
        self._next_sweep: dict[int, datetime] = {}
        """`payment_operations.next_sweep_at`, by operation."""
        self._ids = itertools.count(1)

    async def payment(self, session_row: int) -> PaymentRecord | None:
        found = self._payments.get(session_row)
        if found is None:
            return None
        row = self._ledger._rows[session_row]
        assert row.payment is not None
        return PaymentRecord(
            session_row=session_row,
            payment_intent_id=found.payment_intent_id,
            snapshot=PaymentSnapshot.from_json(row.payment),
            captured=found.captured,
            reserved=found.reserved,
            refunded_elsewhere=found.refunded_elsewhere,
            version=found.version,
        )

    async def session_by_payment_intent(self, payment_intent_id: str) -> LedgerEntry | None:
        row = next(
            (
                r
                for r in self._ledger._rows.values()
                if r.snapshot is not None and r.snapshot["payment_intent_id"] == payment_intent_id
            ),
            None,
        )
        return None if row is None else row.entry()

    async def record_payment(
        self,
        session_row: int,
        snapshot: PaymentSnapshot,
        *,
        seen: int | None,
        settlements: Collection[Settlement] = (),
        event: PaymentEvent | None = None,
    ) -> PaymentWrite:
        row = self._ledger._rows.get(session_row)
        if row is None:
            raise AttemptDropped(f"ledger row {session_row} is gone")
        if event is not None and event.id in self._ledger._events:
            return PaymentWrite(WriteOutcome.DUPLICATE)
        found = self._payments.get(session_row)
        if (None if found is None else found.version) != seen:
            return PaymentWrite(WriteOutcome.STALE)
        if event is not None:
            self._ledger._events[event.id] = event
        moved, released = self._settle(session_row, settlements)
        stored = _jsonb(snapshot.to_json())
        if found is not None and not moved and row.payment == stored:
            return PaymentWrite(WriteOutcome.WRITTEN, row.entry())
        was = None if row.payment is None else PaymentSnapshot.from_json(row.payment)
        self._store(session_row, found, snapshot, released)
        if row.payment != stored:
            row.payment = stored
            row.updated_at = self._ledger._stamp()
            written = self._ledger._write_payment_events(row, payment_events(was, snapshot))
            self._notify(row, written)
        return PaymentWrite(WriteOutcome.WRITTEN, row.entry())

    async def skip_payment_event(self, event: PaymentEvent) -> bool:
        if event.id in self._ledger._events:
            return False
        self._ledger._events[event.id] = event
        return True

    async def payments_to_check(
        self, *, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        def turn(row: _Row) -> datetime | None:
            found = self._payments.get(row.id)
            if found is None:
                missing = (
                    row.state == LedgerState.COMPLETE
                    and row.snapshot is not None
                    and row.snapshot["mode"] == "payment"
                    and row.snapshot["payment_intent_id"] is not None
                    and now - timedelta(days=30) <= row.updated_at < quiet_since
                )
                return row.updated_at if missing else None
            if found.settled:
                return None
            if found.next_sweep_at is not None:
                return found.next_sweep_at if found.next_sweep_at <= now else None
            return found.updated_at if found.updated_at < quiet_since else None

        due = [(when, row.id) for row in self._ledger._rows.values() if (when := turn(row))]
        return [self._ledger._rows[row_id].entry() for _, row_id in sorted(due)[:limit]]

    async def schedule_payment_check(self, session_row: int, *, at: datetime) -> None:
        found = self._payments.get(session_row)
        if found is not None:
            found.next_sweep_at = at

    async def operation(self, caller: str, request_id: str) -> PaymentOperation | None:
        return next(
            (
                op
                for op in self._operations.values()
                if (op.caller, op.request_id) == (caller, request_id)
            ),
            None,
        )

    async def operations(self, session_row: int) -> list[PaymentOperation]:
        return [op for _, op in sorted(self._operations.items()) if op.session_row == session_row]

    async def start_operation(self, new: NewOperation) -> OperationClaim:
        payment = self._payments.get(new.session_row)
        if payment is None:
            raise AttemptDropped(f"the payment of ledger row {new.session_row} is not stored")
        named = await self.operation(new.caller, new.request_id)
        if named is not None:
            return OperationClaim(won=False, operation=named)
        if new.kind == OperationKind.REFUND:
            refundable = payment.captured - payment.reserved - payment.refunded_elsewhere
            if new.amount > refundable:
                return OperationClaim(won=False, refundable=max(0, refundable))
        else:
            blocking = next(
                (
                    op
                    for _, op in sorted(self._operations.items())
                    if op.session_row == new.session_row
                    and op.kind != OperationKind.REFUND
                    and op.state != OperationState.FAILED
                ),
                None,
            )
            if blocking is not None:
                return OperationClaim(won=False, blocking=blocking)
        if any(op.idempotency_key == new.idempotency_key for op in self._operations.values()):
            raise IntegrityError(f"idempotency key {new.idempotency_key} is already stored")
        stamp = self._ledger._stamp()
        op = PaymentOperation(
            op_id=next(self._ids),
            **{name: getattr(new, name) for name in _NEW_OPERATION_FIELDS},
            state=OperationState.PENDING,
            created_at=stamp,
            updated_at=stamp,
        )
        self._operations[op.op_id] = op
        if new.kind == OperationKind.REFUND:
            self._reserve(payment, new.amount)
        return OperationClaim(won=True, operation=op)

    async def finish_operation(
        self,
        op_id: int,
        *,
        state: OperationState,
        refund_id: str | None = None,
        failure: Failure | None = None,
    ) -> PaymentOperation:
        op = self._operations.get(op_id)
        if op is None:
            raise AttemptDropped(f"operation {op_id} is gone")
        if op.state != OperationState.PENDING:
            return op
        op = self._move(op, state, refund_id)
        op = self._operations[op_id] = replace(op, failure=failure)
        return op

    async def replace_operation_key(
        self, op_id: int, *, old_key: str, new_key: str
    ) -> PaymentOperation:
        op = self._operations.get(op_id)
        if op is None:
            raise AttemptDropped(f"operation {op_id} is gone")
        if op.state == OperationState.PENDING and op.idempotency_key == old_key:
            op = self._operations[op_id] = replace(
                op, idempotency_key=new_key, updated_at=self._ledger._stamp()
            )
        return op

    async def operations_to_resume(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[PaymentOperation]:
        due = [
            op
            for op in self._operations.values()
            if op.state == OperationState.PENDING
            and op.updated_at < before
            and (self._next_sweep.get(op.op_id) is None or self._next_sweep[op.op_id] <= now)
        ]
        due.sort(key=lambda op: (self._next_sweep.get(op.op_id) or op.updated_at, op.op_id))
        return due[:limit]

    async def schedule_operation(self, op_id: int, *, at: datetime, failed: bool) -> None:
        op = self._operations.get(op_id)
        if op is not None:
            self._next_sweep[op_id] = at
            attempts = op.sweep_attempts + 1 if failed else 0
            self._operations[op_id] = replace(op, sweep_attempts=attempts)

    # -- internals --

    def _settle(self, session_row: int, settlements: Collection[Settlement]) -> tuple[int, int]:
        moved = released = 0
        for settled in settlements:
            op = self._operations.get(settled.op_id)
            if op is None or op.session_row != session_row or op.state != settled.was:
                continue
            moved += 1
            if op.kind == OperationKind.REFUND and settled.state == OperationState.FAILED:
                released += op.amount
            self._operations[op.op_id] = replace(
                op,
                state=settled.state,
                refund_id=settled.refund_id or op.refund_id,
                updated_at=self._ledger._stamp(),
            )
        return moved, released

    def _move(
        self, op: PaymentOperation, state: OperationState, refund_id: str | None
    ) -> PaymentOperation:
        if op.kind == OperationKind.REFUND and state == OperationState.FAILED:
            self._reserve(self._payments[op.session_row], -op.amount)
        moved = replace(
            op, state=state, refund_id=refund_id or op.refund_id, updated_at=self._ledger._stamp()
        )
        self._operations[op.op_id] = moved
        return moved

    def _store(
        self,
        session_row: int,
        found: _PaymentRow | None,
        snapshot: PaymentSnapshot,
        released: int,
    ) -> None:
        captured_before = 0 if found is None else found.captured
        if found is not None and found.reserved - released > max(
            captured_before, snapshot.amount_captured
        ):
            raise IntegrityError("payments_refunds_within_capture")
        next_look = (
            datetime.fromtimestamp(snapshot.capture_before, UTC)
            if snapshot.status == IntentStatus.REQUIRES_CAPTURE
            and snapshot.capture_before is not None
            else None
        )
        self._payments[session_row] = _PaymentRow(
            payment_intent_id=snapshot.id,
            captured=max(captured_before, snapshot.amount_captured),
            refunded_elsewhere=snapshot.refunded_elsewhere,
            settled=snapshot.settled,
            next_sweep_at=next_look,
            updated_at=self._ledger._stamp(),
            reserved=0 if found is None else found.reserved - released,
            version=0 if found is None else found.version + 1,
        )

    def _reserve(self, payment: _PaymentRow, amount: int) -> None:
        if not 0 <= payment.reserved + amount <= payment.captured:
            raise IntegrityError("payments_refunds_within_capture")
        payment.reserved += amount

    def _notify(self, row: _Row, event: str | None) -> None:
        if row.session_id is not None and self._ledger._changes is not None:
            self._ledger._changes.notify(row.session_id, row.caller, row.order_id, event=event)


_NEW_OPERATION_FIELDS = (
    "session_row",
    "caller",
    "request_id",
    "kind",
    "fingerprint",
    "amount",
    "reason",
    "idempotency_key",
)


Operation = Literal["create_session", "retrieve_session", "expire_session"]


@dataclass(frozen=True, slots=True)
class StripeCall:
    """One call the service made to Stripe, whatever its outcome."""

    operation: Operation
    session_id: str | None = None
    idempotency_key: str | None = None
    params: Mapping[str, Any] | None = None


@dataclass(slots=True)
class Hold:
    """A call held after Stripe acted and before its answer reaches the caller."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class _Fault:
    error: CheckoutError
    after_acting: bool


@dataclass(frozen=True, slots=True)
class _Saved:
    """A response Stripe saved under an idempotency key."""

    request: Any
    outcome: SessionSnapshot | UpstreamRejected


class IdempotencyKeyReused(Exception):
    """Stripe's `idempotency_error`: a key sent again with other parameters. The gateway lets
    it through untranslated, as a bug."""


class FakeStripe:
    """PaymentGateway with Stripe's behaviour (see the module's docstring)."""

    def __init__(self, clock: Clock, *, prices: Mapping[str, int] | None = None) -> None:
        self._clock = clock
        self._prices = dict(prices or {})
        """Known price ids and their unit amounts; any other price id is `resource_missing`."""
        self._sessions: dict[str, SessionSnapshot] = {}
        self._saved: dict[str, _Saved] = {}
        self._faults: defaultdict[Operation, deque[_Fault]] = defaultdict(deque)
        self._holds: defaultdict[Operation, deque[Hold]] = defaultdict(deque)
        self._session_ids = (f"cs_test_fake{n:04d}" for n in itertools.count(1))
        self._object_ids = itertools.count(1)
        self._request_ids = (f"req_fake{n:04d}" for n in itertools.count(1))
        self.calls: list[StripeCall] = []
        self.events: list[StripeEvent | PaymentEvent] = []
        self._spent: set[str] = set()
        """What `/v1/events` lists: a test appends the events Stripe made."""

    # -- the port --

    async def create_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> SessionSnapshot:
        body = _jsonb(dict(params))
        self.calls.append(
            StripeCall("create_session", idempotency_key=idempotency_key, params=body)
        )
        if idempotency_key in self._spent:
            raise IdempotencyKeySpent("Stripe replays a saved failure for this attempt")
        fault = self._fault_before("create_session")
        request = ("create", body)
        snapshot = self._replay(idempotency_key, request)
        if snapshot is None:
            snapshot = self._new_session(body)
            self._saved[idempotency_key] = _Saved(request, snapshot)
        return await self._answer("create_session", fault, snapshot)

    async def retrieve_session(self, session_id: str) -> SessionSnapshot:
        self.calls.append(StripeCall("retrieve_session", session_id=session_id))
        fault = self._fault_before("retrieve_session")
        return await self._answer("retrieve_session", fault, self._current(session_id))

    async def expire_session(self, session_id: str, *, idempotency_key: str) -> SessionSnapshot:
        self.calls.append(
            StripeCall("expire_session", session_id=session_id, idempotency_key=idempotency_key)
        )
        fault = self._fault_before("expire_session")
        request = ("expire", session_id)
        snapshot = self._replay(idempotency_key, request)
        if snapshot is None:
            current = self._current(session_id)
            if current.status != "open":
                # Refused while executing: Stripe saves the refusal under the key.
                refusal = UpstreamRejected(
                    f"Only Checkout Sessions with a status in ['open'] can be expired; this one "
                    f"is {current.status}",
                    param=None,
                    code=None,
                    request_id=next(self._request_ids),
                )
                self._saved[idempotency_key] = _Saved(request, refusal)
                raise refusal
            snapshot = replace(current, status="expired", url=None)
            self._sessions[session_id] = snapshot
            self._saved[idempotency_key] = _Saved(request, snapshot)
        return await self._answer("expire_session", fault, snapshot)

    # -- telling it what to do --

    def refuse_next(
        self,
        operation: Operation,
        *,
        param: str | None = None,
        code: str | None = None,
        message: str = "refused",
    ) -> None:
        """The next call of `operation` is refused (a 4xx) before anything happens; a
        `resource_missing` code makes it UpstreamMissing, as the gateway does."""
        kind = UpstreamMissing if code == "resource_missing" else UpstreamRejected
        error = kind(message, param=param, code=code, request_id=next(self._request_ids))
        self._faults[operation].append(_Fault(error, after_acting=False))

    def fail_next(self, operation: Operation, *, after_acting: bool = False) -> None:
        """The next call of `operation` raises Unavailable: before Stripe saw it, or after
        Stripe acted (and saved its answer under the key), with the answer lost."""
        error = Unavailable(
            "Stripe could not be reached; the outcome is unknown, retry with the same request",
            reason="STRIPE_UNREACHABLE",
        )
        self._faults[operation].append(_Fault(error, after_acting=after_acting))

    def spend_key(self, idempotency_key: str) -> None:
        """From now on, a create with this key gets the 500 Stripe saved under it."""
        self._spent.add(idempotency_key)

    def hold_next(self, operation: Operation) -> Hold:
        """Hold the next call of `operation` after Stripe acted, until `release` is set."""
        hold = Hold()
        self._holds[operation].append(hold)
        return hold

    def complete(self, session_id: str, *, payment_status: str = PaymentStatus.PAID) -> None:
        """The customer completes the session: `paid`, or `unpaid` for a delayed payment."""
        current = self.session(session_id)
        assert current.status == "open", f"{session_id} is {current.status}"
        self._sessions[session_id] = replace(
            current,
            status="complete",
            payment_status=str(payment_status),
            url=None,
            payment_intent_id=f"pi_fake{next(self._object_ids):04d}",
        )

    def settle(self, session_id: str, *, succeeded: bool) -> None:
        """A delayed payment arrives, or fails (then the session stays complete and unpaid)."""
        current = self.session(session_id)
        assert current.status == "complete", f"{session_id} is {current.status}"
        assert current.payment_status == PaymentStatus.UNPAID
        if succeeded:
            self._sessions[session_id] = replace(current, payment_status=PaymentStatus.PAID.value)

    def expire_now(self, session_id: str) -> None:
        """Stripe expires the session on its own (or someone does in the dashboard)."""
        current = self.session(session_id)
        assert current.status == "open", f"{session_id} is {current.status}"
        self._sessions[session_id] = replace(current, status="expired", url=None)

    def forget(self, session_id: str) -> None:
        """Stripe no longer knows the session (another account or key): reads are a 404."""
        del self._sessions[session_id]

    def recover(self, session_id: str) -> str:
        """The customer opens an expired session's recovery URL: Stripe makes an open copy of
        it (its metadata, the order id, included) naming it in `recovered_from`."""
        expired = self.session(session_id)
        assert expired.status == "expired", f"{session_id} is {expired.status}"
        copy_id = next(self._session_ids)
        created = int(self._clock.now().timestamp())
        self._sessions[copy_id] = replace(
            expired,
            id=copy_id,
            status="open",
            created=created,
            expires_at=created + 24 * 3600,
            url=f"https://checkout.stripe.test/c/pay/{copy_id}",
            recovered_from=session_id,
        )
        return copy_id

    def forget_metadata(self, session_id: str, key: str) -> None:
        """As if the session had been made without `key` in its metadata (by a release of the
        service that did not set it, or by another integration)."""
        session = self.session(session_id)
        metadata = {k: v for k, v in session.metadata.items() if k != key}
        self._sessions[session_id] = replace(session, metadata=metadata)

    # -- for tests to look at --

    async def open_sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        found = await self.sessions(created_since=created_since, created_before=created_before)
        return [s for s in found if s.status == "open"]

    async def sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        self._lapse_due()
        return [
            s
            for s in self._sessions.values()
            if s.created >= created_since and (created_before is None or s.created < created_before)
        ]

    async def session_events(
        self, types: Collection[str], *, created_since: int
    ) -> list[StripeEvent | PaymentEvent]:
        return sorted(
            (e for e in self.events if e.type in types and e.created >= created_since),
            key=lambda e: e.created,
        )

    def session(self, session_id: str) -> SessionSnapshot:
        self._lapse_due()
        return self._sessions[session_id]

    def sessions_for(self, order_id: str) -> list[SessionSnapshot]:
        self._lapse_due()
        return [s for s in self._sessions.values() if s.metadata.get("order_id") == order_id]

    def operations(self) -> list[Operation]:
        return [call.operation for call in self.calls]

    # -- internals --

    def _fault_before(self, operation: Operation) -> _Fault | None:
        faults = self._faults[operation]
        fault = faults.popleft() if faults else None
        if fault is not None and not fault.after_acting:
            raise fault.error
        return fault

    async def _answer(
        self, operation: Operation, fault: _Fault | None, snapshot: SessionSnapshot
    ) -> SessionSnapshot:
        if fault is not None:
            raise fault.error
        holds = self._holds[operation]
        if holds:
            hold = holds.popleft()
            hold.reached.set()
            await hold.release.wait()
        return snapshot

    def _replay(self, key: str, request: Any) -> SessionSnapshot | None:
        saved = self._saved.get(key)
        if saved is None:
            return None
        if saved.request != request:
            raise IdempotencyKeyReused(f"idempotency key {key} was used with other parameters")
        if isinstance(saved.outcome, UpstreamRejected):
            raise saved.outcome
        return saved.outcome

    def _current(self, session_id: str) -> SessionSnapshot:
        self._lapse_due()
        snapshot = self._sessions.get(session_id)
        if snapshot is None:
            raise UpstreamMissing(
                f"No such checkout.session: '{session_id}'",
                param="session",
                code="resource_missing",
                request_id=next(self._request_ids),
            )
        return snapshot

    def _lapse_due(self) -> None:
        now = self._clock.now().timestamp()
        for session_id, snapshot in list(self._sessions.items()):
            if snapshot.status == "open" and snapshot.expires_at <= now:
                self._sessions[session_id] = replace(snapshot, status="expired", url=None)

    def _new_session(self, params: Mapping[str, Any]) -> SessionSnapshot:
        currency = params.get("currency")
        line_items = tuple(
            self._line_item(index, item, currency)
            for index, item in enumerate(params.get("line_items", ()))
        )
        session_id = next(self._session_ids)
        hosted = params.get("ui_mode", "hosted_page") == "hosted_page"
        created = int(self._clock.now().timestamp())
        total = sum(item.amount_total for item in line_items)
        snapshot = SessionSnapshot(
            id=session_id,
            mode=params["mode"],
            ui_mode=params.get("ui_mode", "hosted_page"),
            status="open",
            payment_status=PaymentStatus.UNPAID.value,
            currency=currency,
            amount_subtotal=total,
            amount_total=total,
            amount_discount=0,
            amount_shipping=0,
            amount_tax=0,
            livemode=False,
            created=created,
            expires_at=params.get("expires_at", created + 24 * 3600),
            url=f"https://checkout.stripe.test/c/pay/{session_id}" if hosted else None,
            client_secret=None if hosted else f"{session_id}_secret_fake",
            customer_email=params.get("customer_email"),
            metadata=dict(params.get("metadata", {})),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            return_url=params.get("return_url"),
            line_items=line_items,
        )
        self._sessions[session_id] = snapshot
        return snapshot

    def _line_item(
        self, index: int, item: Mapping[str, Any], currency: str | None
    ) -> LineItemSnapshot:
        quantity = int(item["quantity"])
        if "price_data" in item:
            price_id = f"price_fake{next(self._object_ids):04d}"
            unit_amount = int(item["price_data"]["unit_amount"])
            description = str(item["price_data"]["product_data"]["name"])
        else:
            price_id = str(item["price"])
            if price_id not in self._prices:
                raise UpstreamMissing(
                    f"No such price: '{price_id}'",
                    param=f"line_items[{index}][price]",
                    code="resource_missing",
                    request_id=next(self._request_ids),
                )
            unit_amount = self._prices[price_id]
            description = price_id
        amount = unit_amount * quantity
        return LineItemSnapshot(
            id=f"li_fake{next(self._object_ids):04d}",
            description=description,
            quantity=quantity,
            price_id=price_id,
            currency=currency or "",
            unit_amount=unit_amount,
            amount_subtotal=amount,
            amount_discount=0,
            amount_tax=0,
            amount_total=amount,
        )


if TYPE_CHECKING:

    def _implements_the_ports(
        ledger: InMemoryLedger, stripe: FakeStripe, changes: InMemoryChanges, clock: FakeClock
    ) -> tuple[SessionLedger, PaymentGateway, SessionChanges, Clock]:
        return ledger, stripe, changes, clock

    def _implements_the_payment_port(payments: InMemoryPayments) -> PaymentLedger:
        return payments
