"""The payment ledger's contract (PaymentLedger in service/domain/ports.py), held against every
ledger alike (conftest.py): the in-memory fake, Postgres, and each beside a cache. Above all:
refunds never reserve more than was captured, however many ask at once, and an older read of
Stripe never overwrites a newer one."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.errors import AttemptDropped
from service.domain.model import LedgerEntry
from service.domain.payment_model import (
    Failure,
    NewOperation,
    Operation,
    OperationKind,
    OperationState,
    PaymentEvent,
    PaymentSnapshot,
    RefundSnapshot,
    Settlement,
    WriteOutcome,
)
from service.domain.ports import PaymentLedger
from tests.contract.conftest import Ledgers
from tests.contract.test_ledger import CALLER, claim, order, session, snapshot


def payments_of(ledgers: Ledgers) -> PaymentLedger:
    assert ledgers.payments is not None
    return ledgers.payments


def intent() -> str:
    return f"pi_{uuid.uuid4().hex}"


def paid(payment_intent_id: str, *, captured: int = 1000, refunds: int = 0) -> PaymentSnapshot:
    """A captured card payment, with `refunds` of it made in Stripe's Dashboard."""
    made = (
        (RefundSnapshot("re_elsewhere", refunds, "succeeded", None, None, 1_800_000_100),)
        if refunds
        else ()
    )
    return PaymentSnapshot(
        id=payment_intent_id,
        status="succeeded",
        capture_method="automatic_async",
        currency="usd",
        amount=captured,
        charge_id=f"ch_{payment_intent_id}",
        charge_status="succeeded",
        charge_amount=captured,
        captured=True,
        amount_captured=captured,
        amount_refunded=refunds,
        refunds=made,
    )


async def completed(ledgers: Ledgers, payment_intent_id: str | None = None) -> LedgerEntry:
    """A completed session of a new order whose snapshot names its PaymentIntent."""
    pending = (await claim(ledgers, order())).entry
    said = dataclasses.replace(
        snapshot(session(), "complete", "paid"), payment_intent_id=payment_intent_id or intent()
    )
    return await ledgers.ledger.record_snapshot(pending.row_id, said)


async def with_payment(ledgers: Ledgers, captured: int = 1000, refunds: int = 0) -> LedgerEntry:
    entry = await completed(ledgers)
    assert entry.snapshot is not None and entry.snapshot.payment_intent_id is not None
    written = await payments_of(ledgers).record_payment(
        entry.row_id,
        paid(entry.snapshot.payment_intent_id, captured=captured, refunds=refunds),
        seen=None,
    )
    assert written.outcome == WriteOutcome.WRITTEN and written.entry is not None
    return written.entry


def new(entry: LedgerEntry, kind: OperationKind, amount: int, request_id: str = "") -> NewOperation:
    return NewOperation(
        session_row=entry.row_id,
        caller=CALLER,
        request_id=request_id or f"req-{uuid.uuid4().hex}",
        kind=kind,
        fingerprint=f"{kind}-{amount}",
        amount=amount,
        reason=None,
        idempotency_key=f"key-{uuid.uuid4().hex}",
    )


async def started(
    ledgers: Ledgers, entry: LedgerEntry, kind: OperationKind, amount: int
) -> Operation:
    claimed = await payments_of(ledgers).start_operation(new(entry, kind, amount))
    assert claimed.won and claimed.operation is not None
    return claimed.operation


def payment_event(payment_intent_id: str) -> PaymentEvent:
    return PaymentEvent(f"evt_{uuid.uuid4().hex}", "charge.refunded", payment_intent_id, None)


# -- payments --


async def test_a_payment_is_stored_with_its_session_and_notifies_watchers(
    ledgers: Ledgers,
) -> None:
    entry = await completed(ledgers)
    assert entry.snapshot is not None and entry.snapshot.payment_intent_id is not None
    pi = entry.snapshot.payment_intent_id
    payments = payments_of(ledgers)
    assert await payments.payment(entry.row_id) is None

    async with ledgers.changes.subscribe(entry.session_id or "") as signal:
        written = await payments.record_payment(entry.row_id, paid(pi), seen=None)
        await asyncio.wait_for(signal.wait(), 5)

    assert written.outcome == WriteOutcome.WRITTEN and written.entry is not None
    assert written.entry.payment == paid(pi)
    assert written.entry.updated_at > entry.updated_at
    assert await ledgers.ledger.by_session_id(entry.session_id or "") == written.entry
    assert await payments.session_by_payment_intent(pi) == written.entry
    assert await payments.session_by_payment_intent(intent()) is None
    record = await payments.payment(entry.row_id)
    assert record is not None
    assert (record.payment_intent_id, record.snapshot) == (pi, paid(pi))
    assert (record.captured, record.reserved, record.refunded_elsewhere) == (1000, 0, 0)
    assert record.refundable == 1000


async def test_a_read_older_than_the_stored_payment_is_not_stored(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    record = await payments.payment(entry.row_id)
    assert record is not None
    newer = dataclasses.replace(paid(record.payment_intent_id), amount_refunded=100)

    again_first = await payments.record_payment(entry.row_id, newer, seen=None)
    moved = await payments.record_payment(entry.row_id, newer, seen=record.version)
    stale = await payments.record_payment(
        entry.row_id, paid(record.payment_intent_id), seen=record.version
    )

    assert again_first.outcome == WriteOutcome.STALE
    assert moved.outcome == WriteOutcome.WRITTEN
    assert stale.outcome == WriteOutcome.STALE
    after = await payments.payment(entry.row_id)
    assert after is not None
    assert (after.snapshot, after.version) == (newer, record.version + 1)
    assert after.refunded_elsewhere == 100


async def test_storing_what_is_stored_changes_nothing(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    record = await payments.payment(entry.row_id)
    assert record is not None

    again = await payments.record_payment(entry.row_id, record.snapshot, seen=record.version)

    assert again.outcome == WriteOutcome.WRITTEN
    assert again.entry == entry
    after = await payments.payment(entry.row_id)
    assert after is not None and after.version == record.version


async def test_a_payment_event_is_applied_once_with_its_effect(ledgers: Ledgers) -> None:
    entry = await completed(ledgers)
    assert entry.snapshot is not None and entry.snapshot.payment_intent_id is not None
    pi = entry.snapshot.payment_intent_id
    payments = payments_of(ledgers)
    event = payment_event(pi)

    stale = await payments.record_payment(entry.row_id, paid(pi), seen=7, event=event)
    assert stale.outcome == WriteOutcome.STALE
    assert not await ledgers.ledger.event_seen(event.id)
    first = await payments.record_payment(entry.row_id, paid(pi), seen=None, event=event)
    again = await payments.record_payment(entry.row_id, paid(pi, captured=5), seen=0, event=event)

    assert (first.outcome, again.outcome) == (WriteOutcome.WRITTEN, WriteOutcome.DUPLICATE)
    assert await ledgers.ledger.event_seen(event.id)
    record = await payments.payment(entry.row_id)
    assert record is not None and record.snapshot == paid(pi)
    other = payment_event(intent())
    assert await payments.skip_payment_event(other)
    assert not await payments.skip_payment_event(other)
    assert await ledgers.ledger.event_seen(other.id)


async def test_the_payment_of_a_row_that_is_gone_is_attempt_dropped(ledgers: Ledgers) -> None:
    pending = (await claim(ledgers, order())).entry
    await ledgers.ledger.discard_pending(pending.row_id)

    with pytest.raises(AttemptDropped):
        await payments_of(ledgers).record_payment(pending.row_id, paid(intent()), seen=None)


# -- operations --


async def test_a_refund_reserves_its_amount_and_never_more_than_was_captured(
    ledgers: Ledgers,
) -> None:
    entry = await with_payment(ledgers, captured=1000, refunds=100)
    payments = payments_of(ledgers)

    first = await payments.start_operation(new(entry, OperationKind.REFUND, 600))
    too_much = await payments.start_operation(new(entry, OperationKind.REFUND, 301))
    rest = await payments.start_operation(new(entry, OperationKind.REFUND, 300))

    assert first.won and first.operation is not None
    assert first.operation.state == OperationState.PENDING
    assert (too_much.won, too_much.operation, too_much.refundable) == (False, None, 300)
    assert rest.won
    record = await payments.payment(entry.row_id)
    assert record is not None
    assert (record.reserved, record.refundable) == (900, 0)


async def test_concurrent_refunds_reserve_no_more_than_was_captured(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers, captured=1000)
    payments = payments_of(ledgers)

    claims = await asyncio.gather(
        *(payments.start_operation(new(entry, OperationKind.REFUND, 300)) for _ in range(8))
    )

    assert sum(c.won for c in claims) == 3
    assert {c.refundable for c in claims if not c.won} == {100}
    record = await payments.payment(entry.row_id)
    assert record is not None and record.reserved == 900
    ops = await payments.operations(entry.row_id)
    assert sorted(op.op_id for op in ops) == sorted(
        c.operation.op_id for c in claims if c.operation is not None
    )


async def test_a_request_id_names_one_operation_per_caller(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    other = await with_payment(ledgers)
    payments = payments_of(ledgers)
    first = await started(ledgers, entry, OperationKind.REFUND, 100)

    again = await payments.start_operation(new(entry, OperationKind.REFUND, 500, first.request_id))
    elsewhere = await payments.start_operation(
        new(other, OperationKind.CAPTURE, 1, first.request_id)
    )

    assert (again.won, again.operation) == (False, first)
    assert (elsewhere.won, elsewhere.operation) == (False, first)
    assert await payments.operation(CALLER, first.request_id) == first
    assert await payments.operation("billing", first.request_id) is None
    record = await payments.payment(entry.row_id)
    assert record is not None and record.reserved == 100


async def test_a_payment_is_captured_or_cancelled_once(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    capture = await started(ledgers, entry, OperationKind.CAPTURE, 1000)

    blocked = await payments.start_operation(new(entry, OperationKind.CANCEL, 0))
    assert (blocked.won, blocked.blocking) == (False, capture)

    refused = await payments.finish_operation(
        capture.op_id,
        state=OperationState.FAILED,
        failure=Failure("payment_intent_unexpected_state", None, "no", "req_1"),
    )
    assert refused.failure == Failure("payment_intent_unexpected_state", None, "no", "req_1")
    assert (await payments.start_operation(new(entry, OperationKind.CANCEL, 0))).won


async def test_an_operation_is_finished_once_and_a_refused_refund_gives_back_its_amount(
    ledgers: Ledgers,
) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    refund = await started(ledgers, entry, OperationKind.REFUND, 400)
    kept = await started(ledgers, entry, OperationKind.REFUND, 100)

    refused = await payments.finish_operation(refund.op_id, state=OperationState.FAILED)
    late = await payments.finish_operation(
        refund.op_id, state=OperationState.SUCCEEDED, refund_id="re_late"
    )
    made = await payments.finish_operation(
        kept.op_id, state=OperationState.SUCCEEDED, refund_id="re_1"
    )

    assert refused.state == late.state == OperationState.FAILED
    assert late.refund_id is None
    assert (made.state, made.refund_id) == (OperationState.SUCCEEDED, "re_1")
    record = await payments.payment(entry.row_id)
    assert record is not None and record.reserved == 100
    assert await payments.operations(entry.row_id) == [refused, made]


async def test_a_snapshot_settles_operations_still_where_it_expects_them(
    ledgers: Ledgers,
) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    record = await payments.payment(entry.row_id)
    assert record is not None
    made = await started(ledgers, entry, OperationKind.REFUND, 300)
    other = await started(ledgers, entry, OperationKind.REFUND, 200)
    failed_refund = RefundSnapshot(
        "re_1", 300, "failed", None, "expired_or_canceled_card", 1, CALLER, made.request_id
    )
    seen = dataclasses.replace(record.snapshot, refunds=(failed_refund,))

    written = await payments.record_payment(
        entry.row_id,
        seen,
        seen=record.version,
        settlements=(
            Settlement(made.op_id, OperationState.PENDING, OperationState.FAILED, "re_1"),
            Settlement(other.op_id, OperationState.SUCCEEDED, OperationState.FAILED),
        ),
    )

    assert written.outcome == WriteOutcome.WRITTEN
    by_id = {op.op_id: op for op in await payments.operations(entry.row_id)}
    assert (by_id[made.op_id].state, by_id[made.op_id].refund_id) == (
        OperationState.FAILED,
        "re_1",
    )
    assert by_id[other.op_id].state == OperationState.PENDING
    after = await payments.payment(entry.row_id)
    assert after is not None and after.reserved == 200


async def test_a_pending_operations_key_is_replaced_once(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    op = await started(ledgers, entry, OperationKind.CAPTURE, 1000)

    renewed = await payments.replace_operation_key(
        op.op_id, old_key=op.idempotency_key, new_key="k1"
    )
    raced = await payments.replace_operation_key(op.op_id, old_key=op.idempotency_key, new_key="k2")

    assert renewed.idempotency_key == "k1"
    assert raced == renewed
    with pytest.raises(AttemptDropped):
        await payments.replace_operation_key(op.op_id + 1000, old_key="k1", new_key="k3")


async def test_the_operations_to_resume_soonest_first(ledgers: Ledgers) -> None:
    entry = await with_payment(ledgers)
    payments = payments_of(ledgers)
    first = await started(ledgers, entry, OperationKind.REFUND, 100)
    second = await started(ledgers, entry, OperationKind.REFUND, 100)
    done = await started(ledgers, entry, OperationKind.REFUND, 100)
    await payments.finish_operation(done.op_id, state=OperationState.SUCCEEDED, refund_id="re_9")
    now = datetime.now(UTC) + timedelta(seconds=1)

    assert [
        op.op_id for op in await payments.operations_to_resume(before=now, now=now, limit=10)
    ] == [
        first.op_id,
        second.op_id,
    ]
    await payments.schedule_operation(first.op_id, at=now + timedelta(minutes=1), failed=True)
    assert [
        op.op_id for op in await payments.operations_to_resume(before=now, now=now, limit=10)
    ] == [second.op_id]
    later = await payments.operations_to_resume(
        before=now, now=now + timedelta(minutes=2), limit=10
    )
    assert [op.op_id for op in later] == [second.op_id, first.op_id]
    assert later[1].sweep_attempts == 1
    assert (
        await payments.operations_to_resume(before=now - timedelta(hours=1), now=now, limit=10)
        == []
    )


async def test_the_payments_that_may_lag_stripe(ledgers: Ledgers) -> None:
    payments = payments_of(ledgers)
    missing = await completed(ledgers)
    unsettled = await with_payment(ledgers)
    record = await payments.payment(unsettled.row_id)
    assert record is not None
    refund_on_its_way = RefundSnapshot("re_2", 100, "pending", None, None, 1)
    await payments.record_payment(
        unsettled.row_id,
        dataclasses.replace(record.snapshot, refunds=(refund_on_its_way,), amount_refunded=100),
        seen=record.version,
    )
    settled = await with_payment(ledgers)
    await claim(ledgers, order())  # pending: no session, no payment
    now = datetime.now(UTC) + timedelta(seconds=1)

    due = await payments.payments_to_check(now=now, quiet_since=now, limit=10)
    quiet = await payments.payments_to_check(
        now=now, quiet_since=now - timedelta(hours=1), limit=10
    )

    assert [e.row_id for e in due] == [missing.row_id, unsettled.row_id]
    assert settled.row_id not in [e.row_id for e in due]
    assert quiet == []
    await payments.schedule_payment_check(unsettled.row_id, at=now + timedelta(minutes=5))
    assert [
        e.row_id for e in await payments.payments_to_check(now=now, quiet_since=now, limit=10)
    ] == [missing.row_id]
    assert [
        e.row_id
        for e in await payments.payments_to_check(
            now=now + timedelta(minutes=5), quiet_since=now, limit=10
        )
    ] == [missing.row_id, unsettled.row_id]


async def test_an_authorisation_is_looked_at_again_when_it_lapses(ledgers: Ledgers) -> None:
    entry = await completed(ledgers)
    assert entry.snapshot is not None and entry.snapshot.payment_intent_id is not None
    lapses = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    authorised = dataclasses.replace(
        paid(entry.snapshot.payment_intent_id),
        status="requires_capture",
        capture_method="manual",
        captured=False,
        amount_captured=0,
        amount_capturable=1000,
        capture_before=int(lapses.timestamp()),
    )
    payments = payments_of(ledgers)
    await payments.record_payment(entry.row_id, authorised, seen=None)
    now = datetime.now(UTC) + timedelta(seconds=1)

    assert (
        await payments.payments_to_check(now=now, quiet_since=now + timedelta(days=1), limit=9)
        == []
    )
    [due] = await payments.payments_to_check(now=lapses, quiet_since=now, limit=9)
    assert due.row_id == entry.row_id
    record = await payments.payment(entry.row_id)
    assert record is not None and record.refundable == 0
