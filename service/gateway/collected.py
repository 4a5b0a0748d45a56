"""What a Checkout Session reports beyond its status and amounts, read from Stripe's JSON
(API 2026-10-28.endive): what the buyer entered (`customer_details`, the custom fields' values,
`consent`), what Checkout made around the payment (the invoice, the recovery URL), Stripe Tax's
status, and the taxes and discounts behind the totals, which Stripe includes only when expanded
(`total_details.breakdown`, `line_items.data.taxes`, `line_items.data.discounts`:
https://docs.stripe.com/expand)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.domain.model import (
    Address,
    Consent,
    CustomerDetails,
    CustomFieldValue,
    DiscountAmount,
    TaxAmount,
    TaxId,
)


def collected_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot's fields for all this, by name."""
    recovery = (data.get("after_expiration") or {}).get("recovery") or {}
    automatic_tax = data.get("automatic_tax") or {}
    breakdown = (data.get("total_details") or {}).get("breakdown") or {}
    consent = data.get("consent")
    return {
        "customer_details": _customer_details(data.get("customer_details")),
        "custom_fields": tuple(_custom_field(custom) for custom in data.get("custom_fields") or ()),
        "consent": None
        if consent is None
        else Consent(
            terms_of_service=consent.get("terms_of_service") or "",
            promotions=consent.get("promotions") or "",
        ),
        "invoice_id": stripe_id(data.get("invoice")),
        "recovery_url": recovery.get("url"),
        "recovery_expires_at": recovery.get("expires_at"),
        "recovered_from": data.get("recovered_from"),
        "automatic_tax_enabled": bool(automatic_tax.get("enabled")),
        "automatic_tax_status": automatic_tax.get("status"),
        "tax_breakdown": tax_amounts(breakdown.get("taxes")),
        "discount_breakdown": discount_amounts(breakdown.get("discounts")),
    }


def tax_amounts(taxes: Any) -> tuple[TaxAmount, ...]:
    """`taxes` of a line item, of `shipping_cost` or of the breakdown: each an amount at a
    rate, the rate an expanded TaxRate."""
    return tuple(_tax(tax) for tax in taxes or ())


def discount_amounts(discounts: Any) -> tuple[DiscountAmount, ...]:
    """`discounts` of a line item or of the breakdown: each an amount and its Discount."""
    return tuple(_discount(discount) for discount in discounts or ())


def stripe_id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object carrying it."""
    if isinstance(value, Mapping):
        return str(value["id"])
    return None if value is None else str(value)


def address(data: Mapping[str, Any]) -> Address:
    return Address(
        line1=data.get("line1") or "",
        line2=data.get("line2") or "",
        city=data.get("city") or "",
        state=data.get("state") or "",
        postal_code=data.get("postal_code") or "",
        country=data.get("country") or "",
    )


def _customer_details(data: Mapping[str, Any] | None) -> CustomerDetails | None:
    if data is None:
        return None
    given = data.get("address")
    return CustomerDetails(
        name=data.get("name") or "",
        email=data.get("email") or "",
        phone=data.get("phone") or "",
        address=None if not given else address(given),
        tax_ids=tuple(
            TaxId(type=tax_id.get("type") or "", value=tax_id.get("value") or "")
            for tax_id in data.get("tax_ids") or ()
        ),
        business_name=data.get("business_name") or "",
        individual_name=data.get("individual_name") or "",
        tax_exempt=data.get("tax_exempt") or "",
    )


def _custom_field(data: Mapping[str, Any]) -> CustomFieldValue:
    kind = data.get("type") or ""
    typed = data.get(kind) or {}
    return CustomFieldValue(
        key=data.get("key") or "",
        label=(data.get("label") or {}).get("custom") or "",
        type=kind,
        value=typed.get("value") or "",
    )


def _tax(data: Mapping[str, Any]) -> TaxAmount:
    rate = data.get("rate")
    details = rate if isinstance(rate, Mapping) else {}
    return TaxAmount(
        amount=data.get("amount") or 0,
        taxable_amount=data.get("taxable_amount") or 0,
        tax_rate_id=stripe_id(rate) or "",
        display_name=details.get("display_name") or "",
        percentage=float(details.get("percentage") or 0),
        inclusive=bool(details.get("inclusive")),
        country=details.get("country") or "",
        jurisdiction=details.get("jurisdiction") or details.get("state") or "",
        taxability_reason=data.get("taxability_reason") or "",
    )


def _discount(data: Mapping[str, Any]) -> DiscountAmount:
    discount = data.get("discount") or {}
    if not isinstance(discount, Mapping):
        # Not expanded: only its id, which says nothing the caller can use.
        return DiscountAmount(amount=data.get("amount") or 0)
    # The coupon is under `source` since API 2025-09-30.clover; on the discount before that.
    coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
    return DiscountAmount(
        amount=data.get("amount") or 0,
        coupon_id=stripe_id(coupon) or "",
        promotion_code_id=stripe_id(discount.get("promotion_code")) or "",
    )
