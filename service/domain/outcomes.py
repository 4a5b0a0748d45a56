"""Which ledger changes the event feed announces, and as what: the one rule, which both ledgers
follow (PostgresLedger builds its SQL from `ANNOUNCEMENTS`, the in-memory one calls
`announced`; tests/integration/test_feed.py has Postgres evaluate that SQL for every state a row
can be in and compares it with `announced`; both payment ledgers call `payment_events`).

A row announces the outcome its state stands for, the first of `ANNOUNCEMENTS` that matches:
its delayed payment failed, it is paid (or there was nothing to pay), a delayed payment is under
way, it expired; a pending or open row announces nothing. A change of what a row announces
writes one event of the new kind, in the same statement as the change (the transactional
outbox); a change that leaves it as it was (pending to open, a snapshot re-read, a webhook
delivered twice) writes none. The types are named for what the order service does with them
(https://docs.stripe.com/checkout/fulfillment: fulfil on payment, not before a delayed payment
has arrived).

After checkout, the money's changes are announced too: each transition of a paid session's
payment (payment_model.transitions, from the payment as stored to the payment being stored)
writes one event of the type `PAYMENT_ANNOUNCEMENTS` gives it, in the same transaction as the
payment's write, and a write that changes nothing (a webhook delivered twice, an older read)
writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.domain.model import LedgerState, PaymentStatus
from service.domain.payment_model import PaymentSnapshot, Transition, transitions


class EventType(StrEnum):
    ORDER_PAID = "order_paid"
    """Paid, or nothing to pay: fulfil."""
    PAYMENT_PROCESSING = "payment_processing"
    """A delayed payment is under way: do not fulfil yet."""
    PAYMENT_FAILED = "payment_failed"
    """The delayed payment failed: the money did not come."""
    SESSION_EXPIRED = "session_expired"
    """The session can no longer be paid, and was not."""
    PAYMENT_AUTHORIZED = "payment_authorized"
    """A manual capture's card is authorised: capture it when the order ships, or cancel it."""
    PAYMENT_CAPTURED = "payment_captured"
    """Money was taken: all or part of an authorisation, or the whole of an automatic one."""
    AUTHORIZATION_RELEASED = "authorization_released"
    """The authorisation was released (cancelled) or lapsed uncaptured: nothing will be
    taken through it."""
    PAYMENT_REFUNDED = "payment_refunded"
    """A refund was made (by the service or in Stripe's Dashboard): credit the order."""
    REFUND_FAILED = "refund_failed"
    """A refund failed after all: the customer did not get it back."""
    DISPUTE_OPENED = "dispute_opened"
    """The customer disputed the payment: answer it in Stripe's Dashboard."""
    DISPUTE_CLOSED = "dispute_closed"
    """The dispute was decided: won or lost."""


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


PAYMENT_ANNOUNCEMENTS: Mapping[Transition, EventType] = {
    Transition.AUTHORISED: EventType.PAYMENT_AUTHORIZED,
    Transition.CAPTURED: EventType.PAYMENT_CAPTURED,
    Transition.RELEASED: EventType.AUTHORIZATION_RELEASED,
    Transition.LAPSED: EventType.AUTHORIZATION_RELEASED,
    Transition.REFUNDED: EventType.PAYMENT_REFUNDED,
    Transition.REFUND_FAILED: EventType.REFUND_FAILED,
    Transition.DISPUTE_OPENED: EventType.DISPUTE_OPENED,
    Transition.DISPUTE_CLOSED: EventType.DISPUTE_CLOSED,
}
"""Every transition of a payment announces one event; released and lapsed alike end the
authorisation (the payment's `cancellation_reason` tells them apart)."""


@dataclass(frozen=True, slots=True)
class PaymentAnnouncement:
    """An event a payment's write causes: its type, the transition behind it, and for a
    refund's events, which refund."""

    type: EventType
    transition: Transition
    refund_id: str | None = None


def payment_events(
    before: PaymentSnapshot | None, after: PaymentSnapshot
) -> tuple[PaymentAnnouncement, ...]:
    """The events a payment's write from `before` (as stored, None if none was) to `after`
    writes, in the order its transitions happened."""
    return tuple(
        PaymentAnnouncement(
            PAYMENT_ANNOUNCEMENTS[change.transition], change.transition, change.refund_id
        )
        for change in transitions(before, after)
    )
