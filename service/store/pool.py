"""The pool of Postgres connections the ledger's queries take turns on (asyncpg). The change
feed and the sweep's lock hold connections of their own, outside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from service.domain.errors import Unavailable
from service.store.db_errors import translate_db_errors
from service.store.failover import ServerWatch


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be read as a Postgres URL. The message never quotes it: a password
    may be what could not be read."""


async def create_pool(
    dsn: str, *, max_size: int, command_timeout: float, watch: ServerWatch | None = None
) -> asyncpg.Pool:
    """The pool, with its first connection made: what keeps it from connecting is named.
    `watch`, if any, sees each new connection's server first (failover.py)."""

    async def init(conn: asyncpg.Connection) -> None:
        """Per-connection set-up: jsonb in and out as Python objects; the server noted."""
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        if watch is not None:
            await watch.connected(conn)

    async with translate_db_errors(), first_contact():
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            command_timeout=command_timeout,
            init=init,
            reset=_keep_as_is,
        )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


async def _keep_as_is(_: asyncpg.Connection) -> None:
    """Pool connections are handed back as they are. asyncpg's default reset (unlock advisory
    locks, close cursors, UNLISTEN, RESET ALL) costs a round trip on every release, and this
    service leaves no session state on a pooled connection: LISTEN and the sweep's lock have
    connections of their own, and the migrations' lock is released by the code that takes it."""


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
