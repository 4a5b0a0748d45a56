"""The event feed against a real Postgres, where only Postgres can tell: that no event is passed
over when transactions commit out of the order they began in (the trap of sequence-numbered
outboxes, https://event-driven.io/en/ordering_in_postgres_outbox/), that each order's events
(its session's and its payment's) come in the order they committed, and that the store's SQL
announces what the domain's rule does. What every ledger does alike is in
tests/contract/test_feed.py."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from service.domain.feed import EventFeed, FeedItem, FeedQuery
from service.domain.feed_cursors import FeedCursors
from service.domain.model import (
    FEED_START,
    Caller,
    LedgerState,
    Role,
    SessionSnapshot,
    StripeEvent,
)
from service.domain.outcomes import EventType, announced
from service.domain.payment_model import DisputeSnapshot, PaymentSnapshot, WriteOutcome
from service.store import outbox, repository
from service.store.migrate import apply_migrations, load_migrations
from service.store.payment_ledger import PostgresPayments
from service.store.pool import create_pool
from service.store.repository import PostgresLedger
from tests.integration.test_ledger import claim, snapshot
from tests.support import eventually
from tests.unit.fakes import InMemoryChanges
from tests.unit.test_payment_model import authorised, captured, refund

WRITERS = 16
ORDERS = 60


@pytest_asyncio.fixture(scope="module")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_dsn, max_size=WRITERS + 8, command_timeout=10)
    async with pool.acquire() as conn:
        await apply_migrations(conn, load_migrations())
    yield pool
    await pool.close()


def new_caller() -> str:
    """A caller of the test's own: the feed is per caller, so other tests' events stay out."""
    return f"feed-{uuid.uuid4().hex[:12]}"


@dataclass
class Commits:
    """When each transaction that wrote to the ledger committed, by its transaction id."""

    at: dict[int, float] = field(default_factory=dict)


class DelayedCommits:
    """The pool PostgresLedger is given, over a real one: each trip to the database runs in a
    transaction of its own connection that commits after a random delay, so that transactions
    commit in another order than the one they began (and took their ids) in. Only the commit
    is late: every statement is the ledger's own, against Postgres."""

    def __init__(self, pool: asyncpg.Pool, rng: random.Random, commits: Commits) -> None:
        self._pool = pool
        self._rng = rng
        self._commits = commits

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                yield conn
            except BaseException:
                await transaction.rollback()
                raise
            txid = await conn.fetchval("SELECT pg_current_xact_id_if_assigned()")
            await asyncio.sleep(self._rng.uniform(0, 0.15))
            await transaction.commit()
            if txid is not None:
                self._commits.at[txid] = time.monotonic()

    async def _one(self, method: str, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await getattr(conn, method)(query, *args)

    async def fetchrow(self, query: str, *args: object) -> Any:
        return await self._one("fetchrow", query, *args)

    async def fetch(self, query: str, *args: object) -> Any:
        return await self._one("fetch", query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        return await self._one("fetchval", query, *args)

    async def execute(self, query: str, *args: object) -> Any:
        return await self._one("execute", query, *args)


async def an_orders_life(
    ledger: PostgresLedger, caller: str, rng: random.Random, order_number: int
) -> None:
    """An order's session through one of its lives, each step written twice at once (a webhook
    and the sweep, say): opened, then paid at once, or paid after a delayed payment, or a
    delayed payment that failed, or expired."""
    entry = (await claim(ledger, f"order-{order_number}", caller=caller)).entry
    sid = f"cs_test_{uuid.uuid4().hex}"
    opened = snapshot(sid, "open")
    await ledger.record_snapshot(entry.row_id, opened)
    life = rng.choice(["paid", "delayed", "failed", "expired"])
    steps: list[tuple[SessionSnapshot, bool]] = {
        "paid": [(snapshot(sid, "complete", "paid"), False)],
        "delayed": [
            (snapshot(sid, "complete", "unpaid"), False),
            (snapshot(sid, "complete", "paid"), False),
        ],
        "failed": [
            (snapshot(sid, "complete", "unpaid"), False),
            (snapshot(sid, "complete", "unpaid"), True),
        ],
        "expired": [(snapshot(sid, "expired"), False)],
    }[life]
    for said, failed in steps:
        await asyncio.sleep(rng.uniform(0, 0.05))
        webhook = ledger.apply_event(_stripe_event(sid), entry.row_id, said, payment_failed=failed)
        # A failed payment is only ever learnt from its event; anything else also by a re-read.
        other = (
            ledger.apply_event(_stripe_event(sid), entry.row_id, said, payment_failed=True)
            if failed
            else ledger.record_snapshot(entry.row_id, said)
        )
        await asyncio.gather(webhook, other)


def _stripe_event(session_id: str) -> StripeEvent:
    return StripeEvent(f"evt_{uuid.uuid4().hex}", "checkout.session.completed", session_id, None)


async def consume(
    feed: EventFeed, caller: Caller, done: asyncio.Event, *, page_size: int
) -> list[FeedItem]:
    """A consumer reading concurrently with the writers, a small page at a time, from the
    cursor of its last page, until the writers are done and a page comes back short."""
    seen: list[FeedItem] = []
    cursor = ""
    while True:
        finished = done.is_set()
        page = await feed.list_events(caller, FeedQuery(after=cursor), page_size)
        seen += page.items
        cursor = page.next_cursor
        if len(page.items) < page_size:
            if finished:
                return seen
            await asyncio.sleep(0.01)


async def test_many_writers_and_late_commits_a_consumer_sees_every_event_once_in_commit_order(
    pool: asyncpg.Pool,
) -> None:
    rng = random.Random(19)
    commits = Commits()
    delayed: Any = DelayedCommits(pool, rng, commits)
    ledger = PostgresLedger(delayed, command_timeout=10)
    reader = PostgresLedger(pool, command_timeout=10)
    caller = Caller(new_caller(), Role.CALLER)
    feed = EventFeed(reader, InMemoryChanges(), FeedCursors(bytes(32)))
    done = asyncio.Event()
    lanes = asyncio.Semaphore(WRITERS)

    async def one(number: int) -> None:
        async with lanes:
            await an_orders_life(ledger, caller.name, rng, number)

    consumer = asyncio.create_task(consume(feed, caller, done, page_size=3))
    await asyncio.gather(*(one(n) for n in range(ORDERS)))
    done.set()
    seen = await asyncio.wait_for(consumer, 60)

    stored = await pool.fetch(
        "SELECT id, txid, order_id, type, session->>'updated_at' AS updated_at FROM feed_events"
        " WHERE caller = $1",
        caller.name,
    )
    # Every event once: nothing passed over, nothing twice.
    assert Counter(item.event.id for item in seen) == Counter(
        uuid.UUID(int=row["id"].int) for row in stored
    )
    # Each order's events in the order they committed: the row's lock orders its writers, and
    # each stamps the row's updated_at while it holds it.
    by_order: defaultdict[str, list[Any]] = defaultdict(list)
    for item in seen:
        by_order[item.event.order_id].append(item.event.session.updated_at)
    assert all(times == sorted(times) for times in by_order.values())
    assert len(by_order) == ORDERS
    # The trap was there to fall into: events whose transaction began (took its id) before
    # another's, yet committed after it.
    committed = [(row["txid"], commits.at[row["txid"]]) for row in stored]
    late = sum(
        1
        for a_txid, a_at in committed
        for b_txid, b_at in committed
        if a_txid < b_txid and a_at > b_at
    )
    assert late > 0


async def test_a_webhook_waiting_for_the_row_is_announced_after_the_write_that_held_it(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply_event records the event id and then writes the row: if the INSERT came first, the
    transaction would take its id before waiting for the row, and a write that took the row
    meanwhile and committed first would be read after it. The webhook here is held between
    the two (after its INSERT) while another write of the same row comes and goes."""
    ledger = PostgresLedger(pool, command_timeout=10)
    caller = new_caller()
    entry = (await claim(ledger, f"order-{uuid.uuid4().hex[:8]}", caller=caller)).entry
    sid = f"cs_test_{uuid.uuid4().hex}"
    await ledger.record_snapshot(entry.row_id, snapshot(sid, "open"))
    reached, release = asyncio.Event(), asyncio.Event()
    insert_event = repository._insert_event

    async def held(conn: Any, event: Any) -> bool:
        inserted = await insert_event(conn, event)
        reached.set()
        await release.wait()
        return inserted

    monkeypatch.setattr(repository, "_insert_event", held)
    webhook = asyncio.create_task(
        ledger.apply_event(
            _stripe_event(sid),
            entry.row_id,
            snapshot(sid, "complete", "paid"),
            payment_failed=False,
        )
    )
    await asyncio.wait_for(reached.wait(), 10)
    sweep = asyncio.create_task(
        ledger.record_snapshot(entry.row_id, snapshot(sid, "complete", "unpaid"))
    )

    async def sweep_committed_or_waiting() -> bool:
        waiting = await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return sweep.done() or waiting > 0

    await eventually(sweep_committed_or_waiting, within_seconds=10)
    release.set()
    await asyncio.gather(webhook, sweep)

    read = await ledger.read_feed(caller, FEED_START, limit=10)
    times = [event.session.updated_at for event in read.events]
    assert read.events and times == sorted(times)


async def test_an_event_of_a_transaction_that_began_later_waits_for_the_older_one(
    pool: asyncpg.Pool,
) -> None:
    """Held back while a transaction older than its own is running, whatever that one does;
    read once it ends. The read says so, for the feed's reader to read again."""
    ledger = PostgresLedger(pool, command_timeout=10)
    caller = new_caller()
    entry = (await claim(ledger, f"order-{uuid.uuid4().hex[:8]}", caller=caller)).entry
    sid = f"cs_test_{uuid.uuid4().hex}"
    await ledger.record_snapshot(entry.row_id, snapshot(sid, "open"))
    async with pool.acquire() as older:
        transaction = older.transaction()
        await transaction.start()
        await older.fetchval("SELECT pg_current_xact_id()")
        await ledger.record_snapshot(entry.row_id, snapshot(sid, "complete", "paid"))
        held = await ledger.read_feed(caller, FEED_START, limit=10)
        await transaction.rollback()
    after = await ledger.read_feed(caller, FEED_START, limit=10)

    assert (held.events, held.tail, held.held_back) == ((), None, True)
    assert [e.type for e in after.events] == ["order_paid"] and not after.held_back


async def store_payment(payments: PostgresPayments, row_id: int, view: PaymentSnapshot) -> None:
    """A view of the payment stored as the service stores one: over the version it read, read
    again when another write came first (payments.py)."""
    while True:
        record = await payments.payment(row_id)
        written = await payments.record_payment(
            row_id, view, seen=None if record is None else record.version
        )
        if written.outcome != WriteOutcome.STALE:
            return


MONEY_LIVES: dict[str, list[EventType]] = {
    "shipped": [
        EventType.PAYMENT_AUTHORIZED,
        EventType.PAYMENT_CAPTURED,
        EventType.PAYMENT_REFUNDED,
        EventType.REFUND_FAILED,
    ],
    "cancelled": [EventType.PAYMENT_AUTHORIZED, EventType.AUTHORIZATION_RELEASED],
    "disputed": [
        EventType.PAYMENT_CAPTURED,
        EventType.DISPUTE_OPENED,
        EventType.DISPUTE_CLOSED,
    ],
}


def money_views(life: str, payment_intent_id: str) -> list[PaymentSnapshot]:
    first = dataclasses.replace(authorised(), id=payment_intent_id)
    took = captured(first, 3990)
    dispute = DisputeSnapshot("du_1", "needs_response", "fraudulent", 3990, 2)
    return {
        "shipped": [
            first,
            captured(first, 3000),
            captured(first, 3000, refund("re_a", 500, request_id="r-1")),
            captured(first, 3000, refund("re_a", 500, "failed", request_id="r-1")),
        ],
        "cancelled": [
            first,
            dataclasses.replace(
                first, status="canceled", cancellation_reason="requested_by_customer"
            ),
        ],
        "disputed": [
            took,
            dataclasses.replace(took, dispute=dispute),
            dataclasses.replace(took, dispute=dataclasses.replace(dispute, status="lost")),
        ],
    }[life]


async def a_payments_life(
    ledger: PostgresLedger,
    payments: PostgresPayments,
    caller: str,
    rng: random.Random,
    order_number: int,
) -> str:
    """An order paid, then its money through one of its lives, each view of Stripe's stored
    twice at once (the call that moved the money and its webhook, say); the life's name."""
    entry = (await claim(ledger, f"money-{order_number}", caller=caller)).entry
    sid = f"cs_test_{uuid.uuid4().hex}"
    pi = f"pi_{uuid.uuid4().hex}"
    paid = dataclasses.replace(snapshot(sid, "complete", "paid"), payment_intent_id=pi)
    await asyncio.gather(
        ledger.record_snapshot(entry.row_id, paid),
        ledger.apply_event(_stripe_event(sid), entry.row_id, paid, payment_failed=False),
    )
    life = rng.choice(sorted(MONEY_LIVES))
    for view in money_views(life, pi):
        await asyncio.sleep(rng.uniform(0, 0.05))
        await asyncio.gather(*(store_payment(payments, entry.row_id, view) for _ in range(2)))
    return life


async def test_the_money_of_many_orders_written_twice_with_late_commits_is_announced_once_each(
    pool: asyncpg.Pool,
) -> None:
    """The payments' writes under the same guarantees as the sessions': every event once,
    nothing for a write that changed nothing, and each order's events, its session's and its
    money's, in the order they committed."""
    rng = random.Random(21)
    delayed: Any = DelayedCommits(pool, rng, Commits())
    ledger = PostgresLedger(delayed, command_timeout=10)
    payments = PostgresPayments(delayed, command_timeout=10)
    caller = Caller(new_caller(), Role.CALLER)
    feed = EventFeed(
        PostgresLedger(pool, command_timeout=10), InMemoryChanges(), FeedCursors(bytes(32))
    )
    done = asyncio.Event()
    lanes = asyncio.Semaphore(WRITERS)

    async def one(number: int) -> tuple[str, str]:
        async with lanes:
            return f"money-{number}", await a_payments_life(
                ledger, payments, caller.name, rng, number
            )

    consumer = asyncio.create_task(consume(feed, caller, done, page_size=3))
    lives = dict(await asyncio.gather(*(one(n) for n in range(ORDERS // 2))))
    done.set()
    seen = await asyncio.wait_for(consumer, 60)

    assert len({item.event.id for item in seen}) == len(seen)
    by_order: defaultdict[str, list[Any]] = defaultdict(list)
    for item in seen:
        by_order[item.event.order_id].append(item.event)
    assert {order_id: [event.type for event in got] for order_id, got in by_order.items()} == {
        order_id: [EventType.ORDER_PAID, *MONEY_LIVES[life]] for order_id, life in lives.items()
    }
    for got in by_order.values():
        times = [event.session.updated_at for event in got]
        assert times == sorted(times)
    assert set(lives.values()) == set(MONEY_LIVES)


@pytest.mark.parametrize("state", list(LedgerState))
async def test_the_store_announces_what_the_domains_rule_does(
    pool: asyncpg.Pool, state: LedgerState
) -> None:
    """One rule, two spellings: outcomes.announced (which the in-memory ledger calls) and the
    SQL the store builds from the same table, which Postgres evaluates here for every state a
    row can be in."""
    for payment_status in (None, "paid", "unpaid", "no_payment_required", "newer_than_us"):
        for failed in (False, True):
            said = await pool.fetchval(
                f"""SELECT {outbox.announced_sql("r")}
                    FROM (VALUES ($1::text, $2::text, $3::boolean))
                         AS r (state, payment_status, async_payment_failed)""",
                str(state),
                payment_status,
                failed,
            )
            assert said == announced(state, payment_status, failed), (payment_status, failed)
