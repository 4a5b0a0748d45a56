"""The key that signs ListSessions page tokens: made by a migration (0002) and kept in
Postgres, so that every replica signs and reads tokens alike without configuration."""

from __future__ import annotations

import asyncpg

from service.store.db_errors import translate_db_errors


async def signing_key(pool: asyncpg.Pool) -> bytes:
    async with translate_db_errors():
        key = await pool.fetchval("SELECT key FROM signing_keys WHERE purpose = 'page_token'")
    return bytes(key)
