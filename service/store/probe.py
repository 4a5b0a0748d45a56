"""Whether Postgres answers, for readiness (service/edge/readiness.py)."""

from __future__ import annotations

import asyncpg

from service.domain.errors import Unavailable
from service.store.db_errors import translate_db_errors


async def database_answers(pool: asyncpg.Pool, *, within: float) -> bool:
    """Whether a trivial query is answered in time; never raises."""
    try:
        async with translate_db_errors(within=within):
            await pool.fetchval("SELECT 1")
    except Unavailable:
        return False
    return True
