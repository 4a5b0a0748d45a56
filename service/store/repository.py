"""The ledger in Postgres: plain parameterized SQL behind the domain's SessionLedger port, each
database failure translated once (db_errors.py).

No pooled connection is held across a Stripe call: every method takes a connection for one
short statement or transaction and gives it back, so that many creates waiting on Stripe do not
queue on a small pool (docs/architecture.md, "Creating a session for an order"). What this
process has read is kept by CachedLedger, which wraps this one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from service.domain.errors import AttemptDropped, Unavailable
from service.domain.model import (
    ACTIVE_STATES,
    CALLER_KEY,
    HELD_UNLESS_PAYMENT_FAILED,
    ORDER_ID_KEY,
    Attempt,
    Claim,
    FeedPosition,
    FeedRead,
    LedgerEntry,
    LedgerState,
    Progress,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
    ledger_state,
    may_store,
    progress_of,
)
from service.domain.payment_model import PaymentSnapshot
from service.store import outbox
from service.store.db_errors import bounded_trip
from service.store.failover import ServerWatch
from service.store.outbox import Written

NOTIFY_CHANNEL = "checkout_session_changed"
# The notice that tells every replica's watchers and read cache that a row changed, as a select
# item over the changed rows (`changed`), so that the write and its notice are one statement;
# delivered when the transaction commits (https://www.postgresql.org/docs/current/sql-notify.html).
# It names the event the change wrote (null if none): only those wake the feed's readers.
# change_feed.py reads the JSON.
_NOTIFY = f"""pg_notify('{NOTIFY_CHANNEL}', json_build_object(
    'session', changed.session_id, 'caller', changed.caller, 'order', changed.order_id,
    'event', event.type)::text
) AS notified"""
# How every write that can change what a row announces (service/domain/outcomes.py) ends: the
# event it causes, if any (outbox.py), then the changed row, that event's type, and the notice.
# Such a write locks its row (FOR UPDATE) before anything else in its transaction: the
# transaction's id is assigned only then, after every earlier writer of the row has committed,
# so that the feed's order (by transaction id) is each order's commit order. (An UPDATE, or an
# earlier INSERT, takes its id before it waits for the row.)
_ANNOUNCED = f"""{outbox.EVENT}
SELECT changed.*, event.type AS event_type, {_NOTIFY} FROM changed LEFT JOIN event ON true"""
_LOCKED = f"""SELECT id, state, {outbox.announced_sql("checkout_sessions")} AS announced
    FROM checkout_sessions WHERE id = $1 FOR UPDATE"""


def _state_in(states: Iterable[LedgerState]) -> str:
    """`state = 'a'` for one state, `state IN ('a', 'b')` for more: as the migration spells
    them, which Postgres reads the same either way."""
    quoted = [f"'{state}'" for state in states]
    return f"state = {quoted[0]}" if len(quoted) == 1 else f"state IN ({', '.join(quoted)})"


# SQL for the domain's states and its rule of which rows hold an order (model.holds_order),
# built from the same tuples. Neither can be a query parameter: ON CONFLICT infers the partial
# unique index `checkout_sessions_one_holder_per_order` from its predicate, which must be the
# migration's (tests/integration/test_ledger.py has Postgres compare the two).
ACTIVE_PREDICATE = _state_in(ACTIVE_STATES)
HOLDS_ORDER_PREDICATE = (
    f"({ACTIVE_PREDICATE} OR ({_state_in(HELD_UNLESS_PAYMENT_FAILED)} "
    "AND NOT async_payment_failed))"
)

Connection = asyncpg.Connection | PoolConnectionProxy

# A session Stripe made without being asked (PostgresLedger.adopt), inserted with the event it
# announces and its notice in one statement, as every write that can change what a row
# announces (_ANNOUNCED): a new row announced nothing before, so a paid copy announces that the
# order was paid, an open one what the rule says of an open row. Nothing is inserted while a
# row holds the order (a copy that would not hold it either included), nor when the session has
# its row, whose key (`adopted-` and the session id) the conflict catches too. The row has no
# earlier writer to lock: the order's rows that let go of it committed before this statement
# began (the index admits no other), so their events' transaction ids are smaller than its.
_ADOPT = f"""WITH changed AS (
       INSERT INTO checkout_sessions
           (order_id, state, progress, fingerprint, idempotency_key, stripe_params, expires_at,
            caller, session_id, payment_status, snapshot)
       SELECT $1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9, $10, $11
       WHERE NOT EXISTS (
           SELECT 1 FROM checkout_sessions
           WHERE caller = $8 AND order_id = $1 AND {HOLDS_ORDER_PREDICATE})
       ON CONFLICT DO NOTHING
       RETURNING *, NULL::text AS previous_state, NULL::text AS previous_announced),
   {_ANNOUNCED}"""

# The row that holds an order, if any: what a claim or an adoption that lost finds instead.
_HOLDER = f"""SELECT * FROM checkout_sessions
   WHERE caller = $2 AND order_id = $1 AND {HOLDS_ORDER_PREDICATE}"""


class PostgresLedger:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        command_timeout: float,
        on_transition: Callable[[LedgerState, LedgerState], None] | None = None,
        on_event: Callable[[str], None] | None = None,
        watch: ServerWatch | None = None,
    ) -> None:
        """`on_transition(before, after)` hears of every change of a row's state made here,
        once per change whichever replica makes it (Metrics.count_transition); `on_event(type)`
        of every event written to the feed (Metrics.count_event). `watch`: claims are refused
        while the ledger may lack sessions Stripe has (failover.py)."""
        self._pool = pool
        self._watch = watch
        self._command_timeout = command_timeout
        self._on_transition = on_transition
        self._on_event = on_event
        self._traced = False

    def trace_calls(self) -> None:
        """Give each trip to Postgres a span of its own (tracing is on)."""
        self._traced = True

    def _changed(self, written: Written) -> None:
        entry, previous = written.entry, written.previous
        if self._on_transition is not None and previous is not None and previous != entry.state:
            self._on_transition(previous, entry.state)
        if self._on_event is not None and written.event is not None:
            self._on_event(written.event)

    def _db(self) -> AbstractAsyncContextManager[None]:
        return bounded_trip(self._command_timeout, traced=self._traced)

    async def claim(
        self, *, caller: str, order_id: str, fingerprint: str, attempt: Callable[[], Attempt]
    ) -> Claim:
        new = attempt()
        async with self._db(), self._pool.acquire() as conn:
            if self._watch is not None:
                # After the acquire: a connection to a new server has marked it by now.
                self._watch.refuse_while_behind()
            # The row that holds the order can let go of it between our INSERT and SELECT
            # (expired by another call); then the INSERT can win on the next round.
            for _ in range(3):
                row = await conn.fetchrow(
                    f"""INSERT INTO checkout_sessions
                           (order_id, state, progress, fingerprint, idempotency_key,
                            stripe_params, expires_at, caller)
                       VALUES ($1, $6, $7, $2, $3, $4, $5, $8)
                       ON CONFLICT (caller, order_id) WHERE {HOLDS_ORDER_PREDICATE} DO NOTHING
                       RETURNING *""",
                    order_id,
                    fingerprint,
                    new.idempotency_key,
                    dict(new.stripe_params),
                    new.expires_at,
                    LedgerState.PENDING,
                    Progress.PENDING,
                    caller,
                )
                if row is not None:
                    return Claim(won=True, entry=_entry(row))
                row = await conn.fetchrow(_HOLDER, order_id, caller)
                if row is not None:
                    return Claim(won=False, entry=_entry(row))
        raise Unavailable(
            f"order {order_id} is changing too fast to claim", reason="CLAIM_CONTENDED"
        )

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        async with self._db(), self._pool.acquire() as conn:
            written = await _record(conn, row_id, snapshot, payment_failed=False)
        self._changed(written)
        return written.entry

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        async with self._db(), self._pool.acquire() as conn, conn.transaction():
            # The row first, before the event id's INSERT takes a transaction id (_ANNOUNCED).
            await conn.execute(_LOCKED, row_id)
            if not await _insert_event(conn, event):
                return False
            written = await _record(conn, row_id, snapshot, payment_failed=payment_failed)
        self._changed(written)
        return True

    async def skip_event(self, event: StripeEvent) -> bool:
        async with self._db(), self._pool.acquire() as conn:
            return await _insert_event(conn, event)

    async def adopt(
        self,
        *,
        caller: str,
        order_id: str,
        fingerprint: str,
        stripe_params: Mapping[str, Any],
        snapshot: SessionSnapshot,
    ) -> Claim:
        state = ledger_state(snapshot)
        async with self._db(), self._pool.acquire() as conn:
            # As in `claim`: the holder may let go of the order between INSERT and SELECT.
            for _ in range(3):
                row = await conn.fetchrow(
                    _ADOPT,
                    order_id,
                    state,
                    progress_of(state, snapshot.payment_status),
                    fingerprint,
                    f"adopted-{snapshot.id}",
                    dict(stripe_params),
                    snapshot.expires_at,
                    caller,
                    snapshot.id,
                    snapshot.payment_status,
                    snapshot.to_json(),
                )
                if row is not None:
                    written = Written(_entry(row), None, row["event_type"])
                    self._changed(written)
                    return Claim(won=True, entry=written.entry)
                row = await conn.fetchrow(
                    "SELECT * FROM checkout_sessions WHERE session_id = $1", snapshot.id
                )
                if row is not None:
                    return Claim(won=True, entry=_entry(row))
                row = await conn.fetchrow(_HOLDER, order_id, caller)
                if row is not None:
                    return Claim(won=False, entry=_entry(row))
        raise Unavailable(
            f"order {order_id} is changing too fast to adopt {snapshot.id}",
            reason="CLAIM_CONTENDED",
        )

    async def event_seen(self, event_id: str) -> bool:
        async with self._db():
            found = await self._pool.fetchval(
                "SELECT 1 FROM stripe_events WHERE event_id = $1", event_id
            )
        return found is not None

    async def oldest_pending(self) -> datetime | None:
        async with self._db():
            found: datetime | None = await self._pool.fetchval(
                "SELECT min(updated_at) FROM checkout_sessions WHERE state = $1",
                LedgerState.PENDING,
            )
        return found

    async def watermark(self, name: str) -> int | None:
        async with self._db():
            value = await self._pool.fetchval(
                "SELECT value FROM sync_watermarks WHERE name = $1", name
            )
        return None if value is None else int(value)

    async def advance_watermark(self, name: str, to: int) -> None:
        async with self._db():
            await self._pool.execute(
                """INSERT INTO sync_watermarks (name, value) VALUES ($1, $2)
                   ON CONFLICT (name) DO UPDATE
                   SET value = excluded.value, updated_at = clock_timestamp()""",
                name,
                to,
            )

    async def needing_reconciliation(
        self, *, pending_before: datetime, now: datetime, quiet_since: datetime, limit: int
    ) -> list[LedgerEntry]:
        async with self._db():
            rows = await self._pool.fetch(
                """SELECT * FROM checkout_sessions
                   WHERE ((state = $5 AND updated_at < $1)
                          OR (state = $6 AND (expires_at < $2 OR updated_at < $3))
                          OR (state = $7 AND progress < $8 AND NOT async_payment_failed
                              AND updated_at < $3))
                     AND (next_sweep_at IS NULL OR next_sweep_at <= $2)
                   ORDER BY coalesce(next_sweep_at, updated_at) LIMIT $4""",
                pending_before,
                now,
                quiet_since,
                limit,
                LedgerState.PENDING,
                LedgerState.OPEN,
                LedgerState.COMPLETE,
                Progress.SETTLED,
            )
        return [_entry(r) for r in rows]

    async def replace_key(self, row_id: int, *, old_key: str, new_key: str) -> LedgerEntry:
        async with self._db():
            row = await self._pool.fetchrow(
                """UPDATE checkout_sessions
                   SET idempotency_key = $3, updated_at = clock_timestamp()
                   WHERE id = $1 AND state = $4 AND idempotency_key = $2
                   RETURNING *""",
                row_id,
                old_key,
                new_key,
                LedgerState.PENDING,
            )
            if row is None:
                # Another process renewed it, or the session exists: read it as it is now.
                row = await self._pool.fetchrow(
                    "SELECT * FROM checkout_sessions WHERE id = $1", row_id
                )
        if row is None:
            raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
        return _entry(row)

    async def schedule_sweep(self, row_id: int, *, at: datetime, failed: bool) -> None:
        async with self._db():
            await self._pool.execute(
                """UPDATE checkout_sessions
                   SET next_sweep_at = $2,
                       sweep_attempts = CASE WHEN $3 THEN sweep_attempts + 1 ELSE 0 END
                   WHERE id = $1""",
                row_id,
                at,
                failed,
            )

    async def end_missing(self, row_id: int) -> LedgerEntry | None:
        async with self._db():
            row = await self._pool.fetchrow(
                f"""WITH before AS ({_LOCKED}),
                   changed AS (
                       UPDATE checkout_sessions AS s
                       SET state = $2, progress = $3, missing_at_stripe = true,
                           updated_at = clock_timestamp()
                       FROM before
                       WHERE s.id = before.id AND s.state = $4
                       RETURNING s.*, before.state AS previous_state,
                                 before.announced AS previous_announced),
                   {_ANNOUNCED}""",
                row_id,
                LedgerState.EXPIRED,
                Progress.CLOSED,
                LedgerState.OPEN,
            )
        if row is None:
            return None
        written = Written(_entry(row), LedgerState.OPEN, row["event_type"])
        self._changed(written)
        return written.entry

    async def discard_pending(self, row_id: int) -> None:
        async with self._db():
            await self._pool.execute(
                "DELETE FROM checkout_sessions WHERE id = $1 AND state = $2",
                row_id,
                LedgerState.PENDING,
            )

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        return await self._one("SELECT * FROM checkout_sessions WHERE session_id = $1", session_id)

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        async with self._db():
            rows = await self._pool.fetch(
                "SELECT * FROM checkout_sessions WHERE session_id = ANY($1::text[])",
                list(session_ids),
            )
        return {row["session_id"]: _entry(row) for row in rows}

    async def by_row_id(self, row_id: int) -> LedgerEntry:
        entry = await self._one("SELECT * FROM checkout_sessions WHERE id = $1", row_id)
        if entry is None:
            raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
        return entry

    async def active_or_latest(self, caller: str, order_id: str) -> LedgerEntry | None:
        return await self._one(
            f"""SELECT * FROM checkout_sessions WHERE caller = $2 AND order_id = $1
               ORDER BY {ACTIVE_PREDICATE} DESC, created_at DESC, id DESC LIMIT 1""",
            order_id,
            caller,
        )

    async def has_pending(self, order_id: str) -> bool:
        async with self._db():
            found = await self._pool.fetchval(
                "SELECT 1 FROM checkout_sessions WHERE order_id = $1 AND state = $2 LIMIT 1",
                order_id,
                LedgerState.PENDING,
            )
        return found is not None

    async def knows_order(self, order_id: str) -> bool:
        async with self._db():
            found = await self._pool.fetchval(
                "SELECT 1 FROM checkout_sessions WHERE order_id = $1 LIMIT 1", order_id
            )
        return found is not None

    async def list_for_order(
        self, caller: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        after_time, after_id = after if after is not None else (None, None)
        async with self._db():
            rows = await self._pool.fetch(
                """SELECT * FROM checkout_sessions
                   WHERE caller = $5 AND order_id = $1 AND session_id IS NOT NULL
                     AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                   ORDER BY created_at DESC, id DESC LIMIT $4""",
                order_id,
                after_time,
                after_id,
                limit,
                caller,
            )
        return [_entry(r) for r in rows]

    async def find_request(self, caller: str, request_id: str) -> RequestRecord | None:
        async with self._db():
            row = await self._pool.fetchrow(
                "SELECT * FROM create_requests WHERE caller = $1 AND request_id = $2",
                caller,
                request_id,
            )
        return None if row is None else _request(row)

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        async with self._db():
            row = await self._pool.fetchrow(
                """INSERT INTO create_requests (caller, request_id, fingerprint, row_id, reused)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (caller, request_id) DO NOTHING RETURNING *""",
                record.caller,
                record.request_id,
                record.fingerprint,
                record.row_id,
                record.reused,
            )
            if row is None:
                row = await self._pool.fetchrow(
                    "SELECT * FROM create_requests WHERE caller = $1 AND request_id = $2",
                    record.caller,
                    record.request_id,
                )
        if row is None:
            raise AttemptDropped(f"the row of request {record.request_id} is gone")
        return _request(row)

    async def read_feed(
        self, caller: str, after: FeedPosition, *, limit: int, types: Collection[str] = ()
    ) -> FeedRead:
        async with self._db():
            rows = await self._pool.fetch(
                outbox.READ, caller, after.txid, after.event_id, limit, list(types)
            )
        return outbox.feed_read(rows, _entry)

    async def feed_position_at_or_before(
        self, caller: str, position: FeedPosition
    ) -> FeedPosition | None:
        async with self._db():
            row = await self._pool.fetchrow(
                outbox.AT_OR_BEFORE,
                caller,
                position.txid,
                position.event_id,
                position.written_at,
            )
        return outbox.position_of(row)

    async def prune_feed(self, *, created_before: datetime, limit: int) -> int:
        async with self._db():
            deleted: int = await self._pool.fetchval(outbox.PRUNE, created_before, limit)
        return deleted

    async def _one(self, query: str, *args: object) -> LedgerEntry | None:
        async with self._db():
            row = await self._pool.fetchrow(query, *args)
        return None if row is None else _entry(row)


async def _insert_event(conn: Connection, event: StripeEvent) -> bool:
    """Record the event id; False if it was already recorded (a redelivery)."""
    inserted = await conn.fetchval(
        """INSERT INTO stripe_events (event_id, type, session_id) VALUES ($1, $2, $3)
           ON CONFLICT (event_id) DO NOTHING RETURNING true""",
        event.id,
        event.type,
        event.session_id,
    )
    return bool(inserted)


async def _record(
    conn: Connection, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
) -> Written:
    """Store what Stripe said unless the row is already further along (a stale read, as
    webhooks arrive in any order) or already says exactly that (a redelivery, or our own
    write coming back as a webhook), write the event the change causes, and tell watchers on
    every replica. Returns the row and, if this changed it, the state it had before and the
    event written. One statement, so one round trip: the lock, the update, the event and the
    notice commit together."""
    state = ledger_state(snapshot)
    rank = progress_of(state, snapshot.payment_status)
    row = await conn.fetchrow(
        f"""WITH before AS ({_LOCKED}),
           changed AS (
               UPDATE checkout_sessions AS s
               SET state = $2, progress = $3, session_id = $4, payment_status = $5,
                   snapshot = $6, expires_at = to_timestamp($7),
                   async_payment_failed = s.async_payment_failed OR $8,
                   updated_at = clock_timestamp()
               FROM before
               WHERE s.id = before.id AND s.progress <= $3
                 AND (s.snapshot IS DISTINCT FROM $6::jsonb
                      OR s.state IS DISTINCT FROM $2
                      OR (NOT s.async_payment_failed AND $8))
                 -- The row's own session, or one of its order (model.may_store).
                 AND (s.session_id = $4
                      OR (s.session_id IS NULL
                          AND ($10::text IS NULL OR (s.caller = $10 AND s.order_id = $9))))
               RETURNING s.*, before.state AS previous_state,
                         before.announced AS previous_announced),
           {_ANNOUNCED}""",
        row_id,
        state,
        rank,
        snapshot.id,
        snapshot.payment_status,
        snapshot.to_json(),
        snapshot.expires_at,
        payment_failed,
        snapshot.metadata.get(ORDER_ID_KEY),
        snapshot.metadata.get(CALLER_KEY),
    )
    if row is not None:
        return Written(_entry(row), LedgerState(row["previous_state"]), row["event_type"])
    row = await conn.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", row_id)
    if row is None or not may_store(
        snapshot, session_id=row["session_id"], caller=row["caller"], order_id=row["order_id"]
    ):
        raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
    return Written(_entry(row), None, None)


def _entry(row: asyncpg.Record | Mapping[str, Any]) -> LedgerEntry:
    snapshot = row["snapshot"]
    return LedgerEntry(
        row_id=row["id"],
        caller=row["caller"],
        order_id=row["order_id"],
        state=LedgerState(row["state"]),
        fingerprint=row["fingerprint"],
        idempotency_key=row["idempotency_key"],
        stripe_params=row["stripe_params"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        session_id=row["session_id"],
        snapshot=None if snapshot is None else SessionSnapshot.from_json(snapshot),
        async_payment_failed=row["async_payment_failed"],
        sweep_attempts=row["sweep_attempts"],
        missing_at_stripe=row["missing_at_stripe"],
        payment=None if row["payment"] is None else PaymentSnapshot.from_json(row["payment"]),
    )


def _request(row: asyncpg.Record) -> RequestRecord:
    return RequestRecord(
        row["caller"], row["request_id"], row["fingerprint"], row["row_id"], row["reused"]
    )
