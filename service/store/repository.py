"""The ledger in Postgres: plain parameterized SQL behind the domain's SessionLedger port.

No pooled connection is held across a Stripe call: every method takes a connection for one
short statement or transaction and gives it back, so that many creates waiting on Stripe do not
queue on a small pool (docs/architecture.md, "Creating a session for an order").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from service.domain import deadlines
from service.domain.errors import AttemptDropped, Unavailable
from service.domain.model import (
    ACTIVE_STATES,
    Claim,
    LedgerEntry,
    LedgerState,
    Progress,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
    ledger_state,
    progress_of,
)
from service.observability import tracing
from service.observability.metrics import Metrics
from service.store.read_cache import ReadCache

NOTIFY_CHANNEL = "checkout_session_changed"
# The notice that tells every replica's watchers and read cache that a row changed, as a select
# item over the changed rows (`changed`), so that the write and its notice are one statement;
# delivered when the transaction commits (https://www.postgresql.org/docs/current/sql-notify.html).
# change_feed.py reads the JSON.
_NOTIFY = f"""pg_notify('{NOTIFY_CHANNEL}', json_build_object(
    'session', changed.session_id, 'caller', changed.caller, 'order', changed.order_id)::text
) AS notified"""

# SQL for the domain's states, built from them. Neither can be a query parameter: ON CONFLICT
# infers the partial unique index `checkout_sessions_one_holder_per_order` from its predicate,
# which must be spelled as the migration spells it (a test checks that it is).
ACTIVE_PREDICATE = "state IN ({})".format(", ".join(f"'{state}'" for state in ACTIVE_STATES))
HOLDS_ORDER_PREDICATE = (
    f"({ACTIVE_PREDICATE} OR (state = '{LedgerState.COMPLETE}' AND NOT async_payment_failed))"
)

Connection = asyncpg.Connection | PoolConnectionProxy

# SQLSTATEs that say "not now" rather than "never": the connection failed (class 08), the
# server is out of resources (53) or shutting down (57P01-57P03), a transaction lost a race
# (40001, 40P01), a statement was cancelled by a timeout (57014), or the server is a read-only
# standby during a failover (25006). https://www.postgresql.org/docs/current/errcodes-appendix.html
_TRANSIENT_CLASSES = ("08", "53")
_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "57014", "25006"})
# Failures below SQL: the socket, or asyncpg's own connection state. InternalClientError is
# what asyncpg raises for a query on a connection the server is terminating ("cannot switch
# to state …; another operation is in progress") before the close is processed: seen when
# Postgres restarts under load (make chaos).
_TRANSIENT_CONNECTION = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
)


# SQLSTATEs that say the database refuses us until an operator acts: the credentials
# (class 28) or the database named (3D000).
_REFUSED_CLASSES = ("28",)
_REFUSED_STATES = frozenset({"3D000"})


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be read as a Postgres URL. The message never quotes it: a password
    may be what could not be read."""


def is_transient(exc: asyncpg.PostgresError) -> bool:
    state = exc.sqlstate or ""
    return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES


def _is_refusal(exc: asyncpg.PostgresError) -> bool:
    state = exc.sqlstate or ""
    return state.startswith(_REFUSED_CLASSES) or state in _REFUSED_STATES


@asynccontextmanager
async def translate_db_errors(*, within: float | None = None) -> AsyncIterator[None]:
    """Database trouble as the domain's Unavailable, once; `within` bounds the whole wait
    (pool acquisition included). Anything else, a constraint violation say, is a bug and
    passes through."""
    try:
        async with asyncio.timeout(within):
            yield
    except TimeoutError as exc:
        raise Unavailable(
            "the database did not answer in time", reason="DATABASE_UNAVAILABLE"
        ) from exc
    except _TRANSIENT_CONNECTION as exc:
        raise Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE") from exc
    except asyncpg.PostgresError as exc:
        if _is_refusal(exc):
            # Postgres's own words name the user or the database, never a password.
            raise Unavailable(
                f"Postgres refused the connection: {exc} ({exc.sqlstate})",
                reason="DATABASE_MISCONFIGURED",
                retry_after_seconds=30.0,
            ) from exc
        if not is_transient(exc):
            raise
        raise Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE") from exc


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up for the pool: jsonb in and out as Python objects."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_as_is(_: asyncpg.Connection) -> None:
    """Pool connections are handed back as they are. asyncpg's default reset (unlock advisory
    locks, close cursors, UNLISTEN, RESET ALL) costs a round trip on every release, and this
    service leaves no session state on a pooled connection: LISTEN and the sweep's lock have
    connections of their own, and the migrations' lock is released by the code that takes it."""


async def create_pool(dsn: str, *, max_size: int, command_timeout: float) -> asyncpg.Pool:
    """The pool, with its first connection made: what keeps it from connecting is named."""
    async with translate_db_errors(), first_contact():
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            command_timeout=command_timeout,
            init=init_connection,
            reset=_keep_as_is,
        )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


@asynccontextmanager
async def first_contact() -> AsyncIterator[None]:
    """A connection that cannot even be tried (asyncpg cannot read DATABASE_URL), or a server
    that cannot be reached, said in words: at start-up this is the line an operator reads."""
    try:
        yield
    except (ValueError, OverflowError):
        # asyncpg's ClientConfigurationError is a ValueError too; its messages, and Python's
        # for a port that is not a number, may quote the URL's parts.
        raise DatabaseUrlError(
            "DATABASE_URL cannot be read as a Postgres URL "
            "(postgresql://user:password@host:5432/db, with the password percent-encoded: "
            "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)"
        ) from None
    except OSError as exc:
        raise Unavailable(
            f"Postgres cannot be reached: {exc.strerror or type(exc).__name__}",
            reason="DATABASE_UNAVAILABLE",
        ) from exc


class PostgresLedger:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        command_timeout: float,
        metrics: Metrics | None = None,
        cache: ReadCache | None = None,
    ) -> None:
        self._pool = pool
        self._command_timeout = command_timeout
        self._metrics = metrics
        self._cache = cache
        self._traced = False

    def trace_calls(self) -> None:
        """Give each trip to Postgres a span of its own (tracing is on)."""
        self._traced = True

    def _changed(self, entry: LedgerEntry, previous: LedgerState | None) -> None:
        """After a write here: what this process has cached of the row goes at once (other
        replicas hear of it from the notification), and the change is counted."""
        if previous is None:
            return
        self._forget(entry)
        self._count(previous, entry.state)

    def _forget(self, entry: LedgerEntry) -> None:
        if self._cache is not None:
            self._cache.forget(
                session_id=entry.session_id, owner=entry.owner, order_id=entry.order_id
            )

    def _count(self, previous: LedgerState, now: LedgerState) -> None:
        """Sessions created, completed and expired, counted where the ledger changes, once
        per change whichever replica makes it."""
        if self._metrics is None or previous == now:
            return
        if previous == LedgerState.PENDING:
            self._metrics.sessions.labels("created").inc()
        if now == LedgerState.COMPLETE:
            self._metrics.sessions.labels("completed").inc()
        elif now == LedgerState.EXPIRED:
            self._metrics.sessions.labels("expired").inc()

    @asynccontextmanager
    async def _db(self) -> AsyncIterator[None]:
        """One bounded trip to the database: its own limit, or less of the caller's deadline."""
        within = deadlines.budget(self._command_timeout, what="reach the database")
        span = (
            tracing.client_span("postgres", **{"db.system": "postgresql"})
            if self._traced
            else nullcontext()
        )
        with span:
            async with translate_db_errors(within=within):
                yield

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
        read_at = self._cache.generation if self._cache is not None else 0
        async with self._db(), self._pool.acquire() as conn:
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
                    idempotency_key,
                    dict(stripe_params),
                    expires_at,
                    LedgerState.PENDING,
                    Progress.PENDING,
                    owner,
                )
                if row is not None:
                    return Claim(won=True, entry=_entry(row))
                row = await conn.fetchrow(
                    f"""SELECT * FROM checkout_sessions
                       WHERE caller = $2 AND order_id = $1 AND {HOLDS_ORDER_PREDICATE}""",
                    order_id,
                    owner,
                )
                if row is not None:
                    break
            else:
                raise Unavailable(
                    f"order {order_id} is changing too fast to claim", reason="CLAIM_CONTENDED"
                )
        held_by = _entry(row)
        if held_by.session_id is not None and self._cache is not None:
            # The row that holds the order and has a session is the order's latest session:
            # kept, the next call that repeats this one is answered without a query.
            self._cache.offer(_latest_key(owner, order_id), held_by, read_at=read_at)
        return Claim(won=False, entry=held_by)

    def latest_if_cached(self, owner: str, order_id: str) -> LedgerEntry | None:
        if self._cache is None:
            return None
        return self._cache.peek(_latest_key(owner, order_id))

    async def record_snapshot(self, row_id: int, snapshot: SessionSnapshot) -> LedgerEntry:
        async with self._db(), self._pool.acquire() as conn:
            entry, previous = await _record(conn, row_id, snapshot, payment_failed=False)
        self._changed(entry, previous)
        return entry

    async def apply_event(
        self, event: StripeEvent, row_id: int, snapshot: SessionSnapshot, *, payment_failed: bool
    ) -> bool:
        async with self._db(), self._pool.acquire() as conn, conn.transaction():
            if not await _insert_event(conn, event):
                return False
            entry, previous = await _record(conn, row_id, snapshot, payment_failed=payment_failed)
        self._changed(entry, previous)
        return True

    async def skip_event(self, event: StripeEvent) -> bool:
        async with self._db(), self._pool.acquire() as conn:
            return await _insert_event(conn, event)

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
        entry = _entry(row)
        self._forget(entry)
        return entry

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
                f"""WITH changed AS (
                       UPDATE checkout_sessions
                       SET state = $2, progress = $3, missing_at_stripe = true,
                           updated_at = clock_timestamp()
                       WHERE id = $1 AND state = $4
                       RETURNING *)
                   SELECT changed.*, {_NOTIFY} FROM changed""",
                row_id,
                LedgerState.EXPIRED,
                Progress.CLOSED,
                LedgerState.OPEN,
            )
        if row is None:
            return None
        entry = _entry(row)
        self._changed(entry, LedgerState.OPEN)
        return entry

    async def discard_pending(self, row_id: int) -> None:
        async with self._db():
            row = await self._pool.fetchrow(
                "DELETE FROM checkout_sessions WHERE id = $1 AND state = $2 RETURNING *",
                row_id,
                LedgerState.PENDING,
            )
        if row is not None:
            self._forget(_entry(row))

    async def by_session_id(self, session_id: str) -> LedgerEntry | None:
        def load() -> Awaitable[LedgerEntry | None]:
            return self._one("SELECT * FROM checkout_sessions WHERE session_id = $1", session_id)

        if self._cache is None:
            return await load()
        return await self._cache.read(("session", session_id), load, session_id=session_id)

    async def by_session_ids(self, session_ids: Collection[str]) -> dict[str, LedgerEntry]:
        async with self._db():
            rows = await self._pool.fetch(
                "SELECT * FROM checkout_sessions WHERE session_id = ANY($1::text[])",
                list(session_ids),
            )
        return {row["session_id"]: _entry(row) for row in rows}

    async def by_row_id(self, row_id: int) -> LedgerEntry:
        def load() -> Awaitable[LedgerEntry | None]:
            return self._one("SELECT * FROM checkout_sessions WHERE id = $1", row_id)

        entry = await (load() if self._cache is None else self._cache.read(("row", row_id), load))
        if entry is None:
            raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
        return entry

    async def active_or_latest(self, owner: str, order_id: str) -> LedgerEntry | None:
        return await self._one(
            f"""SELECT * FROM checkout_sessions WHERE caller = $2 AND order_id = $1
               ORDER BY {ACTIVE_PREDICATE} DESC, created_at DESC, id DESC LIMIT 1""",
            order_id,
            owner,
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
        self, owner: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
    ) -> list[LedgerEntry]:
        if self._cache is not None and limit == 1 and after is None:
            # An order's latest session, the most common read of all: cached.
            async def load() -> LedgerEntry | None:
                rows = await self._list(owner, order_id, limit=1, after=None)
                return rows[0] if rows else None

            latest = await self._cache.read(
                _latest_key(owner, order_id), load, order=(owner, order_id)
            )
            return [] if latest is None else [latest]
        return await self._list(owner, order_id, limit=limit, after=after)

    async def _list(
        self, owner: str, order_id: str, *, limit: int, after: tuple[datetime, int] | None
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
                owner,
            )
        return [_entry(r) for r in rows]

    async def find_request(self, owner: str, request_id: str) -> RequestRecord | None:
        async with self._db():
            row = await self._pool.fetchrow(
                "SELECT * FROM create_requests WHERE caller = $1 AND request_id = $2",
                owner,
                request_id,
            )
        return None if row is None else _request(row)

    async def save_request(self, record: RequestRecord) -> RequestRecord:
        async with self._db():
            row = await self._pool.fetchrow(
                """INSERT INTO create_requests (caller, request_id, fingerprint, row_id, reused)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (caller, request_id) DO NOTHING RETURNING *""",
                record.owner,
                record.request_id,
                record.fingerprint,
                record.row_id,
                record.reused,
            )
            if row is None:
                row = await self._pool.fetchrow(
                    "SELECT * FROM create_requests WHERE caller = $1 AND request_id = $2",
                    record.owner,
                    record.request_id,
                )
        if row is None:
            raise AttemptDropped(f"the row of request {record.request_id} is gone")
        return _request(row)

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
) -> tuple[LedgerEntry, LedgerState | None]:
    """Store what Stripe said unless the row is already further along (a stale read, as
    webhooks arrive in any order) or already says exactly that (a redelivery, or our own
    write coming back as a webhook), and tell watchers on every replica. Returns the row and,
    if this changed it, the state it had before. One statement, so one round trip: the lock,
    the update and the notice commit together."""
    state = ledger_state(snapshot)
    rank = progress_of(state, snapshot.payment_status)
    row = await conn.fetchrow(
        f"""WITH before AS (SELECT id, state FROM checkout_sessions WHERE id = $1 FOR UPDATE),
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
               RETURNING s.*, before.state AS previous_state)
           SELECT changed.*, {_NOTIFY} FROM changed""",
        row_id,
        state,
        rank,
        snapshot.id,
        snapshot.payment_status,
        snapshot.to_json(),
        snapshot.expires_at,
        payment_failed,
    )
    previous = None
    if row is None:
        row = await conn.fetchrow("SELECT * FROM checkout_sessions WHERE id = $1", row_id)
    else:
        previous = LedgerState(row["previous_state"])
    if row is None:
        raise AttemptDropped(f"ledger row {row_id} is gone; its attempt was dropped")
    return _entry(row), previous


def _latest_key(owner: str, order_id: str) -> tuple[str, str, str]:
    """The read cache's key for an order's latest session."""
    return ("latest", owner, order_id)


def _entry(row: asyncpg.Record) -> LedgerEntry:
    snapshot = row["snapshot"]
    return LedgerEntry(
        row_id=row["id"],
        owner=row["caller"],
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
    )


def _request(row: asyncpg.Record) -> RequestRecord:
    return RequestRecord(
        row["caller"], row["request_id"], row["fingerprint"], row["row_id"], row["reused"]
    )


async def signing_key(pool: asyncpg.Pool) -> bytes:
    """The key that signs page tokens, made by a migration and shared by every replica."""
    async with translate_db_errors():
        key = await pool.fetchval("SELECT key FROM signing_keys WHERE purpose = 'page_token'")
    return bytes(key)


async def database_answers(pool: asyncpg.Pool, *, within: float) -> bool:
    """Whether Postgres answers a trivial query in time: for readiness, never raises."""
    try:
        async with translate_db_errors(within=within):
            await pool.fetchval("SELECT 1")
    except Unavailable:
        return False
    return True
