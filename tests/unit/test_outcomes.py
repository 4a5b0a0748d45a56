"""The one rule of which ledger change announces what on the event feed
(service/domain/outcomes.py): named for what the order service does, an outcome announced when
a row comes to it, each change of the money after checkout announced once, and nothing for a
change that leaves it as it was."""

from __future__ import annotations

import dataclasses

import pytest

from service.domain.model import LedgerState, PaymentStatus
from service.domain.outcomes import (
    ANNOUNCEMENTS,
    PAYMENT_ANNOUNCEMENTS,
    EventType,
    announced,
    event_for,
    payment_events,
)
from service.domain.payment_model import PaymentSnapshot, Transition
from tests.unit.test_payment_model import authorised, captured, refund

PENDING = ("pending", None, False)
OPEN = ("open", "unpaid", False)
PAID = ("complete", "paid", False)
NOTHING_TO_PAY = ("complete", "no_payment_required", False)
PROCESSING = ("complete", "unpaid", False)
FAILED = ("complete", "unpaid", True)
EXPIRED = ("expired", "unpaid", False)
Row = tuple[str, str | None, bool]


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (PENDING, OPEN, None),
        (OPEN, OPEN, None),
        (OPEN, PAID, EventType.ORDER_PAID),
        (PENDING, PAID, EventType.ORDER_PAID),
        (OPEN, NOTHING_TO_PAY, EventType.ORDER_PAID),
        (OPEN, PROCESSING, EventType.PAYMENT_PROCESSING),
        (PROCESSING, PAID, EventType.ORDER_PAID),
        (PROCESSING, FAILED, EventType.PAYMENT_FAILED),
        # The failure's webhook may be the first news of the completion: one event, the last.
        (OPEN, FAILED, EventType.PAYMENT_FAILED),
        (OPEN, EXPIRED, EventType.SESSION_EXPIRED),
        (PENDING, EXPIRED, EventType.SESSION_EXPIRED),
        (PAID, PAID, None),
        (FAILED, FAILED, None),
        (EXPIRED, EXPIRED, None),
    ],
)
def test_a_change_announces_the_outcome_it_comes_to_if_it_is_new(
    before: Row, after: Row, event: EventType | None
) -> None:
    assert event_for(announced(*before), announced(*after)) == event


def test_a_row_whose_outcome_is_not_known_yet_announces_nothing() -> None:
    for state in (LedgerState.PENDING, LedgerState.OPEN):
        for status in (*PaymentStatus, None, "newer_than_us"):
            assert announced(state, status, False) is None


def test_a_complete_row_in_a_payment_status_newer_than_us_is_still_under_way() -> None:
    """Stripe's enums are open: a status this code does not know is not a payment, so the order
    service is not told to fulfil; the session is complete, so it waits."""
    assert announced("complete", "newer_than_us", False) == EventType.PAYMENT_PROCESSING


def test_every_change_of_the_money_has_its_event_type() -> None:
    assert set(PAYMENT_ANNOUNCEMENTS) == set(Transition)
    # Named apart from the session's outcomes: a consumer filtering ORDER_PAID gets no money.
    assert not set(PAYMENT_ANNOUNCEMENTS.values()) & {a.type for a in ANNOUNCEMENTS}


def test_each_change_of_the_money_is_announced_once_as_what_the_order_service_does() -> None:
    first = authorised()
    took = captured(first, 3000)
    refunded = captured(first, 3000, refund("re_2", 500, request_id="r-1"))
    failed = captured(first, 3000, refund("re_2", 500, "failed", request_id="r-1"))
    lapsed = dataclasses.replace(first, status="canceled", cancellation_reason="automatic")
    released = dataclasses.replace(lapsed, cancellation_reason="requested_by_customer")

    def announced_between(
        before: PaymentSnapshot | None, after: PaymentSnapshot
    ) -> list[tuple[EventType, str, str | None]]:
        return [(e.type, e.transition, e.refund_id) for e in payment_events(before, after)]

    assert announced_between(None, first) == [(EventType.PAYMENT_AUTHORIZED, "authorised", None)]
    assert announced_between(first, took) == [(EventType.PAYMENT_CAPTURED, "captured", None)]
    assert announced_between(took, refunded) == [(EventType.PAYMENT_REFUNDED, "refunded", "re_2")]
    assert announced_between(refunded, failed) == [
        (EventType.REFUND_FAILED, "refund_failed", "re_2")
    ]
    assert announced_between(first, lapsed) == [(EventType.AUTHORIZATION_RELEASED, "lapsed", None)]
    assert announced_between(first, released) == [
        (EventType.AUTHORIZATION_RELEASED, "released", None)
    ]
    for same in (first, took, failed, lapsed):
        assert payment_events(same, same) == ()
