"""Database failures, told apart once for the whole store: those that say "not now" become the
domain's Unavailable (retry later), anything else is a bug and passes through. The ledger's
queries, the change feed's connection and the sweep's lock all go through
`translate_db_errors`, so that they agree on what a passing outage is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

import asyncpg

from service.domain import deadlines
from service.domain.errors import Unavailable
from service.observability import tracing

# SQLSTATEs that say "not now" rather than "never": the connection failed (class 08), the
# server is out of resources (53) or shutting down (57P01-57P03), a transaction lost a race
# (40001, 40P01), a statement was cancelled by a timeout (57014), or the server is a read-only
# standby during a failover (25006). https://www.postgresql.org/docs/current/errcodes-appendix.html
_TRANSIENT_CLASSES = ("08", "53")
_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01", "57014", "25006"})
# And, when a connection is made, the server refused it: the credentials (class 28) or the
# database named (3D000). The operator's to put right, after which a replica that kept retrying
# recovers without a restart; named apart (DATABASE_MISCONFIGURED) so that nobody waits for it
# to pass by itself.
_REFUSED_CLASSES = ("28",)
_REFUSED_STATES = frozenset({"3D000"})
# Failures below SQL: the socket (OSError, TimeoutError among them), or asyncpg's own
# connection state. InternalClientError is what asyncpg raises for a query on a connection the
# server is terminating ("cannot switch to state …; another operation is in progress") before
# the close is processed: seen when Postgres restarts under load (make chaos).
_CONNECTION_FAILURES = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a database failure may pass if the work is tried again later."""
    if isinstance(exc, _CONNECTION_FAILURES):
        return True
    if not isinstance(exc, asyncpg.PostgresError):
        return False
    state = exc.sqlstate or ""
    return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES or is_refusal(exc)


def is_refusal(exc: BaseException) -> bool:
    """Whether Postgres refused the connection itself: wrong credentials, no such database."""
    if not isinstance(exc, asyncpg.PostgresError):
        return False
    state = exc.sqlstate or ""
    return state.startswith(_REFUSED_CLASSES) or state in _REFUSED_STATES


@asynccontextmanager
async def translate_db_errors(*, within: float | None = None) -> AsyncIterator[None]:
    """Database trouble as the domain's Unavailable (reason DATABASE_UNAVAILABLE), once;
    `within` bounds the whole wait (pool acquisition included). Anything else, a constraint
    violation say, is a bug and passes through."""
    try:
        async with asyncio.timeout(within):
            yield
    except TimeoutError as exc:
        raise Unavailable(
            "the database did not answer in time", reason="DATABASE_UNAVAILABLE"
        ) from exc
    except Exception as exc:
        if not is_transient(exc):
            raise
        if is_refusal(exc):
            # Postgres's own words name the user or the database, never a password.
            raise Unavailable(
                f"Postgres refused the connection: {exc} ({getattr(exc, 'sqlstate', '')})",
                reason="DATABASE_MISCONFIGURED",
                retry_after_seconds=30.0,
            ) from exc
        raise Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE") from exc


@asynccontextmanager
async def bounded_trip(command_timeout: float, *, traced: bool) -> AsyncIterator[None]:
    """One bounded trip to the database, for the ledgers' queries: its own limit, or less of the
    caller's deadline; a span of its own when tracing is on; its failures translated."""
    within = deadlines.budget(command_timeout, what="reach the database")
    span = (
        tracing.client_span("postgres", **{"db.system": "postgresql"}) if traced else nullcontext()
    )
    with span:
        async with translate_db_errors(within=within):
            yield
