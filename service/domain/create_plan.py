"""A CreateSession request checked (validated, and fingerprinted: equal fingerprints ask for the
same session), turned into the exact Stripe parameters, and Stripe's refusals mapped back onto
the request's fields."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.commands import (
    CreateSessionCommand,
    DeliveryBound,
    LineItemRequest,
    Mode,
    PriceData,
    ShippingOption,
    UiMode,
)
from service.domain.model import ORDER_ID_KEY, field_names, field_values
from service.domain.validation import MAX_EXPIRY, validate


@dataclasses.dataclass(frozen=True, slots=True)
class CreatePlan:
    order_id: str
    fingerprint: str
    """Identifies the request's payload: equal fingerprints ask for the same session."""
    stripe_params: dict[str, Any]
    expires_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedCreate:
    """A valid request's order and fingerprint: all that a repeated create needs to find the
    session it made."""

    order_id: str
    fingerprint: str


def check_create(cmd: CreateSessionCommand, now: datetime) -> CheckedCreate:
    """Refuse an invalid request (InvalidRequest, every field's problem at once)."""
    validate(cmd, now)
    return CheckedCreate(cmd.order_id.strip(), fingerprint(cmd))


def plan_create(
    cmd: CreateSessionCommand,
    now: datetime,
    *,
    default_tax_behavior: str | None = None,
    checked: CheckedCreate | None = None,
) -> CreatePlan:
    """The exact Stripe parameters for a valid request (InvalidRequest otherwise), its
    fingerprint and its session's expiry: `expire_time`, or a day after `now`, Stripe's longest.
    `default_tax_behavior` (`exclusive` or `inclusive`, the operator's DEFAULT_TAX_BEHAVIOR)
    goes on every inline price that gives none: automatic tax needs one on each price, or a
    default in the account's Tax settings, or Stripe refuses the session
    (https://docs.stripe.com/tax/products-prices-tax-codes-tax-behavior). `checked`: what
    `check_create` already said of `cmd` at `now`."""
    if checked is None:
        checked = check_create(cmd, now)
    order_id = checked.order_id
    mode = cmd.mode or Mode.PAYMENT
    currency = cmd.currency.strip().lower()
    expires_at = cmd.expire_time or now + MAX_EXPIRY
    params: dict[str, Any] = {
        "mode": mode.value,
        "ui_mode": (cmd.ui_mode or UiMode.HOSTED_PAGE).value,
        "client_reference_id": order_id,
        "metadata": {**cmd.metadata, ORDER_ID_KEY: order_id},
        "expires_at": int(expires_at.timestamp()),
        # Line items are only returned when expanded; the ledger keeps them with the session.
        "expand": ["line_items"],
    }
    if cmd.line_items:
        params["line_items"] = [
            _line_item(li, currency, default_tax_behavior) for li in cmd.line_items
        ]
    params.update(_given(cmd, currency))
    params.update(_settings(cmd))
    if cmd.shipping_options:
        params["shipping_options"] = [_shipping_option(o, currency) for o in cmd.shipping_options]
    # The order id also goes on the object that moves the money, which Stripe does not copy
    # from the session's metadata:
    # https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-payment_intent_data-metadata
    if mode is Mode.SUBSCRIPTION:
        params["subscription_data"] = _subscription_data(cmd, order_id)
    elif mode is Mode.PAYMENT:
        params["payment_intent_data"] = {"metadata": {ORDER_ID_KEY: order_id}}
        if cmd.capture_method == "manual":
            # Authorised now, captured by CapturePayment later:
            # https://docs.stripe.com/payments/place-a-hold-on-a-payment-method
            params["payment_intent_data"]["capture_method"] = "manual"
    else:
        params["setup_intent_data"] = {"metadata": {ORDER_ID_KEY: order_id}}
    return CreatePlan(
        order_id=order_id,
        fingerprint=checked.fingerprint,
        stripe_params=params,
        expires_at=expires_at,
    )


def _given(cmd: CreateSessionCommand, currency: str) -> dict[str, Any]:
    """The plain parameters the request gives, as Stripe names them; those it leaves empty
    are left to Stripe's defaults."""
    optional = {
        "currency": currency,
        "success_url": cmd.success_url,
        "cancel_url": cmd.cancel_url,
        "return_url": cmd.return_url,
        "customer_email": cmd.customer_email,
        "customer": cmd.customer_id,
        "locale": cmd.locale,
        "redirect_on_completion": cmd.redirect_on_completion,
        "customer_creation": cmd.customer_creation,
        "billing_address_collection": cmd.billing_address_collection,
        "payment_method_collection": cmd.payment_method_collection,
        "allowed_payment_method_types": list(cmd.allowed_payment_method_types),
        "allow_promotion_codes": cmd.allow_promotion_codes,
    }
    return {name: value for name, value in optional.items() if value}


def _settings(cmd: CreateSessionCommand) -> dict[str, Any]:
    """The parameters that are objects: switches (`{"enabled": …}`, given only when the
    request sets them, on or off), what Checkout may save on the customer, discounts and the
    countries to ship to."""
    params: dict[str, Any] = {}
    switches = {
        "phone_number_collection": cmd.phone_number_collection,
        "automatic_tax": cmd.automatic_tax,
        "adaptive_pricing": cmd.adaptive_pricing,
    }
    params.update({name: {"enabled": on} for name, on in switches.items() if on is not None})
    if cmd.tax_id_collection is not None:
        params["tax_id_collection"] = {"enabled": cmd.tax_id_collection.enabled}
        if cmd.tax_id_collection.required:
            params["tax_id_collection"]["required"] = "if_supported"
    if cmd.customer_update is not None:
        update = field_values(cmd.customer_update)
        params["customer_update"] = {k: "auto" if v else "never" for k, v in update.items()}
    if cmd.discounts:
        params["discounts"] = [
            {"coupon": d.coupon} if d.coupon else {"promotion_code": d.promotion_code}
            for d in cmd.discounts
        ]
    if cmd.shipping_countries is not None:
        params["shipping_address_collection"] = {"allowed_countries": list(cmd.shipping_countries)}
    return params


def fingerprint(cmd: CreateSessionCommand) -> str:
    """A digest of everything in the request that shapes the session: every field but
    `request_id` (it names the call, not the cart). The time of the call is not in it either:
    the same cart sent twice is the same cart, even though a default expiry would differ.
    Rows store it and later calls compare with it, so its value must not change from one
    release to the next for the same request (a test pins it)."""
    canonical = json.dumps(
        cmd, sort_keys=True, separators=(",", ":"), default=_plain, check_circular=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# Fields of a request added after fingerprints were first stored: left out while unset, so that
# a request that does not use them keeps the fingerprint it always had.
_ADDED_LATER = ("capture_method",)


def _plain(value: object) -> object:
    """What the JSON encoder cannot write itself: each dataclass as the dict of its fields (what
    `dataclasses.asdict` gives, without its deep copies; the encoder walks the values, in C, so
    this runs only for the command and its nested dataclasses: it runs on every create, even one
    that reuses its session)."""
    if field_names(type(value)):
        data = field_values(value)
        if isinstance(value, CreateSessionCommand):
            data["request_id"] = ""
            for name in _ADDED_LATER:
                if data[name] is None:
                    del data[name]
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def _line_item(
    item: LineItemRequest, currency: str, default_tax_behavior: str | None
) -> dict[str, Any]:
    line: dict[str, Any] = {"quantity": item.quantity}
    if item.price_data is not None:
        line["price_data"] = _price_data(item.price_data, currency, default_tax_behavior)
    else:
        line["price"] = item.price_id.strip()
    if item.adjustable_quantity is not None:
        adjustable = item.adjustable_quantity
        line["adjustable_quantity"] = {"enabled": adjustable.enabled}
        if adjustable.enabled:
            line["adjustable_quantity"]["minimum"] = adjustable.minimum
            if adjustable.maximum:
                line["adjustable_quantity"]["maximum"] = adjustable.maximum
    if item.tax_rate_ids:
        line["tax_rates"] = list(item.tax_rate_ids)
    return line


def _price_data(data: PriceData, currency: str, default_tax_behavior: str | None) -> dict[str, Any]:
    product: dict[str, Any] = {"name": data.product_name}
    if data.product_description:
        product["description"] = data.product_description
    if data.product_images:
        product["images"] = list(data.product_images)
    if data.tax_code:
        product["tax_code"] = data.tax_code
    price: dict[str, Any] = {
        "currency": currency,
        "unit_amount": data.unit_amount,
        "product_data": product,
    }
    if data.recurring is not None:
        price["recurring"] = {"interval": data.recurring.interval}
        if data.recurring.interval_count:
            price["recurring"]["interval_count"] = data.recurring.interval_count
    if data.tax_behavior or default_tax_behavior:
        price["tax_behavior"] = data.tax_behavior or default_tax_behavior
    return price


def _shipping_option(option: ShippingOption, currency: str) -> dict[str, Any]:
    data = option.shipping_rate_data
    if data is None:
        return {"shipping_rate": option.shipping_rate_id.strip()}
    rate: dict[str, Any] = {
        "display_name": data.display_name,
        "type": "fixed_amount",
        "fixed_amount": {"amount": data.amount, "currency": currency},
    }
    estimate = {
        name: _bound(bound)
        for name, bound in (("minimum", data.minimum_delivery), ("maximum", data.maximum_delivery))
        if bound is not None
    }
    if estimate:
        rate["delivery_estimate"] = estimate
    if data.tax_behavior:
        rate["tax_behavior"] = data.tax_behavior
    if data.tax_code:
        rate["tax_code"] = data.tax_code
    return {"shipping_rate_data": rate}


def _bound(bound: DeliveryBound) -> dict[str, Any]:
    return {"unit": bound.unit, "value": bound.value}


def _subscription_data(cmd: CreateSessionCommand, order_id: str) -> dict[str, Any]:
    given = cmd.subscription_data
    data: dict[str, Any] = {
        "metadata": {**(given.metadata if given else {}), ORDER_ID_KEY: order_id}
    }
    if given is not None and given.trial_period_days:
        data["trial_period_days"] = given.trial_period_days
    if given is not None and given.description:
        data["description"] = given.description
    return data


def field_for_stripe_param(param: str | None, code: str | None = None) -> str:
    """The request field that a Stripe refusal is about, from its `param` (and, where Stripe's
    param names something we do not expose, its `code`):
    `line_items[1][price_data][product_data][name]` → `line_items[1].price_data.product_name`.
    """
    if code in _CODE_FIELDS:
        return _CODE_FIELDS[code]
    if not param:
        return _CODE_FIELDS_WITHOUT_PARAM.get(code or "", "")
    path = ""
    for part in re.findall(r"[^\[\]]+", param):
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    for stripe_name, ours in _PARAM_RENAMES:
        path = re.sub(stripe_name, ours, path)
    return path


# Stripe names the customer, but what the caller can change is what Checkout may save on it.
_CODE_FIELDS = {"customer_tax_location_invalid": "customer_update"}
# Stripe names no param when the session's total due is outside the currency's charge limits
# (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts); it is the lines'
# doing (their prices, quantities, discounts), so it is reported on them.
_CODE_FIELDS_WITHOUT_PARAM = dict.fromkeys(
    ("amount_too_small", "amount_too_large", "invalid_charge_amount"), "line_items"
)
_PARAM_RENAMES = (
    (r"\.price$", ".price_id"),
    (r"\.price_data\.product_data\.name$", ".price_data.product_name"),
    (r"\.price_data\.product_data\.description$", ".price_data.product_description"),
    (r"\.price_data\.product_data\.images", ".price_data.product_images"),
    (r"\.price_data\.product_data\.tax_code$", ".price_data.tax_code"),
    (r"\.price_data\.product_data$", ".price_data.product_name"),
    (r"\.tax_rates", ".tax_rate_ids"),
    (r"\.shipping_rate$", ".shipping_rate_id"),
    (r"\.shipping_rate_data\.fixed_amount\.amount$", ".shipping_rate_data.amount"),
    (r"\.shipping_rate_data\.fixed_amount.*$", ".shipping_rate_data.amount"),
    (r"^customer$", "customer_id"),
    (r"^expires_at$", "expire_time"),
    (r"^client_reference_id$", "order_id"),
    (r"^metadata\..*$", "metadata"),
    (r"^subscription_data\.metadata\..*$", "subscription_data.metadata"),
)
