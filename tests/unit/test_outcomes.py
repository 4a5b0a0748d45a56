"""The one rule of which ledger change announces what on the event feed
(service/domain/outcomes.py): named for what the order service does, an outcome announced when
a row comes to it, and nothing for a change that leaves it as it was."""

from __future__ import annotations

import pytest

from service.domain.model import LedgerState, PaymentStatus
from service.domain.outcomes import EventType, announced, event_for

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
