"""Sessions Stripe has and the ledger does not (service/domain/adoption.py), on the in-memory
fakes: the rows a database failover lost, adopted again from what each session's metadata says
(its caller and its order), so that no order is given a second payable session, no payment is
left out of the ledger, and an order paid twice is said rather than hidden. The recovered
carts' copies, adopted by the same rules, are in test_recovery.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.checkout import Lookup
from service.domain.errors import FailedPrecondition, Unavailable
from service.domain.model import LedgerEntry, LedgerState
from service.domain.sync import EventOutcome
from tests.unit.builders import ORDER, SHOP, World, command, event, make_world


@pytest.fixture(params=[False, True], ids=["fake", "cached fake"])
def world(request: pytest.FixtureRequest) -> World:
    return make_world(cached=request.param)


async def lost(world: World, order_id: str = ORDER, *, shirts: int = 2) -> str:
    """A session its caller was told of, whose row the database lost (a failover to a standby
    that had not received the commit); its id."""
    entry = (await world.create(command(order_id, shirts=shirts))).entry
    assert entry.session_id is not None
    world.ledger.forget(entry.row_id)
    return entry.session_id


async def latest(world: World, order_id: str = ORDER) -> LedgerEntry:
    return await world.checkout.get_session(SHOP, Lookup(order_id=order_id))


def rows(world: World, order_id: str = ORDER) -> list[tuple[str | None, LedgerState]]:
    return [(row.session_id, row.state) for row in world.ledger.entries(order_id)]


async def test_a_lost_session_the_customer_paid_is_adopted_by_its_event(world: World) -> None:
    paid = await lost(world)
    world.stripe.complete(paid)

    outcome = await world.sync.handle_event(event("completed", paid))

    assert outcome == EventOutcome.APPLIED
    entry = await latest(world)
    assert (entry.session_id, entry.state, entry.caller) == (paid, LedgerState.COMPLETE, "shop")
    # The order is paid: never charged again.
    with pytest.raises(FailedPrecondition):
        await world.create(command(shirts=3))


async def test_the_sweep_adopts_a_lost_paid_session_that_no_webhook_brought(world: World) -> None:
    paid = await lost(world)
    world.stripe.complete(paid)
    world.clock.advance(timedelta(minutes=2))

    report = await world.sync.sweep()

    assert report.adopted == (paid,)
    assert rows(world) == [(paid, LedgerState.COMPLETE)]


async def test_a_lost_paid_session_expires_the_session_given_since_before_it_is_adopted(
    world: World,
) -> None:
    paid = await lost(world)
    given_since = (await world.create(command(shirts=3))).entry
    world.stripe.complete(paid)

    await world.sync.handle_event(event("completed", paid))

    assert world.stripe.session(given_since.session_id or "").status == "expired"
    assert (await latest(world)).session_id == paid


async def test_an_order_paid_through_a_lost_session_and_another_is_said_not_hidden(
    world: World,
) -> None:
    paid_first = await lost(world)
    given_since = (await world.create(command(shirts=3))).entry
    assert given_since.session_id is not None
    world.stripe.complete(given_since.session_id)
    await world.sync.handle_event(event("completed", given_since.session_id))
    world.stripe.complete(paid_first)

    with pytest.raises(Unavailable) as caught:
        await world.sync.handle_event(event("completed", paid_first))
    world.clock.advance(timedelta(minutes=2))
    report = await world.sync.sweep()

    assert caught.value.reason == "ORDER_PAID_TWICE"
    assert [(exc.order_id, exc.sessions) for exc in report.paid_twice] == [
        (ORDER, (given_since.session_id, paid_first))
    ]
    # The ledger keeps one payment per order; the event stays unapplied, so Stripe retries it.
    assert rows(world) == [(given_since.session_id, LedgerState.COMPLETE)]
    # Said once: the next scan starts past it.
    assert (await world.sync.sweep()).paid_twice == ()


async def test_after_a_failover_a_young_lost_session_is_adopted_before_any_new_one(
    world: World,
) -> None:
    """The reconciliation after the database changed: even a session made a moment ago, which
    the sweep would leave to its creator, is adopted, so that the next create of its order
    expires it before handing out another: the customer who opens the link they were given
    cannot pay beside the new cart."""
    told = await lost(world)

    found = await world.sync.reconcile_after_failover()

    assert (found.adopted, found.expired, found.failed) == ([told], [], [])
    assert rows(world) == [(told, LedgerState.OPEN)]
    replacement = (await world.create(command(shirts=3))).entry
    assert replacement.session_id != told
    assert world.stripe.session(told).status == "expired"  # nobody can pay it now


async def test_the_reconciliation_leaves_the_sweeps_watermark_where_it_was(world: World) -> None:
    await world.sync.sweep()
    before = await world.ledger.watermark("open_sessions")
    await lost(world)

    await world.sync.reconcile_after_failover()

    assert await world.ledger.watermark("open_sessions") == before


async def test_the_orders_session_on_its_way_is_resumed_first_and_a_lost_one_beside_it_expired(
    world: World,
) -> None:
    told = await lost(world)
    # The order's next create got as far as its row: its answer from Stripe was lost.
    world.stripe.fail_next("create_session", after_acting=True)
    with pytest.raises(Unavailable):
        await world.create(command(shirts=3))
    [on_its_way] = world.stripe.sessions_for(ORDER)[1:]

    found = await world.sync.reconcile_after_failover()

    # Each session judged once: the row's own stored (not adopted), the lost one expired.
    assert (found.adopted, found.expired) == ([], [told])
    assert rows(world) == [(on_its_way.id, LedgerState.OPEN)]
    assert world.stripe.session(told).status == "expired"


async def test_a_lost_session_is_adopted_when_the_ledger_was_behind_on_the_orders_holder(
    world: World,
) -> None:
    """The holder's expiry at Stripe was committed to the ledger, then lost: the ledger says
    open, Stripe says expired. Read again, it lets go of the order."""
    old_cart = (await world.create(command(shirts=1))).entry
    assert old_cart.session_id is not None
    world.stripe.expire_now(old_cart.session_id)
    told = await lost(world, shirts=3)

    found = await world.sync.reconcile_after_failover()

    assert found.adopted == [told]
    assert rows(world) == [
        (old_cart.session_id, LedgerState.EXPIRED),
        (told, LedgerState.OPEN),
    ]


async def test_a_session_whose_metadata_names_no_caller_is_not_adopted(world: World) -> None:
    """Made before sessions named their caller, or by another integration on the account."""
    theirs = await lost(world)
    world.stripe.forget_metadata(theirs, "checkout_caller")
    world.stripe.complete(theirs)

    assert await world.sync.handle_event(event("completed", theirs, caller=None)) == (
        EventOutcome.IGNORED
    )
    found = await world.sync.reconcile_after_failover()

    assert found.adopted == []
    assert world.ledger.entries(ORDER) == []
