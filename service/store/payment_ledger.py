"""The money after checkout in Postgres: plain parameterized SQL behind the domain's
PaymentLedger port (migration 0005), each database failure translated once (db_errors.py).

Two rules hold here by construction, whatever the replicas do at once:
- **Refunds never exceed the capture.** A refund's row and its reservation are written in one
  transaction under a lock on the payment's row, and `payments_refunds_within_capture`
  (`CHECK (reserved <= captured)`) refuses anything else.
- **An older read of Stripe never overwrites a newer one.** A payment is stored only if its
  version is still the one seen before Stripe was read.

Locks are always taken in one order, the session's row, then the payment's, then operations,
so that two writers never wait on each other. Every write of Stripe's view also moves the
session's `updated_at`, writes the events of the event feed it causes and notifies in the same
statement, as repository.py does for sessions: each money transition (authorised, captured,
released or lapsed, refunded, refund failed, dispute opened or closed) is one such write, and
the domain decides its events (outcomes.payment_events) inside the transaction, from the
payment as the locked row holds it. The session's row is locked first, before anything gives
the transaction an id, so that the feed's order (by transaction id) is the order's commit order
for its payment's events as for its session's (outbox.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.domain.errors import AttemptDropped
from service.domain.model import LedgerEntry, field_values
from service.domain.outcomes import PaymentAnnouncement, payment_events
from service.domain.payment_model import (
    Failure,
    IntentStatus,
    NewOperation,
    Operation,
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
from service.store import outbox
from service.store.db_errors import bounded_trip
from service.store.repository import _NOTIFY, Connection, _entry

# A payment's events are kept by Stripe this long, and so is a missing payment looked for.
_LOOK_BACK = timedelta(days=30)


class _Undo(Exception):
    """Raised inside a transaction to roll it back and answer `answer`."""

    def __init__(self, answer: Any) -> None:
        super().__init__("rolled back")
        self.answer = answer


class PostgresPayments:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        command_timeout: float,
        on_transition: Callable[[str], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """`on_transition(kind)` hears of every money transition stored here, once whichever
        replica stores it (payment_model.transitions; Metrics.count_payment); `on_event(type)`
        of every event it wrote to the feed (Metrics.count_event)."""
        self._pool = pool
        self._command_timeout = command_timeout
        self._on_transition = on_transition
        self._on_event = on_event
        self._traced = False

    def trace_calls(self) -> None:
        self._traced = True

    def _db(self) -> AbstractAsyncContextManager[None]:
        return bounded_trip(self._command_timeout, traced=self._traced)

    # -- payments --

    async def payment(self, session_row: int) -> PaymentRecord | None:
        async with self._db():
            row = await self._pool.fetchrow(
                """SELECT p.*, s.payment FROM payments p
                   JOIN checkout_sessions s ON s.id = p.session_row WHERE p.session_row = $1""",
                session_row,
            )
        return None if row is None else _record(row)

    async def session_by_payment_intent(self, payment_intent_id: str) -> LedgerEntry | None:
        async with self._db():
            row = await self._pool.fetchrow(
                "SELECT * FROM checkout_sessions WHERE snapshot ->> 'payment_intent_id' = $1",
                payment_intent_id,
            )
        return None if row is None else _entry(row)

    async def record_payment(
        self,
        session_row: int,
        snapshot: PaymentSnapshot,
        *,
        seen: int | None,
        settlements: Collection[Settlement] = (),
        event: PaymentEvent | None = None,
    ) -> PaymentWrite:
        try:
            async with self._db(), self._pool.acquire() as conn, conn.transaction():
                before = await conn.fetchrow(
                    "SELECT payment FROM checkout_sessions WHERE id = $1 FOR UPDATE", session_row
                )
                if before is None:
                    raise AttemptDropped(f"ledger row {session_row} is gone")
                if event is not None and not await _insert_event(conn, event):
                    return PaymentWrite(WriteOutcome.DUPLICATE)
                version = await conn.fetchval(
                    "SELECT version FROM payments WHERE session_row = $1 FOR UPDATE", session_row
                )
                if version != seen:
                    raise _Undo(PaymentWrite(WriteOutcome.STALE))
                moved, released = await _settle(conn, session_row, settlements)
                if version is not None and not moved and before["payment"] == _stored(snapshot):
                    # Nothing new (a redelivery, or our own write read back): nothing moves.
                    return PaymentWrite(WriteOutcome.WRITTEN, await _locked(conn, session_row))
                was = before["payment"]
                events = payment_events(
                    None if was is None else PaymentSnapshot.from_json(was), snapshot
                )
                await _keep(conn, session_row, snapshot, version, released)
                entry = await _announce(conn, session_row, snapshot, events)
        except _Undo as undo:
            written: PaymentWrite = undo.answer
            return written
        self._tell(events)
        return PaymentWrite(WriteOutcome.WRITTEN, entry)

    def _tell(self, events: Collection[PaymentAnnouncement]) -> None:
        for event in events:
            if self._on_transition is not None:
                self._on_transition(event.transition)
            if self._on_event is not None:
                self._on_event(event.type)

    async def skip_payment_event(self, event: PaymentEvent) -> bool:
        async with self._db(), self._pool.acquire() as conn:
            return await _insert_event(conn, event)

    async def payments_to_check(
        self, *, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        async with self._db():
            rows = await self._pool.fetch(
                """(SELECT s.*, s.updated_at AS turn FROM checkout_sessions s
                    WHERE s.state = 'complete' AND s.snapshot ->> 'mode' = 'payment'
                      AND s.snapshot ->> 'payment_intent_id' IS NOT NULL
                      AND s.updated_at >= $4 AND s.updated_at < $2
                      AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.session_row = s.id))
                   UNION ALL
                   (SELECT s.*, coalesce(p.next_sweep_at, p.updated_at) AS turn
                    FROM payments p JOIN checkout_sessions s ON s.id = p.session_row
                    WHERE NOT p.settled
                      AND coalesce(p.next_sweep_at <= $1, p.updated_at < $2))
                   ORDER BY turn, id LIMIT $3""",
                now,
                quiet_since,
                limit,
                now - _LOOK_BACK,
            )
        return [_entry(row) for row in rows]

    async def schedule_payment_check(self, session_row: int, *, at: datetime) -> None:
        async with self._db():
            await self._pool.execute(
                "UPDATE payments SET next_sweep_at = $2 WHERE session_row = $1", session_row, at
            )

    # -- operations --

    async def operation(self, caller: str, request_id: str) -> Operation | None:
        async with self._db(), self._pool.acquire() as conn:
            return await _named(conn, caller, request_id)

    async def operations(self, session_row: int) -> list[Operation]:
        async with self._db():
            rows = await self._pool.fetch(
                "SELECT * FROM payment_operations WHERE session_row = $1 ORDER BY id", session_row
            )
        return [_operation(row) for row in rows]

    async def start_operation(self, new: NewOperation) -> OperationClaim:
        async with self._db(), self._pool.acquire() as conn, conn.transaction():
            return await _start(conn, new)

    async def finish_operation(
        self,
        op_id: int,
        *,
        state: OperationState,
        refund_id: str | None = None,
        failure: Failure | None = None,
    ) -> Operation:
        async with self._db(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """SELECT 1 FROM payments WHERE session_row =
                       (SELECT session_row FROM payment_operations WHERE id = $1)
                   FOR UPDATE""",
                op_id,
            )
            row = await conn.fetchrow(
                """UPDATE payment_operations
                   SET state = $2, refund_id = coalesce($3, refund_id), failure = $4,
                       updated_at = clock_timestamp()
                   WHERE id = $1 AND state = 'pending' RETURNING *""",
                op_id,
                state,
                refund_id,
                None if failure is None else _failure_json(failure),
            )
            if row is None:
                row = await conn.fetchrow("SELECT * FROM payment_operations WHERE id = $1", op_id)
            elif row["kind"] == OperationKind.REFUND and state == OperationState.FAILED:
                await _give_back(conn, row["session_row"], row["amount"])
        if row is None:
            raise AttemptDropped(f"operation {op_id} is gone")
        return _operation(row)

    async def replace_operation_key(self, op_id: int, *, old_key: str, new_key: str) -> Operation:
        async with self._db():
            row = await self._pool.fetchrow(
                """UPDATE payment_operations
                   SET idempotency_key = $3, updated_at = clock_timestamp()
                   WHERE id = $1 AND state = 'pending' AND idempotency_key = $2 RETURNING *""",
                op_id,
                old_key,
                new_key,
            )
            if row is None:
                row = await self._pool.fetchrow(
                    "SELECT * FROM payment_operations WHERE id = $1", op_id
                )
        if row is None:
            raise AttemptDropped(f"operation {op_id} is gone")
        return _operation(row)

    async def operations_to_resume(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[Operation]:
        async with self._db():
            rows = await self._pool.fetch(
                """SELECT * FROM payment_operations
                   WHERE state = 'pending' AND updated_at < $1
                     AND (next_sweep_at IS NULL OR next_sweep_at <= $2)
                   ORDER BY coalesce(next_sweep_at, updated_at), id LIMIT $3""",
                before,
                now,
                limit,
            )
        return [_operation(row) for row in rows]

    async def schedule_operation(self, op_id: int, *, at: datetime, failed: bool) -> None:
        async with self._db():
            await self._pool.execute(
                """UPDATE payment_operations
                   SET next_sweep_at = $2,
                       sweep_attempts = CASE WHEN $3 THEN sweep_attempts + 1 ELSE 0 END
                   WHERE id = $1""",
                op_id,
                at,
                failed,
            )


async def _insert_event(conn: Connection, event: PaymentEvent) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO stripe_events (event_id, type) VALUES ($1, $2)
           ON CONFLICT (event_id) DO NOTHING RETURNING true""",
        event.id,
        event.type,
    )
    return bool(inserted)


async def _settle(
    conn: Connection, session_row: int, settlements: Collection[Settlement]
) -> tuple[int, int]:
    """Move each settled operation still in the state expected: how many moved, and what the
    refunds that failed give back."""
    moved = released = 0
    for settled in settlements:
        row = await conn.fetchrow(
            """UPDATE payment_operations
               SET state = $3, refund_id = coalesce($4, refund_id), updated_at = clock_timestamp()
               WHERE id = $1 AND state = $2 AND session_row = $5 RETURNING kind, amount""",
            settled.op_id,
            settled.was,
            settled.state,
            settled.refund_id,
            session_row,
        )
        if row is None:
            continue
        moved += 1
        if row["kind"] == OperationKind.REFUND and settled.state == OperationState.FAILED:
            released += row["amount"]
    return moved, released


async def _keep(
    conn: Connection, session_row: int, snapshot: PaymentSnapshot, version: int | None, back: int
) -> None:
    """The payment's row, made or moved on a version, for a write that has passed its version
    check under the locks; `back`: what refunds that failed give back of the reservations."""
    values = (
        session_row,
        snapshot.amount_captured,
        snapshot.refunded_elsewhere,
        snapshot.settled,
        _next_look(snapshot),
    )
    if version is None:
        await conn.execute(
            """INSERT INTO payments (session_row, payment_intent_id, captured,
                                     refunded_elsewhere, settled, next_sweep_at)
               VALUES ($1, $6, $2, $3, $4, $5)""",
            *values,
            snapshot.id,
        )
    else:
        await conn.execute(
            """UPDATE payments
               SET captured = greatest(captured, $2), refunded_elsewhere = $3, settled = $4,
                   next_sweep_at = $5, reserved = reserved - $6, version = version + 1,
                   updated_at = clock_timestamp()
               WHERE session_row = $1""",
            *values,
            back,
        )


async def _announce(
    conn: Connection,
    session_row: int,
    snapshot: PaymentSnapshot,
    events: Collection[PaymentAnnouncement],
) -> LedgerEntry:
    """The session's view of the payment, the events its change causes and the notice, in one
    statement. The events' ids ascend in the order of `events` (outbox.payment_events)."""
    row = await conn.fetchrow(
        f"""WITH changed AS (
               UPDATE checkout_sessions SET payment = $2, updated_at = clock_timestamp()
               WHERE id = $1 AND payment IS DISTINCT FROM $2::jsonb RETURNING *),
           {outbox.payment_events(3)}
           SELECT changed.*, {_NOTIFY} FROM changed LEFT JOIN event ON true""",
        session_row,
        snapshot.to_json(),
        sorted(uuid.uuid4() for _ in events),
        [event.type for event in events],
        [event.refund_id for event in events],
    )
    return _entry(row) if row is not None else await _locked(conn, session_row)


async def _locked(conn: Connection, session_row: int) -> LedgerEntry:
    """The session's row, which the transaction has held locked since its first statement."""
    row = await conn.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", session_row)
    assert row is not None
    return _entry(row)


def _stored(snapshot: PaymentSnapshot) -> Any:
    """The snapshot as it comes back from the jsonb column (asyncpg's codec is json)."""
    return json.loads(json.dumps(snapshot.to_json()))


def _next_look(snapshot: PaymentSnapshot) -> datetime | None:
    """When the sweep reads an authorisation again: when it lapses if not captured (Stripe then
    releases it); other payments wait out the quiet period."""
    if snapshot.status == IntentStatus.REQUIRES_CAPTURE and snapshot.capture_before is not None:
        return datetime.fromtimestamp(snapshot.capture_before, UTC)
    return None


async def _start(conn: Connection, new: NewOperation) -> OperationClaim:
    """Within a transaction, the payment locked: the operation the request id names, or what
    stops a new one, or the new one written (a refund's reservation with it)."""
    payment = await conn.fetchrow(
        "SELECT * FROM payments WHERE session_row = $1 FOR UPDATE", new.session_row
    )
    if payment is None:
        raise AttemptDropped(f"the payment of ledger row {new.session_row} is not stored")
    named = await _named(conn, new.caller, new.request_id)
    if named is not None:
        return OperationClaim(won=False, operation=named)
    if new.kind == OperationKind.REFUND:
        refundable = payment["captured"] - payment["reserved"] - payment["refunded_elsewhere"]
        if new.amount > refundable:
            return OperationClaim(won=False, refundable=max(0, refundable))
    else:
        blocking = await conn.fetchrow(
            """SELECT * FROM payment_operations
               WHERE session_row = $1 AND kind IN ('capture', 'cancel') AND state <> 'failed'
               LIMIT 1""",
            new.session_row,
        )
        if blocking is not None:
            return OperationClaim(won=False, blocking=_operation(blocking))
    row = await conn.fetchrow(
        """INSERT INTO payment_operations
               (session_row, caller, request_id, kind, fingerprint, amount, reason,
                idempotency_key, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')
           ON CONFLICT (caller, request_id) DO NOTHING RETURNING *""",
        new.session_row,
        new.caller,
        new.request_id,
        new.kind,
        new.fingerprint,
        new.amount,
        new.reason,
        new.idempotency_key,
    )
    if row is None:
        # The same request id, for another payment, written meanwhile (no lock is shared).
        return OperationClaim(won=False, operation=await _named(conn, new.caller, new.request_id))
    if new.kind == OperationKind.REFUND:
        await conn.execute(
            "UPDATE payments SET reserved = reserved + $2 WHERE session_row = $1",
            new.session_row,
            new.amount,
        )
    return OperationClaim(won=True, operation=_operation(row))


async def _named(conn: Connection, caller: str, request_id: str) -> Operation | None:
    row = await conn.fetchrow(
        "SELECT * FROM payment_operations WHERE caller = $1 AND request_id = $2",
        caller,
        request_id,
    )
    return None if row is None else _operation(row)


async def _give_back(conn: Connection, session_row: int, amount: int) -> None:
    await conn.execute(
        "UPDATE payments SET reserved = reserved - $2 WHERE session_row = $1", session_row, amount
    )


def _record(row: asyncpg.Record) -> PaymentRecord:
    return PaymentRecord(
        session_row=row["session_row"],
        payment_intent_id=row["payment_intent_id"],
        snapshot=PaymentSnapshot.from_json(row["payment"]),
        captured=row["captured"],
        reserved=row["reserved"],
        refunded_elsewhere=row["refunded_elsewhere"],
        version=row["version"],
    )


def _operation(row: asyncpg.Record) -> Operation:
    failure = row["failure"]
    return Operation(
        op_id=row["id"],
        session_row=row["session_row"],
        caller=row["caller"],
        request_id=row["request_id"],
        kind=OperationKind(row["kind"]),
        fingerprint=row["fingerprint"],
        amount=row["amount"],
        reason=row["reason"],
        idempotency_key=row["idempotency_key"],
        state=OperationState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        refund_id=row["refund_id"],
        failure=None if failure is None else Failure(**failure),
        sweep_attempts=row["sweep_attempts"],
    )


def _failure_json(failure: Failure) -> dict[str, Any]:
    return field_values(failure)
