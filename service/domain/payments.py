"""The use cases after checkout: capture, cancel (release) and refund a session's payment.

The same discipline as creates (docs/architecture.md, "Payments after checkout"):
- **The intent is stored before Stripe is called.** Each request writes an operation row with
  its idempotency key first (made from the request: `first_key`); a retry with the same
  `request_id` (on any replica, after a crash, after a failover that lost the row) resumes it
  with that key, and Stripe answers with what it did the first time
  (https://docs.stripe.com/api/idempotent_requests). The refund carries the request in its
  metadata, so a refund whose answer was lost is still found as that request's.
- **Money out never exceeds money in.** A refund's amount is reserved in the same transaction
  that writes its row, under a lock on the payment, within what was captured (PaymentLedger):
  concurrent refunds on different replicas cannot overspend, and are refused here, before
  Stripe is asked. A definite refusal from Stripe gives the reservation back; an unknown
  outcome keeps it for the retry or the sweep.
- **Stripe is the truth.** What the payment is (captured, released, refunded, disputed) is read
  from Stripe and stored as it says; operations are settled from what it shows.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from service.domain import rate_limits
from service.domain.checkout import Checkout, Lookup
from service.domain.errors import (
    CheckoutError,
    FailedPrecondition,
    FieldViolation,
    IdempotencyKeySpent,
    InvalidRequest,
    PermissionDenied,
    PreconditionViolation,
    Unavailable,
    UpstreamRejected,
)
from service.domain.model import (
    Caller,
    LedgerEntry,
    LedgerState,
    PaymentStatus,
    service_metadata,
    session_name,
)
from service.domain.payment_model import (
    REFUND_REQUEST_KEY,
    Failure,
    IntentStatus,
    MoneyCommand,
    NewOperation,
    Operation,
    OperationClaim,
    OperationKind,
    OperationState,
    PaymentEvent,
    PaymentRecord,
    PaymentSnapshot,
    PaymentWrite,
    RefundSnapshot,
    WriteOutcome,
    settlements,
)
from service.domain.ports import Clock, MoneyGateway, OrderLedger, PaymentLedger
from service.domain.stripe_tables import MINIMUM_CHARGE
from service.domain.validation import REQUEST_ID_MAX, is_identifier, validate_lookup

# A payment's version moves with every write of Stripe's view; a read that loses the race reads
# Stripe again, a few times, then gives up for the caller's retry (or Stripe's redelivery).
_READ_ROUNDS = 5
# Stripe refuses these because of the payment's state, not the request's shape.
_STATE_CODES = frozenset(
    {
        "amount_too_large",
        "charge_already_captured",
        "charge_already_refunded",
        "charge_disputed",
        "charge_expired_for_capture",
        "charge_not_refundable",
        "payment_intent_unexpected_state",
    }
)
# Stripe's parameters, as the request names them.
_FIELDS = {"amount": "amount", "amount_to_capture": "amount", "reason": "reason"}
_FIELDS["cancellation_reason"] = "reason"
# A chargeback the shop lost: the money went back through it, and cannot be refunded again.
_LOST = "lost"


@dataclass(frozen=True, slots=True)
class MoneyResult:
    """A capture, cancel or refund's answer: the session with its payment, the operation (none
    for releasing an authorisation already released), and a refund's refund."""

    entry: LedgerEntry
    operation: Operation | None = None
    refund: RefundSnapshot | None = None


def first_key(kind: OperationKind, caller: str, request_id: str) -> str:
    """The Stripe idempotency key of a request's first attempt, made from the request rather
    than at random: should the database lose the operation's row (a failover's lost commits),
    the caller's retry writes a new row with the same key, and Stripe answers with what the
    first attempt did instead of doing it again
    (https://docs.stripe.com/api/idempotent_requests). Request ids are each caller's own, and a
    key renewed after a saved failure is random (nothing was done under the first)."""
    digest = hashlib.sha256(f"{caller}\n{request_id}".encode()).hexdigest()[:40]
    return f"checkout-{kind}-{digest}"


class Payments:
    def __init__(
        self,
        checkout: Checkout,
        ledger: OrderLedger,
        payments: PaymentLedger,
        gateway: MoneyGateway,
        clock: Clock,
        new_key: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._checkout = checkout
        self._ledger = ledger
        self._payments = payments
        self._gateway = gateway
        self._clock = clock
        self._new_key = new_key

    async def move(self, caller: Caller, cmd: MoneyCommand) -> MoneyResult:
        """Capture, cancel or refund, as `cmd.kind` says, once per request id."""
        _permitted(caller, cmd.kind)
        _validate(cmd)
        fingerprint = _fingerprint(cmd)
        named = await self._payments.operation(caller.name, cmd.request_id)
        if named is not None:
            return await self._again(named, fingerprint)
        entry = await self._paid_session(caller, cmd)
        record = await self.ensure_payment(entry)
        plan = self._plan(cmd, entry, record, fingerprint)
        if isinstance(plan, MoneyResult):
            return plan
        claim = await self._payments.start_operation(plan)
        if claim.operation is not None and not claim.won:
            # The same request id, written by a concurrent call of the same request.
            return await self._again(claim.operation, fingerprint)
        if claim.operation is None:
            raise _not_started(claim, entry, cmd.kind)
        return await self.carry_out(claim.operation)

    async def carry_out(self, op: Operation, *, fresh_key: bool = False) -> MoneyResult:
        """Make the operation's Stripe call (again), with its own key, and record the outcome.
        Raises Unavailable when the outcome is unknown: the operation stays pending, for the
        caller's retry or the sweep."""
        record = await self._payments.payment(op.session_row)
        assert record is not None  # an operation's payment is stored before it
        try:
            refund, snapshot = await self._call(op, record.payment_intent_id)
        except UpstreamRejected as exc:
            return await self._refused(op, exc)
        except IdempotencyKeySpent:
            if fresh_key:
                raise
            return await self._after_spent_key(op)
        finished = await self._payments.finish_operation(
            op.op_id,
            state=OperationState.SUCCEEDED,
            refund_id=None if refund is None else refund.id,
        )
        entry = await self._store(finished, snapshot, record.version)
        return MoneyResult(entry, finished, _refund_of(entry, finished) or refund)

    async def ensure_payment(self, entry: LedgerEntry) -> PaymentRecord:
        """The session's payment as the ledger keeps it, read from Stripe first if it has not
        been stored yet."""
        record = await self._payments.payment(entry.row_id)
        if record is None:
            await self.refresh(entry)
            record = await self._payments.payment(entry.row_id)
        assert record is not None
        return record

    async def refresh(
        self, entry: LedgerEntry, *, event: PaymentEvent | None = None
    ) -> PaymentWrite:
        """Read the session's payment from Stripe and store it (with the event, if one brought
        it), settling the operations it shows done; read again while another write wins."""
        assert entry.snapshot is not None and entry.snapshot.payment_intent_id is not None
        payment_intent_id = entry.snapshot.payment_intent_id
        if _delayed_payment_under_way(entry):
            # Its money arriving is the session's payment too (one moment at Stripe): the
            # session is read first, so that the order is announced paid before its payment
            # is captured on the event feed, whichever of Stripe's webhooks comes first.
            await self._checkout.bring_up_to_date(entry)
        for _ in range(_READ_ROUNDS):
            record = await self._payments.payment(entry.row_id)
            operations = await self._payments.operations(entry.row_id) if record else []
            snapshot = await self._gateway.retrieve_payment(payment_intent_id)
            written = await self._payments.record_payment(
                entry.row_id,
                snapshot,
                seen=None if record is None else record.version,
                settlements=settlements(snapshot, operations),
                event=event,
            )
            if written.outcome != WriteOutcome.STALE:
                return written
        raise Unavailable(
            f"the payment of session {entry.session_id} kept changing while it was read; retry",
            reason="PAYMENT_CONTENDED",
        )

    async def _store(self, op: Operation, snapshot: PaymentSnapshot, seen: int) -> LedgerEntry:
        """Stripe's answer to an operation, stored. If another write came first (the webhooks
        the operation itself set off, most often), what it stored does if it shows the
        operation done; otherwise the payment is read again."""
        written = await self._payments.record_payment(op.session_row, snapshot, seen=seen)
        if written.entry is not None:
            return written.entry
        entry = await self._ledger.by_row_id(op.session_row)
        if entry.payment is not None and _shows(entry.payment, op, snapshot):
            return entry
        written = await self.refresh(entry)
        assert written.entry is not None
        return written.entry

    async def _call(
        self, op: Operation, payment_intent_id: str
    ) -> tuple[RefundSnapshot | None, PaymentSnapshot]:
        key = op.idempotency_key
        if op.kind == OperationKind.CAPTURE:
            captured = await self._gateway.capture_payment(
                payment_intent_id, amount=op.amount, idempotency_key=key
            )
            return None, captured
        if op.kind == OperationKind.CANCEL:
            released = await self._gateway.cancel_payment(
                payment_intent_id, reason=op.reason, idempotency_key=key
            )
            return None, released
        entry = await self._ledger.by_row_id(op.session_row)
        return await self._gateway.refund_payment(
            payment_intent_id,
            amount=op.amount,
            reason=op.reason,
            metadata={
                **service_metadata(op.caller, entry.order_id),
                REFUND_REQUEST_KEY: op.request_id,
            },
            idempotency_key=key,
        )

    async def _refused(self, op: Operation, exc: UpstreamRejected) -> MoneyResult:
        """Stripe definitely refused: the operation failed, with Stripe's reason kept for a
        retry (a refund's reservation goes back), and the payment is read again, since the
        refusal is most often about its state. A release refused because the authorisation
        was released already is what was asked."""
        entry = await self._ledger.by_row_id(op.session_row)
        if op.kind == OperationKind.CANCEL:
            written = await self.refresh(entry)
            current = await self._payments.operation(op.caller, op.request_id)
            if (
                written.entry is not None
                and current is not None
                and current.state == OperationState.SUCCEEDED
            ):
                return MoneyResult(written.entry, current)
        failure = Failure(exc.code, exc.param, exc.message, exc.request_id)
        failed = await self._payments.finish_operation(
            op.op_id, state=OperationState.FAILED, failure=failure
        )
        written = await self.refresh(entry)
        assert written.entry is not None
        raise _refusal(failed, failure, written.entry)

    async def _after_spent_key(self, op: Operation) -> MoneyResult:
        """Stripe saved a failure under the operation's key: whatever it did before failing is
        found in the payment (a refund by its request, a capture or release by the
        PaymentIntent's status); if nothing was done, the operation goes on with a new key."""
        entry = await self._ledger.by_row_id(op.session_row)
        await self.refresh(entry)
        current = await self._payments.operation(op.caller, op.request_id)
        assert current is not None  # operations are never deleted but with their payment
        if current.state != OperationState.PENDING:
            return await self._again(current, current.fingerprint)
        renewed = await self._payments.replace_operation_key(
            op.op_id, old_key=op.idempotency_key, new_key=self._new_key()
        )
        return await self.carry_out(renewed, fresh_key=True)

    async def _again(self, op: Operation, fingerprint: str) -> MoneyResult:
        """The request id's operation, again: resumed if its outcome is unknown, else answered
        as it was, with the payment as it is now."""
        if op.fingerprint != fingerprint:
            raise InvalidRequest(
                [
                    FieldViolation(
                        "request_id", "already used for a request with a different payload"
                    )
                ],
                reason="REQUEST_ID_REUSED",
            )
        if op.state == OperationState.PENDING:
            return await self.carry_out(op)
        entry = await self._ledger.by_row_id(op.session_row)
        if op.state == OperationState.FAILED and op.failure is not None:
            raise _refusal(op, op.failure, entry)
        if op.state == OperationState.FAILED and op.refund_id is None:
            # Stripe went the other way before it (captured, or released, elsewhere).
            status = entry.payment.status if entry.payment is not None else "unknown"
            raise _precondition(
                "OPERATION_FAILED",
                session_name(entry.session_id or ""),
                f"the payment was not {_DONE[op.kind]}: it is {status}",
            )
        if op.state == OperationState.SUCCEEDED and not _done_in(entry.payment, op):
            # Done, but what it did is not stored yet (the call that did it was cut off
            # between its two writes, and no webhook has told of it): read it from Stripe.
            written = await self.refresh(entry)
            assert written.entry is not None
            entry = written.entry
        # A refund made that failed since shows as failed among the payment's refunds.
        return MoneyResult(entry, op, _refund_of(entry, op))

    async def _paid_session(self, caller: Caller, cmd: MoneyCommand) -> LedgerEntry:
        """The session the request names, completed and paid in PAYMENT mode. A session not
        complete in the ledger is read from Stripe first: its webhook may be on its way."""
        entry = await self._checkout.get_session(caller, Lookup(cmd.session_id, cmd.order_id))
        if entry.state != LedgerState.COMPLETE:
            entry = await self._checkout.bring_up_to_date(entry)
        snapshot = entry.snapshot
        name = session_name(entry.session_id or "")
        if snapshot is not None and snapshot.mode in _ELSEWHERE:
            raise _precondition("NOT_A_PAYMENT_SESSION", name, _ELSEWHERE[snapshot.mode])
        if entry.state != LedgerState.COMPLETE or snapshot is None:
            raise _precondition(
                "SESSION_NOT_PAID",
                name,
                f"session {entry.session_id} is {entry.state}: the customer has not paid",
            )
        if entry.async_payment_failed or snapshot.payment_intent_id is None:
            raise _precondition(
                "NOTHING_PAID", name, f"session {entry.session_id} took no money to move"
            )
        return entry

    def _plan(
        self, cmd: MoneyCommand, entry: LedgerEntry, record: PaymentRecord, fingerprint: str
    ) -> NewOperation | MoneyResult:
        """The operation to write, checked against the payment as the ledger knows it: what
        can be known without asking Stripe is refused here. A release of an authorisation
        already released needs no operation: its answer is the session as it is."""
        payment = record.snapshot
        name = session_name(entry.session_id or "")
        if cmd.kind == OperationKind.CAPTURE:
            amount = self._capturable(cmd, payment, name)
        elif cmd.kind == OperationKind.CANCEL:
            if payment.status == IntentStatus.CANCELED:
                return MoneyResult(entry)
            _expect_authorised(payment, name, "released")
            amount = 0
        else:
            amount = _refundable(cmd, record, name)
        # A request to Stripe follows the write: the caller's token is taken first, so that a
        # caller out of them is refused before anything is written (rate_limits.py).
        rate_limits.reserve()
        return NewOperation(
            session_row=entry.row_id,
            caller=entry.caller,
            request_id=cmd.request_id,
            kind=cmd.kind,
            fingerprint=fingerprint,
            amount=amount,
            reason=cmd.reason,
            idempotency_key=first_key(cmd.kind, entry.caller, cmd.request_id),
        )

    def _capturable(self, cmd: MoneyCommand, payment: PaymentSnapshot, name: str) -> int:
        _expect_authorised(payment, name, "captured")
        if payment.capture_before is not None and (
            self._clock.now().timestamp() >= payment.capture_before
        ):
            raise _precondition(
                "AUTHORIZATION_LAPSED",
                name,
                "the authorisation lapsed uncaptured (Stripe releases it); nothing can be captured",
            )
        amount = payment.amount_capturable if cmd.amount is None else cmd.amount
        if amount > payment.amount_capturable:
            raise _precondition(
                "AMOUNT_EXCEEDS_CAPTURABLE",
                name,
                f"at most {payment.amount_capturable} can be captured, not {amount}",
            )
        minimum = MINIMUM_CHARGE.get(payment.currency)
        if minimum is not None and amount < minimum:
            raise InvalidRequest(
                [
                    FieldViolation(
                        "amount",
                        f"Stripe captures at least its minimum charge, {minimum} in "
                        f"{payment.currency}",
                    )
                ]
            )
        return amount


# Where the money of sessions that are not PAYMENT sessions is handled.
_ELSEWHERE = {
    "setup": (
        "a SETUP session saved a payment method and took no money: charge or refund that "
        "method with Stripe's PaymentIntents, in the Stripe Dashboard"
    ),
    "subscription": (
        "a SUBSCRIPTION session's money is Stripe Billing's: its invoices are paid and refunded "
        "there, in the Stripe Dashboard or with Stripe Billing's API"
    ),
}


def _permitted(caller: Caller, kind: OperationKind) -> None:
    if not caller.may_write:
        raise PermissionDenied(f"the {caller.role} role may only read sessions")
    if kind == OperationKind.REFUND and not caller.may_refund:
        raise PermissionDenied(
            f"caller {caller.name} may not refund: its entry in CALLERS_FILE needs "
            '"may_refund": true'
        )


def _validate(cmd: MoneyCommand) -> None:
    """The request's fields, every problem at once, before anything is read or written."""
    violations = []
    try:
        validate_lookup(session_id=cmd.session_id, order_id=cmd.order_id)
    except InvalidRequest as exc:
        violations += exc.violations
    if not is_identifier(cmd.request_id, REQUEST_ID_MAX):
        violations.append(
            FieldViolation(
                "request_id", f"required: 1 to {REQUEST_ID_MAX} printable characters (a UUID)"
            )
        )
    if cmd.amount is not None and cmd.amount < 1:
        violations.append(FieldViolation("amount", "at least 1 (absent: all of it)"))
    if violations:
        raise InvalidRequest(violations)


def _fingerprint(cmd: MoneyCommand) -> str:
    """Equal for equal requests; `request_id` is not in it (it names the call)."""
    canonical = json.dumps(
        [cmd.kind.value, cmd.session_id, cmd.order_id, cmd.amount, cmd.reason],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _expect_authorised(payment: PaymentSnapshot, name: str, done: str) -> None:
    """Only an authorisation waiting for its capture can be captured or released."""
    if payment.status == IntentStatus.REQUIRES_CAPTURE:
        return
    if payment.status == IntentStatus.SUCCEEDED:
        raise _precondition(
            "ALREADY_CAPTURED",
            name,
            f"the payment was captured ({payment.amount_captured}); it cannot be {done} now: "
            "refund it instead",
        )
    if payment.status == IntentStatus.CANCELED:
        raise _precondition(
            "AUTHORIZATION_RELEASED",
            name,
            f"the authorisation was released ({payment.cancellation_reason or 'cancelled'}); "
            f"nothing can be {done}",
        )
    raise _precondition(
        "NOT_AUTHORIZED",
        name,
        f"the payment is {payment.status}: only a manual-capture authorisation can be {done}",
    )


def _refundable(cmd: MoneyCommand, record: PaymentRecord, name: str) -> int:
    payment = record.snapshot
    if payment.status == IntentStatus.REQUIRES_CAPTURE:
        raise _precondition(
            "NOT_CAPTURED",
            name,
            "the payment is only authorised: capture it, or cancel it to release the money",
        )
    if payment.status != IntentStatus.SUCCEEDED or not payment.captured:
        raise _precondition(
            "NOTHING_CAPTURED", name, f"the payment is {payment.status}: nothing to refund"
        )
    dispute = payment.dispute
    if dispute is not None and (dispute.is_open or dispute.status == _LOST):
        raise _precondition(
            "CHARGE_DISPUTED",
            name,
            f"the customer disputed the payment ({dispute.status}): the dispute decides what "
            "goes back",
        )
    if cmd.amount is not None:
        return cmd.amount
    if record.refundable == 0:
        raise _precondition(
            "ALREADY_REFUNDED", name, "everything captured was refunded, or is on its way back"
        )
    return record.refundable


def _not_started(claim: OperationClaim, entry: LedgerEntry, kind: OperationKind) -> CheckoutError:
    name = session_name(entry.session_id or "")
    if claim.blocking is not None:
        return _precondition(
            "PAYMENT_BUSY",
            name,
            f"the payment is being {_DONE[claim.blocking.kind]} already, by request "
            f"{claim.blocking.request_id}",
        )
    return _precondition(
        "REFUND_EXCEEDS_CAPTURED",
        name,
        f"at most {claim.refundable} more can be refunded: the refunds of a payment never add "
        "up to more than was captured",
    )


_DONE = {
    OperationKind.CAPTURE: "captured",
    OperationKind.CANCEL: "released",
    OperationKind.REFUND: "refunded",
}


def _refusal(op: Operation, failure: Failure, entry: LedgerEntry) -> CheckoutError:
    """Stripe's refusal of an operation, as the caller hears it (again on every retry): on the
    field it names, or the payment's state."""
    field = _FIELDS.get(failure.param or "")
    error: CheckoutError
    if field is not None and failure.code not in _STATE_CODES:
        error = InvalidRequest(
            [FieldViolation(field, f"Stripe refused it: {failure.message}")],
            reason="STRIPE_REFUSED",
        )
    else:
        error = _precondition(
            (failure.code or "stripe_refused").upper(),
            session_name(entry.session_id or ""),
            f"Stripe refused to have it {_DONE[op.kind]}: {failure.message}",
            reason="STRIPE_REFUSED",
        )
    error.upstream_request_id = failure.stripe_request_id
    return error


def _precondition(
    kind: str, subject: str, description: str, *, reason: str | None = None
) -> FailedPrecondition:
    return FailedPrecondition(
        PreconditionViolation(type=kind, subject=subject, description=description),
        reason=reason or kind,
    )


def _done_in(stored: PaymentSnapshot | None, op: Operation) -> bool:
    """Whether the payment as stored shows the operation done."""
    if stored is None:
        return False
    if op.kind == OperationKind.REFUND:
        return op.refund_id is not None and stored.refund(op.refund_id) is not None
    if op.kind == OperationKind.CAPTURE:
        return stored.captured
    return stored.status == IntentStatus.CANCELED


def _shows(stored: PaymentSnapshot, op: Operation, answered: PaymentSnapshot) -> bool:
    """Whether the payment as stored shows what Stripe answered to the operation."""
    if op.kind == OperationKind.REFUND:
        return op.refund_id is not None and stored.refund(op.refund_id) is not None
    return (stored.status, stored.amount_captured) == (answered.status, answered.amount_captured)


def _delayed_payment_under_way(entry: LedgerEntry) -> bool:
    return (
        entry.state == LedgerState.COMPLETE
        and entry.snapshot is not None
        and entry.snapshot.payment_status == PaymentStatus.UNPAID
        and not entry.async_payment_failed
    )


def _refund_of(entry: LedgerEntry, op: Operation) -> RefundSnapshot | None:
    if op.refund_id is None or entry.payment is None:
        return None
    return entry.payment.refund(op.refund_id)
