"""The money's arithmetic after checkout (service/domain/payment_model.py): what was captured,
released and refunded of a charge as Stripe reports it, which refunds are a release, what each
new snapshot means, and which operations a snapshot settles."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from service.domain.payment_model import (
    DisputeSnapshot,
    Operation,
    OperationKind,
    OperationState,
    PaymentSnapshot,
    RefundSnapshot,
    Settlement,
    settlements,
    transitions,
)

STAMP = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def authorised(amount: int = 3990) -> PaymentSnapshot:
    return PaymentSnapshot(
        id="pi_1",
        status="requires_capture",
        capture_method="manual",
        currency="usd",
        amount=amount,
        amount_capturable=amount,
        charge_id="ch_1",
        charge_status="succeeded",
        charge_amount=amount,
        capture_before=1_800_604_800,
    )


def refund(
    refund_id: str, amount: int, status: str = "succeeded", request_id: str | None = None
) -> RefundSnapshot:
    return RefundSnapshot(
        refund_id,
        amount,
        status,
        None,
        None,
        1,
        None if request_id is None else "shop",
        request_id,
    )


def captured(before: PaymentSnapshot, amount: int, *refunds: RefundSnapshot) -> PaymentSnapshot:
    """`before` captured for `amount`: Stripe releases the rest as a refund, first."""
    release = (
        (refund("re_release", before.charge_amount - amount),) if amount < before.amount else ()
    )
    made = (*release, *refunds)
    return dataclasses.replace(
        before,
        status="succeeded",
        amount_capturable=0,
        captured=True,
        amount_captured=amount,
        amount_refunded=sum(r.amount for r in made if not r.undone),
        refunds=made,
    )


def test_a_partial_capture_releases_the_rest_which_is_no_refund() -> None:
    payment = captured(authorised(), 3000)

    assert (payment.authorized, payment.amount_captured, payment.released) == (3990, 3000, 990)
    assert (payment.refunded, payment.refunded_elsewhere) == (0, 0)
    assert payment.customer_refunds == ()


def test_refunds_after_a_partial_capture_are_told_from_its_release() -> None:
    ours, dashboard = refund("re_2", 500, request_id="r-1"), refund("re_3", 700)
    payment = captured(authorised(), 3000, ours, dashboard, refund("re_4", 100, "failed"))

    assert payment.refunded == 1200
    assert [r.id for r in payment.customer_refunds] == ["re_2", "re_3", "re_4"]
    assert payment.refunded_elsewhere == 700


def test_a_released_or_lapsed_authorisation_refunded_nothing() -> None:
    release = refund("re_1", 3990)
    for reason in ("requested_by_customer", "automatic"):
        payment = dataclasses.replace(
            authorised(),
            status="canceled",
            cancellation_reason=reason,
            amount_capturable=0,
            amount_refunded=3990,
            refunds=(release,),
        )
        assert (payment.released, payment.refunded, payment.customer_refunds) == (3990, 0, ())
        assert payment.settled


@pytest.mark.parametrize(
    ("changes", "settled"),
    [
        ({}, False),
        ({"status": "processing"}, False),
        ({"status": "succeeded", "captured": True}, True),
        ({"status": "succeeded", "captured": True, "refunds": (refund("r", 1, "pending"),)}, False),
        (
            {
                "status": "succeeded",
                "captured": True,
                "dispute": DisputeSnapshot("du_1", "needs_response", "general", 1, 1),
            },
            False,
        ),
        (
            {
                "status": "succeeded",
                "captured": True,
                "dispute": DisputeSnapshot("du_1", "won", "general", 1, 1),
            },
            True,
        ),
        ({"status": "requires_payment_method"}, True),
    ],
)
def test_a_payment_is_settled_when_nothing_more_is_expected(
    changes: dict[str, object], settled: bool
) -> None:
    assert dataclasses.replace(authorised(), **changes).settled is settled  # type: ignore[arg-type]


def test_each_transition_is_named_once_from_one_snapshot_to_the_next() -> None:
    first = authorised()
    took = captured(first, 3000)
    refunded = captured(first, 3000, refund("re_2", 500, request_id="r-1"))
    failed = captured(first, 3000, refund("re_2", 500, "failed", request_id="r-1"))
    disputed = dataclasses.replace(
        failed, dispute=DisputeSnapshot("du_1", "needs_response", "fraudulent", 3000, 2)
    )
    won = dataclasses.replace(
        disputed, dispute=DisputeSnapshot("du_1", "won", "fraudulent", 3000, 2)
    )

    assert named(None, first) == [("authorised", None)]
    assert named(first, first) == []
    assert named(first, took) == [("captured", None)]
    assert named(took, refunded) == [("refunded", "re_2")]
    assert named(refunded, failed) == [("refund_failed", "re_2")]
    assert named(failed, disputed) == [("dispute_opened", None)]
    assert named(disputed, won) == [("dispute_closed", None)]
    assert named(won, won) == []
    lapsed = dataclasses.replace(first, status="canceled", cancellation_reason="automatic")
    assert named(first, lapsed) == [("lapsed", None)]
    assert named(first, dataclasses.replace(lapsed, cancellation_reason=None)) == [
        ("released", None)
    ]
    assert named(None, captured(first, 3990)) == [("captured", None)]
    # Stripe's view may have moved on by several steps at once (the sweep reads what webhooks
    # missed): each is named, in the order it happened, each refund by its id.
    assert named(first, failed) == [("captured", None), ("refund_failed", "re_2")]
    two = captured(first, 3000, refund("re_2", 500), refund("re_3", 700))
    assert named(took, two) == [("refunded", "re_2"), ("refunded", "re_3")]


def named(before: PaymentSnapshot | None, after: PaymentSnapshot) -> list[tuple[str, str | None]]:
    return [(change.transition, change.refund_id) for change in transitions(before, after)]


def operation(op_id: int, kind: OperationKind, state: OperationState, request_id: str) -> Operation:
    return Operation(
        op_id=op_id,
        session_row=1,
        caller="shop",
        request_id=request_id,
        kind=kind,
        fingerprint="f",
        amount=500,
        reason=None,
        idempotency_key=f"k{op_id}",
        state=state,
        created_at=STAMP,
        updated_at=STAMP,
    )


def test_a_snapshot_settles_the_refunds_it_shows_by_the_request_that_made_them() -> None:
    pending = operation(1, OperationKind.REFUND, OperationState.PENDING, "r-1")
    done = operation(2, OperationKind.REFUND, OperationState.SUCCEEDED, "r-2")
    done = dataclasses.replace(done, refund_id="re_2")
    unseen = operation(3, OperationKind.REFUND, OperationState.PENDING, "r-3")
    refused = operation(4, OperationKind.REFUND, OperationState.FAILED, "r-4")
    payment = captured(
        authorised(),
        3990,
        refund("re_1", 500, request_id="r-1"),
        refund("re_2", 500, "failed", request_id="r-2"),
        refund("re_4", 500, request_id="r-4"),
    )

    assert settlements(payment, [pending, done, unseen, refused]) == [
        Settlement(1, OperationState.PENDING, OperationState.SUCCEEDED, "re_1"),
        Settlement(2, OperationState.SUCCEEDED, OperationState.FAILED, "re_2"),
    ]


def test_a_snapshot_settles_a_pending_capture_or_cancel_by_the_intents_status() -> None:
    capture = operation(1, OperationKind.CAPTURE, OperationState.PENDING, "r-1")
    cancel = operation(2, OperationKind.CANCEL, OperationState.PENDING, "r-2")
    released = dataclasses.replace(authorised(), status="canceled")

    assert settlements(authorised(), [capture, cancel]) == []
    assert settlements(captured(authorised(), 3990), [capture, cancel]) == [
        Settlement(1, OperationState.PENDING, OperationState.SUCCEEDED),
        Settlement(2, OperationState.PENDING, OperationState.FAILED),
    ]
    assert settlements(released, [capture, cancel]) == [
        Settlement(1, OperationState.PENDING, OperationState.FAILED),
        Settlement(2, OperationState.PENDING, OperationState.SUCCEEDED),
    ]


def test_a_snapshot_survives_the_ledgers_json() -> None:
    payment = dataclasses.replace(
        captured(authorised(), 3000, refund("re_2", 500, request_id="r-1")),
        dispute=DisputeSnapshot("du_1", "under_review", "general", 100, 5, 99),
    )

    assert PaymentSnapshot.from_json(payment.to_json()) == payment
