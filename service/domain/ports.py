"""The outside systems the domain needs, as small interfaces. Adapters implement them and are
wired in service/app.py."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from service.domain.model import (
    Attempt,
    Claim,
    FeedPosition,
    FeedRead,
    LedgerEntry,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
)
from service.domain.payment_model import (
    Failure,
    NewOperation,
    Operation,
    OperationClaim,
    OperationState,
    PaymentEvent,
    PaymentRecord,
    PaymentSnapshot,
    PaymentWrite,
    RefundSnapshot,
    Settlement,
)


class PaymentGateway(Protocol):
    """Stripe. Raises UpstreamRejected on a definite refusal (UpstreamMissing when the object
    does not exist at Stripe), StripeMisconfigured when Stripe refuses our key, and Unavailable
    when the outcome is unknown (timeout, connection lost, 5xx, rate limit)."""

    async def create_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> SessionSnapshot: ...

    async def retrieve_session(self, session_id: str) -> SessionSnapshot: ...

    async def expire_session(self, session_id: str, *, idempotency_key: str) -> SessionSnapshot: ...

    async def open_sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        """Every open session created since a Unix time (and before another), this service's
        and others'."""
        ...

    async def sessions(
        self, *, created_since: int, created_before: int | None = None
    ) -> list[SessionSnapshot]:
        """Every session created since a Unix time (and before another), open, complete or
        expired, this service's and others'."""
        ...

    async def session_events(
        self, types: Collection[str], *, created_since: int
    ) -> list[StripeEvent | PaymentEvent]:
        """Events of these types since a Unix time, oldest first: about Checkout Sessions, and
        about payments after checkout."""
        ...


class MoneyGateway(Protocol):
    """Stripe, for the money after checkout; raises as PaymentGateway does. Each answers the
    payment as it is after the call: the PaymentIntent with its latest charge, the charge's
    refunds and, if the charge is disputed, its dispute."""

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentSnapshot: ...

    async def capture_payment(
        self, payment_intent_id: str, *, amount: int, idempotency_key: str
    ) -> PaymentSnapshot: ...

    async def cancel_payment(
        self, payment_intent_id: str, *, reason: str | None, idempotency_key: str
    ) -> PaymentSnapshot: ...

    async def refund_payment(
        self,
        payment_intent_id: str,
        *,
        amount: int,
        reason: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> tuple[RefundSnapshot, PaymentSnapshot]:
        """The refund made, and the payment with it."""
        ...

    async def session_of_payment_intent(self, payment_intent_id: str) -> SessionSnapshot | None:
        """The Checkout Session that made the PaymentIntent, if one did."""
        ...


class OrderLedger(Protocol):
    """What the request path (Checkout) needs of the ledger, which knows which caller's order
    owns which session: claims, the sessions they lead to, and the request ids that name them.
    Raises domain Unavailable when the database cannot be reached."""

    async def claim(
        self, *, caller: str, order_id: str, fingerprint: str, attempt: Callable[[], Attempt]
    ) -> Claim:
        """Insert a pending row for the attempt unless a row already holds the caller's order
        (`model.holds_order`); return the row that holds it either way. One atomic statement:
        a payment stored concurrently cannot slip between check and insert. `attempt()` is
        called at most once, for the row to insert, and not at all when the ledger knows the
        order's holder without asking the database (CachedLedger)."""
        ...

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        """Store what Stripe said, unless the row already holds a later state (Progress) or
        exactly this (then nothing changes, `updated_at` included); notify watchers of a change.
        Raises AttemptDropped if the row is gone."""
        ...

    async def replace_key(self, row_id: int, *, old_key: str, new_key: str) -> LedgerEntry:
        """Give a pending row a new idempotency key, unless it moved on (another process
        rotated it, or the session exists); the row as it is now either way. Raises
        AttemptDropped if the row is gone."""
        ...

    async def discard_pending(self, row_id: int) -> None:
        """Delete the row, and the request ids that name it, if it is still pending: its
        attempt created nothing, and its order is free again."""
        ...

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        """Any caller's: session ids are unique; the use case decides who may see it."""
        ...

    async def by_row_id(self, row_id: int) -> LedgerEntry:
        """Raises AttemptDropped if there is no such row (any more)."""
        ...

    async def active_or_latest(self, caller: str, order_id: str) -> LedgerEntry | None:
        """The order's active row if it has one, else its newest row."""
        ...

    async def list_for_order(
        self, caller: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        """Rows that have a Stripe session, newest first (by creation, then row id), strictly
        after the cursor `(created_at, row_id)`."""
        ...

    async def find_request(self, caller: str, request_id: str) -> RequestRecord | None: ...

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        """Store the record; if the caller's request id is already stored, return the stored
        one instead. A record naming no row is a bug (a foreign key)."""
        ...


class EventLedger(Protocol):
    """What applying Stripe's events needs of the ledger (webhooks, and the sweep's catch-up)."""

    async def event_seen(self, event_id: str) -> bool: ...

    async def by_session_id(self, session_id: str) -> LedgerEntry | None: ...

    async def knows_order(self, order_id: str) -> bool:
        """Whether any caller has an order with this id (an event names no caller)."""
        ...

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        """In one transaction: record the event id and store the snapshot as `record_snapshot`
        does (`payment_failed` marks the delayed payment failed). False, and nothing changed,
        if the event was recorded before."""
        ...

    async def skip_event(self, event: StripeEvent) -> bool:
        """Record an event that needs no change; False if recorded before."""
        ...

    async def adopt(
        self,
        *,
        caller: str,
        order_id: str,
        fingerprint: str,
        stripe_params: Mapping[str, Any],
        snapshot: SessionSnapshot,
    ) -> Claim:
        """Insert a row for a session that Stripe made without this service asking (the copy
        a recovery URL makes of an expired session), in the state its snapshot says, unless
        another row holds the order (`model.holds_order`); notify watchers. Won, with the new
        row, or with the session's row if it has one already; lost, with the row that holds
        the order. `stripe_params` and `fingerprint` describe the cart (the expired
        session's); nothing is ever sent with them."""
        ...


class SweepLedger(Protocol):
    """What the reconciliation sweep needs of the ledger: the rows that may lag Stripe, their
    schedule, and how far it has read Stripe's lists."""

    async def needing_reconciliation(
        self, *, pending_before: datetime, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        """Rows whose stored state may lag Stripe's and whose turn has come (`next_sweep_at`
        unset or not after `now`), soonest first (by `next_sweep_at`, else `updated_at`):
        pending since before `pending_before`, open past their expiry or unchanged since
        `quiet_since`, or complete but not settled, payment not failed, unchanged since
        `quiet_since`."""
        ...

    async def schedule_sweep(self, row_id: int, *, at: datetime, failed: bool) -> None:
        """When the sweep looks at the row next; `failed` counts a failed attempt, else the
        count starts again."""
        ...

    async def end_missing(self, row_id: int) -> LedgerEntry | None:
        """End an open row whose session Stripe no longer knows: expired, marked missing.
        None if the row was not open any more."""
        ...

    async def oldest_pending(self) -> datetime | None:
        """When the oldest row still waiting for Stripe's answer was last touched."""
        ...

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        """The rows of those of these sessions the ledger knows, by session id, in one read."""
        ...

    async def has_pending(self, order_id: str) -> bool:
        """Whether any caller's order with this id has a row still waiting for Stripe."""
        ...

    async def watermark(self, name: str) -> int | None:
        """How far (a Unix time) the sweep has read one of Stripe's lists: `events`, or
        `open_sessions`, or when its last pass ran (`last_pass`); None before the first."""
        ...

    async def advance_watermark(self, name: str, to: int) -> None: ...

    async def prune_feed(self, *, created_before: datetime, limit: int) -> int:
        """Delete at most `limit` of the oldest events of the feed (in feed order, every
        caller's), as long as they were written before `created_before`, in one short
        transaction; remember for each caller its latest event deleted (`FeedRead.
        pruned_through`). How many were deleted."""
        ...


class SyncLedger(EventLedger, SweepLedger, Protocol):
    """What StripeSync needs: events applied, and the sweep."""


class FeedLedger(Protocol):
    """What the event feed needs of the ledger: the events each write that changes what a row
    announces (outcomes.py) writes with the change, in one transaction."""

    async def read_feed(
        self, caller: str, after: FeedPosition, *, limit: int, types: Collection[str] = ()
    ) -> FeedRead:
        """Up to `limit` of the caller's events after `after`, in feed order, of `types` (every
        type if empty), and what else `FeedRead` tells, all in one snapshot. Only events that
        every later read finds too are returned: committed, and written by a transaction older
        than any still running."""
        ...

    async def feed_position_at_or_before(
        self, caller: str, position: FeedPosition
    ) -> FeedPosition | None:
        """The caller's latest event, of any type, at or before `position` and written at or
        before its `written_at`, among those every later read finds too; None if none."""
        ...


class SessionLedger(OrderLedger, SyncLedger, FeedLedger, Protocol):
    """The whole ledger, as the adapters implement it (PostgresLedger, CachedLedger, and the
    unit tests' InMemoryLedger; tests/contract/ holds all of them to these docstrings)."""


class PaymentLedger(Protocol):
    """What the money after checkout needs of the ledger: each paid session's payment, as
    Stripe last described it and as the service guards it, and the operations callers asked
    for. Every write of Stripe's view of a payment is one transaction that also moves the
    session's `updated_at` and notifies its watchers (a payment change is a session change).
    Raises domain Unavailable when the database cannot be reached."""

    async def payment(self, session_row: int) -> PaymentRecord | None: ...

    async def session_by_payment_intent(self, payment_intent_id: str) -> LedgerEntry | None:
        """The row whose session's snapshot names the PaymentIntent, any caller's."""
        ...

    async def record_payment(
        self,
        session_row: int,
        snapshot: PaymentSnapshot,
        *,
        seen: int | None,
        settlements: Collection[Settlement] = (),
        event: PaymentEvent | None = None,
    ) -> PaymentWrite:
        """Store Stripe's view of the session's payment, if the payment's version is still
        `seen` (None: no payment stored yet); otherwise nothing changes (`stale`): a read that
        began before another write may be older than it. Moves each settled operation that is
        still in the state the settlement expects, a refund that failed giving its amount back
        to what may be refunded. With `event`, records the event id in the same transaction
        (`duplicate`, and nothing changed, if it was recorded before). Nothing changes either
        when the snapshot is what is stored (`written`, the row as it is)."""
        ...

    async def skip_payment_event(self, event: PaymentEvent) -> bool:
        """Record an event that needs no change; False if recorded before."""
        ...

    async def operation(self, caller: str, request_id: str) -> Operation | None: ...

    async def operations(self, session_row: int) -> list[Operation]:
        """The payment's operations, oldest first."""
        ...

    async def start_operation(self, new: NewOperation) -> OperationClaim:
        """Write the operation, pending, unless the caller's request id names one already
        (then that one, not won), or a capture or cancel that Stripe has not refused holds the
        payment (for a capture or cancel: `blocking`), or a refund would take more than is
        refundable (captured, less the service's refunds not refused, less what was refunded
        elsewhere). A refund reserves its amount in the same transaction, under a lock on the
        payment: concurrent refunds on any replicas never reserve more than was captured."""
        ...

    async def finish_operation(
        self,
        op_id: int,
        *,
        state: OperationState,
        refund_id: str | None = None,
        failure: Failure | None = None,
    ) -> Operation:
        """Record Stripe's answer to a pending operation (a refused refund gives its amount
        back); an operation no longer pending is returned as it is."""
        ...

    async def replace_operation_key(self, op_id: int, *, old_key: str, new_key: str) -> Operation:
        """Give a pending operation a new idempotency key, unless it moved on or another
        process renewed it; the operation as it is now either way."""
        ...

    async def operations_to_resume(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[Operation]:
        """Pending operations untouched since `before` whose turn has come (`next_sweep_at`
        unset or not after `now`), soonest first."""
        ...

    async def schedule_operation(self, op_id: int, *, at: datetime, failed: bool) -> None: ...

    async def payments_to_check(
        self, *, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        """Rows whose payment may lag Stripe's: completed PAYMENT sessions with a PaymentIntent
        and no payment stored, unchanged since `quiet_since`; and payments not settled whose
        turn has come (`next_sweep_at` not after `now`, or unset and unchanged since
        `quiet_since`), soonest first."""
        ...

    async def schedule_payment_check(self, session_row: int, *, at: datetime) -> None: ...


class WebhookVerifier(Protocol):
    def verify(self, payload: bytes, signature_header: str) -> StripeEvent | PaymentEvent | None:
        """The event, if the signature over the raw bytes is valid and fresh; None for a
        verified event that is about neither a Checkout Session nor a payment after checkout.
        Raises BadSignature otherwise."""
        ...


class ChangeSignal(Protocol):
    async def wait(self) -> None:
        """Return when the session may have changed."""
        ...


class SessionChanges(Protocol):
    """Notifications that a session changed, from whichever replica changed it."""

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[ChangeSignal]: ...


class FeedChanges(Protocol):
    """Notifications that a caller's feed may have grown, from whichever replica wrote to it."""

    def subscribe_feed(self, caller: str) -> AbstractAsyncContextManager[ChangeSignal]:
        """A signal set when an event of the caller's may have been committed, and again when
        notices may have been missed (the notifications' connection is back after a loss)."""
        ...


class LeaderLock(Protocol):
    """Work that one replica at a time must do (the sweep) runs while this is held."""

    def try_hold(self) -> AbstractAsyncContextManager[bool]:
        """Yield True while this process holds the lock, False if another one does."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
