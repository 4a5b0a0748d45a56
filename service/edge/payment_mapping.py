"""Proto ↔ domain for the money after checkout: the requests of CapturePayment, CancelPayment and
RefundPayment as commands, and a session's payment as `checkout.v1.Payment`. Stripe's strings
map onto the contract's enums; a value newer than the contract is UNSPECIFIED."""

from __future__ import annotations

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2 as pay
from service.domain.payment_model import (
    DisputeSnapshot,
    MoneyCommand,
    OperationKind,
    PaymentSnapshot,
    RefundSnapshot,
)

_STATUS_OUT = {
    "processing": pay.Payment.PROCESSING,
    "requires_capture": pay.Payment.REQUIRES_CAPTURE,
    "succeeded": pay.Payment.SUCCEEDED,
    "canceled": pay.Payment.CANCELED,
    "requires_payment_method": pay.Payment.REQUIRES_PAYMENT_METHOD,
}
_CAPTURE_METHOD_OUT = {
    "automatic": pay.Payment.AUTOMATIC,
    "automatic_async": pay.Payment.AUTOMATIC,
    "manual": pay.Payment.MANUAL,
}
_CANCELLATION_REASONS = {
    pay.Payment.ABANDONED: "abandoned",
    pay.Payment.DUPLICATE: "duplicate",
    pay.Payment.FRAUDULENT: "fraudulent",
    pay.Payment.REQUESTED_BY_CUSTOMER: "requested_by_customer",
}
_CANCELLATION_REASON_OUT = {
    **{value: key for key, value in _CANCELLATION_REASONS.items()},
    "automatic": pay.Payment.LAPSED,
}
_REFUND_REASONS = {
    pay.Refund.DUPLICATE: "duplicate",
    pay.Refund.FRAUDULENT: "fraudulent",
    pay.Refund.REQUESTED_BY_CUSTOMER: "requested_by_customer",
}
_REFUND_REASON_OUT = {value: key for key, value in _REFUND_REASONS.items()}
_REFUND_STATUS_OUT = {
    "pending": pay.Refund.PENDING,
    "succeeded": pay.Refund.SUCCEEDED,
    "failed": pay.Refund.FAILED,
    "canceled": pay.Refund.CANCELED,
    "requires_action": pay.Refund.REQUIRES_ACTION,
}
_DISPUTE_STATUS_OUT = {
    "needs_response": pay.Dispute.NEEDS_RESPONSE,
    "under_review": pay.Dispute.UNDER_REVIEW,
    "won": pay.Dispute.WON,
    "lost": pay.Dispute.LOST,
    "warning_needs_response": pay.Dispute.WARNING_NEEDS_RESPONSE,
    "warning_under_review": pay.Dispute.WARNING_UNDER_REVIEW,
    "warning_closed": pay.Dispute.WARNING_CLOSED,
    "prevented": pay.Dispute.PREVENTED,
}


def capture_command(request: api.CapturePaymentRequest) -> MoneyCommand:
    return MoneyCommand(
        kind=OperationKind.CAPTURE,
        request_id=request.request_id,
        session_id=request.session_id,
        order_id=request.order_id,
        amount=request.amount if request.HasField("amount") else None,
    )


def cancel_command(request: api.CancelPaymentRequest) -> MoneyCommand:
    return MoneyCommand(
        kind=OperationKind.CANCEL,
        request_id=request.request_id,
        session_id=request.session_id,
        order_id=request.order_id,
        reason=_CANCELLATION_REASONS.get(request.reason),
    )


def refund_command(request: api.RefundPaymentRequest) -> MoneyCommand:
    return MoneyCommand(
        kind=OperationKind.REFUND,
        request_id=request.request_id,
        session_id=request.session_id,
        order_id=request.order_id,
        amount=request.amount if request.HasField("amount") else None,
        reason=_REFUND_REASONS.get(request.reason),
    )


def payment_message(s: PaymentSnapshot) -> pay.Payment:
    message = pay.Payment(
        payment_intent_id=s.id,
        status=_STATUS_OUT.get(s.status, pay.Payment.STATUS_UNSPECIFIED),
        capture_method=_CAPTURE_METHOD_OUT.get(
            s.capture_method, pay.Payment.CAPTURE_METHOD_UNSPECIFIED
        ),
        currency=s.currency,
        amount_authorized=s.authorized,
        amount_capturable=s.amount_capturable,
        amount_captured=s.amount_captured,
        amount_refunded=s.refunded,
        cancellation_reason=_CANCELLATION_REASON_OUT.get(
            s.cancellation_reason or "", pay.Payment.CANCELLATION_REASON_UNSPECIFIED
        ),
        refunds=[refund_message(r) for r in s.customer_refunds],
        charge_id=s.charge_id or "",
    )
    if s.capture_before is not None and s.status == "requires_capture":
        message.capture_before.seconds = s.capture_before
    if s.dispute is not None:
        message.dispute.CopyFrom(_dispute_message(s.dispute))
    return message


def refund_message(r: RefundSnapshot) -> pay.Refund:
    message = pay.Refund(
        id=r.id,
        amount=r.amount,
        reason=_REFUND_REASON_OUT.get(r.reason or "", pay.Refund.REASON_UNSPECIFIED),
        status=_REFUND_STATUS_OUT.get(r.status or "", pay.Refund.STATUS_UNSPECIFIED),
        failure_reason=r.failure_reason or "",
        request_id=r.request_id or "",
    )
    message.create_time.seconds = r.created
    return message


def _dispute_message(d: DisputeSnapshot) -> pay.Dispute:
    message = pay.Dispute(
        id=d.id,
        status=_DISPUTE_STATUS_OUT.get(d.status, pay.Dispute.STATUS_UNSPECIFIED),
        reason=d.reason,
        amount=d.amount,
    )
    message.create_time.seconds = d.created
    if d.evidence_due_by is not None:
        message.evidence_due_by.seconds = d.evidence_due_by
    return message
