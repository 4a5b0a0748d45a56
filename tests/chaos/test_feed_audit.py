"""The chaos run's feed audit (chaos/feed_audit.py) on what consumers could have seen: it must
catch a refund its caller was told was made that a consumer saw refunded twice, never, or only
in another caller's feed, or the audit of the money on the feed means nothing."""

from __future__ import annotations

from chaos.callers import RunCaller
from chaos.consumers import Consumer, Seen
from chaos.feed_audit import FeedEvent, Ledger, fold
from checkout.v1 import event_pb2 as events

PREFIX = "chaos-run-"
SHOP, NEIGHBOUR = RunCaller("shop"), RunCaller("neighbour")


def seen(event_id: str, order_id: str, kind: int, caller: str, at: int, refund: str = "") -> Seen:
    return Seen(event_id, f"{PREFIX}{order_id}", kind, caller, at, refund)


def test_each_refund_told_made_is_seen_refunded_once_by_each_consumer_of_its_caller() -> None:
    paid = events.Event.ORDER_PAID
    refunded = events.Event.PAYMENT_REFUNDED
    feed = [
        FeedEvent("e1", "shop", f"{PREFIX}o1"),
        FeedEvent("e2", "shop", f"{PREFIX}o1"),
        FeedEvent("e3", "shop", f"{PREFIX}o1"),
        FeedEvent("e4", "neighbour", f"{PREFIX}o2"),
        FeedEvent("e5", "neighbour", f"{PREFIX}o2"),
    ]
    ledger = Ledger(feed, {"shop": {f"{PREFIX}o1"}, "neighbour": {f"{PREFIX}o2"}})
    every_shop = [
        seen("e1", "o1", paid, "shop", 1),
        seen("e2", "o1", refunded, "shop", 2, "re_a"),
        seen("e2", "o1", refunded, "shop", 2, "re_a"),  # delivered again: one after dedupe
        seen("e3", "o1", refunded, "shop", 3, "re_b"),
    ]
    neighbour = [
        seen("e4", "o2", paid, "neighbour", 1),
        seen("e5", "o2", refunded, "neighbour", 2, "re_c"),
    ]
    told = [(f"{PREFIX}o1", "re_a"), (f"{PREFIX}o1", "re_b"), (f"{PREFIX}o2", "re_c")]

    sound = fold(
        ledger,
        [Consumer("shop-1", SHOP, every_shop), Consumer("neighbour-1", NEIGHBOUR, neighbour)],
        PREFIX,
        told,
    )
    # One consumer missed re_b, and a refund the callers were told of is in no feed at all.
    broken = fold(
        ledger,
        [Consumer("shop-1", SHOP, every_shop[:3]), Consumer("neighbour-1", NEIGHBOUR, neighbour)],
        PREFIX,
        [*told, (f"{PREFIX}o9", "re_z")],
    )

    assert sound.refund_not_once == [] and sound.refunds_told == 3
    assert sound.missed == [] and sound.foreign == [] and sound.out_of_order == []
    assert sorted(broken.refund_not_once) == [
        ("neighbour-1", "re_z", 0),
        ("shop-1", "re_b", 0),
        ("shop-1", "re_z", 0),
    ]
