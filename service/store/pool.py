"""The pool of Postgres connections the ledger's queries take turns on (asyncpg). The change
feed and the sweep's lock hold connections of their own, outside it."""

from __future__ import annotations

import json

import asyncpg

from service.store.db_errors import translate_db_errors


async def create_pool(dsn: str, *, max_size: int, command_timeout: float) -> asyncpg.Pool:
    async with translate_db_errors():
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=max_size,
            command_timeout=command_timeout,
            init=_init_connection,
            reset=_keep_as_is,
        )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection set-up: jsonb in and out as Python objects."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_as_is(_: asyncpg.Connection) -> None:
    """Pool connections are handed back as they are. asyncpg's default reset (unlock advisory
    locks, close cursors, UNLISTEN, RESET ALL) costs a round trip on every release, and this
    service leaves no session state on a pooled connection: LISTEN and the sweep's lock have
    connections of their own, and the migrations' lock is released by the code that takes it."""
