"""The fakes keep the rules of what they stand in for, where the use-case tests lean on them:
the ledger's as tests/integration/test_ledger.py holds Postgres to them, Stripe's idempotency
and expiry as tests/sandbox/ holds the sandbox to them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from service.domain.errors import UpstreamMissing, UpstreamRejected
from service.domain.model import Attempt, LedgerEntry, LedgerState, RequestRecord, StripeEvent
from tests.unit.fakes import (
    START,
    FakeClock,
    FakeStripe,
    IdempotencyKeyReused,
    InMemoryChanges,
    InMemoryLedger,
    IntegrityError,
)

PARAMS = {"mode": "payment", "metadata": {"order_id": "o-1"}, "expires_at": 1_800_000_000}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changes() -> InMemoryChanges:
    return InMemoryChanges()


@pytest.fixture
def ledger(clock: FakeClock, changes: InMemoryChanges) -> InMemoryLedger:
    return InMemoryLedger(clock, changes)


async def claim(
    ledger: InMemoryLedger, order_id: str = "o-1", *, caller: str = "shop", key: str = "k-1"
) -> tuple[bool, LedgerEntry]:
    claimed = await ledger.claim(
        caller=caller,
        order_id=order_id,
        fingerprint="fp",
        attempt=lambda: Attempt(key, PARAMS, START + timedelta(hours=1)),
    )
    return claimed.won, claimed.entry


async def test_one_active_row_per_callers_order(ledger: InMemoryLedger) -> None:
    won, first = await claim(ledger)
    lost, active = await claim(ledger, key="k-2")
    other_caller, _ = await claim(ledger, caller="other", key="k-3")

    assert (won, lost, other_caller) == (True, False, True)
    assert active == first


async def test_a_stale_snapshot_never_moves_a_row_back(
    ledger: InMemoryLedger, clock: FakeClock
) -> None:
    stripe = FakeStripe(clock)
    _, entry = await claim(ledger)
    opened = await stripe.create_session(PARAMS, idempotency_key="k-1")
    stripe.complete(opened.id)
    paid = await ledger.record_snapshot(entry.row_id, await stripe.retrieve_session(opened.id))

    after_stale = await ledger.record_snapshot(entry.row_id, opened)

    assert after_stale == paid
    assert after_stale.state == LedgerState.COMPLETE
    # Paid, the row still holds the order: a new claim loses to it.
    won, holder = await claim(ledger, key="k-2")
    assert not won
    assert holder.row_id == entry.row_id


async def test_recording_what_is_stored_changes_nothing_and_notifies_nobody(
    ledger: InMemoryLedger, clock: FakeClock, changes: InMemoryChanges
) -> None:
    _, entry = await claim(ledger)
    opened = await FakeStripe(clock).create_session(PARAMS, idempotency_key="k-1")
    first = await ledger.record_snapshot(entry.row_id, opened)
    clock.advance(timedelta(minutes=1))

    again = await ledger.record_snapshot(entry.row_id, opened)

    assert again == first
    assert changes.notified == [opened.id]


async def test_a_session_id_belongs_to_one_row(ledger: InMemoryLedger, clock: FakeClock) -> None:
    _, first = await claim(ledger, "o-1")
    _, second = await claim(ledger, "o-2", key="k-2")
    opened = await FakeStripe(clock).create_session(PARAMS, idempotency_key="k-1")
    await ledger.record_snapshot(first.row_id, opened)

    with pytest.raises(IntegrityError):
        await ledger.record_snapshot(second.row_id, opened)


async def test_discarding_a_pending_row_frees_the_order_and_drops_its_request_ids(
    ledger: InMemoryLedger,
) -> None:
    _, entry = await claim(ledger)
    await ledger.save_request(RequestRecord("shop", "req-1", "fp", entry.row_id, False))

    await ledger.discard_pending(entry.row_id)

    assert await ledger.find_request("shop", "req-1") is None
    assert (await claim(ledger, key="k-2"))[0]


async def test_a_request_id_keeps_its_first_answer(ledger: InMemoryLedger) -> None:
    _, entry = await claim(ledger)
    first = RequestRecord("shop", "req-1", "fp", entry.row_id, False)
    await ledger.save_request(first)

    stored = await ledger.save_request(replace(first, fingerprint="other"))

    assert stored == first
    assert await ledger.find_request("other-caller", "req-1") is None


async def test_an_event_id_is_recorded_once(ledger: InMemoryLedger) -> None:
    event = StripeEvent("evt_1", "checkout.session.expired", "cs_x", None)

    assert await ledger.skip_event(event)
    assert not await ledger.skip_event(event)
    assert await ledger.event_seen("evt_1")


async def test_stripe_replays_a_key_and_refuses_it_with_other_parameters(
    clock: FakeClock,
) -> None:
    stripe = FakeStripe(clock)
    first = await stripe.create_session(PARAMS, idempotency_key="k-1")
    stripe.complete(first.id)

    again = await stripe.create_session(dict(PARAMS), idempotency_key="k-1")

    # The saved response, not the session as it is now.
    assert again == first
    assert len(stripe.sessions_for("o-1")) == 1
    with pytest.raises(IdempotencyKeyReused):
        await stripe.create_session({**PARAMS, "mode": "setup"}, idempotency_key="k-1")


async def test_stripe_expires_only_open_sessions_and_replays_its_refusal(
    clock: FakeClock,
) -> None:
    stripe = FakeStripe(clock)
    session = await stripe.create_session(PARAMS, idempotency_key="k-1")
    stripe.complete(session.id)

    for _ in range(2):
        with pytest.raises(UpstreamRejected) as refused:
            await stripe.expire_session(session.id, idempotency_key="expire-1")
        assert not isinstance(refused.value, UpstreamMissing)
    assert stripe.session(session.id).status == "complete"


async def test_stripe_lapses_open_sessions_at_their_expiry(clock: FakeClock) -> None:
    stripe = FakeStripe(clock)
    session = await stripe.create_session(
        {**PARAMS, "expires_at": int((clock.now() + timedelta(minutes=30)).timestamp())},
        idempotency_key="k-1",
    )
    clock.advance(timedelta(minutes=29))
    assert (await stripe.retrieve_session(session.id)).status == "open"

    clock.advance(timedelta(minutes=1))

    lapsed = await stripe.retrieve_session(session.id)
    assert (lapsed.status, lapsed.url) == ("expired", None)


async def test_stripe_answers_404_for_a_session_it_does_not_know(clock: FakeClock) -> None:
    stripe = FakeStripe(clock)
    session = await stripe.create_session(PARAMS, idempotency_key="k-1")
    stripe.forget(session.id)

    with pytest.raises(UpstreamMissing) as missing:
        await stripe.retrieve_session(session.id)

    assert missing.value.code == "resource_missing"
