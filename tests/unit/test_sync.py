"""StripeSync on the in-memory fakes of tests/unit/fakes.py: webhooks applied once and only
forward (docs/architecture.md, "Webhooks and the sweep"), and sweep passes that bring every
lagging row up to date whatever one of them does."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from service.domain.errors import Unavailable
from service.domain.model import LedgerEntry, LedgerState, StripeEvent
from service.domain.sync import EventOutcome
from tests.unit.builders import ORDER, World, command, event, make_world
from tests.unit.fakes import StripeCall


@pytest.fixture(params=[False, True], ids=["fake", "cached fake"])
def world(request: pytest.FixtureRequest) -> World:
    """Over the in-memory ledger, and over a CachedLedger wrapping it as the service's wraps
    Postgres: the use cases answer alike."""
    return make_world(cached=request.param)


async def open_session(
    world: World, order_id: str = ORDER, *, expire_in: timedelta | None = None
) -> LedgerEntry:
    cmd = command(order_id, expire_in=expire_in, clock=world.clock)
    entry = (await world.create(cmd)).entry
    assert entry.session_id is not None
    return entry


async def unfinished(world: World, order_id: str) -> LedgerEntry:
    """A create whose answer Stripe sent and the service lost: the session exists at Stripe,
    the row is still pending."""
    world.stripe.fail_next("create_session", after_acting=True)
    with pytest.raises(Unavailable):
        await world.create(command(order_id))
    [row] = world.ledger.entries(order_id)
    assert row.state == LedgerState.PENDING
    return row


def session_id(entry: LedgerEntry) -> str:
    assert entry.session_id is not None
    return entry.session_id


async def test_an_event_stores_what_stripe_says_now(world: World) -> None:
    entry = await open_session(world)
    world.stripe.complete(session_id(entry))
    completed = event("completed", session_id(entry))

    assert await world.sync.handle_event(completed) == EventOutcome.APPLIED

    [row] = world.ledger.entries(ORDER)
    assert row.state == LedgerState.COMPLETE
    assert row.snapshot == world.stripe.session(session_id(entry))
    assert world.stripe.calls[-1] == StripeCall("retrieve_session", session_id=entry.session_id)
    assert completed.id in world.ledger.event_ids
    assert world.changes.notified[-1] == entry.session_id


async def test_a_redelivered_event_is_applied_once(world: World) -> None:
    entry = await open_session(world)
    world.stripe.complete(session_id(entry))
    completed = event("completed", session_id(entry))
    await world.sync.handle_event(completed)
    [applied] = world.ledger.entries(ORDER)
    calls, notified = len(world.stripe.calls), len(world.changes.notified)

    assert await world.sync.handle_event(completed) == EventOutcome.DUPLICATE

    assert world.ledger.entries(ORDER) == [applied]
    assert len(world.stripe.calls) == calls
    assert len(world.changes.notified) == notified


async def test_concurrent_deliveries_of_one_event_apply_it_once(world: World) -> None:
    entry = await open_session(world)
    world.stripe.complete(session_id(entry), payment_status="unpaid")
    world.stripe.settle(session_id(entry), succeeded=False)
    failed = event("async_payment_failed", session_id(entry))
    hold = world.stripe.hold_next("retrieve_session")
    first = asyncio.create_task(world.sync.handle_event(failed))
    await hold.reached.wait()

    second = await world.sync.handle_event(failed)
    hold.release.set()

    assert (second, await first) == (EventOutcome.APPLIED, EventOutcome.DUPLICATE)
    [row] = world.ledger.entries(ORDER)
    assert (row.state, row.async_payment_failed) == (LedgerState.COMPLETE, True)
    assert world.changes.notified == [entry.session_id, entry.session_id]


async def test_a_stale_read_stored_after_a_newer_one_never_moves_the_session_back(
    world: World,
) -> None:
    entry = await open_session(world)
    hold = world.stripe.hold_next("retrieve_session")
    # A refresh (the sweep's, or GetSession's) reads the session while it is still open...
    refresh = asyncio.create_task(world.checkout.bring_up_to_date(entry))
    await hold.reached.wait()
    # ...the customer pays and the webhook is applied...
    world.stripe.complete(session_id(entry))
    assert await world.sync.handle_event(event("completed", session_id(entry))) == (
        EventOutcome.APPLIED
    )
    [paid] = world.ledger.entries(ORDER)

    # ...and only then does the refresh store what it read.
    hold.release.set()
    after_stale = await refresh

    assert after_stale == paid
    assert paid.snapshot is not None
    assert (paid.state, paid.snapshot.payment_status) == (LedgerState.COMPLETE, "paid")
    assert world.ledger.entries(ORDER) == [paid]


async def test_events_in_any_order_end_at_stripes_state(world: World) -> None:
    entry = await open_session(world)
    world.stripe.complete(session_id(entry), payment_status="unpaid")
    world.stripe.settle(session_id(entry), succeeded=True)

    late_first = event("async_payment_succeeded", session_id(entry))
    early_last = event("completed", session_id(entry))
    outcomes = [await world.sync.handle_event(e) for e in (late_first, early_last)]

    assert outcomes == [EventOutcome.APPLIED, EventOutcome.APPLIED]
    [row] = world.ledger.entries(ORDER)
    assert row.snapshot is not None
    assert (row.state, row.snapshot.payment_status) == (LedgerState.COMPLETE, "paid")
    assert world.ledger.event_ids >= {late_first.id, early_last.id}


async def test_a_failed_delayed_payment_is_recorded_though_the_session_looks_the_same(
    world: World,
) -> None:
    entry = await open_session(world)
    world.stripe.complete(session_id(entry), payment_status="unpaid")
    await world.sync.handle_event(event("completed", session_id(entry)))
    [settling] = world.ledger.entries(ORDER)
    world.stripe.settle(session_id(entry), succeeded=False)
    assert world.stripe.session(session_id(entry)) == settling.snapshot

    outcome = await world.sync.handle_event(event("async_payment_failed", session_id(entry)))

    assert outcome == EventOutcome.APPLIED
    [failed] = world.ledger.entries(ORDER)
    assert failed.async_payment_failed
    assert failed.is_final
    assert failed.updated_at > settling.updated_at
    assert world.changes.notified[-1] == entry.session_id


async def test_an_event_for_a_session_not_stored_yet_is_refused_until_it_is(
    world: World,
) -> None:
    pending = await unfinished(world, ORDER)
    [session] = world.stripe.sessions_for(ORDER)
    world.stripe.complete(session.id)
    completed = event("completed", session.id)
    calls = len(world.stripe.calls)

    with pytest.raises(Unavailable) as refused:
        await world.sync.handle_event(completed)

    assert refused.value.reason == "SESSION_NOT_YET_STORED"
    assert completed.id not in world.ledger.event_ids
    assert len(world.stripe.calls) == calls
    assert world.ledger.entries(ORDER) == [pending]

    # The sweep resumes the row with its key (Stripe replays its first answer: open)...
    world.clock.advance(timedelta(seconds=11))
    report = await world.sync.reconcile()
    assert (report.examined, report.failed) == (1, ())
    [resumed] = world.ledger.entries(ORDER)
    assert (resumed.state, resumed.session_id) == (LedgerState.OPEN, session.id)
    # ...and Stripe's next delivery of the event is applied.
    assert await world.sync.handle_event(completed) == EventOutcome.APPLIED
    [row] = world.ledger.entries(ORDER)
    assert row.state == LedgerState.COMPLETE


@pytest.mark.parametrize("order_id", ["their-order", None], ids=["their order", "no order"])
async def test_an_event_for_another_integrations_session_is_recorded_and_ignored(
    world: World, order_id: str | None
) -> None:
    ours = await open_session(world)
    calls = list(world.stripe.calls)
    # Their sessions' metadata names no caller of ours.
    theirs = event("completed", "cs_test_someone_else", order_id=order_id, caller=None)

    assert await world.sync.handle_event(theirs) == EventOutcome.IGNORED

    assert theirs.id in world.ledger.event_ids
    assert world.stripe.calls == calls
    assert world.ledger.entries() == [ours]
    assert await world.sync.handle_event(theirs) == EventOutcome.DUPLICATE


async def test_an_event_type_it_does_not_handle_leaves_no_trace(world: World) -> None:
    entry = await open_session(world)
    calls = list(world.stripe.calls)
    other = event("updated", session_id(entry))

    assert await world.sync.handle_event(other) == EventOutcome.IGNORED

    assert other.id not in world.ledger.event_ids
    assert world.stripe.calls == calls
    assert world.ledger.entries() == [entry]


async def test_a_sweep_pass_survives_a_session_stripe_no_longer_knows(world: World) -> None:
    start = world.clock.now()
    forgotten = await open_session(world, "order-a")
    world.stripe.forget(session_id(forgotten))
    world.clock.advance(timedelta(seconds=1))
    paid = await open_session(world, "order-b")
    world.stripe.complete(session_id(paid))  # and its webhook never arrives
    world.clock.advance(timedelta(seconds=1))
    pending = await unfinished(world, "order-c")
    world.clock.advance(timedelta(seconds=1))
    lapsing = await open_session(world, "order-d", expire_in=timedelta(minutes=30))
    world.clock.set(start + timedelta(minutes=25))
    recent = await open_session(world, "order-e")
    world.clock.set(start + timedelta(minutes=31))
    calls = len(world.stripe.calls)

    report = await world.sync.reconcile()

    # Oldest first: the row Stripe does not know comes first, and the pass goes on after it.
    assert world.stripe.calls[calls:] == [
        StripeCall("retrieve_session", session_id=forgotten.session_id),
        StripeCall("retrieve_session", session_id=paid.session_id),
        StripeCall(
            "create_session", idempotency_key=pending.idempotency_key, params=pending.stripe_params
        ),
        StripeCall("retrieve_session", session_id=lapsing.session_id),
    ]
    assert report.examined == 4
    assert report.failed == ()
    # Stripe does not know it: nobody can pay it, so the row ends, once, as expired.
    assert report.missing == (forgotten.session_id,)
    [a] = world.ledger.entries("order-a")
    assert (a.state, a.missing_at_stripe) == (LedgerState.EXPIRED, True)
    [b] = world.ledger.entries("order-b")
    assert b.snapshot is not None
    assert (b.state, b.snapshot.payment_status) == (LedgerState.COMPLETE, "paid")
    [c] = world.ledger.entries("order-c")
    [c_session] = world.stripe.sessions_for("order-c")
    assert (c.state, c.session_id) == (LedgerState.OPEN, c_session.id)
    [d] = world.ledger.entries("order-d")
    assert d.state == LedgerState.EXPIRED
    assert world.ledger.entries("order-e") == [recent]

    # The next pass finds nothing due: the ended row is final, the others were just read.
    calls = len(world.stripe.calls)
    again = await world.sync.reconcile()
    assert again.examined == 0
    assert world.stripe.calls[calls:] == []


async def test_a_row_the_sweep_fails_on_waits_longer_each_time_and_holds_no_one_up() -> None:
    world = make_world(batch_size=10)
    start = world.clock.now()
    broken = await open_session(world, "order-broken")
    world.clock.advance(timedelta(seconds=1))
    fine = await open_session(world, "order-fine")
    world.stripe.complete(session_id(fine))
    world.clock.set(start + timedelta(minutes=11))

    waits = []
    for _ in range(3):
        world.stripe.fail_next("retrieve_session")
        report = await world.sync.reconcile()
        assert [s for s, _ in report.failed] == [broken.session_id]
        [row] = world.ledger.entries("order-broken")
        waits.append(row.sweep_attempts)
        # Jump to the moment it is due again: nothing happens before.
        assert (await world.sync.reconcile()).examined == 0
        world.clock.advance(timedelta(hours=1))

    [b] = world.ledger.entries("order-fine")
    assert b.state == LedgerState.COMPLETE
    assert waits == [1, 2, 3]


async def test_a_pending_row_in_its_creators_hands_is_left_alone(world: World) -> None:
    await unfinished(world, ORDER)
    world.clock.advance(timedelta(seconds=5))
    calls = len(world.stripe.calls)

    report = await world.sync.reconcile()

    assert report.examined == 0
    assert len(world.stripe.calls) == calls
    [row] = world.ledger.entries(ORDER)
    assert row.state == LedgerState.PENDING


async def test_the_sweep_reaches_every_lagging_row_when_there_are_more_than_a_batch() -> None:
    world = make_world(batch_size=2)
    start = world.clock.now()
    for n in (1, 2):
        await open_session(world, f"order-abandoned-{n}")  # still open at Stripe
    world.clock.advance(timedelta(seconds=1))
    paid = await open_session(world, "order-paid")
    world.stripe.complete(session_id(paid))  # and its webhook never arrives

    for minutes in (11, 12, 13):
        world.clock.set(start + timedelta(minutes=minutes))
        await world.sync.reconcile()

    [row] = world.ledger.entries("order-paid")
    assert row.state == LedgerState.COMPLETE


def stripe_event(world: World, kind: str, entry: LedgerEntry) -> StripeEvent:
    """An event as Stripe lists it, made now."""
    made = event(kind, session_id(entry), order_id=entry.order_id)
    return dataclasses.replace(made, created=int(world.clock.now().timestamp()))


async def test_the_sweep_catches_up_on_events_no_webhook_brought(world: World) -> None:
    paid = await open_session(world, "order-paid")
    world.stripe.complete(session_id(paid))
    world.stripe.events.append(stripe_event(world, "completed", paid))

    first = await world.sync.sweep()
    again = await world.sync.sweep()

    assert first.caught_up == 1
    assert again.caught_up == 0  # applied once: the event id is recorded with its effect
    [row] = world.ledger.entries("order-paid")
    assert row.snapshot is not None
    assert (row.state, row.snapshot.payment_status) == (LedgerState.COMPLETE, "paid")


async def test_an_event_whose_session_is_not_stored_yet_is_read_again_next_pass(
    world: World,
) -> None:
    pending = await unfinished(world, "order-late")
    [at_stripe] = world.stripe.sessions_for("order-late")
    world.stripe.complete(at_stripe.id)
    late = dataclasses.replace(
        event("completed", at_stripe.id, order_id="order-late"),
        created=int(world.clock.now().timestamp()),
    )
    world.stripe.events.append(late)

    first = await world.sync.catch_up()
    assert first == 0
    assert world.ledger.entries("order-late")[0].state == LedgerState.PENDING
    # The pending row is resumed (here by its creator's retry); the next catch-up applies it.
    await world.checkout.bring_up_to_date(pending)
    world.clock.advance(timedelta(minutes=5))
    assert await world.sync.catch_up() == 1


async def test_an_open_session_no_row_holds_is_expired_if_another_holds_its_order(
    world: World,
) -> None:
    kept = await open_session(world, "order-kept")
    orphan = await open_session(world, "order-orphan")
    # As if its row had been dropped while Stripe made the session, and the order given
    # another cart since.
    world.ledger.forget(orphan.row_id)
    holder = (await world.create(command("order-orphan", shirts=3))).entry
    world.clock.advance(timedelta(minutes=2))

    report = await world.sync.sweep()

    assert (report.orphans, report.adopted) == ((orphan.session_id,), ())
    assert world.stripe.session(session_id(orphan)).status == "expired"
    assert world.stripe.session(session_id(kept)).status == "open"
    assert [row.session_id for row in world.ledger.entries("order-orphan")] == [holder.session_id]


async def test_an_open_session_no_row_holds_is_adopted_if_nothing_holds_its_order(
    world: World,
) -> None:
    orphan = await open_session(world, "order-orphan")
    # As if a database failover had lost its row.
    world.ledger.forget(orphan.row_id)
    world.clock.advance(timedelta(minutes=2))

    report = await world.sync.sweep()

    assert (report.orphans, report.adopted) == ((), (orphan.session_id,))
    assert world.stripe.session(session_id(orphan)).status == "open"
    [adopted] = world.ledger.entries("order-orphan")
    assert (adopted.session_id, adopted.state, adopted.caller) == (
        orphan.session_id,
        LedgerState.OPEN,
        "shop",
    )
    # A create for the order supersedes it: the ledger cannot know the request that made it.
    again = (await world.create(command("order-orphan"))).entry
    assert again.session_id != orphan.session_id
    assert world.stripe.session(session_id(orphan)).status == "expired"


async def test_a_young_session_may_still_be_on_its_way_to_the_ledger(world: World) -> None:
    orphan = await open_session(world, "order-young")
    world.ledger.forget(orphan.row_id)

    report = await world.sync.sweep()

    assert report.orphans == ()
    assert world.stripe.session(session_id(orphan)).status == "open"


async def test_one_pass_per_interval_whichever_replica_holds_the_lock(world: World) -> None:
    interval = timedelta(seconds=30)
    assert await world.sync.due(interval)
    await world.sync.sweep()  # on one replica

    assert not await world.sync.due(interval)  # another replica, a moment later
    world.clock.advance(timedelta(seconds=25))
    assert await world.sync.due(interval)
