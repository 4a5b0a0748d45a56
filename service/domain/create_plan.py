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

from service.domain.checkout_options import option_params, payment_intent_data
from service.domain.commands import (
    CreateSessionCommand,
    DeliveryBound,
    LineItemRequest,
    Mode,
    PriceData,
    ShippingOption,
    ShippingRateData,
    SubscriptionData,
    UiMode,
)
from service.domain.model import field_names, field_values, service_metadata
from service.domain.validation import MAX_EXPIRY, validate

# What the ledger keeps of a session is only in Stripe's answer when expanded: the line items,
# their taxes and discounts, and the totals' breakdown (https://docs.stripe.com/expand). Asked
# for on create, and by the gateway on every read of a session.
SESSION_EXPANSIONS = (
    "line_items",
    "line_items.data.taxes",
    "line_items.data.discounts",
    "total_details.breakdown",
)


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
    caller: str,
    default_tax_behavior: str | None = None,
    checked: CheckedCreate | None = None,
) -> CreatePlan:
    """The exact Stripe parameters for a valid request (InvalidRequest otherwise), its
    fingerprint and its session's expiry: `expire_time`, or a day after `now`, Stripe's longest.
    `caller` names whose order it is in the metadata, beside the order id; it is not in the
    fingerprint (each caller's orders are its own: the ledger keys them by caller).
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
    service = service_metadata(caller, order_id)
    params: dict[str, Any] = {
        "mode": mode.value,
        "ui_mode": (cmd.ui_mode or UiMode.HOSTED_PAGE).value,
        "client_reference_id": order_id,
        "metadata": {**cmd.metadata, **service},
        "expires_at": int(expires_at.timestamp()),
        "expand": list(SESSION_EXPANSIONS),
    }
    if cmd.line_items:
        params["line_items"] = [
            _line_item(li, currency, default_tax_behavior) for li in cmd.line_items
        ]
    params.update(_given(cmd, currency))
    params.update(_settings(cmd))
    params.update(option_params(cmd, service))
    if cmd.shipping_options:
        params["shipping_options"] = [_shipping_option(o, currency) for o in cmd.shipping_options]
    # The caller and the order also go on the object that moves the money, which Stripe does
    # not copy from the session's metadata:
    # https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-payment_intent_data-metadata
    if mode is Mode.SUBSCRIPTION:
        params["subscription_data"] = _subscription_data(cmd, service)
    elif mode is Mode.PAYMENT:
        params["payment_intent_data"] = payment_intent_data(cmd, service)
    else:
        params["setup_intent_data"] = {"metadata": service}
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


def _plain(value: object) -> object:
    """What the JSON encoder cannot write itself: each dataclass as the dict of its fields (what
    `dataclasses.asdict` gives, without its deep copies; the encoder walks the values, in C, so
    this runs only for the command and its nested dataclasses: it runs on every create, even one
    that reuses its session), less the fields added later that hold their defaults."""
    if field_names(type(value)):
        data = field_values(value)
        if isinstance(value, CreateSessionCommand):
            data["request_id"] = ""
        for name, default in _ADDED_LATER.get(type(value), {}).items():
            if data[name] == default:
                del data[name]
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def _defaults(cls: type, names: tuple[str, ...]) -> dict[str, object]:
    """The defaults of some of a dataclass's fields: what an instance built without them holds."""
    return {
        f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(cls)
        if f.name in names
    }


# Fields the request gained after rows began to store fingerprints (issues 20, 21), by class, with
# their defaults: one that holds its default is left out of the digest, so that a request that
# does not use it keeps the fingerprint it had (tests/unit/test_create_plan.py pins both).
_ADDED_LATER: dict[type, dict[str, object]] = {
    CreateSessionCommand: _defaults(
        CreateSessionCommand,
        (
            "custom_fields",
            "custom_text",
            "consent_collection",
            "invoice_creation",
            "recovery",
            "payment_intent_data",
            "saved_payment_method_options",
            "excluded_payment_method_types",
            "submit_type",
            "name_collection",
            "request_three_d_secure",
            # Issue 21.
            "capture_method",
        ),
    ),
    LineItemRequest: _defaults(LineItemRequest, ("metadata",)),
    PriceData: _defaults(PriceData, ("product_id", "product_metadata")),
    ShippingRateData: _defaults(ShippingRateData, ("metadata",)),
    SubscriptionData: _defaults(SubscriptionData, ("trial_end", "trial_missing_payment_method")),
}


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
    if item.metadata:
        line["metadata"] = dict(item.metadata)
    return line


def _price_data(data: PriceData, currency: str, default_tax_behavior: str | None) -> dict[str, Any]:
    price: dict[str, Any] = {"currency": currency, "unit_amount": data.unit_amount}
    if data.product_id:
        price["product"] = data.product_id.strip()
    else:
        price["product_data"] = _product_data(data)
    if data.recurring is not None:
        price["recurring"] = {"interval": data.recurring.interval}
        if data.recurring.interval_count:
            price["recurring"]["interval_count"] = data.recurring.interval_count
    if data.tax_behavior or default_tax_behavior:
        price["tax_behavior"] = data.tax_behavior or default_tax_behavior
    return price


def _product_data(data: PriceData) -> dict[str, Any]:
    product: dict[str, Any] = {"name": data.product_name}
    if data.product_description:
        product["description"] = data.product_description
    if data.product_images:
        product["images"] = list(data.product_images)
    if data.tax_code:
        product["tax_code"] = data.tax_code
    if data.product_metadata:
        product["metadata"] = dict(data.product_metadata)
    return product


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
    if data.metadata:
        rate["metadata"] = dict(data.metadata)
    return {"shipping_rate_data": rate}


def _bound(bound: DeliveryBound) -> dict[str, Any]:
    return {"unit": bound.unit, "value": bound.value}


def _subscription_data(cmd: CreateSessionCommand, service: Mapping[str, str]) -> dict[str, Any]:
    given = cmd.subscription_data
    data: dict[str, Any] = {"metadata": {**(given.metadata if given else {}), **service}}
    if given is not None and given.trial_period_days:
        data["trial_period_days"] = given.trial_period_days
    if given is not None and given.description:
        data["description"] = given.description
    if given is not None and given.trial_end is not None:
        data["trial_end"] = int(given.trial_end.timestamp())
    if given is not None and given.trial_missing_payment_method:
        data["trial_settings"] = {
            "end_behavior": {"missing_payment_method": given.trial_missing_payment_method}
        }
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
    (r"\.price_data\.product$", ".price_data.product_id"),
    (r"\.price_data\.product_data\.metadata.*$", ".price_data.product_metadata"),
    (r"^(line_items\[\d+\])\.metadata\..*$", r"\1.metadata"),
    (r"\.shipping_rate_data\.metadata\..*$", ".shipping_rate_data.metadata"),
    (r"^(custom_fields\[\d+\])\.label\.custom$", r"\1.label"),
    (r"^custom_text\.(\w+)\.message$", r"custom_text.\1"),
    (r"^invoice_creation\.invoice_data\.rendering_options\.", "invoice_creation.invoice_data."),
    (r"^invoice_creation\.invoice_data\.metadata\..*$", "invoice_creation.invoice_data.metadata"),
    (
        r"^consent_collection\.payment_method_reuse_agreement\.position$",
        "consent_collection.payment_method_reuse_agreement",
    ),
    (r"^subscription_data\.trial_settings\.end_behavior\.", "subscription_data.trial_settings."),
    (r"\.shipping_rate$", ".shipping_rate_id"),
    (r"\.shipping_rate_data\.fixed_amount\.amount$", ".shipping_rate_data.amount"),
    (r"\.shipping_rate_data\.fixed_amount.*$", ".shipping_rate_data.amount"),
    (r"^customer$", "customer_id"),
    (r"^expires_at$", "expire_time"),
    (r"^client_reference_id$", "order_id"),
    (r"^metadata\..*$", "metadata"),
    (r"^subscription_data\.metadata\..*$", "subscription_data.metadata"),
)
