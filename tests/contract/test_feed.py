"""The event feed's part of the ledger's contract (service/domain/ports.py: FeedLedger, and the
events every write that changes what a row announces writes with it), held against every ledger
alike (conftest.py): the in-memory fake writes and reads the same events as Postgres, by the
same rule (service/domain/outcomes.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.domain.model import FEED_START, FeedEvent, FeedPosition, LedgerEntry
from service.domain.outcomes import EventType
from service.domain.payment_model import (
    DisputeSnapshot,
    PaymentEvent,
    PaymentSnapshot,
    WriteOutcome,
)
from tests.contract.conftest import Ledgers
from tests.contract.test_ledger import (
    CALLER,
    adopt,
    claim,
    event,
    order,
    session,
    snapshot,
    stored,
)
from tests.contract.test_payment_ledger import completed, intent, payments_of
from tests.unit.test_payment_model import authorised, captured, refund


async def events(ledgers: Ledgers, caller: str = CALLER) -> list[FeedEvent]:
    """Every event of the caller's, in feed order."""
    read = await ledgers.ledger.read_feed(caller, FEED_START, limit=1000)
    return list(read.events)


def kept(entry: LedgerEntry) -> LedgerEntry:
    """The row as an event keeps it: without its Stripe parameters."""
    return replace(entry, stripe_params={})


async def opened(ledgers: Ledgers, order_id: str | None = None) -> LedgerEntry:
    return await stored(ledgers, order_id or order())


async def test_a_payment_writes_one_event_with_the_session_as_stored(ledgers: Ledgers) -> None:
    row = await opened(ledgers)
    sid = row.session_id or ""

    paid = await ledgers.ledger.record_snapshot(row.row_id, snapshot(sid, "complete", "paid"))

    [written] = await events(ledgers)
    assert (written.type, written.caller, written.order_id) == (
        EventType.ORDER_PAID,
        CALLER,
        row.order_id,
    )
    assert written.session == kept(paid)
    assert written.id == written.position.event_id


async def test_each_outcome_is_announced_once_in_the_order_it_happened(ledgers: Ledgers) -> None:
    delayed, failed, expired, missing = [await opened(ledgers) for _ in range(4)]
    later = snapshot(delayed.session_id or "", "complete", "unpaid")

    await ledgers.ledger.record_snapshot(delayed.row_id, later)
    await ledgers.ledger.record_snapshot(
        delayed.row_id, snapshot(delayed.session_id or "", "complete", "paid")
    )
    sid = failed.session_id or ""
    await ledgers.ledger.record_snapshot(failed.row_id, snapshot(sid, "complete", "unpaid"))
    await ledgers.ledger.apply_event(
        event(sid, "async_payment_failed"),
        failed.row_id,
        snapshot(sid, "complete", "unpaid"),
        payment_failed=True,
    )
    await ledgers.ledger.record_snapshot(
        expired.row_id, snapshot(expired.session_id or "", "expired")
    )
    await ledgers.ledger.end_missing(missing.row_id)

    assert [(e.order_id, e.type) for e in await events(ledgers)] == [
        (delayed.order_id, EventType.PAYMENT_PROCESSING),
        (delayed.order_id, EventType.ORDER_PAID),
        (failed.order_id, EventType.PAYMENT_PROCESSING),
        (failed.order_id, EventType.PAYMENT_FAILED),
        (expired.order_id, EventType.SESSION_EXPIRED),
        (missing.order_id, EventType.SESSION_EXPIRED),
    ]


async def test_no_event_without_a_change_of_outcome(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    said = snapshot(session())
    await ledgers.ledger.record_snapshot(pending.row_id, said)  # pending to open: no outcome
    await ledgers.ledger.record_snapshot(pending.row_id, replace(said, customer_email="a@b.c"))
    paid = snapshot(said.id, "complete", "paid")
    await ledgers.ledger.record_snapshot(pending.row_id, paid)
    await ledgers.ledger.record_snapshot(pending.row_id, paid)  # the same again
    await ledgers.ledger.record_snapshot(pending.row_id, said)  # a stale read
    # Paid is final: a later read with more in it changes the row, not its outcome.
    await ledgers.ledger.record_snapshot(pending.row_id, replace(paid, customer_email="x@y.z"))
    await ledgers.ledger.end_missing(pending.row_id)  # not open: nothing to end

    assert [e.type for e in await events(ledgers)] == [EventType.ORDER_PAID]


async def test_a_webhook_applied_twice_gives_one_event(ledgers: Ledgers) -> None:
    row = await opened(ledgers)
    sid = row.session_id or ""
    completed = event(sid)

    for _ in range(2):
        await ledgers.ledger.apply_event(
            completed, row.row_id, snapshot(sid, "complete", "paid"), payment_failed=False
        )
    # The same outcome by another event (Stripe's async_payment_succeeded after completed).
    await ledgers.ledger.apply_event(
        event(sid, "async_payment_succeeded"),
        row.row_id,
        snapshot(sid, "complete", "paid"),
        payment_failed=False,
    )

    assert [e.type for e in await events(ledgers)] == [EventType.ORDER_PAID]


async def test_an_adopted_copy_announces_what_its_state_stands_for_once(ledgers: Ledgers) -> None:
    """A recovered cart's copy (recovery.py) is a new row: paid, it announces the order paid in
    the statement that adopts it; open, nothing (an open row announces nothing); adopted again,
    or lost to the order's holder, nothing more."""
    paid_order, open_order, held_order = order(), order(), order()
    for order_id in (paid_order, open_order):
        await stored(ledgers, order_id, "expired")
    await stored(ledgers, held_order)
    before = await events(ledgers)
    paid_copy = snapshot(session(), "complete", "paid")

    async with ledgers.changes.subscribe_feed(CALLER) as woken:
        paid = await adopt(ledgers, paid_order, paid_copy)
        await asyncio.wait_for(woken.wait(), 5)
    opened_copy = await adopt(ledgers, open_order, snapshot(session()))
    again = await adopt(ledgers, paid_order, paid_copy)
    lost = await adopt(ledgers, held_order, snapshot(session(), "complete", "paid"))

    assert paid.won and opened_copy.won and again.won and not lost.won
    [announced] = (await events(ledgers))[len(before) :]
    assert (announced.type, announced.order_id) == (EventType.ORDER_PAID, paid_order)
    assert announced.session == kept(paid.entry)
    assert announced.session.session_id == paid_copy.id


async def test_a_read_goes_on_from_a_position_a_page_and_a_type_at_a_time(
    ledgers: Ledgers,
) -> None:
    rows = [await opened(ledgers) for _ in range(4)]
    for row in rows:
        sid = row.session_id or ""
        await ledgers.ledger.record_snapshot(row.row_id, snapshot(sid, "complete", "unpaid"))
        await ledgers.ledger.record_snapshot(row.row_id, snapshot(sid, "complete", "paid"))
    every = await events(ledgers)
    assert len(every) == 8

    first = await ledgers.ledger.read_feed(CALLER, FEED_START, limit=3)
    rest = await ledgers.ledger.read_feed(CALLER, first.events[-1].position, limit=10)
    paid = await ledgers.ledger.read_feed(
        CALLER, every[2].position, limit=10, types=[EventType.ORDER_PAID]
    )

    assert list(first.events) + list(rest.events) == every
    assert first.tail == rest.tail == every[-1].position
    assert not first.held_back
    assert rest.after_found and not first.after_found
    assert [e.position for e in paid.events] == [every[i].position for i in (3, 5, 7)]
    assert [e.position for e in every] == sorted(e.position for e in every)


async def test_each_caller_reads_only_its_own_events(ledgers: Ledgers) -> None:
    mine = await opened(ledgers)
    theirs = await stored(ledgers, order(), caller="billing")
    for row in (mine, theirs):
        await ledgers.ledger.record_snapshot(row.row_id, snapshot(row.session_id or "", "expired"))

    [own] = await events(ledgers)
    [other] = await events(ledgers, "billing")
    nobody = await ledgers.ledger.read_feed("nobody", FEED_START, limit=10)

    assert (own.order_id, other.order_id) == (mine.order_id, theirs.order_id)
    assert other.caller == "billing"
    assert nobody.events == () and nobody.tail is None and nobody.pruned_through is None
    # A position of another caller's feed is not found in this one.
    assert not (await ledgers.ledger.read_feed(CALLER, other.position, limit=1)).after_found


async def test_the_latest_event_at_or_before_a_position_and_written_before_it(
    ledgers: Ledgers,
) -> None:
    rows = [await opened(ledgers) for _ in range(3)]
    for row in rows:
        await ledgers.ledger.record_snapshot(row.row_id, snapshot(row.session_id or "", "expired"))
    every = await events(ledgers)
    at_or_before = ledgers.ledger.feed_position_at_or_before
    later = datetime.now(UTC) + timedelta(hours=1)
    beyond = FeedPosition(every[-1].position.txid + 1000, uuid.uuid4(), later)
    between = FeedPosition(
        every[1].position.txid, uuid.UUID(int=every[1].id.int + 1), every[1].created_at
    )
    # Placed after every event, but written before the third (as a cursor a failover lost is,
    # once the transaction ids after it are handed out again).
    lost = replace(beyond, written_at=every[2].created_at - timedelta(microseconds=1))

    assert await at_or_before(CALLER, beyond) == every[-1].position
    assert await at_or_before(CALLER, every[1].position) == every[1].position
    assert await at_or_before(CALLER, between) == every[1].position
    assert await at_or_before(CALLER, lost) == every[1].position
    assert await at_or_before(CALLER, FEED_START) is None
    assert await at_or_before("billing", beyond) is None
    assert (await at_or_before(CALLER, beyond) or FEED_START).written_at == every[-1].created_at


async def test_retention_prunes_the_oldest_events_first_and_remembers_each_callers_last(
    ledgers: Ledgers,
) -> None:
    callers = ["orders", "billing", "orders", "billing", "orders"]
    for caller in callers:
        row = await stored(ledgers, order(), caller=caller)
        await ledgers.ledger.record_snapshot(row.row_id, snapshot(row.session_id or "", "expired"))
    orders, billing = await events(ledgers, "orders"), await events(ledgers, "billing")
    everything = sorted([*orders, *billing], key=lambda e: e.position)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)

    assert await ledgers.ledger.prune_feed(created_before=everything[0].created_at, limit=10) == 0
    assert await ledgers.ledger.prune_feed(created_before=cutoff, limit=3) == 3
    left = await ledgers.ledger.read_feed("orders", FEED_START, limit=10)
    assert [e.position for e in left.events] == [e.position for e in everything[3:] if e in orders]
    assert left.pruned_through == max(e.position for e in everything[:3] if e in orders)
    assert (await ledgers.ledger.read_feed("billing", FEED_START, limit=10)).pruned_through == (
        max(e.position for e in everything[:3] if e in billing)
    )
    assert await ledgers.ledger.prune_feed(created_before=cutoff, limit=10) == 2
    gone = await ledgers.ledger.read_feed("orders", FEED_START, limit=10)
    assert gone.events == () and gone.tail is None
    assert gone.pruned_through == orders[-1].position


async def test_an_event_wakes_its_callers_feed_readers(ledgers: Ledgers) -> None:
    row = await opened(ledgers)
    other = await stored(ledgers, order(), caller="billing")

    async with (
        ledgers.changes.subscribe_feed(CALLER) as mine,
        ledgers.changes.subscribe_feed("billing") as theirs,
    ):
        await ledgers.ledger.record_snapshot(
            row.row_id, snapshot(row.session_id or "", "complete", "paid")
        )
        await asyncio.wait_for(mine.wait(), 5)
        await ledgers.ledger.end_missing(other.row_id)
        await asyncio.wait_for(theirs.wait(), 5)


# -- the money after checkout --


async def paying(ledgers: Ledgers) -> tuple[LedgerEntry, PaymentSnapshot]:
    """A completed session of a new order, and its payment as Stripe first shows it: a manual
    capture's authorisation."""
    pi = intent()
    return await completed(ledgers, pi), dataclasses.replace(authorised(), id=pi)


class Recorder:
    """Writes a payment's successive snapshots as the service does (each with the version it
    read), keeping the row each write left."""

    def __init__(self, ledgers: Ledgers, entry: LedgerEntry) -> None:
        self._payments = payments_of(ledgers)
        self._row = entry.row_id
        self.written: list[LedgerEntry] = []

    async def __call__(self, snapshot: PaymentSnapshot, event: PaymentEvent | None = None) -> None:
        record = await self._payments.payment(self._row)
        written = await self._payments.record_payment(
            self._row, snapshot, seen=None if record is None else record.version, event=event
        )
        assert written.outcome == WriteOutcome.WRITTEN and written.entry is not None
        self.written.append(written.entry)


async def money_events(ledgers: Ledgers, since: int) -> list[tuple[str, str | None]]:
    return [(e.type, e.refund_id) for e in (await events(ledgers))[since:]]


async def test_each_change_of_the_money_is_announced_with_the_session_as_stored(
    ledgers: Ledgers,
) -> None:
    entry, first = await paying(ledgers)
    took = captured(first, 3000)
    refunded = captured(first, 3000, refund("re_2", 500, request_id="r-1"))
    failed = captured(first, 3000, refund("re_2", 500, "failed", request_id="r-1"))
    disputed = dataclasses.replace(
        failed, dispute=DisputeSnapshot("du_1", "needs_response", "fraudulent", 3000, 2)
    )
    lost = dataclasses.replace(
        disputed, dispute=DisputeSnapshot("du_1", "lost", "fraudulent", 3000, 2)
    )
    since = len(await events(ledgers))
    record = Recorder(ledgers, entry)

    for snapshot_ in (first, took, refunded, failed, disputed, lost):
        await record(snapshot_)

    found = (await events(ledgers))[since:]
    assert [(e.type, e.refund_id) for e in found] == [
        (EventType.PAYMENT_AUTHORIZED, None),
        (EventType.PAYMENT_CAPTURED, None),
        (EventType.PAYMENT_REFUNDED, "re_2"),
        (EventType.REFUND_FAILED, "re_2"),
        (EventType.DISPUTE_OPENED, None),
        (EventType.DISPUTE_CLOSED, None),
    ]
    assert [e.session for e in found] == [kept(written) for written in record.written]
    assert [e.session.payment for e in found] == [first, took, refunded, failed, disputed, lost]
    assert {(e.caller, e.order_id) for e in found} == {(CALLER, entry.order_id)}


async def test_an_authorisation_released_or_lapsed_is_announced_as_released(
    ledgers: Ledgers,
) -> None:
    released_entry, released = await paying(ledgers)
    lapsed_entry, lapsed = await paying(ledgers)
    since = len(await events(ledgers))

    for entry, first, reason in (
        (released_entry, released, "requested_by_customer"),
        (lapsed_entry, lapsed, "automatic"),
    ):
        record = Recorder(ledgers, entry)
        await record(first)
        await record(
            dataclasses.replace(
                first, status="canceled", amount_capturable=0, cancellation_reason=reason
            )
        )

    assert [(e.order_id, e.type) for e in (await events(ledgers))[since:]] == [
        (released_entry.order_id, EventType.PAYMENT_AUTHORIZED),
        (released_entry.order_id, EventType.AUTHORIZATION_RELEASED),
        (lapsed_entry.order_id, EventType.PAYMENT_AUTHORIZED),
        (lapsed_entry.order_id, EventType.AUTHORIZATION_RELEASED),
    ]


async def test_a_write_of_several_changes_announces_each_in_the_order_they_happened(
    ledgers: Ledgers,
) -> None:
    """The sweep may find Stripe's view several steps on: one write, each step its event, in
    order (they share the write's transaction)."""
    entry, first = await paying(ledgers)
    since = len(await events(ledgers))
    later = captured(first, 3990, refund("re_a", 100), refund("re_b", 200, request_id="r-2"))

    record = Recorder(ledgers, entry)
    await record(later)

    found = (await events(ledgers))[since:]
    assert [(e.type, e.refund_id) for e in found] == [
        (EventType.PAYMENT_CAPTURED, None),
        (EventType.PAYMENT_REFUNDED, "re_a"),
        (EventType.PAYMENT_REFUNDED, "re_b"),
    ]
    assert [e.session for e in found] == [kept(record.written[0])] * 3
    assert [e.position for e in found] == sorted(e.position for e in found)


async def test_no_money_event_without_a_change_of_the_money(ledgers: Ledgers) -> None:
    """A webhook applied twice, a read older than the stored one and a read that finds what is
    stored write nothing; nor does anything a refused write did."""
    entry, first = await paying(ledgers)
    payments = payments_of(ledgers)
    record = Recorder(ledgers, entry)
    applied = PaymentEvent(f"evt_{uuid.uuid4().hex}", "charge.refunded", first.id, None)
    await record(first, applied)
    since = len(await events(ledgers))
    took = captured(first, 3990)

    again = await payments.record_payment(entry.row_id, took, seen=0, event=applied)
    stale = await payments.record_payment(entry.row_id, took, seen=None)
    same = await payments.record_payment(entry.row_id, first, seen=0)

    assert (again.outcome, stale.outcome, same.outcome) == (
        WriteOutcome.DUPLICATE,
        WriteOutcome.STALE,
        WriteOutcome.WRITTEN,
    )
    assert await money_events(ledgers, since) == []
    await record(took)
    assert await money_events(ledgers, since) == [(EventType.PAYMENT_CAPTURED, None)]


async def test_an_orders_session_and_money_events_come_in_the_order_they_committed(
    ledgers: Ledgers,
) -> None:
    pending = (await claim(ledgers, order())).entry
    pi = intent()
    said = dataclasses.replace(snapshot(session(), "complete", "paid"), payment_intent_id=pi)
    since = len(await events(ledgers))

    entry = await ledgers.ledger.record_snapshot(pending.row_id, said)
    await Recorder(ledgers, entry)(captured(dataclasses.replace(authorised(), id=pi), 3990))

    assert await money_events(ledgers, since) == [
        (EventType.ORDER_PAID, None),
        (EventType.PAYMENT_CAPTURED, None),
    ]


async def test_a_money_event_wakes_its_callers_feed_readers(ledgers: Ledgers) -> None:
    entry, first = await paying(ledgers)

    async with ledgers.changes.subscribe_feed(CALLER) as mine:
        await Recorder(ledgers, entry)(first)
        await asyncio.wait_for(mine.wait(), 5)
