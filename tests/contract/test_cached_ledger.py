"""CachedLedger over each ledger (conftest.py): what it answers without asking the ledger
underneath, and how it stays coherent: a write made through it is seen at once, another
replica's once its notice arrives; nothing is kept while the change feed is disconnected; a
read that started before a change does not keep what it read; concurrent misses share one
query. (What it answers, it answers as the ledger underneath would: tests/contract/
test_ledger.py runs against it too.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.domain.errors import AttemptDropped
from service.domain.model import LedgerEntry, LedgerState, StripeEvent
from service.store.cached_ledger import CachedLedger
from tests.contract.conftest import Ledgers
from tests.contract.test_ledger import CALLER, Attempts, claim, order, snapshot
from tests.support import eventually


async def open_session(cached: Ledgers, order_id: str) -> LedgerEntry:
    """An order's open session, once the notice of its write has come back (Postgres sends it
    when the write commits, and it arrives a moment later): from then on only what the test
    does moves the cache."""
    pending = (await claim(cached, order_id)).entry
    said = snapshot(f"cs_test_{order_id}")
    async with cached.changes.subscribe(said.id) as signal:
        entry = await cached.ledger.record_snapshot(pending.row_id, said)
        await asyncio.wait_for(signal.wait(), 10)
    return entry


def cache_of(ledgers: Ledgers) -> CachedLedger:
    assert ledgers.cache is not None
    return ledgers.cache


class Asked:
    """Counts, by method, what the cache asks of the ledger underneath; `hold` makes a method
    wait until released."""

    def __init__(self, ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        self._held: dict[str, asyncio.Event] = {}
        self.reached: dict[str, asyncio.Event] = {}
        for name in ("claim", "by_session_id", "by_row_id", "list_for_order"):
            monkeypatch.setattr(
                ledgers.underneath, name, self._counted(name, getattr(ledgers.underneath, name))
            )

    def _counted(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name in self._held:
                self.reached[name].set()
                await self._held[name].wait()
            return await method(*args, **kwargs)

        return counted

    def hold(self, name: str) -> asyncio.Event:
        self._held[name] = asyncio.Event()
        self.reached[name] = asyncio.Event()
        return self._held[name]


async def test_a_repeated_create_is_answered_from_the_orders_known_holder(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = order()
    opened = await open_session(cached, order_id)
    assert not (await claim(cached, order_id)).won  # the holder, read from the ledger
    asked = Asked(cached, monkeypatch)
    attempts = Attempts()

    again = await claim(cached, order_id, fingerprint="any", attempts=attempts)

    assert (again.won, again.entry) == (False, opened)
    assert asked.calls == Counter()
    assert attempts.made == []


async def test_reads_are_answered_without_asking_again(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = order()
    opened = await open_session(cached, order_id)
    sid = opened.session_id or ""
    asked = Asked(cached, monkeypatch)

    for _ in range(3):
        assert await cached.ledger.by_session_id(sid) == opened
        assert await cached.ledger.by_row_id(opened.row_id) == opened
        assert await cached.ledger.list_for_order(CALLER, order_id, limit=1, after=None) == [opened]
        assert await cached.ledger.by_session_id("cs_test_unknown") is None

    assert asked.calls == Counter(by_session_id=2, by_row_id=1, list_for_order=1)


async def test_a_write_through_the_cache_is_read_back_at_once(cached: Ledgers) -> None:
    order_id = order()
    opened = await open_session(cached, order_id)
    sid = opened.session_id or ""
    assert await cached.ledger.list_for_order(CALLER, order_id, limit=1, after=None) == [opened]
    assert await cached.ledger.by_session_id(sid) == opened

    paid = await cached.ledger.record_snapshot(opened.row_id, snapshot(sid, "complete", "paid"))

    assert await cached.ledger.list_for_order(CALLER, order_id, limit=1, after=None) == [paid]
    assert await cached.ledger.by_session_id(sid) == paid
    assert await cached.ledger.by_row_id(opened.row_id) == paid


async def test_every_write_through_the_cache_is_read_back_at_once(cached: Ledgers) -> None:
    """Whether or not the write sends a notice (a new key and a dropped attempt do not)."""
    ledger = cached.ledger
    webhook, missing = await open_session(cached, order()), await open_session(cached, order())
    pending, dropped = (await claim(cached, order())).entry, (await claim(cached, order())).entry
    for entry in (webhook, missing, pending, dropped):
        assert await ledger.by_row_id(entry.row_id) == entry
    sid = webhook.session_id or ""
    assert await ledger.by_session_id(sid) == webhook

    assert await ledger.apply_event(
        StripeEvent("evt_1", "checkout.session.completed", sid, None),
        webhook.row_id,
        snapshot(sid, "complete", "unpaid"),
        payment_failed=False,
    )
    ended = await ledger.end_missing(missing.row_id)
    renewed = await ledger.replace_key(
        pending.row_id, old_key=pending.idempotency_key, new_key="renewed"
    )
    await ledger.discard_pending(dropped.row_id)

    completed = await ledger.by_session_id(sid)
    assert completed is not None and completed.state == LedgerState.COMPLETE
    assert await ledger.by_row_id(webhook.row_id) == completed
    assert await ledger.by_row_id(missing.row_id) == ended
    assert await ledger.by_row_id(pending.row_id) == renewed
    with pytest.raises(AttemptDropped):
        await ledger.by_row_id(dropped.row_id)


async def test_another_replicas_write_is_read_once_its_notice_arrives(cached: Ledgers) -> None:
    order_id = order()
    opened = await open_session(cached, order_id)
    sid = opened.session_id or ""
    assert not (await claim(cached, order_id)).won
    assert await cached.ledger.by_session_id(sid) == opened

    # Another replica's write: to the ledger underneath, which this cache hears of only
    # through the notice.
    expired = await cached.underneath.record_snapshot(opened.row_id, snapshot(sid, "expired"))

    async def seen() -> bool:
        return await cached.ledger.by_session_id(sid) == expired

    if cached.coherent_at_once:
        assert await seen()
    await eventually(seen, within_seconds=10)
    assert (await claim(cached, order_id)).won


async def test_nothing_is_kept_while_the_change_feed_is_disconnected(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = await open_session(cached, order())
    sid = opened.session_id or ""
    asked = Asked(cached, monkeypatch)

    cache_of(cached).disconnected()
    for _ in range(2):
        assert await cached.ledger.by_session_id(sid) == opened
    cache_of(cached).connected()
    for _ in range(2):
        assert await cached.ledger.by_session_id(sid) == opened

    assert asked.calls["by_session_id"] == 3


async def test_a_read_that_started_before_a_change_does_not_keep_what_it_read(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = await open_session(cached, order())
    sid = opened.session_id or ""
    asked = Asked(cached, monkeypatch)
    release = asked.hold("by_session_id")
    reading = asyncio.ensure_future(cached.ledger.by_session_id(sid))
    await asked.reached["by_session_id"].wait()

    # A notice for an unrelated row while the read is on its way: the cache cannot tell
    # which rows a change touched before it is told, so the read is not kept either way.
    cache_of(cached).changed("cs_test_other", CALLER, "order-other")
    release.set()
    assert await reading == opened
    assert await cached.ledger.by_session_id(sid) == opened

    assert asked.calls["by_session_id"] == 2


async def test_concurrent_misses_share_one_query(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = order()
    opened = await open_session(cached, order_id)
    asked = Asked(cached, monkeypatch)
    release = asked.hold("list_for_order")

    reads = [
        asyncio.ensure_future(cached.ledger.list_for_order(CALLER, order_id, limit=1, after=None))
        for _ in range(5)
    ]
    await asked.reached["list_for_order"].wait()
    release.set()

    assert await asyncio.gather(*reads) == [[opened]] * 5
    assert asked.calls["list_for_order"] == 1


async def test_a_known_latest_session_that_no_longer_holds_the_order_answers_no_claim(
    cached: Ledgers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order's latest session answers a claim only while it holds the order; an expired
    one leaves the claim to the ledger, which lets it win."""
    order_id = order()
    opened = await open_session(cached, order_id)
    expired = await cached.ledger.record_snapshot(
        opened.row_id, snapshot(opened.session_id or "", "expired")
    )
    assert await cached.ledger.list_for_order(CALLER, order_id, limit=1, after=None) == [expired]
    asked = Asked(cached, monkeypatch)
    attempts = Attempts()

    won = await claim(cached, order_id, attempts=attempts)

    assert won.won
    assert [won.entry.idempotency_key] == [made.idempotency_key for made in attempts.made]
    assert asked.calls == Counter(claim=1)
