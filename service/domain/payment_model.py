"""Values of the money after checkout: what Stripe said of a session's payment (its
PaymentIntent, charge, refunds and dispute), what the ledger keeps to guard it, and the
operations callers ask for (capture, cancel, refund).

Amounts follow Stripe's charge (https://docs.stripe.com/api/charges/object): `amount` was
authorised, `amount_captured` taken; releasing the rest of an authorisation (a partial capture,
a cancel, a lapse) is a refund at Stripe too, counted in `amount_refunded` with the refunds of
captured money. So what was refunded of what was captured is `amount_refunded` less what was
released, and the earliest refunds, up to what was released, are that release.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from service.domain.errors import CheckoutError
from service.domain.model import LedgerEntry, field_values

# Metadata the service puts on each refund it asks for beside the caller and the order
# (model.service_metadata), naming the request that made it: a refund found at Stripe with them
# is that request's, whatever happened to the answer.
REFUND_REQUEST_KEY = "checkout_request_id"


class OperationKind(StrEnum):
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


class OperationState(StrEnum):
    """`pending` from the moment the row is written (before Stripe is asked) until Stripe's
    answer is known; `succeeded` once Stripe did it; `failed` when Stripe refused it or, for a
    refund, when the refund failed later. The migration's CHECK names the same values."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class IntentStatus(StrEnum):
    """The PaymentIntent statuses a Checkout payment reaches."""

    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"


# The events about payments after checkout that the service applies (each one a hint: the
# payment is read again from Stripe), beside the Checkout Session's (sync.py).
PAYMENT_EVENTS = frozenset(
    {
        "payment_intent.amount_capturable_updated",  # authorised, for a manual capture
        "payment_intent.succeeded",  # captured
        "payment_intent.canceled",  # released, or lapsed
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    }
)
LAPSED = "automatic"
"""The `cancellation_reason` Stripe gives an authorisation that lapsed uncaptured."""
# Refunds whose money is not (or no longer) on its way back.
_REFUND_UNDONE = ("failed", "canceled")
_DISPUTE_OPEN = (
    "needs_response",
    "under_review",
    "warning_needs_response",
    "warning_under_review",
    "appeal_needs_response",
    "appeal_under_review",
)


@dataclass(frozen=True, slots=True)
class RefundSnapshot:
    id: str
    amount: int
    status: str | None
    reason: str | None
    failure_reason: str | None
    created: int
    caller: str | None = None
    """With `request_id`: the caller and request that made it (its metadata), if ours."""
    request_id: str | None = None

    @property
    def undone(self) -> bool:
        return self.status in _REFUND_UNDONE


@dataclass(frozen=True, slots=True)
class DisputeSnapshot:
    id: str
    status: str
    reason: str
    amount: int
    created: int
    evidence_due_by: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in _DISPUTE_OPEN


@dataclass(frozen=True, slots=True)
class PaymentSnapshot:
    """A PaymentIntent with its latest charge, the charge's refunds (oldest first) and its
    dispute, as Stripe last described them. Enum-like fields keep Stripe's raw strings."""

    id: str
    status: str
    capture_method: str
    currency: str
    amount: int
    amount_capturable: int = 0
    charge_id: str | None = None
    charge_status: str | None = None
    charge_amount: int = 0
    captured: bool = False
    amount_captured: int = 0
    amount_refunded: int = 0
    """The charge's: the authorisation released included."""
    capture_before: int | None = None
    cancellation_reason: str | None = None
    refunds: tuple[RefundSnapshot, ...] = ()
    dispute: DisputeSnapshot | None = None

    @property
    def released(self) -> int:
        """What was given back of the authorisation without being captured: the rest of a
        partial capture, or all of a cancelled or lapsed one."""
        ended = self.captured or self.status == IntentStatus.CANCELED
        if not ended or self.charge_status != "succeeded":
            return 0
        return self.charge_amount - self.amount_captured

    @property
    def authorized(self) -> int:
        return self.charge_amount if self.charge_status in ("succeeded", "pending") else 0

    @property
    def refunded(self) -> int:
        """What was refunded of what was captured, pending refunds included."""
        return max(0, self.amount_refunded - self.released)

    @property
    def customer_refunds(self) -> tuple[RefundSnapshot, ...]:
        """The refunds of captured money: every refund but the release of the authorisation,
        which comes first (nothing can be refunded before the capture that releases the
        rest) and is never the service's."""
        left = self.released
        kept = []
        for refund in self.refunds:
            if left >= refund.amount and refund.request_id is None and not refund.undone:
                left -= refund.amount
                continue
            kept.append(refund)
        return tuple(kept)

    @property
    def refunded_elsewhere(self) -> int:
        """What was refunded without the service (in Stripe's Dashboard, by another program):
        the refunds of captured money that no request of ours made."""
        ours = sum(r.amount for r in self.refunds if r.request_id is not None and not r.undone)
        return max(0, self.refunded - ours)

    @property
    def settled(self) -> bool:
        """Nothing more is expected to happen to it: released, failed, or captured with no
        refund on its way and no dispute open (a later refund or dispute sends an event)."""
        if self.status in (IntentStatus.CANCELED, IntentStatus.REQUIRES_PAYMENT_METHOD):
            return True
        if self.status != IntentStatus.SUCCEEDED:
            return False
        pending = any(r.status not in ("succeeded", *_REFUND_UNDONE) for r in self.refunds)
        return not pending and not (self.dispute is not None and self.dispute.is_open)

    def refund(self, refund_id: str) -> RefundSnapshot | None:
        return next((r for r in self.refunds if r.id == refund_id), None)

    def to_json(self) -> dict[str, Any]:
        data = field_values(self)
        data["refunds"] = [field_values(r) for r in self.refunds]
        data["dispute"] = None if self.dispute is None else field_values(self.dispute)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PaymentSnapshot:
        values = dict(data)
        values["refunds"] = tuple(RefundSnapshot(**r) for r in data.get("refunds", ()))
        dispute = data.get("dispute")
        values["dispute"] = None if dispute is None else DisputeSnapshot(**dispute)
        return cls(**values)


class Transition(StrEnum):
    """What happened to a payment between two of Stripe's views of it (`transitions`)."""

    AUTHORISED = "authorised"
    CAPTURED = "captured"
    RELEASED = "released"
    LAPSED = "lapsed"
    REFUNDED = "refunded"
    REFUND_FAILED = "refund_failed"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_CLOSED = "dispute_closed"


@dataclass(frozen=True, slots=True)
class PaymentChange:
    transition: Transition
    refund_id: str | None = None
    """For `refunded` and `refund_failed`: which of the payment's refunds."""


def transitions(before: PaymentSnapshot | None, after: PaymentSnapshot) -> list[PaymentChange]:
    """The money's transitions from one snapshot to the next, each once, in the order they
    happen: authorised, captured, released or lapsed, then each refund made or failed (oldest
    first), then the dispute opened and closed."""
    found = []
    status = before.status if before is not None else None
    if after.status == IntentStatus.REQUIRES_CAPTURE and status != after.status:
        found.append(PaymentChange(Transition.AUTHORISED))
    if after.amount_captured > (before.amount_captured if before is not None else 0):
        found.append(PaymentChange(Transition.CAPTURED))
    if after.status == IntentStatus.CANCELED and status != after.status:
        lapsed = after.cancellation_reason == LAPSED
        found.append(PaymentChange(Transition.LAPSED if lapsed else Transition.RELEASED))
    known = {} if before is None else {r.id: r for r in before.customer_refunds}
    for refund in after.customer_refunds:
        was = known.get(refund.id)
        if was is None and not refund.undone:
            found.append(PaymentChange(Transition.REFUNDED, refund.id))
        if refund.undone and (was is None or not was.undone):
            found.append(PaymentChange(Transition.REFUND_FAILED, refund.id))
    dispute, was_disputed = after.dispute, before.dispute if before is not None else None
    if dispute is not None and was_disputed is None:
        found.append(PaymentChange(Transition.DISPUTE_OPENED))
    if (
        dispute is not None
        and not dispute.is_open
        and (was_disputed is None or was_disputed.is_open)
    ):
        found.append(PaymentChange(Transition.DISPUTE_CLOSED))
    return found


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """What the ledger keeps of a session's payment to guard the money: what Stripe captured,
    what the service's refunds hold of it (reserved before Stripe is asked; never more than was
    captured, by a CHECK in Postgres), what was refunded without the service, and a version
    that every write of Stripe's view moves on."""

    session_row: int
    payment_intent_id: str
    snapshot: PaymentSnapshot
    captured: int
    reserved: int
    refunded_elsewhere: int
    version: int

    @property
    def refundable(self) -> int:
        """What the service may still ask Stripe to refund."""
        return max(0, self.captured - self.reserved - self.refunded_elsewhere)


@dataclass(frozen=True, slots=True)
class Failure:
    """Stripe's refusal of an operation, kept to answer a retry of the same request alike."""

    code: str | None
    param: str | None
    message: str
    stripe_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewOperation:
    """An operation as a request asks for it, before it is written: its Stripe idempotency key
    is fresh, and its amount is what will be sent (the default already worked out)."""

    session_row: int
    caller: str
    request_id: str
    kind: OperationKind
    fingerprint: str
    amount: int
    reason: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Operation:
    """One capture, cancel or refund a caller asked for: a row written before Stripe is
    asked, with the idempotency key every attempt sends."""

    op_id: int
    session_row: int
    caller: str
    request_id: str
    kind: OperationKind
    fingerprint: str
    amount: int
    reason: str | None
    idempotency_key: str
    state: OperationState
    created_at: datetime
    updated_at: datetime
    refund_id: str | None = None
    failure: Failure | None = None
    sweep_attempts: int = 0


@dataclass(frozen=True, slots=True)
class OperationClaim:
    """What writing an operation came to: `operation` is the new row (`won`), or the row the
    request id already names; or none was written because `blocking`, a live capture or
    cancel, holds the payment, or a refund would exceed what is `refundable`."""

    won: bool
    operation: Operation | None = None
    blocking: Operation | None = None
    refundable: int = 0


@dataclass(frozen=True, slots=True)
class Settlement:
    """An operation whose outcome a snapshot shows: moved to `state` if it is still in
    `was` (a refund made failed gives its reservation back)."""

    op_id: int
    was: OperationState
    state: OperationState
    refund_id: str | None = None


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    STALE = "stale"
    """Another write came first; the read is to be made again."""
    DUPLICATE = "duplicate"
    """The event was recorded before."""


@dataclass(frozen=True, slots=True)
class PaymentWrite:
    outcome: WriteOutcome
    entry: LedgerEntry | None = None
    """`written`: the session's row, with its payment."""


@dataclass(frozen=True, slots=True)
class MoneySweep:
    """What the sweep's pass did to payments (payment_sync.py)."""

    resumed: int = 0
    """Operations whose outcome is now known."""
    updated: int = 0
    """Payments whose stored state changed: they lagged Stripe's."""
    failed: list[tuple[str, CheckoutError]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MoneyCommand:
    """A CapturePayment, CancelPayment or RefundPayment request, as the caller sent it."""

    kind: OperationKind
    request_id: str
    session_id: str = ""
    order_id: str = ""
    amount: int | None = None
    """None: all of it (what may be captured, or refunded)."""
    reason: str | None = None
    """Stripe's `cancellation_reason` or refund `reason`."""


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified Stripe event about a payment after checkout: its PaymentIntent, charge,
    refund or dispute, named by the PaymentIntent it belongs to."""

    id: str
    type: str
    payment_intent_id: str
    order_id: str | None
    """The order id the service put in the PaymentIntent's (or charge's) metadata, if any."""
    created: int = 0
    carries_metadata: bool = True
    """Whether the event's object carries the PaymentIntent's metadata (a PaymentIntent or a
    charge does; a refund or a dispute does not), so that no `order_id` means not ours."""


def settlements(snapshot: PaymentSnapshot, operations: Iterable[Operation]) -> list[Settlement]:
    """The operations whose outcome the snapshot shows: a refund found at Stripe by the request
    that made it (succeeded, or failed if it failed since); a pending capture or cancel whose
    PaymentIntent was captured or released (by it, or before it: Stripe captures once)."""
    found = []
    for op in operations:
        if op.state == OperationState.FAILED:
            continue
        if op.kind == OperationKind.REFUND:
            refund = next(
                (
                    r
                    for r in snapshot.refunds
                    if (r.caller, r.request_id) == (op.caller, op.request_id)
                ),
                None,
            )
            if refund is None:
                continue
            state = OperationState.FAILED if refund.undone else OperationState.SUCCEEDED
            if (state, refund.id) != (op.state, op.refund_id):
                found.append(Settlement(op.op_id, op.state, state, refund.id))
        elif op.state == OperationState.PENDING:
            outcome = _outcome(op.kind, snapshot)
            if outcome is not None:
                found.append(Settlement(op.op_id, op.state, outcome))
    return found


def _outcome(kind: OperationKind, snapshot: PaymentSnapshot) -> OperationState | None:
    """Whether the PaymentIntent shows a capture's (or a cancel's) outcome."""
    if snapshot.captured:
        done = OperationKind.CAPTURE
    elif snapshot.status == IntentStatus.CANCELED:
        done = OperationKind.CANCEL
    else:
        return None
    return OperationState.SUCCEEDED if kind == done else OperationState.FAILED
