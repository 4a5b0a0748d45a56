"""Stripe's rules for a Checkout Session, checked before anything is stored or sent.

Everything Stripe would refuse and that can be known without asking Stripe is refused here,
naming each field by its path in the request (docs/architecture.md, "Invariants"). The rules and
limits are Stripe's: https://docs.stripe.com/api/checkout/sessions/create, and for metadata
https://docs.stripe.com/api/metadata.
What only Stripe can know (whether a price, coupon or customer exists, whether a customer has an
address) is left to Stripe, whose refusal is mapped back onto the field (create_plan.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from service.domain.commands import (
    CreateSessionCommand,
    LineItemRequest,
    Mode,
    PriceData,
    ShippingOption,
    UiMode,
)
from service.domain.errors import FieldViolation, InvalidRequest

MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(hours=24)
ORDER_ID_MAX = 200  # Stripe's limit on client_reference_id, where the order id goes
REQUEST_ID_MAX = 255  # Stripe's limit on an idempotency key
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
PAYMENT_LINE_ITEMS_MAX = 100
SUBSCRIPTION_LINE_ITEMS_MAX = 20  # each of recurring and one-time
UNIT_AMOUNT_MAX = 99_999_999  # Stripe accepts at most 8 digits
QUANTITY_MAX = 999_999
URL_MAX = 5000
IMAGES_MAX = 8
TAX_RATES_MAX = 5
SHIPPING_OPTIONS_MAX = 5
TRIAL_DAYS_MAX = 730
# A recurring price may bill at most every three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
ORDER_ID_KEY = "order_id"
"""Metadata key the service adds to the session and to the PaymentIntent, Subscription or
SetupIntent, so that anything seen in the Stripe dashboard leads back to the order."""
LOCALES = frozenset(
    # Stripe's locales (SessionCreateParams.locale, 16.1.0), as text: one per line would bury
    # the module.
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hi-IN hr hu id it ja ko lt lv ms "  # noqa: SIM905
    "mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)

_CURRENCY = re.compile(r"^[a-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_TAX_CODE = re.compile(r"^txcd_\d{8}$")
_PAYMENT_METHOD_TYPE = re.compile(r"^[a-z][a-z_]*$")


class Problems:
    """Collects every violation, so that the caller learns all of them at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidRequest(self.violations)


def validate(cmd: CreateSessionCommand, now: datetime) -> None:
    problems = Problems()
    mode = cmd.mode or Mode.PAYMENT
    ui_mode = cmd.ui_mode or UiMode.HOSTED_PAGE
    _identity(cmd, problems)
    _currency(cmd, mode, problems)
    _line_items(cmd, mode, problems)
    _urls(cmd, ui_mode, problems)
    _per_mode(cmd, mode, problems)
    _customer(cmd, ui_mode, problems)
    _discounts(cmd, problems)
    _shipping(cmd, problems)
    if cmd.expire_time is not None and not (
        now + MIN_EXPIRY <= cmd.expire_time <= now + MAX_EXPIRY
    ):
        problems.add("expire_time", "must be between 30 minutes and 24 hours from now")
    _metadata("metadata", cmd.metadata, problems)
    if cmd.subscription_data is not None:
        _metadata("subscription_data.metadata", cmd.subscription_data.metadata, problems)
    problems.raise_if_any()


def _identity(cmd: CreateSessionCommand, problems: Problems) -> None:
    order_id = cmd.order_id.strip()
    if not order_id:
        problems.add("order_id", "required")
    elif len(order_id) > ORDER_ID_MAX:
        problems.add("order_id", f"at most {ORDER_ID_MAX} characters")
    if len(cmd.request_id) > REQUEST_ID_MAX:
        problems.add("request_id", f"at most {REQUEST_ID_MAX} characters")


def _currency(cmd: CreateSessionCommand, mode: Mode, problems: Problems) -> None:
    currency = cmd.currency.strip().lower()
    if currency and not _CURRENCY.match(currency):
        problems.add("currency", "a three-letter ISO-4217 code such as usd")
    if currency:
        return
    if mode is Mode.SETUP and not cmd.allowed_payment_method_types:
        problems.add(
            "currency", "required in SETUP mode unless allowed_payment_method_types is set"
        )
    elif any(li.price_data for li in cmd.line_items):
        problems.add("currency", "required with price_data line items")
    elif any(o.shipping_rate_data for o in cmd.shipping_options):
        problems.add("currency", "required with shipping_rate_data")


def _line_items(cmd: CreateSessionCommand, mode: Mode, problems: Problems) -> None:
    items = cmd.line_items
    if mode is Mode.SETUP:
        if items:
            problems.add("line_items", "not allowed in SETUP mode")
        return
    if not items:
        problems.add("line_items", f"at least one is required in {mode.name} mode")
    if mode is Mode.PAYMENT and len(items) > PAYMENT_LINE_ITEMS_MAX:
        problems.add("line_items", f"at most {PAYMENT_LINE_ITEMS_MAX} in PAYMENT mode")
    for i, item in enumerate(items):
        _line_item(f"line_items[{i}]", item, mode, bool(cmd.automatic_tax), problems)
    if mode is Mode.SUBSCRIPTION:
        # Lines priced by id are Stripe's to judge; inline prices we can count.
        recurring = sum(1 for li in items if li.price_data and li.price_data.recurring)
        one_time = sum(1 for li in items if li.price_data and not li.price_data.recurring)
        if max(recurring, one_time) > SUBSCRIPTION_LINE_ITEMS_MAX:
            problems.add(
                "line_items",
                f"at most {SUBSCRIPTION_LINE_ITEMS_MAX} recurring and "
                f"{SUBSCRIPTION_LINE_ITEMS_MAX} one-time lines in SUBSCRIPTION mode",
            )
        if items and all(li.price_data for li in items) and recurring == 0:
            problems.add("line_items", "SUBSCRIPTION mode needs at least one recurring price")


def _line_item(
    path: str, item: LineItemRequest, mode: Mode, automatic_tax: bool, problems: Problems
) -> None:
    if not 1 <= item.quantity <= QUANTITY_MAX:
        problems.add(f"{path}.quantity", f"must be between 1 and {QUANTITY_MAX}")
    if item.price_data is not None:
        _price_data(f"{path}.price_data", item.price_data, mode, problems)
    elif not item.price_id.strip():
        problems.add(f"{path}.price_id", "one of price_id or price_data is required")
    adjustable = item.adjustable_quantity
    if adjustable is not None:
        maximum = adjustable.maximum or 99
        if not 0 <= adjustable.minimum <= QUANTITY_MAX:
            problems.add(f"{path}.adjustable_quantity.minimum", f"0 to {QUANTITY_MAX}")
        if not 1 <= maximum <= QUANTITY_MAX:
            problems.add(f"{path}.adjustable_quantity.maximum", f"1 to {QUANTITY_MAX}")
        if adjustable.minimum > maximum:
            problems.add(f"{path}.adjustable_quantity.minimum", "must not exceed maximum")
        elif adjustable.enabled and not adjustable.minimum <= item.quantity <= maximum:
            problems.add(f"{path}.quantity", "must be within adjustable_quantity's bounds")
    if len(item.tax_rate_ids) > TAX_RATES_MAX:
        problems.add(f"{path}.tax_rate_ids", f"at most {TAX_RATES_MAX}")
    if item.tax_rate_ids and automatic_tax:
        problems.add(f"{path}.tax_rate_ids", "not allowed with automatic_tax")
    for j, rate in enumerate(item.tax_rate_ids):
        if not rate.strip():
            problems.add(f"{path}.tax_rate_ids[{j}]", "must not be empty")


def _price_data(path: str, data: PriceData, mode: Mode, problems: Problems) -> None:
    if not 0 <= data.unit_amount <= UNIT_AMOUNT_MAX:
        problems.add(f"{path}.unit_amount", f"must be between 0 and {UNIT_AMOUNT_MAX}")
    if not data.product_name.strip():
        problems.add(f"{path}.product_name", "required")
    if len(data.product_images) > IMAGES_MAX:
        problems.add(f"{path}.product_images", f"at most {IMAGES_MAX}")
    for j, image in enumerate(data.product_images):
        if not _is_web_url(image):
            problems.add(f"{path}.product_images[{j}]", "must be an absolute http(s) URL")
    if data.tax_code and not _TAX_CODE.match(data.tax_code):
        problems.add(f"{path}.tax_code", "a Stripe tax code such as txcd_99999999")
    recurring = data.recurring
    if recurring is None:
        return
    if mode is not Mode.SUBSCRIPTION:
        problems.add(f"{path}.recurring", "recurring prices need SUBSCRIPTION mode")
    if recurring.interval not in MAX_INTERVAL_COUNT:
        problems.add(f"{path}.recurring.interval", "one of DAY, WEEK, MONTH, YEAR")
    elif not 0 <= recurring.interval_count <= MAX_INTERVAL_COUNT[recurring.interval]:
        problems.add(
            f"{path}.recurring.interval_count",
            f"1 to {MAX_INTERVAL_COUNT[recurring.interval]} (at most three years)",
        )


def _urls(cmd: CreateSessionCommand, ui_mode: UiMode, problems: Problems) -> None:
    # Stripe's rules per UI mode:
    # https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-ui_mode and
    # https://docs.stripe.com/payments/checkout/custom-redirect-behavior
    allowed: tuple[str, ...]
    refused: tuple[str, ...]
    if ui_mode is UiMode.HOSTED_PAGE:
        allowed, refused = ("success_url", "cancel_url"), ("return_url",)
        if cmd.redirect_on_completion is not None:
            problems.add("redirect_on_completion", "not allowed with ui_mode HOSTED_PAGE")
    else:
        allowed, refused = ("return_url",), ("success_url", "cancel_url")
    for name in refused:
        if getattr(cmd, name):
            problems.add(name, f"not allowed with ui_mode {ui_mode.name}")
    never = cmd.redirect_on_completion == "never"
    if never and cmd.return_url:
        problems.add("return_url", "not allowed when redirect_on_completion is NEVER")
    elif ui_mode is UiMode.EMBEDDED_PAGE and not never and not cmd.return_url:
        # The embedded form sends the customer there once paid.
        problems.add("return_url", "required with ui_mode EMBEDDED_PAGE")
    for name in allowed:
        value: str = getattr(cmd, name)
        if value and not _is_web_url(value):
            problems.add(name, "must be an absolute http(s) URL")


# Parameters that Stripe accepts only in some modes (SessionCreateParams docstrings).
_MODES_FOR = {
    "customer_creation": (Mode.PAYMENT, Mode.SETUP),
    "phone_number_collection": (Mode.PAYMENT, Mode.SUBSCRIPTION),
    "subscription_data": (Mode.SUBSCRIPTION,),
    "payment_method_collection": (Mode.SUBSCRIPTION,),
}


def _per_mode(cmd: CreateSessionCommand, mode: Mode, problems: Problems) -> None:
    for name, modes in _MODES_FOR.items():
        if getattr(cmd, name) is not None and mode not in modes:
            allowed = " and ".join(m.name for m in modes)
            problems.add(name, f"only in {allowed} mode")
    trial = cmd.subscription_data.trial_period_days if cmd.subscription_data else 0
    if not 0 <= trial <= TRIAL_DAYS_MAX:
        problems.add("subscription_data.trial_period_days", f"1 to {TRIAL_DAYS_MAX}")


def _customer(cmd: CreateSessionCommand, ui_mode: UiMode, problems: Problems) -> None:
    if cmd.customer_id and cmd.customer_email:
        problems.add("customer_email", "not allowed with customer_id")
    if cmd.customer_email and (
        len(cmd.customer_email) > 512 or not _EMAIL.match(cmd.customer_email)
    ):
        problems.add("customer_email", "not an email address")
    if cmd.customer_update is not None and not cmd.customer_id:
        problems.add("customer_update", "only with customer_id")
    tax_ids = cmd.tax_id_collection
    if tax_ids is not None and tax_ids.required and ui_mode is UiMode.ELEMENTS:
        problems.add("tax_id_collection.required", "not allowed with ui_mode ELEMENTS")
    if (
        tax_ids is not None
        and tax_ids.enabled
        and cmd.customer_id
        and not (cmd.customer_update and cmd.customer_update.name)
    ):
        # Checkout saves the business name on the customer along with the tax id.
        problems.add("customer_update.name", "required to collect tax ids for an existing customer")
    if cmd.locale and cmd.locale not in LOCALES:
        problems.add("locale", "auto or one of Stripe's locales (en, fr, pt-BR, …)")
    seen = set()
    for i, kind in enumerate(cmd.allowed_payment_method_types):
        if not _PAYMENT_METHOD_TYPE.match(kind) or kind in seen:
            problems.add(f"allowed_payment_method_types[{i}]", "a distinct Stripe type like card")
        seen.add(kind)


def _discounts(cmd: CreateSessionCommand, problems: Problems) -> None:
    if cmd.discounts and cmd.allow_promotion_codes:
        problems.add("discounts", "not allowed with allow_promotion_codes")
    if len(cmd.discounts) > 1:
        problems.add("discounts", "at most one")
    for i, discount in enumerate(cmd.discounts):
        if not discount.coupon.strip() and not discount.promotion_code.strip():
            problems.add(f"discounts[{i}]", "one of coupon or promotion_code is required")


def _shipping(cmd: CreateSessionCommand, problems: Problems) -> None:
    countries = cmd.shipping_countries
    if countries is not None:
        field = "shipping_address_collection.allowed_countries"
        if not countries:
            problems.add(field, "at least one country")
        for i, country in enumerate(countries):
            if not _COUNTRY.match(country):
                problems.add(f"{field}[{i}]", "a two-letter ISO-3166 code such as US")
    if len(cmd.shipping_options) > SHIPPING_OPTIONS_MAX:
        problems.add("shipping_options", f"at most {SHIPPING_OPTIONS_MAX}")
    for i, option in enumerate(cmd.shipping_options):
        _shipping_option(f"shipping_options[{i}]", option, problems)


def _shipping_option(path: str, option: ShippingOption, problems: Problems) -> None:
    data = option.shipping_rate_data
    if data is None:
        if not option.shipping_rate_id.strip():
            problems.add(
                f"{path}.shipping_rate_id", "one of shipping_rate_id or shipping_rate_data"
            )
        return
    path = f"{path}.shipping_rate_data"
    if not data.display_name.strip():
        problems.add(f"{path}.display_name", "required")
    if not 0 <= data.amount <= UNIT_AMOUNT_MAX:
        problems.add(f"{path}.amount", f"must be between 0 and {UNIT_AMOUNT_MAX}")
    if data.tax_code and not _TAX_CODE.match(data.tax_code):
        problems.add(f"{path}.tax_code", "a Stripe tax code such as txcd_92010001")
    for name, bound in (("minimum", data.minimum_delivery), ("maximum", data.maximum_delivery)):
        if bound is None:
            continue
        if not bound.unit:
            problems.add(f"{path}.delivery_estimate.{name}.unit", "required")
        if bound.value < 1:
            problems.add(f"{path}.delivery_estimate.{name}.value", "at least 1")


def _metadata(path: str, metadata: Mapping[str, str], problems: Problems) -> None:
    if ORDER_ID_KEY in metadata:
        problems.add(f"{path}[{ORDER_ID_KEY}]", "reserved: the service sets it to the order id")
    if len(metadata) + 1 > METADATA_MAX_KEYS:
        problems.add(
            path,
            f"at most {METADATA_MAX_KEYS - 1} keys: Stripe allows {METADATA_MAX_KEYS} and the "
            f"service adds {ORDER_ID_KEY}",
        )
    for key, value in metadata.items():
        if not key or len(key) > METADATA_KEY_MAX or "[" in key or "]" in key:
            problems.add(
                f"{path}[{key}]", f"keys are 1 to {METADATA_KEY_MAX} characters, without [ or ]"
            )
        if len(value) > METADATA_VALUE_MAX:
            problems.add(f"{path}[{key}]", f"values are at most {METADATA_VALUE_MAX} characters")


def _is_web_url(value: str) -> bool:
    if len(value) > URL_MAX or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
