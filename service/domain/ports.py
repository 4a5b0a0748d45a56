"""The outside systems the domain needs, as small interfaces. Adapters implement them and are
wired in service/app.py."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from service.domain.model import (
    Claim,
    LedgerEntry,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
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

    async def session_events(
        self, types: Collection[str], *, created_since: int
    ) -> list[StripeEvent]:
        """Checkout Session events of these types since a Unix time, oldest first."""
        ...


class SessionLedger(Protocol):
    """Postgres: which order owns which session. Raises domain Unavailable when the database
    cannot be reached."""

    async def claim(
        self,
        *,
        owner: str,
        order_id: str,
        fingerprint: str,
        idempotency_key: str,
        stripe_params: Mapping[str, Any],
        expires_at: datetime,
    ) -> Claim:
        """Insert a pending row unless a row already holds the owner's order (pending, open,
        or complete with its payment not failed); return the row that holds it either way. One
        atomic statement: a payment stored concurrently cannot slip between check and insert."""
        ...

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        """Store what Stripe said, unless the row already holds a later state; notify watchers.
        Raises AttemptDropped if the row is gone."""
        ...

    async def replace_key(self, row_id: int, *, old_key: str, new_key: str) -> LedgerEntry:
        """Give a pending row a new idempotency key, unless it moved on (another process
        rotated it, or the session exists); the row as it is now either way."""
        ...

    async def schedule_sweep(self, row_id: int, *, at: datetime, failed: bool) -> None:
        """When the sweep looks at the row next; `failed` counts a failed attempt, else the
        count starts again."""
        ...

    async def end_missing(self, row_id: int) -> LedgerEntry | None:
        """End an open row whose session Stripe no longer knows: expired, marked missing.
        None if the row was not open any more."""
        ...

    async def discard_pending(self, row_id: int) -> None: ...

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        """Any owner's: session ids are unique; the use case decides who may see it."""
        ...

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        """The rows of those of these sessions the ledger knows, by session id, in one read."""
        ...

    async def by_row_id(self, row_id: int) -> LedgerEntry: ...

    async def active_or_latest(self, owner: str, order_id: str) -> LedgerEntry | None:
        """The order's active row if it has one, else its newest row."""
        ...

    def latest_if_cached(self, owner: str, order_id: str) -> LedgerEntry | None:
        """The order's latest session if this process has it at hand, without a query (it
        is as current as `list_for_order`'s); None otherwise."""
        ...

    async def list_for_order(
        self, owner: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        """Rows that have a Stripe session, newest first, strictly after the cursor."""
        ...

    async def find_request(self, owner: str, request_id: str) -> RequestRecord | None: ...

    async def has_pending(self, order_id: str) -> bool:
        """Whether any caller's order with this id has a row still waiting for Stripe."""
        ...

    async def knows_order(self, order_id: str) -> bool:
        """Whether any caller has an order with this id (a webhook names no caller)."""
        ...

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        """In one transaction: record the event id and store the snapshot (notifying watchers).
        False, and nothing changed, if the event was recorded before."""
        ...

    async def skip_event(self, event: StripeEvent) -> bool:
        """Record an event that needs no change; False if recorded before."""
        ...

    async def event_seen(self, event_id: str) -> bool: ...

    async def oldest_pending(self) -> datetime | None:
        """When the oldest row still waiting for Stripe's answer was last touched."""
        ...

    async def watermark(self, name: str) -> int | None:
        """How far (a Unix time) the sweep has read one of Stripe's lists: `events`, or
        `open_sessions`; None before the first pass."""
        ...

    async def advance_watermark(self, name: str, to: int) -> None: ...

    async def needing_reconciliation(
        self, *, pending_before: datetime, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        """Rows whose stored state may lag Stripe's and whose turn has come (`next_sweep_at`),
        soonest first: pending since before `pending_before`,
        open past their expiry, or not final and unchanged since `quiet_since`."""
        ...

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        """Store the record; if the id is already stored, return the stored one instead."""
        ...


class WebhookVerifier(Protocol):
    def verify(self, payload: bytes, signature_header: str) -> StripeEvent | None:
        """The event, if the signature over the raw bytes is valid and fresh; None for a
        verified event that is not about a Checkout Session. Raises BadSignature otherwise."""
        ...


class ChangeSignal(Protocol):
    async def wait(self, at_most_seconds: float | None) -> None:
        """Return when the session may have changed, or after `at_most_seconds` (None: no
        limit)."""
        ...


class SessionChanges(Protocol):
    """Notifications that a session changed, from whichever replica changed it."""

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[ChangeSignal]: ...


class LeaderLock(Protocol):
    """Work that one replica at a time must do (the sweep) runs while this is held."""

    def try_hold(self) -> AbstractAsyncContextManager[bool]:
        """Yield True while this process holds the lock, False if another one does."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
