"""The ledger's contract (the docstrings of service/domain/ports.py), held against every ledger
alike (conftest.py): the in-memory fake cannot drift from Postgres without one of these failing
for one of them, and a cache over either answers as what it wraps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.domain.errors import AttemptDropped
from service.domain.model import (
    Attempt,
    Claim,
    LedgerEntry,
    LedgerState,
    RequestRecord,
    SessionSnapshot,
    StripeEvent,
)
from tests.contract.conftest import Ledgers
from tests.unit.fakes import IntegrityError

CALLER = "orders"
PARAMS = {"mode": "payment", "metadata": {"order_id": "o"}, "line_items": [{"quantity": 2}]}


def order() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def session() -> str:
    return f"cs_test_{uuid.uuid4().hex}"


def snapshot(
    session_id: str,
    status: str = "open",
    payment_status: str = "unpaid",
    *,
    expires_in: timedelta = timedelta(hours=1),
) -> SessionSnapshot:
    now = datetime.now(UTC)
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
        created=int(now.timestamp()),
        expires_at=int((now + expires_in).timestamp()),
        metadata={"order_id": "o"},
    )


class Attempts:
    """`attempt` for claims, counting how often a ledger asks for it."""

    def __init__(self, expires_in: timedelta = timedelta(hours=1)) -> None:
        self.made: list[Attempt] = []
        self._expires_at = datetime.now(UTC).replace(microsecond=0) + expires_in

    def __call__(self) -> Attempt:
        made = Attempt(f"key-{uuid.uuid4().hex}", PARAMS, self._expires_at)
        self.made.append(made)
        return made


async def claim(
    ledgers: Ledgers,
    order_id: str,
    *,
    fingerprint: str = "fp",
    caller: str = CALLER,
    attempts: Callable[[], Attempt] | None = None,
) -> Claim:
    return await ledgers.ledger.claim(
        caller=caller,
        order_id=order_id,
        fingerprint=fingerprint,
        attempt=attempts or Attempts(),
    )


async def stored(
    ledgers: Ledgers,
    order_id: str,
    status: str = "open",
    payment_status: str = "unpaid",
    *,
    caller: str = CALLER,
    expires_in: timedelta = timedelta(hours=1),
) -> LedgerEntry:
    """A claim for the order, and the session Stripe made for it."""
    claimed = await claim(ledgers, order_id, caller=caller)
    assert claimed.won
    return await ledgers.ledger.record_snapshot(
        claimed.entry.row_id,
        snapshot(session(), status, payment_status, expires_in=expires_in),
    )


def event(session_id: str, kind: str = "completed") -> StripeEvent:
    return StripeEvent(f"evt_{uuid.uuid4().hex}", f"checkout.session.{kind}", session_id, None)


# -- claim --


async def test_a_claim_for_a_free_order_inserts_the_attempt_as_its_pending_row(
    ledgers: Ledgers,
) -> None:
    order_id = order()
    attempts = Attempts()

    claimed = await claim(ledgers, order_id, fingerprint="fp-1", attempts=attempts)

    [made] = attempts.made
    entry = claimed.entry
    assert claimed.won
    assert (entry.caller, entry.order_id, entry.state) == (CALLER, order_id, LedgerState.PENDING)
    assert (entry.fingerprint, entry.idempotency_key) == ("fp-1", made.idempotency_key)
    assert entry.stripe_params == PARAMS
    assert entry.expires_at == made.expires_at
    assert entry.session_id is None and entry.snapshot is None
    assert await ledgers.ledger.by_row_id(entry.row_id) == entry


@pytest.mark.parametrize(
    ("status", "payment_status"),
    [("pending", ""), ("open", "unpaid"), ("complete", "paid"), ("complete", "unpaid")],
)
async def test_a_claim_loses_to_the_row_that_holds_the_order(
    ledgers: Ledgers, status: str, payment_status: str
) -> None:
    order_id = order()
    if status == "pending":
        holder = (await claim(ledgers, order_id)).entry
    else:
        holder = await stored(ledgers, order_id, status, payment_status)
    attempts = Attempts()

    lost = await claim(ledgers, order_id, fingerprint="another cart", attempts=attempts)

    assert not lost.won
    assert lost.entry == holder
    assert len(attempts.made) <= 1


async def test_rows_that_no_longer_hold_the_order_let_a_claim_win(ledgers: Ledgers) -> None:
    expired, failed = order(), order()
    await stored(ledgers, expired, "expired")
    unsettled = await stored(ledgers, failed, "complete", "unpaid")
    await ledgers.ledger.apply_event(
        event(unsettled.session_id or ""),
        unsettled.row_id,
        snapshot(unsettled.session_id or "", "complete", "unpaid"),
        payment_failed=True,
    )

    assert (await claim(ledgers, expired)).won
    assert (await claim(ledgers, failed)).won


async def test_each_caller_has_its_own_orders(ledgers: Ledgers) -> None:
    order_id = order()
    mine = await claim(ledgers, order_id, caller="orders")
    theirs = await claim(ledgers, order_id, caller="billing")
    again = await claim(ledgers, order_id, caller="orders")

    assert mine.won and theirs.won and not again.won
    assert again.entry.row_id == mine.entry.row_id
    assert theirs.entry.caller == "billing"
    assert await ledgers.ledger.active_or_latest("nobody", order_id) is None


async def test_concurrent_claims_for_one_order_have_one_winner(ledgers: Ledgers) -> None:
    order_id = order()

    claims = await asyncio.gather(*(claim(ledgers, order_id) for _ in range(10)))

    [winner] = [c for c in claims if c.won]
    assert {c.entry.row_id for c in claims} == {winner.entry.row_id}


# -- record_snapshot --


async def test_recording_stores_what_stripe_said_and_notifies_watchers(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    said = snapshot(session())

    async with ledgers.changes.subscribe(said.id) as signal:
        entry = await ledgers.ledger.record_snapshot(pending.row_id, said)
        await asyncio.wait_for(signal.wait(), 5)

    assert (entry.state, entry.session_id, entry.snapshot) == (LedgerState.OPEN, said.id, said)
    assert entry.expires_at == datetime.fromtimestamp(said.expires_at, UTC)
    assert entry.updated_at > pending.updated_at
    assert (entry.idempotency_key, entry.stripe_params) == (
        pending.idempotency_key,
        pending.stripe_params,
    )
    assert await ledgers.ledger.by_session_id(said.id) == entry


async def test_a_stale_snapshot_never_moves_a_row_back(ledgers: Ledgers) -> None:
    paid = await stored(ledgers, order(), "complete", "paid")
    assert paid.session_id is not None

    after = await ledgers.ledger.record_snapshot(paid.row_id, snapshot(paid.session_id, "open"))

    assert after == paid


async def test_recording_what_is_stored_changes_nothing(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    said = snapshot(session(), "expired")
    first = await ledgers.ledger.record_snapshot(pending.row_id, said)

    again = await ledgers.ledger.record_snapshot(pending.row_id, said)

    assert again == first


async def test_recording_on_a_row_that_is_gone_is_attempt_dropped(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    await ledgers.ledger.discard_pending(pending.row_id)

    with pytest.raises(AttemptDropped):
        await ledgers.ledger.record_snapshot(pending.row_id, snapshot(session()))


async def test_a_session_of_another_order_is_not_stored_on_a_row_without_one(
    ledgers: Ledgers,
) -> None:
    """After a failover lost a row, Postgres may hand its id out again: the attempt that wrote
    the lost row hears its row is gone rather than write another order's session into the
    new one, which it could not tell apart by its id."""
    pending = (await claim(ledgers, order())).entry
    theirs = replace(snapshot(session()), metadata={"order_id": order(), "checkout_caller": CALLER})
    other_caller = replace(
        snapshot(session()),
        metadata={"order_id": pending.order_id, "checkout_caller": "someone-else"},
    )

    for foreign in (theirs, other_caller):
        with pytest.raises(AttemptDropped):
            await ledgers.ledger.record_snapshot(pending.row_id, foreign)
    assert (await ledgers.ledger.by_row_id(pending.row_id)).state == LedgerState.PENDING
    mine = replace(
        snapshot(session()), metadata={"order_id": pending.order_id, "checkout_caller": CALLER}
    )
    stored_mine = await ledgers.ledger.record_snapshot(pending.row_id, mine)
    assert stored_mine.session_id == mine.id
    # And a row with a session stores that session's snapshots only.
    with pytest.raises(AttemptDropped):
        await ledgers.ledger.record_snapshot(pending.row_id, replace(mine, id=session()))


async def test_a_session_stored_on_a_second_row_is_a_bug(ledgers: Ledgers) -> None:
    first = await stored(ledgers, order())
    other = (await claim(ledgers, order())).entry
    assert first.snapshot is not None

    with pytest.raises((IntegrityError, asyncpg.UniqueViolationError)):
        await ledgers.ledger.record_snapshot(other.row_id, first.snapshot)


# -- replace_key, discard_pending --


async def test_a_pending_rows_key_is_replaced_once(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    old = pending.idempotency_key

    renewed = await ledgers.ledger.replace_key(pending.row_id, old_key=old, new_key="new-1")
    raced = await ledgers.ledger.replace_key(pending.row_id, old_key=old, new_key="new-2")

    assert renewed.idempotency_key == "new-1"
    assert raced == renewed
    assert await ledgers.ledger.by_row_id(pending.row_id) == renewed


async def test_a_key_is_not_replaced_once_the_session_exists(ledgers: Ledgers) -> None:
    opened = await stored(ledgers, order())

    after = await ledgers.ledger.replace_key(
        opened.row_id, old_key=opened.idempotency_key, new_key="new"
    )

    assert after == opened


async def test_replacing_the_key_of_a_row_that_is_gone_is_attempt_dropped(
    ledgers: Ledgers,
) -> None:
    pending = (await claim(ledgers, order())).entry
    await ledgers.ledger.discard_pending(pending.row_id)

    with pytest.raises(AttemptDropped):
        await ledgers.ledger.replace_key(
            pending.row_id, old_key=pending.idempotency_key, new_key="new"
        )


async def test_discarding_a_pending_row_frees_its_order_and_drops_its_request_ids(
    ledgers: Ledgers,
) -> None:
    order_id = order()
    pending = (await claim(ledgers, order_id)).entry
    await ledgers.ledger.save_request(RequestRecord(CALLER, "req-1", "fp", pending.row_id, False))

    await ledgers.ledger.discard_pending(pending.row_id)

    with pytest.raises(AttemptDropped):
        await ledgers.ledger.by_row_id(pending.row_id)
    assert await ledgers.ledger.find_request(CALLER, "req-1") is None
    assert (await claim(ledgers, order_id)).won


async def test_discarding_keeps_a_row_that_is_no_longer_pending(ledgers: Ledgers) -> None:
    opened = await stored(ledgers, order())

    await ledgers.ledger.discard_pending(opened.row_id)

    assert await ledgers.ledger.by_row_id(opened.row_id) == opened


# -- reads --


async def test_sessions_are_found_by_id_whoever_their_caller(ledgers: Ledgers) -> None:
    mine = await stored(ledgers, order())
    theirs = await stored(ledgers, order(), caller="billing")
    unknown = session()
    ids = [e.session_id or "" for e in (mine, theirs)]

    assert await ledgers.ledger.by_session_id(ids[1]) == theirs
    assert await ledgers.ledger.by_session_id(unknown) is None
    assert await ledgers.ledger.by_session_ids([*ids, unknown]) == dict(
        zip(ids, (mine, theirs), strict=True)
    )
    assert await ledgers.ledger.by_session_ids([]) == {}
    with pytest.raises(AttemptDropped):
        await ledgers.ledger.by_row_id(theirs.row_id + 1000)


async def test_an_order_is_found_by_its_active_row_else_its_newest(ledgers: Ledgers) -> None:
    order_id = order()
    assert await ledgers.ledger.active_or_latest(CALLER, order_id) is None
    expired = await stored(ledgers, order_id, "expired")
    assert await ledgers.ledger.active_or_latest(CALLER, order_id) == expired
    active = (await claim(ledgers, order_id)).entry

    assert await ledgers.ledger.active_or_latest(CALLER, order_id) == active


async def test_an_orders_sessions_are_listed_newest_first_a_page_at_a_time(
    ledgers: Ledgers,
) -> None:
    order_id = order()
    rows = [await stored(ledgers, order_id, "expired") for _ in range(3)]
    await claim(ledgers, order_id)  # pending: no session yet, not listed
    await stored(ledgers, order_id, caller="billing")
    newest_first = list(reversed(rows))

    everything = await ledgers.ledger.list_for_order(CALLER, order_id, limit=10, after=None)
    latest = await ledgers.ledger.list_for_order(CALLER, order_id, limit=1, after=None)
    cursor = (newest_first[0].created_at, newest_first[0].row_id)
    rest = await ledgers.ledger.list_for_order(CALLER, order_id, limit=10, after=cursor)

    assert everything == newest_first
    assert latest == newest_first[:1]
    assert rest == newest_first[1:]
    assert await ledgers.ledger.list_for_order(CALLER, order(), limit=1, after=None) == []


# -- request ids --


async def test_a_request_id_keeps_its_first_answer_per_caller(ledgers: Ledgers) -> None:
    row = (await claim(ledgers, order())).entry
    first = RequestRecord(CALLER, "req-1", "fp", row.row_id, False)

    assert await ledgers.ledger.find_request(CALLER, "req-1") is None
    assert await ledgers.ledger.save_request(first) == first
    # Another payload, and a row that does not exist: the stored id is found first.
    again = RequestRecord(CALLER, "req-1", "another payload", row.row_id + 1000, True)
    assert await ledgers.ledger.save_request(again) == first
    assert await ledgers.ledger.find_request(CALLER, "req-1") == first
    assert await ledgers.ledger.find_request("billing", "req-1") is None


async def test_a_request_id_naming_no_row_is_a_bug(ledgers: Ledgers) -> None:
    row = (await claim(ledgers, order())).entry

    with pytest.raises((IntegrityError, asyncpg.ForeignKeyViolationError)):
        await ledgers.ledger.save_request(
            RequestRecord(CALLER, "req-1", "fp", row.row_id + 1000, False)
        )


# -- events --


async def test_an_event_is_applied_once_together_with_its_effect(ledgers: Ledgers) -> None:
    opened = await stored(ledgers, order())
    sid = opened.session_id or ""
    paid = event(sid)

    assert not await ledgers.ledger.event_seen(paid.id)
    assert await ledgers.ledger.apply_event(
        paid, opened.row_id, snapshot(sid, "complete", "paid"), payment_failed=False
    )
    after = await ledgers.ledger.by_row_id(opened.row_id)
    assert not await ledgers.ledger.apply_event(
        paid, opened.row_id, snapshot(sid, "complete", "unpaid"), payment_failed=True
    )

    assert await ledgers.ledger.event_seen(paid.id)
    assert after.state == LedgerState.COMPLETE
    assert await ledgers.ledger.by_row_id(opened.row_id) == after


async def test_an_event_whose_effect_fails_is_not_recorded(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    await ledgers.ledger.discard_pending(pending.row_id)
    late = event(session())

    with pytest.raises(AttemptDropped):
        await ledgers.ledger.apply_event(
            late, pending.row_id, snapshot(late.session_id), payment_failed=False
        )

    assert not await ledgers.ledger.event_seen(late.id)


async def test_a_failed_delayed_payment_is_marked_and_frees_the_order(ledgers: Ledgers) -> None:
    order_id = order()
    unsettled = await stored(ledgers, order_id, "complete", "unpaid")
    sid = unsettled.session_id or ""

    await ledgers.ledger.apply_event(
        event(sid, "async_payment_failed"),
        unsettled.row_id,
        snapshot(sid, "complete", "unpaid"),
        payment_failed=True,
    )

    failed = await ledgers.ledger.by_row_id(unsettled.row_id)
    assert failed.async_payment_failed
    assert failed.is_final
    assert (await claim(ledgers, order_id)).won


async def test_an_event_needing_no_change_is_recorded_once(ledgers: Ledgers) -> None:
    other = event(session(), "expired")

    assert await ledgers.ledger.skip_event(other)
    assert not await ledgers.ledger.skip_event(other)
    assert await ledgers.ledger.event_seen(other.id)


async def test_an_order_is_known_whoever_its_caller(ledgers: Ledgers) -> None:
    order_id = order()
    assert not await ledgers.ledger.knows_order(order_id)

    await claim(ledgers, order_id, caller="billing")

    assert await ledgers.ledger.knows_order(order_id)


# -- adopt --


async def adopt(
    ledgers: Ledgers, order_id: str, copy: SessionSnapshot, *, caller: str = CALLER
) -> Claim:
    return await ledgers.ledger.adopt(
        caller=caller,
        order_id=order_id,
        fingerprint="fp-of-the-expired-cart",
        stripe_params=PARAMS,
        snapshot=copy,
    )


async def test_a_copy_of_a_free_order_is_adopted_as_stripe_describes_it(
    ledgers: Ledgers,
) -> None:
    order_id = order()
    await stored(ledgers, order_id, "expired")
    copy = snapshot(session())

    async with ledgers.changes.subscribe(copy.id) as signal:
        adopted = await adopt(ledgers, order_id, copy)
        await asyncio.wait_for(signal.wait(), 5)

    assert adopted.won
    entry = adopted.entry
    assert (entry.caller, entry.order_id, entry.state) == (CALLER, order_id, LedgerState.OPEN)
    assert (entry.session_id, entry.snapshot, entry.fingerprint) == (
        copy.id,
        copy,
        "fp-of-the-expired-cart",
    )
    assert entry.stripe_params == PARAMS
    assert entry.expires_at == datetime.fromtimestamp(copy.expires_at, UTC)
    assert await ledgers.ledger.by_session_id(copy.id) == entry
    assert (await claim(ledgers, order_id)).entry == entry


async def test_adopting_a_session_again_answers_its_row(ledgers: Ledgers) -> None:
    order_id = order()
    copy = snapshot(session(), "complete", "paid")
    first = await adopt(ledgers, order_id, copy)

    again = await adopt(ledgers, order_id, copy)

    assert again == first
    assert again.won


async def test_a_copy_loses_to_the_row_that_holds_the_order(ledgers: Ledgers) -> None:
    order_id = order()
    holder = await stored(ledgers, order_id)

    lost = await adopt(ledgers, order_id, snapshot(session()))

    assert not lost.won
    assert lost.entry == holder


async def test_an_expired_copy_loses_to_the_orders_holder_too(ledgers: Ledgers) -> None:
    order_id = order()
    holder = await stored(ledgers, order_id)
    copy = snapshot(session(), "expired")

    lost = await adopt(ledgers, order_id, copy)

    assert not lost.won
    assert lost.entry == holder
    assert await ledgers.ledger.by_session_id(copy.id) is None


async def test_an_expired_copy_of_a_free_order_is_its_latest_session(ledgers: Ledgers) -> None:
    order_id = order()
    await stored(ledgers, order_id, "expired")
    copy = snapshot(session(), "expired")

    adopted = await adopt(ledgers, order_id, copy)

    assert adopted.won
    assert adopted.entry.state == LedgerState.EXPIRED
    listed = await ledgers.ledger.list_for_order(CALLER, order_id, limit=1, after=None)
    assert listed == [adopted.entry]


async def test_concurrent_adoptions_of_one_copy_make_one_row(ledgers: Ledgers) -> None:
    order_id = order()
    copy = snapshot(session())

    claims = await asyncio.gather(*(adopt(ledgers, order_id, copy) for _ in range(5)))

    assert all(c.won for c in claims)
    assert len({c.entry.row_id for c in claims}) == 1


# -- the sweep --


async def test_the_rows_that_may_lag_stripe_soonest_first(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    lapsed = await stored(ledgers, order(), expires_in=timedelta(seconds=-5))
    quiet_open = await stored(ledgers, order())
    unsettled = await stored(ledgers, order(), "complete", "unpaid")
    await stored(ledgers, order(), "complete", "paid")
    await stored(ledgers, order(), "expired")
    failed = await stored(ledgers, order(), "complete", "unpaid")
    await ledgers.ledger.apply_event(
        event(failed.session_id or "", "async_payment_failed"),
        failed.row_id,
        snapshot(failed.session_id or "", "complete", "unpaid"),
        payment_failed=True,
    )
    now = datetime.now(UTC) + timedelta(seconds=1)

    recent = await ledgers.ledger.needing_reconciliation(
        pending_before=now - timedelta(hours=1),
        now=now,
        quiet_since=now - timedelta(hours=1),
        limit=10,
    )
    every = await ledgers.ledger.needing_reconciliation(
        pending_before=now, now=now, quiet_since=now, limit=10
    )
    first_two = await ledgers.ledger.needing_reconciliation(
        pending_before=now, now=now, quiet_since=now, limit=2
    )

    assert [e.row_id for e in recent] == [lapsed.row_id]
    rows = [pending.row_id, lapsed.row_id, quiet_open.row_id, unsettled.row_id]
    assert [e.row_id for e in every] == rows
    assert first_two == every[:2]


async def test_a_rows_turn_in_the_sweep_is_scheduled(ledgers: Ledgers) -> None:
    first = (await claim(ledgers, order())).entry
    second = (await claim(ledgers, order())).entry
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def due(at: datetime) -> list[LedgerEntry]:
        return await ledgers.ledger.needing_reconciliation(
            pending_before=now, now=at, quiet_since=now, limit=10
        )

    await ledgers.ledger.schedule_sweep(first.row_id, at=now + timedelta(minutes=1), failed=True)
    await ledgers.ledger.schedule_sweep(first.row_id, at=now + timedelta(minutes=2), failed=True)
    assert [e.row_id for e in await due(now)] == [second.row_id]
    [later, failing] = await due(now + timedelta(minutes=3))
    assert (later.row_id, failing.row_id) == (second.row_id, first.row_id)
    assert failing.sweep_attempts == 2

    await ledgers.ledger.schedule_sweep(first.row_id, at=now, failed=False)
    again = {e.row_id: e for e in await due(now)}
    assert again[first.row_id].sweep_attempts == 0


async def test_an_open_row_stripe_no_longer_knows_is_ended(ledgers: Ledgers) -> None:
    opened = await stored(ledgers, order())
    paid = await stored(ledgers, order(), "complete", "paid")

    async with ledgers.changes.subscribe(opened.session_id or "") as signal:
        ended = await ledgers.ledger.end_missing(opened.row_id)
        await asyncio.wait_for(signal.wait(), 5)

    assert ended is not None
    assert (ended.state, ended.missing_at_stripe) == (LedgerState.EXPIRED, True)
    assert await ledgers.ledger.by_row_id(opened.row_id) == ended
    assert await ledgers.ledger.end_missing(opened.row_id) is None
    assert await ledgers.ledger.end_missing(paid.row_id) is None


async def test_the_oldest_pending_row_and_any_callers_pending_order(ledgers: Ledgers) -> None:
    order_id = order()
    assert await ledgers.ledger.oldest_pending() is None
    assert not await ledgers.ledger.has_pending(order_id)
    oldest = (await claim(ledgers, order_id, caller="billing")).entry
    await claim(ledgers, order())
    await stored(ledgers, order())

    assert await ledgers.ledger.oldest_pending() == oldest.updated_at
    assert await ledgers.ledger.has_pending(order_id)


async def test_a_watermark_is_where_it_was_last_put(ledgers: Ledgers) -> None:
    assert await ledgers.ledger.watermark("events") is None

    await ledgers.ledger.advance_watermark("events", 1_800_000_000)
    await ledgers.ledger.advance_watermark("open_sessions", 1_700_000_000)
    await ledgers.ledger.advance_watermark("events", 1_800_000_060)

    assert await ledgers.ledger.watermark("events") == 1_800_000_060
    assert await ledgers.ledger.watermark("open_sessions") == 1_700_000_000
