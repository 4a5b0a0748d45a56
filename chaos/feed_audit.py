"""What the feed's consumers saw (consumers.py), folded and held against the ledger once the run
has settled: each consumer, after dedupe by event id, saw every paid order of its caller as
paid exactly once, every refund its caller was told was made as refunded exactly once, every
event of its caller's feed, nothing of another caller, and each order's events in the order
they committed. Only the run's own orders are looked at (their ids share a prefix)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

import asyncpg

from chaos.consumers import Consumer, Seen
from checkout.v1 import event_pb2 as events


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """An event as the database holds it."""

    event_id: str
    caller: str
    order_id: str


@dataclass
class Ledger:
    """The run's events in feed order, and the paid orders of each caller."""

    events: list[FeedEvent]
    paid: dict[str, set[str]]

    def expected(self) -> dict[str, list[str]]:
        """Each caller's event ids."""
        ids: defaultdict[str, list[str]] = defaultdict(list)
        for event in self.events:
            ids[event.caller].append(event.event_id)
        return dict(ids)


@dataclass
class FeedAudit:
    """Each check holds the examples that break it; an empty list is a pass."""

    consumers: list[Consumer] = field(default_factory=list)
    events_in_feed: int = 0
    paid_orders: int = 0
    paid_not_once: list[tuple[str, str, int]] = field(default_factory=list)
    """(consumer, order, how many ORDER_PAID events it saw for it, after dedupe)."""
    missed: list[tuple[str, str]] = field(default_factory=list)
    """(consumer, event id) of its caller's events it never saw."""
    foreign: list[tuple[str, str, str]] = field(default_factory=list)
    """(consumer, order, the event's caller) of events of another caller."""
    out_of_order: list[tuple[str, str]] = field(default_factory=list)
    """(consumer, order) whose events it saw in another order than they committed in."""
    refunds_told: int = 0
    """Refunds callers were told were made."""
    refund_not_once: list[tuple[str, str, int]] = field(default_factory=list)
    """(consumer, refund, how many PAYMENT_REFUNDED events it saw for it, after dedupe) of the
    refunds its caller was told were made."""

    @property
    def refused(self) -> int:
        return sum(sum(c.refused.values()) for c in self.consumers)


async def read_ledger(dsn: str, prefix: str) -> Ledger:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            """SELECT id::text AS id, caller, order_id FROM feed_events
               WHERE starts_with(order_id, $1) ORDER BY txid, id""",
            prefix,
        )
        paid = await conn.fetch(
            """SELECT caller, order_id FROM checkout_sessions
               WHERE starts_with(order_id, $1) AND state = 'complete'
                 AND payment_status IN ('paid', 'no_payment_required')""",
            prefix,
        )
    finally:
        await conn.close()
    by_caller: defaultdict[str, set[str]] = defaultdict(set)
    for row in paid:
        by_caller[row["caller"]].add(row["order_id"])
    return Ledger([FeedEvent(r["id"], r["caller"], r["order_id"]) for r in rows], dict(by_caller))


def fold(
    ledger: Ledger,
    consumers: list[Consumer],
    prefix: str,
    refunds: Collection[tuple[str, str]] = (),
) -> FeedAudit:
    """`refunds`: (order, refund) of each refund a caller was told was made."""
    audit = FeedAudit(
        consumers=consumers,
        events_in_feed=len(ledger.events),
        paid_orders=sum(len(orders) for orders in ledger.paid.values()),
        refunds_told=len(refunds),
    )
    owners = {event.order_id: event.caller for event in ledger.events}
    for consumer in consumers:
        _fold_one(audit, ledger, consumer, prefix)
        told = [
            refund for order_id, refund in refunds if owners.get(order_id) == consumer.caller.name
        ]
        _refunds(audit, consumer, told)
    # A refund whose order has no event at all belongs to no caller's feed: each consumer
    # missed it.
    audit.refund_not_once += [
        (consumer.name, refund, 0)
        for order_id, refund in refunds
        if order_id not in owners
        for consumer in consumers
    ]
    return audit


def _refunds(audit: FeedAudit, consumer: Consumer, told: list[str]) -> None:
    """Each refund its caller was told was made, seen refunded once after dedupe by id."""
    unique = {seen.event_id: seen for seen in consumer.seen}
    refunded: defaultdict[str, int] = defaultdict(int)
    for seen in unique.values():
        if seen.type == events.Event.PAYMENT_REFUNDED:
            refunded[seen.refund_id] += 1
    audit.refund_not_once += [
        (consumer.name, refund, refunded[refund]) for refund in told if refunded[refund] != 1
    ]


def _fold_one(audit: FeedAudit, ledger: Ledger, consumer: Consumer, prefix: str) -> None:
    caller = consumer.caller.name
    unique: dict[str, Seen] = {}
    for seen in consumer.seen:
        unique.setdefault(seen.event_id, seen)
        if seen.caller != caller:
            audit.foreign.append((consumer.name, seen.order_id, seen.caller))
    mine = [e for e in ledger.events if e.caller == caller]
    audit.missed += [(consumer.name, e.event_id) for e in mine if e.event_id not in unique]
    run = [seen for seen in unique.values() if seen.order_id.startswith(prefix)]
    paid_seen: defaultdict[str, int] = defaultdict(int)
    for seen in run:
        if seen.type == events.Event.ORDER_PAID:
            paid_seen[seen.order_id] += 1
    for order_id in ledger.paid.get(caller, set()) | set(paid_seen):
        if paid_seen[order_id] != 1 or order_id not in ledger.paid.get(caller, set()):
            audit.paid_not_once.append((consumer.name, order_id, paid_seen[order_id]))
    _order_of_events(audit, consumer.name, run, mine)


def _order_of_events(
    audit: FeedAudit, consumer: str, seen: list[Seen], feed: list[FeedEvent]
) -> None:
    """Each order's events as first seen must be the feed's, and stored in that order."""
    committed: defaultdict[str, list[str]] = defaultdict(list)
    for event in feed:
        committed[event.order_id].append(event.event_id)
    received: defaultdict[str, list[Seen]] = defaultdict(list)
    for one in seen:
        received[one.order_id].append(one)
    written = {event.event_id for event in feed}
    for order_id, got in received.items():
        # An event written after the ledger was read (a payment's webhook retried late) is
        # judged by its time only: it committed after every event of its order read before.
        ids = [one.event_id for one in got if one.event_id in written]
        times = [one.update_time for one in got]
        in_feed = [i for i in committed[order_id] if i in set(ids)]
        if ids != in_feed or times != sorted(times):
            audit.out_of_order.append((consumer, order_id))
