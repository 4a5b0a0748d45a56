"""Work that one replica at a time must do (the reconciliation sweep), behind a Postgres
advisory lock held on a connection of its own: a pooled connection is never held across the
Stripe calls the work makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from service.domain.errors import Unavailable
from service.store.db_errors import translate_db_errors


class AdvisoryLock:
    def __init__(self, dsn: str, key: int, *, connect_timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._key = key
        self._connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None

    @asynccontextmanager
    async def try_hold(self) -> AsyncIterator[bool]:
        """Yield True while this process holds the lock, False if another one does."""
        async with translate_db_errors():
            conn = await self._connection()
            held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        try:
            yield held
        finally:
            if held:
                await self._release(conn)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        return self._conn

    async def _release(self, conn: asyncpg.Connection) -> None:
        try:
            async with translate_db_errors():
                await conn.execute("SELECT pg_advisory_unlock($1)", self._key)
        except Unavailable:
            # A dead connection has released its session locks already; start afresh.
            await self.close()
