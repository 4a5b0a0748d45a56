"""Stripe's payment objects as the domain's: a PaymentIntent with its latest charge
(https://docs.stripe.com/api/payment_intents/object), the charge's refunds
(https://docs.stripe.com/api/refunds/object) and its dispute
(https://docs.stripe.com/api/disputes/object), read as the JSON Stripe sent (API
2026-10-28.endive)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.domain.model import CALLER_KEY
from service.domain.payment_model import (
    REFUND_REQUEST_KEY,
    DisputeSnapshot,
    PaymentSnapshot,
    RefundSnapshot,
)


def payment_from_stripe(
    intent: Mapping[str, Any],
    refunds: Iterable[Mapping[str, Any]] | None = None,
    dispute: Mapping[str, Any] | None = None,
) -> PaymentSnapshot:
    """A PaymentIntent with `latest_charge` expanded (and, in it, `refunds`); `refunds`, when
    given, are all of the charge's (Stripe lists them newest first, as the expanded charge
    shows its first page only)."""
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, Mapping) else {}
    if refunds is None:
        refunds = (charge.get("refunds") or {}).get("data", ())
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    return PaymentSnapshot(
        id=intent["id"],
        status=intent["status"],
        capture_method=intent.get("capture_method") or "",
        currency=intent.get("currency") or "",
        amount=intent.get("amount") or 0,
        amount_capturable=intent.get("amount_capturable") or 0,
        charge_id=charge.get("id"),
        charge_status=charge.get("status"),
        charge_amount=charge.get("amount") or 0,
        captured=bool(charge.get("captured")),
        amount_captured=charge.get("amount_captured") or 0,
        amount_refunded=charge.get("amount_refunded") or 0,
        capture_before=card.get("capture_before"),
        cancellation_reason=intent.get("cancellation_reason"),
        # Oldest first: the authorisation's release comes before any refund of captured money.
        refunds=tuple(refund_from_stripe(r) for r in reversed(list(refunds))),
        dispute=None if dispute is None else dispute_from_stripe(dispute),
    )


def charge_of(intent: Mapping[str, Any]) -> Mapping[str, Any]:
    """The PaymentIntent's expanded latest charge ({} if none)."""
    charge = intent.get("latest_charge")
    return charge if isinstance(charge, Mapping) else {}


def refund_from_stripe(data: Mapping[str, Any]) -> RefundSnapshot:
    metadata = data.get("metadata") or {}
    return RefundSnapshot(
        id=data["id"],
        amount=data.get("amount") or 0,
        status=data.get("status"),
        reason=data.get("reason"),
        failure_reason=data.get("failure_reason"),
        created=data.get("created") or 0,
        caller=metadata.get(CALLER_KEY),
        request_id=metadata.get(REFUND_REQUEST_KEY),
    )


def dispute_from_stripe(data: Mapping[str, Any]) -> DisputeSnapshot:
    details = data.get("evidence_details") or {}
    return DisputeSnapshot(
        id=data["id"],
        status=data.get("status") or "",
        reason=data.get("reason") or "",
        amount=data.get("amount") or 0,
        created=data.get("created") or 0,
        evidence_due_by=details.get("due_by"),
    )
