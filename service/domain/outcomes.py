"""Which ledger changes the event feed announces, and as what: the one rule, which both ledgers
follow (PostgresLedger builds its SQL from `ANNOUNCEMENTS`, the in-memory one calls
`announced`; tests/integration/test_feed.py has Postgres evaluate that SQL for every state a row
can be in and compares it with `announced`).

A row announces the outcome its state stands for, the first of `ANNOUNCEMENTS` that matches:
its delayed payment failed, it is paid (or there was nothing to pay), a delayed payment is under
way, it expired; a pending or open row announces nothing. A change of what a row announces
writes one event of the new kind, in the same statement as the change (the transactional
outbox); a change that leaves it as it was (pending to open, a snapshot re-read, a webhook
delivered twice) writes none. The types are named for what the order service does with them
(https://docs.stripe.com/checkout/fulfillment: fulfil on payment, not before a delayed payment
has arrived).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.domain.model import LedgerState, PaymentStatus


class EventType(StrEnum):
    ORDER_PAID = "order_paid"
    """Paid, or nothing to pay: fulfil."""
    PAYMENT_PROCESSING = "payment_processing"
    """A delayed payment is under way: do not fulfil yet."""
    PAYMENT_FAILED = "payment_failed"
    """The delayed payment failed: the money did not come."""
    SESSION_EXPIRED = "session_expired"
    """The session can no longer be paid, and was not."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """A row in `state` announces `type`, when its payment status is one of `payment_statuses`
    (any, if empty) and its delayed payment failed as `payment_failed` says (either, if None)."""

    type: EventType
    state: LedgerState
    payment_statuses: tuple[PaymentStatus, ...] = ()
    payment_failed: bool | None = None

    def matches(self, state: str, payment_status: str | None, payment_failed: bool) -> bool:
        return (
            state == self.state
            and (not self.payment_statuses or payment_status in self.payment_statuses)
            and (self.payment_failed is None or payment_failed == self.payment_failed)
        )


ANNOUNCEMENTS = (
    Announcement(EventType.PAYMENT_FAILED, LedgerState.COMPLETE, payment_failed=True),
    Announcement(
        EventType.ORDER_PAID,
        LedgerState.COMPLETE,
        (PaymentStatus.PAID, PaymentStatus.NO_PAYMENT_REQUIRED),
    ),
    Announcement(EventType.PAYMENT_PROCESSING, LedgerState.COMPLETE),
    Announcement(EventType.SESSION_EXPIRED, LedgerState.EXPIRED),
)


def announced(state: str, payment_status: str | None, payment_failed: bool) -> EventType | None:
    """What a row in this state announces; None for a row whose outcome is not known yet."""
    return next(
        (a.type for a in ANNOUNCEMENTS if a.matches(state, payment_status, payment_failed)), None
    )


def event_for(before: EventType | None, after: EventType | None) -> EventType | None:
    """The event a change writes, from a row that announced `before` to one that announces
    `after`: the new outcome, if there is one and it is new."""
    return after if after is not None and after != before else None
