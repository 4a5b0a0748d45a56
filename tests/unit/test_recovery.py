"""Recovered carts on the in-memory fakes (service/domain/recovery.py): the copy Stripe makes of
an expired session from its recovery URL becomes the order's next session, by the sweep or by
the copy's events, and never a second payable session of one order."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from service.domain.checkout import Lookup
from service.domain.errors import FailedPrecondition, Unavailable
from service.domain.model import LedgerEntry, LedgerState, StripeEvent
from service.domain.sync import EventOutcome
from tests.unit.builders import ORDER, SHOP, World, command, event, make_world


@pytest.fixture(params=[False, True], ids=["fake", "cached fake"])
def world(request: pytest.FixtureRequest) -> World:
    return make_world(cached=request.param)


async def an_abandoned_cart(world: World) -> str:
    """The order's session, expired unpaid and so given a recovery URL; its id."""
    entry = (await world.create(command())).entry
    assert entry.session_id is not None
    world.stripe.expire_now(entry.session_id)
    await world.sync.handle_event(event("expired", entry.session_id))
    return entry.session_id


async def latest(world: World) -> LedgerEntry:
    return await world.checkout.get_session(SHOP, Lookup(order_id=ORDER))


def copied(copy_id: str, origin: str, kind: str = "completed") -> StripeEvent:
    """An event about a recovered copy, as Stripe sends it: its session names the original."""
    return dataclasses.replace(event(kind, copy_id), recovered_from=origin)


async def test_the_sweep_adopts_an_open_copy_as_the_orders_session(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    copy_id = world.stripe.recover(abandoned)
    world.clock.advance(timedelta(minutes=2))

    report = await world.sync.sweep()

    assert report.orphans == ()
    assert world.stripe.session(copy_id).status == "open"
    entry = await latest(world)
    assert (entry.session_id, entry.state) == (copy_id, LedgerState.OPEN)
    assert entry.snapshot is not None and entry.snapshot.recovered_from == abandoned
    # The copy is the order's open session for that cart: the same cart again reuses it.
    again = await world.create(command())
    assert (again.reused, again.entry.session_id) == (True, copy_id)


async def test_an_open_copy_of_an_order_with_a_new_cart_is_expired(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    new_cart = (await world.create(command(shirts=3))).entry
    copy_id = world.stripe.recover(abandoned)
    world.clock.advance(timedelta(minutes=2))

    report = await world.sync.sweep()

    assert report.orphans == (copy_id,)
    assert world.stripe.session(copy_id).status == "expired"
    assert (await latest(world)).session_id == new_cart.session_id
    assert copy_id not in [entry.session_id for entry in world.ledger.entries(ORDER)]
    # The copy's own expiry is no news for the order.
    expired = copied(copy_id, abandoned, "expired")
    assert await world.sync.handle_event(expired) == EventOutcome.IGNORED


async def test_a_paid_copy_is_the_orders_payment(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    copy_id = world.stripe.recover(abandoned)
    world.stripe.complete(copy_id)

    outcome = await world.sync.handle_event(copied(copy_id, abandoned))

    assert outcome == EventOutcome.APPLIED
    entry = await latest(world)
    assert (entry.session_id, entry.state) == (copy_id, LedgerState.COMPLETE)
    with pytest.raises(FailedPrecondition):
        await world.create(command(shirts=5))


async def test_a_paid_copy_expires_the_orders_open_session(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    new_cart = (await world.create(command(shirts=3))).entry
    copy_id = world.stripe.recover(abandoned)
    world.stripe.complete(copy_id)

    await world.sync.handle_event(copied(copy_id, abandoned))

    assert world.stripe.session(new_cart.session_id or "").status == "expired"
    assert (await latest(world)).session_id == copy_id


async def test_an_order_paid_twice_is_not_hidden(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    new_cart = (await world.create(command(shirts=3))).entry
    copy_id = world.stripe.recover(abandoned)
    world.stripe.complete(new_cart.session_id or "")
    await world.sync.handle_event(event("completed", new_cart.session_id or ""))
    world.stripe.complete(copy_id)

    with pytest.raises(Unavailable) as caught:
        await world.sync.handle_event(copied(copy_id, abandoned))

    assert caught.value.reason == "ORDER_PAID_TWICE"
    assert (await latest(world)).session_id == new_cart.session_id


async def test_a_paid_copy_of_a_session_the_ledger_does_not_know_is_adopted_by_its_metadata(
    world: World,
) -> None:
    abandoned = await an_abandoned_cart(world)
    copy_id = world.stripe.recover(abandoned)
    world.stripe.complete(copy_id)
    # The order is known (by another row), but not the session the copy was made from: the
    # copy's metadata, the caller and the order, say whose it is all the same.
    [row] = world.ledger.entries(ORDER)
    world.ledger.forget(row.row_id)
    new_cart = (await world.create(command(shirts=3))).entry

    outcome = await world.sync.handle_event(copied(copy_id, abandoned))

    assert outcome == EventOutcome.APPLIED
    assert (await latest(world)).session_id == copy_id
    assert world.stripe.session(new_cart.session_id or "").status == "expired"


async def test_a_copy_of_another_integrations_session_is_not_adopted(world: World) -> None:
    abandoned = await an_abandoned_cart(world)
    copy_id = world.stripe.recover(abandoned)
    world.stripe.complete(copy_id)
    [row] = world.ledger.entries(ORDER)
    world.ledger.forget(row.row_id)
    world.stripe.forget_metadata(copy_id, "checkout_caller")

    outcome = await world.sync.handle_event(
        dataclasses.replace(copied(copy_id, abandoned), caller=None)
    )

    assert outcome == EventOutcome.IGNORED
    assert world.ledger.entries(ORDER) == []
