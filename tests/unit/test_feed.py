"""The event feed's use case (service/domain/feed.py) on the in-memory fakes: what a caller
reads, from which cursor, what is refused and how, and how live streams share one reader per
caller that reads only when woken. The rule of which change announces what is in
test_outcomes.py; the SQL's part, against Postgres, in tests/contract and tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

import pytest

from service.domain import feed as feed_module
from service.domain.checkout import Lookup
from service.domain.errors import CursorOutOfRange, InvalidRequest, Unavailable
from service.domain.feed import EventFeed, FeedItem, FeedQuery
from service.domain.feed_cursors import FeedCursors
from service.domain.model import Caller, FeedPosition, Role
from service.domain.outcomes import EventType
from service.domain.sync import EventOutcome
from tests.support import eventually
from tests.unit.builders import SHOP, World, command, event, make_world

OPERATOR = Caller("oncall", Role.OPERATOR)
KEY = bytes(range(32))


@dataclass
class Feed:
    world: World
    feed: EventFeed
    cursors: FeedCursors


@pytest.fixture
def setup() -> Feed:
    world = make_world()
    cursors = FeedCursors(KEY)
    return Feed(world, EventFeed(world.ledger, world.changes, cursors), cursors)


async def pay(world: World, order_id: str, *, payment_status: str = "paid") -> str:
    """An order created and paid, its webhook applied: its session id."""
    entry = (await world.create(command(order_id))).entry
    assert entry.session_id is not None
    world.stripe.complete(entry.session_id, payment_status=payment_status)
    applied = await world.sync.handle_event(event("completed", entry.session_id, order_id))
    assert applied == EventOutcome.APPLIED
    return entry.session_id


def refused_fields(caught: pytest.ExceptionInfo[InvalidRequest]) -> list[str]:
    return [v.field for v in caught.value.violations]


# -- ListEvents --


async def test_a_payment_is_listed_with_a_cursor_that_resumes_after_it(setup: Feed) -> None:
    await pay(setup.world, "order-1")
    await pay(setup.world, "order-2")

    first = await setup.feed.list_events(SHOP, FeedQuery(), 1)
    rest = await setup.feed.list_events(SHOP, FeedQuery(after=first.next_cursor), 10)
    again = await setup.feed.list_events(SHOP, FeedQuery(after=first.items[0].cursor), 10)

    [paid] = first.items
    assert (paid.event.type, paid.event.order_id) == (EventType.ORDER_PAID, "order-1")
    assert paid.event.session.order_id == "order-1"
    assert [i.event.order_id for i in rest.items] == ["order-2"]
    assert [i.event.id for i in again.items] == [i.event.id for i in rest.items]
    # Caught up: the next call from here returns nothing new, from the same place.
    caught_up = await setup.feed.list_events(SHOP, FeedQuery(after=rest.next_cursor), 10)
    assert caught_up.items == () and caught_up.next_cursor == rest.next_cursor


async def test_an_empty_feed_lists_nothing_and_has_no_cursor_yet(setup: Feed) -> None:
    page = await setup.feed.list_events(SHOP, FeedQuery(), 0)

    assert (page.items, page.next_cursor) == ((), "")


async def test_a_filtered_page_moves_past_what_it_skipped(setup: Feed) -> None:
    await pay(setup.world, "order-1", payment_status="unpaid")  # a delayed payment
    await pay(setup.world, "order-2")
    await setup.world.create(command("order-3"))
    await setup.world.checkout.expire_session(SHOP, Lookup(order_id="order-3"))

    paid = await setup.feed.list_events(SHOP, FeedQuery(types=(EventType.ORDER_PAID,)), 10)
    tail = setup.world.ledger.feed[-1].position

    assert [i.event.order_id for i in paid.items] == ["order-2"]
    assert setup.cursors.read(paid.next_cursor, SHOP.name) == tail


async def test_bad_requests_are_refused_by_field_before_any_read(setup: Feed) -> None:
    other = FeedCursors(KEY).issue("billing", FeedPosition(1, uuid4()))
    cases = [
        (FeedQuery(after="not a cursor!"), 10, ["after"]),
        (FeedQuery(after="x" * 500), 10, ["after"]),
        (FeedQuery(after=other), 10, ["after"]),
        (FeedQuery(types=(None,)), 10, ["types[0]"]),
        (FeedQuery(types=("order_paid", "order_refunded")), 10, ["types[1]"]),
        (FeedQuery(caller="billing"), 10, ["caller"]),
        (FeedQuery(caller="a\x00b"), 10, ["caller"]),
        (FeedQuery(), 1001, ["page_size"]),
        (FeedQuery(), -1, ["page_size"]),
    ]
    for query, size, fields in cases:
        with pytest.raises(InvalidRequest) as caught:
            await setup.feed.list_events(SHOP, query, size)
        assert refused_fields(caught) == fields, query
    assert setup.world.ledger.feed_reads == 0


async def test_operators_name_the_caller_whose_feed_they_read(setup: Feed) -> None:
    await pay(setup.world, "order-1")

    with pytest.raises(InvalidRequest) as caught:
        await setup.feed.list_events(OPERATOR, FeedQuery(), 10)
    page = await setup.feed.list_events(OPERATOR, FeedQuery(caller=SHOP.name), 10)
    nobody = await setup.feed.list_events(OPERATOR, FeedQuery(caller="billing"), 10)

    assert refused_fields(caught) == ["caller"]
    assert [i.event.order_id for i in page.items] == ["order-1"]
    assert nobody.items == ()
    # The cursor is the feed's, whoever read it: the caller resumes from it too.
    mine = await setup.feed.list_events(SHOP, FeedQuery(after=page.items[0].cursor), 10)
    assert mine.items == ()


# -- cursors the feed cannot go on from --


async def test_a_cursor_older_than_retention_is_out_of_range_with_the_oldest_cursor(
    setup: Feed,
) -> None:
    for n in range(3):
        await pay(setup.world, f"order-{n}")
    first = await setup.feed.list_events(SHOP, FeedQuery(), 1)
    second = await setup.feed.list_events(SHOP, FeedQuery(after=first.next_cursor), 1)
    second_written = setup.world.ledger.feed[1].created_at
    await setup.world.ledger.prune_feed(
        created_before=second_written + timedelta(microseconds=1), limit=10
    )

    with pytest.raises(CursorOutOfRange) as caught:
        await setup.feed.list_events(SHOP, FeedQuery(after=first.next_cursor), 10)
    # The last event pruned is no loss to a consumer that handled it.
    at_the_edge = await setup.feed.list_events(SHOP, FeedQuery(after=second.next_cursor), 10)

    assert caught.value.reason == "CURSOR_EXPIRED"
    key, resume = caught.value.resume
    assert key == "oldest_cursor"
    after_oldest = await setup.feed.list_events(SHOP, FeedQuery(after=resume), 10)
    assert [i.event.order_id for i in after_oldest.items] == ["order-2"]
    assert [i.event.order_id for i in at_the_edge.items] == ["order-2"]


async def test_a_cursor_a_failover_lost_is_out_of_range_with_the_latest_cursor_before_it(
    setup: Feed,
) -> None:
    await pay(setup.world, "order-1")
    await pay(setup.world, "order-2")
    page = await setup.feed.list_events(SHOP, FeedQuery(), 10)
    held = page.next_cursor  # the consumer handled order-2's payment
    setup.world.ledger.lose_last_events(1)
    await pay(setup.world, "order-3")  # written after the failover, with order-2's txid again

    with pytest.raises(CursorOutOfRange) as caught:
        await setup.feed.list_events(SHOP, FeedQuery(after=held), 10)

    assert caught.value.reason == "CURSOR_UNKNOWN"
    key, resume = caught.value.resume
    assert key == "latest_cursor"
    since = await setup.feed.list_events(SHOP, FeedQuery(after=resume), 10)
    assert [i.event.order_id for i in since.items] == ["order-3"]


async def test_a_cursor_beyond_everything_with_nothing_before_it_resumes_from_the_start(
    setup: Feed,
) -> None:
    beyond = setup.cursors.issue(SHOP.name, FeedPosition(10**12, uuid4()))

    with pytest.raises(CursorOutOfRange) as caught:
        await setup.feed.list_events(SHOP, FeedQuery(after=beyond), 10)

    assert caught.value.resume == ("latest_cursor", "")


# -- StreamEvents --


@asynccontextmanager
async def streaming(
    setup: Feed, caller: Caller = SHOP, query: FeedQuery | None = None
) -> AsyncIterator[asyncio.Queue[FeedItem | BaseException]]:
    """A stream read as fast as it comes, into a queue (with what ended it, if anything)."""
    received: asyncio.Queue[FeedItem | BaseException] = asyncio.Queue()
    stream = setup.feed.stream_events(caller, query or FeedQuery())

    async def read(batches: AsyncGenerator[tuple[FeedItem, ...], None]) -> None:
        try:
            async for batch in batches:
                assert batch, "a batch has events"
                for item in batch:
                    received.put_nowait(item)
        except Exception as exc:
            received.put_nowait(exc)

    task = asyncio.create_task(read(stream))
    try:
        yield received
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()


async def next_item(received: asyncio.Queue[FeedItem | BaseException]) -> FeedItem:
    got = await asyncio.wait_for(received.get(), 5)
    if isinstance(got, BaseException):
        raise got
    return got


async def joined(setup: Feed, readers: int = 1) -> None:
    """Until the caller's reader has subscribed to the change feed."""

    async def subscribed() -> bool:
        return setup.world.changes.feed_readers(SHOP.name) == readers

    await eventually(subscribed, within_seconds=5)


async def test_a_stream_replays_from_its_cursor_then_follows_live_events(setup: Feed) -> None:
    await pay(setup.world, "order-1")
    await pay(setup.world, "order-2")
    first = await setup.feed.list_events(SHOP, FeedQuery(), 1)

    async with streaming(setup, query=FeedQuery(after=first.next_cursor)) as received:
        replayed = await next_item(received)
        await pay(setup.world, "order-3")
        live = await next_item(received)

    assert (replayed.event.order_id, live.event.order_id) == ("order-2", "order-3")
    resumed = await setup.feed.list_events(SHOP, FeedQuery(after=replayed.cursor), 10)
    assert [i.event.order_id for i in resumed.items] == ["order-3"]


async def test_streams_of_one_caller_share_one_read_per_event_and_idle_ones_read_nothing(
    setup: Feed,
) -> None:
    ledger = setup.world.ledger
    async with (
        streaming(setup) as one,
        streaming(setup) as two,
        streaming(setup, OPERATOR, FeedQuery(caller=SHOP.name)) as three,
    ):
        await joined(setup)
        await asyncio.sleep(0.1)
        reads = ledger.feed_reads
        # A change that announces nothing (a new session) wakes no reader.
        await setup.world.create(command("order-quiet"))
        await asyncio.sleep(0.2)
        assert ledger.feed_reads == reads
        await pay(setup.world, "order-1")
        items = [await next_item(received) for received in (one, two, three)]

        assert ledger.feed_reads == reads + 1
    assert {i.event.order_id for i in items} == {"order-1"}
    assert len({i.cursor for i in items}) == 1  # sealed once, for all of them
    assert setup.world.changes.feed_readers(SHOP.name) == 0


async def test_a_stream_sees_only_the_types_it_asked_for(setup: Feed) -> None:
    query = FeedQuery(types=(EventType.ORDER_PAID,))
    async with streaming(setup, query=query) as received:
        await joined(setup)
        await pay(setup.world, "order-1", payment_status="unpaid")
        await pay(setup.world, "order-2")
        item = await next_item(received)

    assert (item.event.order_id, item.event.type) == ("order-2", EventType.ORDER_PAID)


async def test_an_event_held_back_by_an_older_transaction_is_read_again_until_it_is_not(
    setup: Feed,
) -> None:
    async with streaming(setup) as received:
        await joined(setup)
        with setup.world.ledger.running_transaction():
            await pay(setup.world, "order-1")
            await asyncio.sleep(0.2)
            assert received.empty()
        # No notice comes when the older transaction ends: the reader reads again by itself.
        item = await next_item(received)

    assert item.event.order_id == "order-1"


async def test_a_reader_reads_once_when_the_change_feed_is_back(setup: Feed) -> None:
    async with streaming(setup) as one, streaming(setup) as two:
        await joined(setup)
        await asyncio.sleep(0.1)
        setup.world.changes.disconnect()
        await pay(setup.world, "order-1")  # its notice is lost
        await asyncio.sleep(0.1)
        assert one.empty() and two.empty()
        reads = setup.world.ledger.feed_reads
        setup.world.changes.reconnect()
        items = [await next_item(one), await next_item(two)]

        assert setup.world.ledger.feed_reads == reads + 1
    assert [i.event.order_id for i in items] == ["order-1", "order-1"]


async def test_a_stream_from_a_cursor_out_of_range_ends_before_anything_is_sent(
    setup: Feed,
) -> None:
    beyond = setup.cursors.issue(SHOP.name, FeedPosition(10**12, uuid4()))

    async with streaming(setup, query=FeedQuery(after=beyond)) as received:
        with pytest.raises(CursorOutOfRange):
            await next_item(received)


async def test_a_stream_that_falls_too_far_behind_is_ended_to_resume_from_its_cursor(
    setup: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "_BEHIND_MAX", 2)
    stream = setup.feed.stream_events(SHOP, FeedQuery())
    waiting = asyncio.create_task(anext(stream))
    await joined(setup)
    await pay(setup.world, "order-0")
    [first] = await asyncio.wait_for(waiting, 5)
    # The consumer stops reading; the reader goes on.
    for n in range(1, 4):
        await pay(setup.world, f"order-{n}")
    await asyncio.sleep(0.1)

    received: list[FeedItem] = []
    with pytest.raises(Unavailable) as caught:
        while True:
            received += await asyncio.wait_for(anext(stream), 5)
    await stream.aclose()

    assert first.event.order_id == "order-0"
    assert len(received) < 3
    assert caught.value.reason == "STREAM_BEHIND"


async def test_a_reader_that_fails_ends_its_streams_and_the_next_stream_starts_another(
    setup: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = setup.world.ledger
    read_feed = ledger.read_feed

    async def broken(*args: object, **kwargs: object) -> object:
        raise Unavailable("Postgres is down", reason="DATABASE_UNAVAILABLE")

    async with streaming(setup) as received:
        await joined(setup)
        monkeypatch.setattr(ledger, "read_feed", broken)
        await pay(setup.world, "order-1")
        with pytest.raises(Unavailable):
            await next_item(received)
    monkeypatch.setattr(ledger, "read_feed", read_feed)
    async with streaming(setup) as again:
        item = await next_item(again)

    assert item.event.order_id == "order-1"


async def test_the_sweep_prunes_events_past_retention_oldest_first(setup: Feed) -> None:
    await pay(setup.world, "order-1")
    setup.world.clock.advance(timedelta(days=20))
    await pay(setup.world, "order-2")
    setup.world.clock.advance(timedelta(days=15))  # order-1's event is 35 days old

    report = await setup.world.sync.sweep()
    left = await setup.feed.list_events(SHOP, FeedQuery(), 10)

    assert report.pruned == 1
    assert [i.event.order_id for i in left.items] == ["order-2"]
