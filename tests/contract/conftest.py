"""Four ledgers for one contract: the in-memory fake the unit tests use, the Postgres ledger the
service uses, and CachedLedger over each (the service's wraps Postgres; the unit tests' fast
path wraps the fake). Postgres is a database of the suite's own on the session's server,
emptied before each test, so that what one test leaves (a pending row, a watermark) cannot
change another's answers, and so that the notices of the other tests' services (which share
the session's main database) never reach this suite's change feed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from service.domain.ports import FeedChanges, PaymentLedger, SessionChanges, SessionLedger
from service.store.cached_ledger import CachedLedger
from service.store.cached_payments import CachedPayments
from service.store.change_feed import ChangeFeed
from service.store.migrate import apply_migrations, load_migrations
from service.store.payment_ledger import PostgresPayments
from service.store.pool import create_pool
from service.store.repository import PostgresLedger
from tests.unit.fakes import InMemoryChanges, InMemoryLedger, InMemoryPayments

KINDS = ("in-memory", "postgres", "cached in-memory", "cached postgres")
CACHED = ("cached in-memory", "cached postgres")


class WallClock:
    """The fake's clock set to the time Postgres stamps rows with, so that both ledgers answer
    the sweep's time-based questions alike."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Changes(SessionChanges, FeedChanges, Protocol):
    """Where a ledger's changes are notified: to the watchers of a session, and to the feed
    readers of a caller."""


@dataclass
class Ledgers:
    """One ledger under test, and what the tests reach it through."""

    kind: str
    ledger: SessionLedger
    changes: Changes
    """Where the ledger's changes are notified: watchers and feed readers subscribe here."""
    underneath: SessionLedger
    """The ledger a cached one wraps (the ledger itself otherwise): writing to it is another
    replica's write, which this process hears of only by its notice."""
    cache: CachedLedger | None = None
    payments: PaymentLedger | None = None
    """The payments of the same rows (a cached one beside a cached ledger)."""

    @property
    def coherent_at_once(self) -> bool:
        """Notices from the in-memory ledger arrive before its write returns; Postgres sends
        them when the write commits, and they arrive a moment later."""
        return "postgres" not in self.kind


@pytest_asyncio.fixture(scope="session")
async def contract_dsn(pg_dsn: str) -> AsyncIterator[str]:
    name = f"ledger_contract_{uuid.uuid4().hex[:12]}"
    await _execute(pg_dsn, f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, load_migrations())
    finally:
        await conn.close()
    yield dsn
    await _execute(pg_dsn, f'DROP DATABASE "{name}" WITH (FORCE)')


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="session")
async def contract_pool(contract_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(contract_dsn, max_size=10, command_timeout=5)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(params=KINDS)
async def ledgers(
    request: pytest.FixtureRequest, contract_dsn: str, contract_pool: asyncpg.Pool
) -> AsyncIterator[Ledgers]:
    kind: str = request.param
    async for made in _ledgers(kind, contract_dsn, contract_pool):
        yield made


@pytest_asyncio.fixture(params=CACHED)
async def cached(
    request: pytest.FixtureRequest, contract_dsn: str, contract_pool: asyncpg.Pool
) -> AsyncIterator[Ledgers]:
    kind: str = request.param
    async for made in _ledgers(kind, contract_dsn, contract_pool):
        yield made


async def _ledgers(kind: str, dsn: str, pool: asyncpg.Pool) -> AsyncIterator[Ledgers]:
    wrap = kind.startswith("cached")
    if "in-memory" in kind:
        changes = InMemoryChanges()
        memory = InMemoryLedger(WallClock(), changes)
        cache = CachedLedger(memory) if wrap else None
        if cache is not None:
            changes.listen(cache)
        payments: PaymentLedger = InMemoryPayments(memory)
        if cache is not None:
            payments = CachedPayments(payments, cache)
        yield Ledgers(kind, cache or memory, changes, memory, cache, payments)
        return
    await pool.execute(
        "TRUNCATE checkout_sessions, create_requests, stripe_events, sync_watermarks, "
        "feed_events, feed_pruned, payments, payment_operations"
    )
    postgres = PostgresLedger(pool, command_timeout=5)
    cache = CachedLedger(postgres) if wrap else None
    payments = PostgresPayments(pool, command_timeout=5)
    if cache is not None:
        payments = CachedPayments(payments, cache)
    feed = ChangeFeed(dsn, listener=cache)
    await feed.start()
    try:
        yield Ledgers(kind, cache or postgres, feed, postgres, cache, payments)
    finally:
        await feed.close()
