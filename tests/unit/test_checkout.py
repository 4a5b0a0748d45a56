"""Checkout's per-order rules (docs/architecture.md, "Creating a session for an order") on the
in-memory fakes of tests/unit/fakes.py: what reaches Stripe, what the ledger holds, and what the
caller gets back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from service.domain.checkout import Lookup
from service.domain.commands import CreateSessionCommand
from service.domain.errors import (
    AttemptDropped,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    Unavailable,
    UpstreamMissing,
)
from service.domain.model import Caller, Claim, CreateResult, LedgerEntry, LedgerState, Role
from service.domain.sync import EventOutcome
from tests.unit.builders import ORDER, SHOP, World, command, event, make_world
from tests.unit.fakes import StripeCall

BY_ORDER = Lookup(order_id=ORDER)


@pytest.fixture(params=[False, True], ids=["fake", "cached fake"])
def world(request: pytest.FixtureRequest) -> World:
    """Over the in-memory ledger, and over a CachedLedger wrapping it as the service's wraps
    Postgres: the use cases answer alike."""
    return make_world(cached=request.param)


async def create(world: World, cmd: CreateSessionCommand) -> CreateResult:
    return await world.create(cmd)


async def paid(world: World, *, payment_status: str = "paid") -> LedgerEntry:
    """An order whose session the customer completed, with the webhook applied."""
    entry = (await create(world, command())).entry
    assert entry.session_id is not None
    world.stripe.complete(entry.session_id, payment_status=payment_status)
    outcome = await world.sync.handle_event(event("completed", entry.session_id))
    assert outcome == EventOutcome.APPLIED
    return await world.ledger.by_row_id(entry.row_id)


def creates(world: World) -> list[StripeCall]:
    return [call for call in world.stripe.calls if call.operation == "create_session"]


async def test_a_new_order_gets_one_stripe_session_created_under_its_stored_key(
    world: World,
) -> None:
    result = await create(world, command())

    entry = result.entry
    [session] = world.stripe.sessions_for(ORDER)
    assert not result.reused
    assert (entry.caller, entry.order_id, entry.state) == ("shop", ORDER, LedgerState.OPEN)
    assert entry.session_id == session.id
    assert entry.snapshot == session
    assert world.stripe.calls == [
        StripeCall("create_session", idempotency_key="key-1", params=entry.stripe_params)
    ]
    assert entry.idempotency_key == "key-1"
    assert world.ledger.entries(ORDER) == [entry]
    assert world.changes.notified == [session.id]


async def test_the_same_request_reuses_the_open_session_without_calling_stripe(
    world: World,
) -> None:
    first = await create(world, command())
    calls = list(world.stripe.calls)

    again = await create(world, command())

    assert again.reused
    assert again.entry == first.entry
    assert world.stripe.calls == calls
    assert world.ledger.entries(ORDER) == [first.entry]


async def test_the_same_request_again_is_answered_without_asking_the_ledger_or_stripe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path: over a cached ledger that knows the order's holder (the last repeat's
    claim read it), a repeated create asks neither the ledger underneath nor Stripe."""
    world = make_world(cached=True)
    first = await create(world, command())
    await create(world, command())
    calls = list(world.stripe.calls)

    async def not_asked(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the in-memory ledger was asked")

    for method in ("claim", "list_for_order", "by_session_id", "by_row_id", "record_snapshot"):
        monkeypatch.setattr(world.ledger, method, not_asked)

    again = await create(world, command())

    assert again == CreateResult(first.entry, reused=True)
    assert world.stripe.calls == calls


async def test_a_repeated_request_with_an_expire_time_is_checked_again_each_time(
    world: World,
) -> None:
    # The same request bytes: the command and its check are remembered, except where the time
    # of the call decides the check.
    cmd = command(expire_in=timedelta(hours=1), clock=world.clock)
    await create(world, cmd)
    world.clock.advance(timedelta(minutes=45))

    with pytest.raises(InvalidRequest) as refused:
        await create(world, cmd)

    assert [v.field for v in refused.value.violations] == ["expire_time"]


async def test_a_changed_cart_expires_the_old_session_at_stripe_before_creating_a_new_one(
    world: World,
) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None

    second = await create(world, command(shirts=3))

    assert not second.reused
    assert world.stripe.calls[1:] == [
        StripeCall(
            "expire_session",
            session_id=first.session_id,
            idempotency_key=f"expire-{first.session_id}",
        ),
        StripeCall(
            "create_session",
            idempotency_key=second.entry.idempotency_key,
            params=second.entry.stripe_params,
        ),
    ]
    assert second.entry.idempotency_key != first.idempotency_key
    old, new = world.ledger.entries(ORDER)
    assert (old.session_id, old.state) == (first.session_id, LedgerState.EXPIRED)
    assert new == second.entry
    assert new.state == LedgerState.OPEN
    assert [s.status for s in world.stripe.sessions_for(ORDER)] == ["expired", "open"]
    assert world.stripe.sessions_for(ORDER)[1].id == new.session_id


@pytest.mark.parametrize("shirts", [2, 3], ids=["same cart", "changed cart"])
async def test_a_paid_order_is_refused_a_new_session(world: World, shirts: int) -> None:
    done = await paid(world)
    calls = list(world.stripe.calls)

    with pytest.raises(FailedPrecondition) as refused:
        await create(world, command(shirts=shirts))

    assert refused.value.reason == "ORDER_ALREADY_PAID"
    assert refused.value.violation.subject == f"sessions/{done.session_id}"
    assert world.stripe.calls == calls
    assert world.ledger.entries(ORDER) == [done]


async def test_an_order_paid_before_the_webhook_arrived_is_refused_a_changed_cart(
    world: World,
) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None
    world.stripe.complete(first.session_id)

    with pytest.raises(FailedPrecondition) as refused:
        await create(world, command(shirts=3))

    assert refused.value.reason == "ORDER_ALREADY_PAID"
    # Stripe refuses to expire a complete session; its current state is then the answer.
    assert world.stripe.operations() == ["create_session", "expire_session", "retrieve_session"]
    [row] = world.ledger.entries(ORDER)
    assert row.state == LedgerState.COMPLETE
    assert row.snapshot is not None
    assert row.snapshot.payment_status == "paid"
    assert len(world.stripe.sessions_for(ORDER)) == 1


@pytest.mark.parametrize("shirts", [2, 3], ids=["same cart", "changed cart"])
async def test_an_order_whose_delayed_payment_is_under_way_is_refused(
    world: World, shirts: int
) -> None:
    pending_payment = await paid(world, payment_status="unpaid")
    assert pending_payment.state == LedgerState.COMPLETE
    calls = list(world.stripe.calls)

    with pytest.raises(FailedPrecondition) as refused:
        await create(world, command(shirts=shirts))

    assert refused.value.reason == "ORDER_ALREADY_PAID"
    assert "unpaid" in refused.value.message
    assert world.stripe.calls == calls
    assert world.ledger.entries(ORDER) == [pending_payment]


async def test_a_failed_delayed_payment_frees_the_order_for_a_new_session(world: World) -> None:
    first = await paid(world, payment_status="unpaid")
    assert first.session_id is not None
    world.stripe.settle(first.session_id, succeeded=False)
    failed = event("async_payment_failed", first.session_id)
    assert await world.sync.handle_event(failed) == EventOutcome.APPLIED

    result = await create(world, command())

    assert not result.reused
    assert result.entry.state == LedgerState.OPEN
    old, new = world.ledger.entries(ORDER)
    assert (old.state, old.async_payment_failed) == (LedgerState.COMPLETE, True)
    assert new == result.entry
    assert [s.id for s in world.stripe.sessions_for(ORDER)] == [
        first.session_id,
        result.entry.session_id,
    ]


async def test_a_replayed_request_id_gets_the_same_answer_without_calling_stripe(
    world: World,
) -> None:
    first = await create(world, command(request_id="req-1"))
    calls = list(world.stripe.calls)

    again = await create(world, command(request_id="req-1"))

    # The stored answer, `reused: false` included: not a second call that found the session.
    assert again == first
    assert not again.reused
    assert world.stripe.calls == calls
    assert world.ledger.entries(ORDER) == [first.entry]


async def test_a_request_id_reused_with_another_payload_is_refused_on_request_id(
    world: World,
) -> None:
    first = await create(world, command(request_id="req-1"))
    assert first.entry.session_id is not None
    calls = list(world.stripe.calls)

    with pytest.raises(InvalidRequest) as refused:
        await create(world, command(shirts=3, request_id="req-1"))

    assert refused.value.reason == "REQUEST_ID_REUSED"
    assert [v.field for v in refused.value.violations] == ["request_id"]
    assert world.stripe.calls == calls
    assert world.ledger.entries(ORDER) == [first.entry]
    assert world.stripe.session(first.entry.session_id).status == "open"


async def test_request_ids_and_orders_belong_to_their_caller(world: World) -> None:
    ours = await create(world, command(request_id="req-1"))
    other = Caller("other-shop", Role.CALLER)

    theirs = await world.create(command(shirts=3, request_id="req-1"), other)

    assert not theirs.reused
    assert theirs.entry.caller == "other-shop"
    assert theirs.entry.session_id != ours.entry.session_id
    assert ours.entry.session_id is not None
    assert world.stripe.session(ours.entry.session_id).status == "open"
    with pytest.raises(NotFound):
        await world.checkout.get_session(other, Lookup(session_id=ours.entry.session_id))


@pytest.mark.parametrize("after_acting", [False, True], ids=["request lost", "answer lost"])
async def test_after_an_unknown_outcome_the_row_stays_pending_and_a_retry_gets_one_session(
    world: World, after_acting: bool
) -> None:
    world.stripe.fail_next("create_session", after_acting=after_acting)

    with pytest.raises(Unavailable):
        await create(world, command())

    [pending] = world.ledger.entries(ORDER)
    assert (pending.state, pending.session_id) == (LedgerState.PENDING, None)
    assert len(world.stripe.sessions_for(ORDER)) == (1 if after_acting else 0)

    result = await create(world, command())

    [session] = world.stripe.sessions_for(ORDER)
    assert result.entry.row_id == pending.row_id
    assert (result.entry.state, result.entry.session_id) == (LedgerState.OPEN, session.id)
    assert world.ledger.entries(ORDER) == [result.entry]
    first_try, retry = creates(world)
    assert first_try == retry
    assert retry.idempotency_key == pending.idempotency_key


async def test_a_definite_refusal_drops_the_pending_row_and_names_the_request_field(
    world: World,
) -> None:
    world.stripe.refuse_next(
        "create_session",
        param="line_items[1][price_data][product_data][name]",
        code="parameter_invalid_empty",
    )

    with pytest.raises(InvalidRequest) as refused:
        await create(world, command())

    assert refused.value.reason == "STRIPE_REFUSED"
    assert [v.field for v in refused.value.violations] == ["line_items[1].price_data.product_name"]
    assert refused.value.upstream_request_id is not None
    assert world.ledger.entries(ORDER) == []
    # The order is free again: the next call claims it anew.
    result = await create(world, command())
    assert not result.reused
    assert result.entry.state == LedgerState.OPEN
    assert [call.idempotency_key for call in creates(world)] == ["key-1", "key-2"]


async def test_a_price_stripe_does_not_know_is_refused_on_its_line_item() -> None:
    world = make_world(prices={"price_mug_club": 900})

    with pytest.raises(InvalidRequest) as refused:
        await create(world, command(price_id="price_gone"))
    known = await create(world, command(price_id="price_mug_club"))

    assert [v.field for v in refused.value.violations] == ["line_items[2].price_id"]
    assert isinstance(refused.value.__cause__, UpstreamMissing)
    assert world.ledger.entries(ORDER) == [known.entry]
    assert known.entry.snapshot is not None
    assert known.entry.snapshot.amount_total == 2 * 1500 + 990 + 900


async def test_a_changed_cart_replaces_an_unfinished_attempt_that_stripe_refuses_on_resume(
    world: World,
) -> None:
    world.stripe.fail_next("create_session")
    with pytest.raises(Unavailable):
        await create(world, command())
    [abandoned] = world.ledger.entries(ORDER)
    world.stripe.refuse_next("create_session", param="line_items[0][price_data][unit_amount]")

    result = await create(world, command(shirts=3))

    # The old cart's refusal is not this caller's to hear.
    assert result.entry.state == LedgerState.OPEN
    assert result.entry.fingerprint != abandoned.fingerprint
    assert world.ledger.entries(ORDER) == [result.entry]
    assert [call.idempotency_key for call in creates(world)] == [
        abandoned.idempotency_key,
        abandoned.idempotency_key,
        result.entry.idempotency_key,
    ]
    assert len(world.stripe.sessions_for(ORDER)) == 1


async def test_a_session_past_its_expiry_is_not_handed_out_again(world: World) -> None:
    first = (await create(world, command())).entry
    world.clock.advance(timedelta(hours=25))

    result = await create(world, command())

    assert not result.reused
    assert world.stripe.operations() == ["create_session", "retrieve_session", "create_session"]
    old, new = world.ledger.entries(ORDER)
    assert (old.session_id, old.state) == (first.session_id, LedgerState.EXPIRED)
    assert new == result.entry
    assert new.state == LedgerState.OPEN
    assert new.session_id != first.session_id


async def test_expiring_an_open_session_expires_it_at_stripe(world: World) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None

    expired = await world.checkout.expire_session(SHOP, BY_ORDER)

    assert expired.state == LedgerState.EXPIRED
    assert expired.snapshot is not None
    assert expired.snapshot.url is None
    assert world.stripe.calls[-1] == StripeCall(
        "expire_session", session_id=first.session_id, idempotency_key=f"expire-{first.session_id}"
    )
    assert world.stripe.session(first.session_id).status == "expired"
    assert world.ledger.entries(ORDER) == [expired]


async def test_expiring_an_expired_session_succeeds_and_changes_nothing(world: World) -> None:
    await create(world, command())
    expired = await world.checkout.expire_session(SHOP, BY_ORDER)
    calls = list(world.stripe.calls)

    again = await world.checkout.expire_session(SHOP, BY_ORDER)

    assert again == expired
    assert world.stripe.calls == calls


async def test_expiring_a_session_stripe_already_expired_succeeds(world: World) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None
    world.stripe.expire_now(first.session_id)

    expired = await world.checkout.expire_session(SHOP, Lookup(session_id=first.session_id))

    assert expired.state == LedgerState.EXPIRED
    assert world.stripe.operations() == ["create_session", "expire_session", "retrieve_session"]
    assert world.ledger.entries(ORDER) == [expired]


@pytest.mark.parametrize("webhook", [True, False], ids=["ledger knows", "ledger lags"])
async def test_expiring_a_completed_session_is_refused(world: World, webhook: bool) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None
    world.stripe.complete(first.session_id)
    if webhook:
        await world.sync.handle_event(event("completed", first.session_id))
    calls = len(world.stripe.calls)

    with pytest.raises(FailedPrecondition) as refused:
        await world.checkout.expire_session(SHOP, BY_ORDER)

    assert refused.value.reason == "ORDER_ALREADY_PAID"
    expected = [] if webhook else ["expire_session", "retrieve_session"]
    assert world.stripe.operations()[calls:] == expected
    [row] = world.ledger.entries(ORDER)
    assert row.state == LedgerState.COMPLETE
    assert world.stripe.session(first.session_id).status == "complete"


async def test_expiring_an_unfinished_attempt_leaves_nothing_payable(world: World) -> None:
    world.stripe.fail_next("create_session", after_acting=True)
    with pytest.raises(Unavailable):
        await create(world, command())

    expired = await world.checkout.expire_session(SHOP, BY_ORDER)

    [session] = world.stripe.sessions_for(ORDER)
    assert (expired.state, expired.session_id) == (LedgerState.EXPIRED, session.id)
    assert session.status == "expired"
    assert world.stripe.operations() == ["create_session", "create_session", "expire_session"]


async def test_refreshing_a_session_stripe_no_longer_knows_is_upstream_missing(
    world: World,
) -> None:
    first = (await create(world, command())).entry
    assert first.session_id is not None
    world.stripe.forget(first.session_id)

    with pytest.raises(UpstreamMissing):
        await world.checkout.get_session(SHOP, BY_ORDER, refresh=True)

    assert world.ledger.entries(ORDER) == [first]


async def test_watch_sends_the_session_then_each_change_until_it_is_final(world: World) -> None:
    entry = (await create(world, command())).entry
    sid = entry.session_id
    assert sid is not None
    # Only the change notification can wake the watcher: nothing polls.
    stream = world.checkout.watch_session(SHOP, BY_ORDER)
    try:
        async with asyncio.timeout(1):
            opened = await anext(stream)
            world.stripe.complete(sid, payment_status="unpaid")
            await world.sync.handle_event(event("completed", sid))
            settling = await anext(stream)
            world.stripe.settle(sid, succeeded=True)
            await world.sync.handle_event(event("async_payment_succeeded", sid))
            settled = await anext(stream)
            with pytest.raises(StopAsyncIteration):
                await anext(stream)
    finally:
        await stream.aclose()

    assert opened == entry
    assert settling.snapshot is not None
    assert (settling.state, settling.snapshot.payment_status) == (LedgerState.COMPLETE, "unpaid")
    assert settled.snapshot is not None
    assert settled.snapshot.payment_status == "paid"
    assert settled.is_final
    assert world.changes.watchers(sid) == 0


async def test_list_pages_through_an_orders_sessions_newest_first(world: World) -> None:
    for shirts in (1, 2, 3):
        await create(world, command(shirts=shirts))
    newest_first = [e.session_id for e in reversed(world.ledger.entries(ORDER))]

    first = await world.checkout.list_sessions(SHOP, BY_ORDER, 2, "")
    rest = await world.checkout.list_sessions(SHOP, BY_ORDER, 2, first.next_page_token)

    assert [e.session_id for e in first.entries] == newest_first[:2]
    assert [e.session_id for e in rest.entries] == newest_first[2:]
    assert first.next_page_token
    assert rest.next_page_token == ""


async def test_a_payment_recorded_just_before_the_claim_still_refuses(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paid check and the claim are one statement (the unique index over the rows that
    hold an order), so a payment stored by another replica just before it cannot slip in: not
    even as the old session is being superseded."""
    first = (await create(world, command())).entry
    assert first.session_id is not None
    world.stripe.complete(first.session_id)
    claim = world.ledger.claim
    webhooks = [event("completed", first.session_id)]

    async def webhook_lands_before_the_claim(**kwargs: Any) -> Claim:
        # Another replica applies the payment's webhook while this call is about to claim.
        if webhooks:
            await world.sync.handle_event(webhooks.pop())
        return await claim(**kwargs)

    monkeypatch.setattr(world.ledger, "claim", webhook_lands_before_the_claim)

    # A changed cart goes through a claim (the same cart is answered from the open session
    # the ledger still shows, which Stripe will not take a second payment for).
    with pytest.raises(FailedPrecondition):
        await create(world, command(shirts=3))

    assert len(world.stripe.sessions_for(ORDER)) == 1


async def test_a_key_stripe_saved_a_failure_under_is_replaced_once_nothing_was_made(
    world: World,
) -> None:
    world.stripe.fail_next("create_session")
    with pytest.raises(Unavailable):
        await create(world, command())
    [pending] = world.ledger.entries(ORDER)
    world.stripe.spend_key(pending.idempotency_key)

    result = await create(world, command())

    assert result.entry.state == LedgerState.OPEN
    assert result.entry.idempotency_key != pending.idempotency_key
    assert len(world.stripe.sessions_for(ORDER)) == 1


async def test_a_spent_key_is_not_replaced_while_an_unknown_session_may_be_its(
    world: World,
) -> None:
    world.stripe.fail_next("create_session", after_acting=True)
    with pytest.raises(Unavailable):
        await create(world, command())
    [pending] = world.ledger.entries(ORDER)
    # Stripe made the session, then saved a failure under the key: the attempt must not go
    # on with a new key beside that open session.
    world.stripe.spend_key(pending.idempotency_key)

    with pytest.raises(Unavailable) as caught:
        await create(world, command())

    assert caught.value.reason == "STRIPE_ATTEMPT_UNSETTLED"
    assert len(world.stripe.sessions_for(ORDER)) == 1
    [still] = world.ledger.entries(ORDER)
    assert still.idempotency_key == pending.idempotency_key


async def test_a_session_made_for_a_dropped_row_is_expired_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = world.ledger.record_snapshot

    async def row_dropped_meanwhile(row_id: int, snapshot: Any) -> LedgerEntry:
        world.ledger.forget(row_id)
        return await record(row_id, snapshot)

    monkeypatch.setattr(world.ledger, "record_snapshot", row_dropped_meanwhile)

    with pytest.raises(AttemptDropped):
        await create(world, command())

    [made] = world.stripe.sessions_for(ORDER)
    assert made.status == "expired"
