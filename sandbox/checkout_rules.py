"""The rules Stripe checks before it creates a Checkout Session.

`plan_session` validates the parameters against their shapes (`checkout_params.py`) and
Stripe's cross-parameter rules (https://docs.stripe.com/api/checkout/sessions/create), resolves
every id the request references, and returns a `SessionPlan`. It has no side effects, so a
refusal here is a validation failure that Stripe does not save under the idempotency key
(https://docs.stripe.com/api/idempotent_requests).
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .catalog import (
    PRICE,
    PRODUCT,
    check_amount,
    check_recurring,
    unit_amount,
)
from .checkout_options import check_options
from .checkout_params import ADJUSTABLE_QUANTITY_DEFAULT_MAXIMUM, NOT_MODELLED, SESSION_CREATE
from .customers import CUSTOMER, country_of
from .discounts import (
    COUPON,
    PROMOTION_CODE,
    check_minimum,
    coupon_of,
    coupon_usable,
    promotion_code_usable,
)
from .errors import (
    StripeError,
    invalid,
    parameter_missing,
    parameters_exclusive,
    resource_missing,
)
from .payment_methods import needs_return_url
from .shipping import SHIPPING_RATE, check_shipping_rate_data
from .store import Store
from .taxes import TAX_RATE
from .totals import round_half_up

# `expires_at`: 30 minutes to 24 hours after creation, 24 hours when absent
# (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at).
MIN_EXPIRY, MAX_EXPIRY = 30 * 60, 24 * 60 * 60
# Line items: at most 100 in payment mode; 20 with recurring and 20 with one-time prices in
# subscription mode
# (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items).
PAYMENT_LINE_ITEMS_MAX = 100
SUBSCRIPTION_LINE_ITEMS_MAX = 20
# One coupon or promotion code, and up to 5 shipping options
# (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-discounts,
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-shipping_options).
DISCOUNTS_MAX = 1
SHIPPING_OPTIONS_MAX = 5


@dataclass
class LinePlan:
    """One line item: an existing `price`, or `price_data` to create inline."""

    index: int
    quantity: int
    price: dict[str, Any] | None
    price_data: dict[str, Any] | None
    tax_rates: list[dict[str, Any]]
    adjustable_quantity: dict[str, Any] | None
    metadata: dict[str, str]

    @property
    def currency(self) -> str:
        source = self.price if self.price is not None else self.price_data
        assert source is not None
        currency: str = source["currency"]
        return currency

    @property
    def subtotal(self) -> int:
        if self.price is not None:
            unit = unit_amount(self.price)
        else:
            assert self.price_data is not None
            data = self.price_data
            unit = (
                data["unit_amount_decimal"]
                if "unit_amount_decimal" in data
                else Decimal(data["unit_amount"])
            )
        return round_half_up(unit * self.quantity)

    @property
    def recurring(self) -> bool:
        if self.price is not None:
            return bool(self.price["type"] == "recurring")
        assert self.price_data is not None
        return "recurring" in self.price_data


@dataclass
class SessionPlan:
    params: dict[str, Any]
    mode: str
    ui_mode: str
    currency: str | None
    expires_at: int
    lines: list[LinePlan] = field(default_factory=list)
    customer: dict[str, Any] | None = None
    discounts: list[dict[str, Any]] = field(default_factory=list)
    """Each `{"coupon": …, "promotion_code": … or None}`; the coupon is always resolved."""
    shipping: list[dict[str, Any]] = field(default_factory=list)
    """Each `{"rate": existing}` or `{"data": shipping_rate_data}`."""


def plan_session(store: Store, now: int, raw: dict[str, Any]) -> SessionPlan:
    for name in raw:
        if name in NOT_MODELLED:
            raise StripeError(
                f"Received unknown parameter: {name} (Stripe accepts it, but the sandbox does not "
                "model it yet; see sandbox/checkout_params.py)",
                param=name,
                code="parameter_unknown",
            )
    params = SESSION_CREATE.parse(raw)
    if "mode" not in params:
        raise parameter_missing("mode")
    mode: str = params["mode"]
    ui_mode: str = params.get("ui_mode", "hosted_page")
    _check_urls(params, ui_mode)
    _check_mode_only(params, mode, ui_mode)
    _check_exclusive(params)
    check_options(store, params, mode, ui_mode)
    if "expires_at" in params:
        _check_expiry(params["expires_at"], now)
    plan = SessionPlan(
        params=params,
        mode=mode,
        ui_mode=ui_mode,
        currency=params.get("currency"),
        expires_at=params.get("expires_at", now + MAX_EXPIRY),
    )
    plan.lines = _plan_lines(store, params, mode)
    plan.currency = _session_currency(params, plan.lines, mode)
    plan.customer = _resolve(store, CUSTOMER, params.get("customer"), "customer")
    _check_customer_updates(params, plan.customer)
    plan.discounts = _plan_discounts(store, params.get("discounts", []), plan, now)
    plan.shipping = _plan_shipping(store, params.get("shipping_options", []), plan.currency)
    return plan


def _check_urls(params: dict[str, Any], ui_mode: str) -> None:
    not_allowed = (
        ("return_url", "redirect_on_completion")
        if ui_mode == "hosted_page"
        else ("cancel_url", "success_url")
    )
    refused = [name for name in not_allowed if name in params]
    if refused:
        raise invalid(
            f"The following parameters are not supported with 'ui_mode: {ui_mode}': "
            + ", ".join(refused)
            + ".",
            refused[0],
        )
    redirect = params.get("redirect_on_completion", "always")
    if needs_return_url(params, ui_mode) and "return_url" not in params:
        raise parameter_missing("return_url")
    if redirect == "never" and "return_url" in params:
        raise invalid(
            "You cannot pass `return_url` when `redirect_on_completion` is `never`.", "return_url"
        )


# Parameters that Stripe accepts only in some modes (SessionCreateParams docstrings).
_MODES_FOR = {
    "customer_creation": ("payment", "setup"),
    "invoice_creation": ("payment",),
    "payment_intent_data": ("payment",),
    "payment_method_collection": ("subscription",),
    "phone_number_collection": ("payment", "subscription"),
    "setup_intent_data": ("setup",),
    "submit_type": ("payment", "subscription"),
    "subscription_data": ("subscription",),
}
# ... and some that the `elements` UI cannot use.
_NOT_WITH_ELEMENTS = ("origin_context", "submit_type")


def _check_mode_only(params: dict[str, Any], mode: str, ui_mode: str) -> None:
    for name, modes in _MODES_FOR.items():
        if name in params and mode not in modes:
            raise invalid(f"You can not pass `{name}` in `{mode}` mode.", name)
    for name in _NOT_WITH_ELEMENTS:
        if name in params and ui_mode == "elements":
            raise invalid(f"You can not pass `{name}` when `ui_mode` is `elements`.", name)
    if ui_mode == "elements" and "required" in params.get("tax_id_collection", {}):
        raise invalid(
            "You can not pass `tax_id_collection[required]` when `ui_mode` is `elements`.",
            "tax_id_collection[required]",
        )
    if mode == "setup" and "line_items" in params:
        raise invalid("You can not pass `line_items` in `setup` mode.", "line_items")
    if (
        mode == "setup"
        and "currency" not in params
        and "allowed_payment_method_types" not in params
    ):
        raise parameter_missing("currency")


def _check_exclusive(params: dict[str, Any]) -> None:
    if "customer" in params and "customer_email" in params:
        raise parameters_exclusive("customer", "customer_email")
    if "customer_update" in params and "customer" not in params:
        raise invalid("`customer_update` can only be used with `customer`.", "customer_update")
    if "discounts" in params and "allow_promotion_codes" in params:
        raise parameters_exclusive("allow_promotion_codes", "discounts", param="discounts")


def _check_expiry(expires_at: int, now: int) -> None:
    if expires_at < now + MIN_EXPIRY:
        raise invalid(
            f"The `expires_at` timestamp must be at least {MIN_EXPIRY // 60} minutes from "
            "Checkout Session creation.",
            "expires_at",
        )
    if expires_at > now + MAX_EXPIRY:
        raise invalid(
            f"The `expires_at` timestamp must be less than {MAX_EXPIRY // 3600} hours from "
            "Checkout Session creation.",
            "expires_at",
        )


def _plan_lines(store: Store, params: dict[str, Any], mode: str) -> list[LinePlan]:
    items: list[dict[str, Any]] = params.get("line_items", [])
    if mode != "setup" and not items:
        raise parameter_missing("line_items")
    lines = [_plan_line(store, item, index) for index, item in enumerate(items)]
    first = lines[0] if lines else None
    for line in lines:
        assert first is not None
        if line.currency != first.currency:
            raise invalid(
                "All line items must use the same currency: "
                f"line_items[{line.index}] is in `{line.currency}` but line_items[0] is in "
                f"`{first.currency}`.",
                f"line_items[{line.index}]",
            )
        if mode == "payment" and line.recurring:
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                f"line_items[{line.index}]",
            )
    recurring = sum(line.recurring for line in lines)
    if mode == "payment" and len(lines) > PAYMENT_LINE_ITEMS_MAX:
        raise invalid(
            f"You can pass at most {PAYMENT_LINE_ITEMS_MAX} line items in `payment` mode.",
            "line_items",
        )
    if mode == "subscription":
        if not recurring:
            raise invalid(
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                "line_items",
            )
        if (
            recurring > SUBSCRIPTION_LINE_ITEMS_MAX
            or len(lines) - recurring > SUBSCRIPTION_LINE_ITEMS_MAX
        ):
            raise invalid(
                f"You can pass at most {SUBSCRIPTION_LINE_ITEMS_MAX} recurring and "
                f"{SUBSCRIPTION_LINE_ITEMS_MAX} one-time line items in `subscription` mode.",
                "line_items",
            )
    return lines


def _plan_line(store: Store, item: dict[str, Any], index: int) -> LinePlan:
    path = f"line_items[{index}]"
    if "price" in item and "price_data" in item:
        raise parameters_exclusive("price", "price_data", param=path)
    price, price_data = None, item.get("price_data")
    if "price" in item:
        price = _resolve(store, PRICE, item["price"], f"{path}[price]")
        assert price is not None
        if not price["active"]:
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.",
                f"{path}[price]",
            )
    elif price_data is not None:
        _check_price_data(store, price_data, f"{path}[price_data]")
    else:
        raise invalid(
            f"You must specify either `price` or `price_data` for {path}.",
            path,
            "parameter_missing",
        )
    metered = price is not None and (price["recurring"] or {}).get("usage_type") == "metered"
    if metered and "quantity" in item:
        raise invalid("You cannot set `quantity` for a metered price.", f"{path}[quantity]")
    if not metered and "quantity" not in item:
        raise parameter_missing(f"{path}[quantity]")
    quantity: int = item.get("quantity", 1)
    adjustable = item.get("adjustable_quantity")
    if adjustable is not None and adjustable["enabled"]:
        low = adjustable.get("minimum", 0)
        high = adjustable.get("maximum", ADJUSTABLE_QUANTITY_DEFAULT_MAXIMUM)
        if not low <= quantity <= high:
            raise invalid(
                f"`{path}[quantity]` must be between `adjustable_quantity[minimum]` ({low}) and "
                f"`adjustable_quantity[maximum]` ({high}).",
                f"{path}[adjustable_quantity]",
            )
    tax_rates = [
        _resolve(store, TAX_RATE, rate, f"{path}[tax_rates][{position}]")
        for position, rate in enumerate(item.get("tax_rates", []))
    ]
    return LinePlan(
        index=index,
        quantity=quantity,
        price=price,
        price_data=price_data,
        tax_rates=[rate for rate in tax_rates if rate is not None],
        adjustable_quantity=adjustable,
        metadata=item.get("metadata", {}),
    )


def _check_price_data(store: Store, data: dict[str, Any], path: str) -> None:
    check_amount(data, path)
    check_recurring(data.get("recurring"), path)
    if "product" in data and "product_data" in data:
        raise parameters_exclusive("product", "product_data", param=f"{path}[product]")
    if "product" not in data and "product_data" not in data:
        raise parameter_missing(f"{path}[product_data]")
    if "product" in data:
        _resolve(store, PRODUCT, data["product"], f"{path}[product]")


def _session_currency(params: dict[str, Any], lines: list[LinePlan], mode: str) -> str | None:
    currency: str | None = params.get("currency")
    if lines and currency is not None and lines[0].currency != currency:
        raise invalid(
            f"`currency` is `{currency}` but the line items are priced in "
            f"`{lines[0].currency}`; the sandbox does not model multi-currency prices.",
            "currency",
        )
    if lines:
        return lines[0].currency
    return currency


def _check_customer_updates(params: dict[str, Any], customer: dict[str, Any] | None) -> None:
    """What Checkout needs to save on an existing Customer
    (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-customer_update)."""
    if customer is None:
        return
    updates = params.get("customer_update", {})
    if (
        params.get("automatic_tax", {}).get("enabled")
        and country_of(customer) is None
        and "auto" not in (updates.get("address"), updates.get("shipping"))
    ):
        raise invalid(
            "Automatic tax calculation in Checkout requires a valid address on the Customer. "
            "Add a valid address to the Customer or set either `customer_update[address]` to "
            "'auto' or `customer_update[shipping]` to 'auto' to save the address entered in "
            "Checkout to the Customer.",
            "customer",
            "customer_tax_location_invalid",
        )
    if params.get("tax_id_collection", {}).get("enabled") and updates.get("name") != "auto":
        raise invalid(
            "To collect tax IDs for an existing Customer, set `customer_update[name]` to "
            "'auto' so that Checkout can save the business name.",
            "customer_update[name]",
        )


def _plan_discounts(
    store: Store, discounts: list[dict[str, Any]], plan: SessionPlan, now: int
) -> list[dict[str, Any]]:
    if len(discounts) > DISCOUNTS_MAX:
        raise invalid("You may only specify one discount.", "discounts")
    customer_id = None if plan.customer is None else plan.customer["id"]
    resolved = []
    for index, discount in enumerate(discounts):
        path = f"discounts[{index}]"
        if "coupon" in discount and "promotion_code" in discount:
            raise parameters_exclusive("coupon", "promotion_code", param=path)
        if "coupon" in discount:
            param = f"{path}[coupon]"
            entry = {"coupon": _resolve(store, COUPON, discount["coupon"], param)}
            entry["promotion_code"] = None
        elif "promotion_code" in discount:
            param = f"{path}[promotion_code]"
            code = _resolve(store, PROMOTION_CODE, discount["promotion_code"], param)
            promotion_code_usable(code, now, customer_id, param)
            check_minimum(code, sum(line.subtotal for line in plan.lines), plan.currency, param)
            entry = {"coupon": coupon_of(store, code), "promotion_code": code}
        else:
            raise parameter_missing(f"{path}[coupon]")
        coupon_usable(entry["coupon"], now, plan.currency, param)
        resolved.append(entry)
    return resolved


def _plan_shipping(
    store: Store, options: list[dict[str, Any]], currency: str | None
) -> list[dict[str, Any]]:
    if len(options) > SHIPPING_OPTIONS_MAX:
        raise invalid(
            f"You can pass at most {SHIPPING_OPTIONS_MAX} shipping options.", "shipping_options"
        )
    planned = []
    for index, option in enumerate(options):
        path = f"shipping_options[{index}]"
        if "shipping_rate" in option and "shipping_rate_data" in option:
            raise parameters_exclusive("shipping_rate", "shipping_rate_data", param=path)
        if "shipping_rate" in option:
            rate = _resolve(store, SHIPPING_RATE, option["shipping_rate"], f"{path}[shipping_rate]")
            assert rate is not None
            fixed = rate["fixed_amount"]
            planned.append({"rate": rate})
        elif "shipping_rate_data" in option:
            check_shipping_rate_data(option["shipping_rate_data"], f"{path}[shipping_rate_data]")
            fixed = option["shipping_rate_data"]["fixed_amount"]
            planned.append({"data": option["shipping_rate_data"]})
        else:
            raise parameter_missing(f"{path}[shipping_rate]")
        if currency is not None and fixed["currency"] != currency:
            raise invalid(
                f"The shipping rate's currency (`{fixed['currency']}`) must match the session's "
                f"currency (`{currency}`).",
                path,
            )
    return planned


def _resolve(store: Store, kind: str, object_id: str | None, param: str) -> Any:
    if object_id is None:
        return None
    found = store.get(kind, object_id)
    if found is None:
        raise resource_missing(kind.replace("_", " "), object_id, param)
    return found
