"""Database failures, told apart once for the whole store: those that say "not now" become the
domain's Unavailable (retry later), anything else is a bug and passes through. The ledger's
queries, the change feed's connection and the sweep's lock all go through
`translate_db_errors`, so that they agree on what a passing outage is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from service.domain.errors import Unavailable

# SQLSTATEs that say "not now" rather than "never": the connection failed (class 08), the
# server is out of resources (53) or shutting down (57P01-57P03), a transaction lost a race
# (40001, 40P01), a statement was cancelled by a timeout (57014), or the server is a read-only
# standby during a failover (25006); and, when a connection is made, the server refused it
# (class 28, the credentials; 3D000, no such database): the operator's to put right, after
# which a replica that kept retrying recovers without a restart.
# https://www.postgresql.org/docs/current/errcodes-appendix.html
_TRANSIENT_CLASSES = ("08", "53", "28")
_TRANSIENT_STATES = frozenset(
    {"57P01", "57P02", "57P03", "40001", "40P01", "57014", "25006", "3D000"}
)
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
    return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES


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
        raise Unavailable("the database is unavailable", reason="DATABASE_UNAVAILABLE") from exc
