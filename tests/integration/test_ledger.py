"""The ledger against a real Postgres, where only Postgres can tell: migrations, the one-holder
rule under concurrency, the schema spelling the domain's states and rules, notices, and the
cache over it. What every ledger does alike is in tests/contract/."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from service.domain.model import (
    ACTIVE_STATES,
    Attempt,
    Claim,
    LedgerEntry,
    LedgerState,
    SessionSnapshot,
    holds_order,
)
from service.domain.ports import SessionLedger
from service.store.cached_ledger import CachedLedger
from service.store.migrate import apply_migrations, load_migrations
from service.store.pool import create_pool
from service.store.read_cache import ReadCache
from service.store.repository import HOLDS_ORDER_PREDICATE, NOTIFY_CHANNEL, PostgresLedger


@pytest_asyncio.fixture(scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_dsn, max_size=20, command_timeout=5)
    async with pool.acquire() as conn:
        await apply_migrations(conn, load_migrations())
    yield pool
    await pool.close()


def snapshot(session_id: str, status: str, payment_status: str = "unpaid") -> SessionSnapshot:
    return SessionSnapshot(
        id=session_id,
        mode="payment",
        ui_mode="hosted_page",
        status=status,
        payment_status=payment_status,
        currency="usd",
        amount_subtotal=100,
        amount_total=100,
        amount_discount=0,
        amount_shipping=0,
        amount_tax=0,
        livemode=False,
        created=1_790_000_000,
        expires_at=1_790_086_400,
    )


def attempt() -> Attempt:
    return Attempt(str(uuid.uuid4()), {"mode": "payment"}, datetime.now(UTC) + timedelta(hours=1))


async def claim(
    ledger: SessionLedger, order_id: str, fingerprint: str = "fp", caller: str = "orders"
) -> Claim:
    return await ledger.claim(
        caller=caller, order_id=order_id, fingerprint=fingerprint, attempt=attempt
    )


class _NotAtHand(Exception):
    pass


async def at_hand(ledger: SessionLedger, caller: str, order_id: str) -> LedgerEntry | None:
    """The holder of the order if the ledger knows it without a query: a claim that gets as
    far as Postgres asks for the row it would insert first, which is refused here."""

    def refused() -> Attempt:
        raise _NotAtHand

    try:
        held = await ledger.claim(caller=caller, order_id=order_id, fingerprint="", attempt=refused)
    except _NotAtHand:
        return None
    return held.entry


async def test_migrations_apply_once_even_when_started_together(pg_dsn: str) -> None:
    conns = [await asyncpg.connect(pg_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, load_migrations()) for c in conns))
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        for c in conns:
            await c.close()
    assert sum(len(r) for r in results) <= len(load_migrations())
    assert [r["version"] for r in versions] == [m.version for m in load_migrations()]


async def test_concurrent_claims_for_one_order_have_exactly_one_winner(
    pool: asyncpg.Pool,
) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    order_id = f"order-{uuid.uuid4().hex}"

    claims = await asyncio.gather(*(claim(ledger, order_id) for _ in range(30)))

    winners = [c for c in claims if c.won]
    assert len(winners) == 1
    assert {c.entry.row_id for c in claims} == {winners[0].entry.row_id}
    rows = await pool.fetchval(
        "SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id
    )
    assert rows == 1


async def test_a_stale_snapshot_never_moves_a_session_back(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    order_id = f"order-{uuid.uuid4().hex}"
    entry = (await claim(ledger, order_id)).entry
    session_id = f"cs_test_{uuid.uuid4().hex}"

    await ledger.record_snapshot(entry.row_id, snapshot(session_id, "complete", "paid"))
    after_stale = await ledger.record_snapshot(entry.row_id, snapshot(session_id, "open"))

    assert after_stale.state == "complete"
    assert after_stale.snapshot is not None
    assert after_stale.snapshot.payment_status == "paid"
    # Paid, the row still holds the order: a new claim loses to it (and so the use case
    # refuses), in the same statement that would have inserted the claim.
    lost = await claim(ledger, order_id, "other")
    assert not lost.won
    assert lost.entry.row_id == entry.row_id


async def test_recording_a_change_notifies_listeners(pg_dsn: str, pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    entry = (await claim(ledger, f"order-{uuid.uuid4().hex}")).entry
    session_id = f"cs_test_{uuid.uuid4().hex}"
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(pg_dsn)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        await ledger.record_snapshot(entry.row_id, snapshot(session_id, "open"))
        notice = json.loads(await asyncio.wait_for(heard.get(), timeout=5))
        named = {"session": session_id, "caller": "orders", "order": entry.order_id}
        # Opened: no outcome yet, so no event for the feed's readers to read.
        assert notice == {**named, "event": None}
        await ledger.record_snapshot(entry.row_id, snapshot(session_id, "complete", "paid"))
        notice = json.loads(await asyncio.wait_for(heard.get(), timeout=5))
        assert notice == {**named, "event": "order_paid"}
    finally:
        await listener.close()


async def test_discarding_frees_the_order(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    order_id = f"order-{uuid.uuid4().hex}"
    first = await claim(ledger, order_id)

    await ledger.discard_pending(first.entry.row_id)

    assert (await claim(ledger, order_id)).won


async def test_recording_what_is_already_stored_changes_nothing(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    entry = (await claim(ledger, f"order-{uuid.uuid4().hex}")).entry
    session_id = f"cs_test_{uuid.uuid4().hex}"
    first = await ledger.record_snapshot(entry.row_id, snapshot(session_id, "expired"))

    again = await ledger.record_snapshot(entry.row_id, snapshot(session_id, "expired"))

    assert again.updated_at == first.updated_at


async def test_the_schema_names_the_same_states_as_the_domain(pool: asyncpg.Pool) -> None:
    """SQL cannot take the states as parameters in a CHECK constraint or an index predicate,
    so the migration spells them out; this holds the two spellings together."""
    check = await pool.fetchval(
        """SELECT pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'checkout_sessions'::regclass AND contype = 'c'
             AND pg_get_constraintdef(oid) LIKE '%state%'"""
    )
    predicate = await pool.fetchval(
        """SELECT pg_get_expr(indpred, indrelid) FROM pg_index
           WHERE indexrelid = 'checkout_sessions_one_holder_per_order'::regclass"""
    )
    assert set(re.findall(r"'(\w+)'", check)) == {state.value for state in LedgerState}
    holding = {*(state.value for state in ACTIVE_STATES), LedgerState.COMPLETE.value}
    assert set(re.findall(r"'(\w+)'", predicate)) == holding
    assert set(re.findall(r"'(\w+)'", HOLDS_ORDER_PREDICATE)) == holding
    assert "async_payment_failed" in predicate


async def test_the_store_holds_an_order_as_the_migration_and_the_domain_do(
    pool: asyncpg.Pool,
) -> None:
    """One rule, three spellings: the migration's unique index (history, spelled out), the
    store's SQL (built from the domain's tuples) and model.holds_order (which the in-memory
    ledger uses). Postgres, given the store's predicate as an index of its own, writes it back
    exactly as it writes the migration's; and it evaluates the store's predicate as the domain's
    function answers, for every state, its payment failed or not."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE holders (LIKE checkout_sessions) ON COMMIT DROP")
        await conn.execute(
            f"CREATE INDEX holders_one ON holders (caller, order_id) WHERE {HOLDS_ORDER_PREDICATE}"
        )
        predicate = """SELECT pg_get_expr(indpred, indrelid) FROM pg_index
                       WHERE indexrelid = $1::regclass"""
        stores = await conn.fetchval(predicate, "holders_one")
        migrations = await conn.fetchval(predicate, "checkout_sessions_one_holder_per_order")
        assert stores == migrations
        for state in LedgerState:
            for failed in (False, True):
                held = await conn.fetchval(
                    f"""SELECT {HOLDS_ORDER_PREDICATE}
                        FROM (SELECT $1::text AS state, $2::boolean AS async_payment_failed) row""",
                    state,
                    failed,
                )
                assert held == holds_order(state, failed), (state, failed)


async def test_two_callers_have_independent_orders_with_the_same_id(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    order_id = f"order-{uuid.uuid4().hex}"
    mine = await claim(ledger, order_id, caller="orders")
    theirs = await claim(ledger, order_id, caller="billing")
    again = await claim(ledger, order_id, caller="orders")

    assert mine.won and theirs.won and not again.won
    assert again.entry.row_id == mine.entry.row_id
    assert (mine.entry.caller, theirs.entry.caller) == ("orders", "billing")
    assert (await ledger.active_or_latest("billing", order_id)).row_id == theirs.entry.row_id  # type: ignore[union-attr]
    assert await ledger.active_or_latest("nobody", order_id) is None
    assert await ledger.knows_order(order_id)


async def test_sessions_are_looked_up_many_at_once(pool: asyncpg.Pool) -> None:
    ledger = PostgresLedger(pool, command_timeout=5)
    stored = {}
    for _ in range(3):
        entry = (await claim(ledger, f"order-{uuid.uuid4().hex}")).entry
        session_id = f"cs_test_{uuid.uuid4().hex}"
        stored[session_id] = await ledger.record_snapshot(
            entry.row_id, snapshot(session_id, "open")
        )
    unknown = f"cs_test_{uuid.uuid4().hex}"

    found = await ledger.by_session_ids([*stored, unknown])

    assert found == stored
    assert await ledger.by_session_ids([]) == {}


async def test_a_lost_claim_leaves_the_orders_session_at_hand(pool: asyncpg.Pool) -> None:
    """A create that finds its order held by an open session reads that session: kept, the
    next create that repeats it needs no query, until the order changes."""
    ledger = CachedLedger(PostgresLedger(pool, command_timeout=5))
    ledger.connected()
    order_id = f"order-{uuid.uuid4().hex}"
    first = await claim(ledger, order_id)
    session_id = f"cs_test_{uuid.uuid4().hex}"
    stored = await ledger.record_snapshot(first.entry.row_id, snapshot(session_id, "open"))
    assert await at_hand(ledger, "orders", order_id) is None

    lost = await claim(ledger, order_id)

    assert not lost.won
    assert await at_hand(ledger, "orders", order_id) == stored
    ledger.changed(session_id, "orders", order_id)
    assert await at_hand(ledger, "orders", order_id) is None


async def test_a_row_read_before_a_change_is_not_kept(pool: asyncpg.Pool) -> None:
    cache = ReadCache()
    cache.enable(True)
    ledger = PostgresLedger(pool, command_timeout=5)
    order_id = f"order-{uuid.uuid4().hex}"
    first = await claim(ledger, order_id)
    stored = await ledger.record_snapshot(
        first.entry.row_id, snapshot(f"cs_test_{uuid.uuid4().hex}", "open")
    )
    read_at = cache.generation
    # A change notified while the row was on its way, whichever row it was about.
    cache.forget(session_id="cs_other", order=("orders", "order-other"))

    cache.offer(("latest", "orders", order_id), stored, read_at=read_at)
    assert cache.peek(("latest", "orders", order_id)) is None
    cache.offer(("latest", "orders", order_id), stored, read_at=cache.generation)
    assert cache.peek(("latest", "orders", order_id)) == stored
