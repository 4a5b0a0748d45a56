"""Stripe's rules for a Checkout Session, checked before anything is stored or sent.

Everything Stripe would refuse and that can be known without asking Stripe is refused here,
naming each field by its path in the request (docs/architecture.md, "Invariants"): Stripe
refuses only after the claim, and for a changed cart only after the order's open session was
expired, so what is left to Stripe costs the caller that session. The rules and limits are
Stripe's: https://docs.stripe.com/api/checkout/sessions/create, and for metadata
https://docs.stripe.com/api/metadata; its tables (locales, currencies, charge limits, payment
methods) are in stripe_tables.py, dated.
What only Stripe can know (whether a price, coupon or customer exists, whether a customer has an
address) is left to Stripe, whose refusal is mapped back onto the field (create_plan.py).

Every string and every repeated field of every request is bounded, by Stripe's limit or, where
Stripe documents none, by one of ours (marked "ours" below), and no string may carry NUL or
other control characters: Postgres cannot store NUL, and nothing a caller sends may turn into
an INTERNAL error further in. Identifiers (ids, keys, tokens) must be printable
(`str.isprintable`: no control, format, private-use or unassigned characters, no line breaks);
free text shown to a customer (names, descriptions, metadata values) may hold tabs and line
breaks but no other control character. Lone surrogates never get this far: protobuf refuses a
string that is not UTF-8 before the service sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from service.domain.commands import (
    CreateSessionCommand,
    CustomField,
    InvoiceData,
    LineItemRequest,
    Mode,
    PaymentIntentData,
    PriceData,
    ShippingOption,
    TextSettings,
    UiMode,
)
from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.model import CALLER_KEY, ORDER_ID_KEY, SERVICE_METADATA_KEYS
from service.domain.stripe_tables import (
    CHARGE_STEP,
    CURRENCIES,
    DEFAULT_MAXIMUM_CHARGE,
    LOCALES,
    MAXIMUM_CHARGE,
    MINIMUM_CHARGE,
    REDIRECT_BASED_METHODS,
    THREE_DECIMAL,
    ZERO_DECIMAL,
)

MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(hours=24)
# Identifiers. client_reference_id, where the order id goes, is at most 200 characters:
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-client_reference_id
ORDER_ID_MAX = 200
# An idempotency key is at most 255 characters: https://docs.stripe.com/api/idempotent_requests
REQUEST_ID_MAX = 255
# Ids of Stripe objects (sessions, prices, tax rates, coupons, promotion codes, shipping rates,
# customers, events): Stripe promises the ids it generates never exceed 255 characters,
# https://docs.stripe.com/upgrades#what-changes-does-stripe-consider-to-be-backward-compatible
STRIPE_ID_MAX = 255
SESSION_ID_MAX = STRIPE_ID_MAX
# Ours: a caller's name in CALLERS_FILE, as operators name it in a lookup.
CALLER_MAX = 200
# Ours: ListSessions tokens are URL-safe base64 that this service issued (page_tokens.py); the
# token for the longest order id and caller name, in any characters, stays under this
# (tests/unit/test_limits.py).
PAGE_TOKEN_MAX = 8192
# Free text, from the `maxLength`s of Stripe's OpenAPI description
# (https://github.com/stripe/openapi), shown in https://docs.stripe.com/api/checkout/sessions/create:
TEXT_MAX = 5000  # any other string parameter, e.g. line_items.price_data.product_data.name
PRODUCT_DESCRIPTION_MAX = 40_000  # line_items.price_data.product_data.description
SHIPPING_DISPLAY_NAME_MAX = 100  # shipping_options.shipping_rate_data.display_name
SUBSCRIPTION_DESCRIPTION_MAX = 500  # subscription_data.description
EMAIL_MAX = 512  # customer_email: ours, as before (RFC 5321 allows 254)
URL_MAX = 5000  # success_url, cancel_url, return_url, product images
# https://docs.stripe.com/api/metadata: 50 keys, keys up to 40 characters without square
# brackets, values up to 500 characters.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
# Repeated fields (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items):
# 100 lines in PAYMENT mode; 20 recurring and 20 one-time lines in SUBSCRIPTION mode.
PAYMENT_LINE_ITEMS_MAX = 100
SUBSCRIPTION_LINE_ITEMS_MAX = 20  # each of recurring and one-time
IMAGES_MAX = 8  # https://docs.stripe.com/api/products/create#create_product-images
# https://docs.stripe.com/payments/checkout/use-manual-tax-rates
TAX_RATES_MAX = 5
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-shipping_options
SHIPPING_OPTIONS_MAX = 5
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-discounts
DISCOUNTS_MAX = 1
# Ours: Stripe's payment method types (55 in stripe-python 16.1.0) and shipping countries (238)
# are enumerations, so a longer list can only repeat or invent entries.
PAYMENT_METHOD_TYPES_MAX = 100
PAYMENT_METHOD_TYPE_MAX = 50  # Stripe's longest, afterpay_clearpay, has 17 characters
COUNTRIES_MAX = 250
# Numbers. At most eight digits in the currency's minor unit:
# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
UNIT_AMOUNT_MAX = 99_999_999
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items-adjustable_quantity
QUANTITY_MAX = 999_999
# https://docs.stripe.com/billing/subscriptions/trials
TRIAL_DAYS_MAX = 730
# Ours: Stripe documents only a minimum of 1 for a delivery estimate's value.
DELIVERY_VALUE_MAX = 1000
# A recurring price may bill at most every three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
# What Checkout collects and does around the payment (SessionCreateParams in stripe-python
# 16.1.0, and the `maxLength`s of Stripe's OpenAPI description):
# https://docs.stripe.com/payments/checkout/custom-fields: 3 fields; a key of 200 letters and
# digits, a label of 100 characters; entries and prefilled values of 255 characters; a dropdown
# of 200 options, each label and value of 100 characters.
CUSTOM_FIELDS_MAX = 3
CUSTOM_FIELD_KEY_MAX = 200
CUSTOM_FIELD_LABEL_MAX = 100
CUSTOM_FIELD_LENGTH_MAX = 255
DROPDOWN_OPTIONS_MAX = 200
DROPDOWN_OPTION_MAX = 100
CUSTOM_TEXT_MAX = 1200  # custom_text.*.message
# https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-invoice_creation
INVOICE_CUSTOM_FIELDS_MAX = 4
INVOICE_CUSTOM_FIELD_NAME_MAX = 40
INVOICE_CUSTOM_FIELD_VALUE_MAX = 140
INVOICE_DESCRIPTION_MAX = 1500
INVOICE_FOOTER_MAX = 5000
ACCOUNT_TAX_IDS_MAX = 25  # ours: an account holds a few tax ids
PAYMENT_DESCRIPTION_MAX = 1000  # payment_intent_data.description
# The prefix and the suffix make at most 22 characters; the suffix needs a letter and none of
# < > \ ' " *: https://docs.stripe.com/get-started/account/statement-descriptors
STATEMENT_DESCRIPTOR_SUFFIX_MAX = 22
# subscription_data.trial_end: "at least 48 hours in the future" (SessionCreateParams), and a
# trial lasts at most TRIAL_DAYS_MAX days (https://docs.stripe.com/billing/subscriptions/trials).
MIN_TRIAL_END = timedelta(hours=48)
# Ours: an error names at most this many fields, and at most this many bytes of them, so that
# it fits in gRPC's trailing metadata (8 KiB by default) whatever the request held.
VIOLATIONS_MAX = 10
VIOLATIONS_MAX_BYTES = 1024
# fullmatch with ASCII classes: `$` would accept a trailing newline, `\d` any Unicode digit.
_CURRENCY = re.compile(r"[a-z]{3}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_TAX_CODE = re.compile(r"txcd_[0-9]{8}")
_PAYMENT_METHOD_TYPE = re.compile(r"[a-z][a-z_]*")
_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_=-]+")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_LETTER = re.compile(r"[A-Za-z]")
_DESCRIPTOR_FORBIDDEN = frozenset("<>\\'\"*")
# Control characters other than tab, line feed and carriage return; and surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN_KEY_MAX = 64


class Problems:
    """Collects the violations, so that the caller learns them at once: the first
    VIOLATIONS_MAX of them, within VIOLATIONS_MAX_BYTES."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self._bytes = 0

    def add(self, field: str, description: str) -> None:
        size = len(field.encode()) + len(description.encode())
        if len(self.violations) >= VIOLATIONS_MAX or self._bytes + size > VIOLATIONS_MAX_BYTES:
            return
        self._bytes += size
        self.violations.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidRequest(self.violations)

    def identifier(self, field: str, value: str, maximum: int) -> bool:
        """An optional id, key or token: at most `maximum` printable characters."""
        if len(value) > maximum:
            self.add(field, f"at most {maximum} characters")
            return False
        if not value.isprintable():
            self.add(field, "only printable characters (no control or format characters)")
            return False
        return True

    def text(self, field: str, value: str, maximum: int) -> bool:
        """Optional free text: at most `maximum` characters, no control characters but tabs
        and line breaks."""
        if len(value) > maximum:
            self.add(field, f"at most {maximum} characters")
            return False
        if _CONTROL.search(value):
            self.add(field, "no control characters (tabs and line breaks are allowed)")
            return False
        return True


def validate(cmd: CreateSessionCommand, now: datetime) -> None:
    problems = Problems()
    mode = cmd.mode or Mode.PAYMENT
    ui_mode = cmd.ui_mode or UiMode.HOSTED_PAGE
    _identity(cmd, problems)
    _currency(cmd, mode, problems)
    _line_items(cmd, mode, problems)
    _charge_limits(cmd, mode, problems)
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
        problems.text(
            "subscription_data.description",
            cmd.subscription_data.description,
            SUBSCRIPTION_DESCRIPTION_MAX,
        )
        _metadata("subscription_data.metadata", cmd.subscription_data.metadata, problems)
    _what_checkout_collects(cmd, mode, ui_mode, now, problems)
    problems.raise_if_any()


def validate_lookup(
    *, session_id: str = "", order_id: str = "", caller: str = "", page_token: str = ""
) -> None:
    """The strings of GetSession, ExpireSession, WatchSession and ListSessions requests, named
    as in those messages; whether one of session_id or order_id is given is the use case's to
    judge. Checked before any lookup, so that nothing a caller sends reaches Postgres unbounded
    or with a character it cannot store."""
    problems = Problems()
    problems.identifier("session_id", session_id, SESSION_ID_MAX)
    _order_id(order_id, problems)
    problems.identifier("caller", caller, CALLER_MAX)
    if len(page_token) > PAGE_TOKEN_MAX:
        problems.add("page_token", f"at most {PAGE_TOKEN_MAX} characters")
    elif page_token and not _PAGE_TOKEN.fullmatch(page_token):
        problems.add("page_token", "not a token this service issued")
    problems.raise_if_any()


def is_identifier(value: object, maximum: int) -> bool:
    """Whether `value` is a non-empty string of at most `maximum` printable characters: what
    the rules above ask of an id (also of ids in a Stripe event, see service/edge/http.py)."""
    return isinstance(value, str) and 0 < len(value) <= maximum and value.isprintable()


def _order_id(order_id: str, problems: Problems) -> None:
    if len(order_id) > ORDER_ID_MAX:
        problems.add("order_id", f"at most {ORDER_ID_MAX} characters")
    elif not order_id.isprintable():
        problems.add("order_id", "only printable characters (no control or format characters)")


def _identity(cmd: CreateSessionCommand, problems: Problems) -> None:
    order_id = cmd.order_id.strip()
    if not order_id:
        problems.add("order_id", "required")
    else:
        # Surrounding blanks are dropped (create_plan.py); what is left is the order id.
        _order_id(order_id, problems)
    problems.identifier("request_id", cmd.request_id, REQUEST_ID_MAX)


def _currency(cmd: CreateSessionCommand, mode: Mode, problems: Problems) -> None:
    currency = cmd.currency.strip().lower()
    if currency and not _CURRENCY.fullmatch(currency):
        problems.add("currency", "a three-letter ISO-4217 code such as usd")
    elif currency and currency not in CURRENCIES:
        problems.add("currency", "not one of Stripe's presentment currencies")
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
    if mode is Mode.SUBSCRIPTION and len(items) > 2 * SUBSCRIPTION_LINE_ITEMS_MAX:
        # Lines priced by id are recurring or one-time too, so this bounds them all.
        problems.add(
            "line_items",
            f"at most {2 * SUBSCRIPTION_LINE_ITEMS_MAX} in SUBSCRIPTION mode "
            f"({SUBSCRIPTION_LINE_ITEMS_MAX} recurring and {SUBSCRIPTION_LINE_ITEMS_MAX} "
            "one-time)",
        )
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


def _charge_limits(cmd: CreateSessionCommand, mode: Mode, problems: Problems) -> None:
    """Stripe's minimum and maximum charge, and the charge step, applied to the total due when
    it is known before asking Stripe: a payment of inline prices alone (an existing price's
    amount is Stripe's), without discounts or promotion codes (a coupon's worth is Stripe's),
    at quantities the customer cannot change. Shipping and tax only add to the total: over the
    maximum before them is over it after; the minimum and the step hold only without them."""
    currency = cmd.currency.strip().lower()
    items = cmd.line_items
    if (
        mode is not Mode.PAYMENT
        or currency not in CURRENCIES
        or not items
        or cmd.discounts
        or cmd.allow_promotion_codes
    ):
        return
    total = 0
    for item in items:
        data = item.price_data
        if (
            data is None
            or (item.adjustable_quantity is not None and item.adjustable_quantity.enabled)
            or not 1 <= item.quantity <= QUANTITY_MAX
            or not 0 <= data.unit_amount <= UNIT_AMOUNT_MAX
        ):
            return  # Stripe's to judge, or refused above already
        total += data.unit_amount * item.quantity
    maximum = MAXIMUM_CHARGE.get(currency, DEFAULT_MAXIMUM_CHARGE)
    if total > maximum:
        problems.add(
            "line_items",
            f"the total due, {_shown_amount(total, currency)}, is over Stripe's maximum "
            f"charge of {_shown_amount(maximum, currency)}",
        )
        return
    adds = bool(cmd.shipping_options or cmd.automatic_tax or any(li.tax_rate_ids for li in items))
    if adds or total == 0:
        return  # nothing due is no charge: Stripe allows a free session
    minimum = MINIMUM_CHARGE.get(currency, 0)
    step = CHARGE_STEP.get(currency, 1)
    if total < minimum:
        problems.add(
            "line_items",
            f"the total due, {_shown_amount(total, currency)}, is under Stripe's minimum "
            f"charge of {_shown_amount(minimum, currency)}",
        )
    elif total % step:
        problems.add(
            "line_items",
            f"the total due in {currency.upper()} must be a multiple of {step} in Stripe's "
            f"units (it is {total})",
        )


def _shown_amount(amount: int, currency: str) -> str:
    """`0.49 USD`, `49 JPY`, `1.005 KWD`: an amount in the API's units, in the major unit."""
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return f"{Decimal(amount).scaleb(-places):,.{places}f} {currency.upper()}"


def _line_item(
    path: str, item: LineItemRequest, mode: Mode, automatic_tax: bool, problems: Problems
) -> None:
    if not 1 <= item.quantity <= QUANTITY_MAX:
        problems.add(f"{path}.quantity", f"must be between 1 and {QUANTITY_MAX}")
    if item.price_data is not None:
        _price_data(f"{path}.price_data", item.price_data, mode, problems)
    elif not item.price_id.strip():
        problems.add(f"{path}.price_id", "one of price_id or price_data is required")
    else:
        problems.identifier(f"{path}.price_id", item.price_id, STRIPE_ID_MAX)
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
        else:
            problems.identifier(f"{path}.tax_rate_ids[{j}]", rate, STRIPE_ID_MAX)
    _metadata(f"{path}.metadata", item.metadata, problems, adds_service_keys=False)


def _price_data(path: str, data: PriceData, mode: Mode, problems: Problems) -> None:
    if not 0 <= data.unit_amount <= UNIT_AMOUNT_MAX:
        problems.add(f"{path}.unit_amount", f"must be between 0 and {UNIT_AMOUNT_MAX}")
    if data.product_id:
        _existing_product(path, data, problems)
    elif not data.product_name:
        problems.add(path, "one of product_name or product_id is required")
    elif not data.product_name.strip():
        problems.add(f"{path}.product_name", "required")
    else:
        problems.text(f"{path}.product_name", data.product_name, TEXT_MAX)
    _metadata(f"{path}.product_metadata", data.product_metadata, problems, adds_service_keys=False)
    problems.text(f"{path}.product_description", data.product_description, PRODUCT_DESCRIPTION_MAX)
    if len(data.product_images) > IMAGES_MAX:
        problems.add(f"{path}.product_images", f"at most {IMAGES_MAX}")
    for j, image in enumerate(data.product_images):
        if not _is_web_url(image):
            problems.add(f"{path}.product_images[{j}]", _URL_RULE)
    if data.tax_code and not _TAX_CODE.fullmatch(data.tax_code):
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


def _existing_product(path: str, data: PriceData, problems: Problems) -> None:
    """A price of an existing Product: Stripe takes `product` or `product_data`, never both
    (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-line_items-price_data-product)."""
    if not data.product_id.strip():
        problems.add(f"{path}.product_id", "must not be blank")
    else:
        problems.identifier(f"{path}.product_id", data.product_id, STRIPE_ID_MAX)
    described = {
        "product_name": data.product_name,
        "product_description": data.product_description,
        "product_images": data.product_images,
        "tax_code": data.tax_code,
        "product_metadata": data.product_metadata,
    }
    given = [name for name, value in described.items() if value]
    if given:
        problems.add(f"{path}.product_id", f"not with {', '.join(given)}: the product has its own")


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
    elif ui_mode is UiMode.ELEMENTS and not cmd.return_url and _may_redirect(cmd):
        # The customer comes back there from a redirect-based method. Without
        # allowed_payment_method_types the account's Dashboard settings decide which methods
        # are offered, and they may include such a method: the strict reading, as Stripe's docs
        # leave it open (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-return_url).
        problems.add(
            "return_url",
            "required with ui_mode ELEMENTS unless allowed_payment_method_types lists only "
            "methods that never leave the page (card, link, bank debits…)",
        )
    for name in allowed:
        value: str = getattr(cmd, name)
        if value and not _is_web_url(value):
            problems.add(name, _URL_RULE)


def _may_redirect(cmd: CreateSessionCommand) -> bool:
    kinds = cmd.allowed_payment_method_types
    return not kinds or any(kind in REDIRECT_BASED_METHODS for kind in kinds)


# Parameters that Stripe accepts only in some modes (SessionCreateParams docstrings).
_MODES_FOR = {
    "customer_creation": (Mode.PAYMENT, Mode.SETUP),
    "phone_number_collection": (Mode.PAYMENT, Mode.SUBSCRIPTION),
    "subscription_data": (Mode.SUBSCRIPTION,),
    "payment_method_collection": (Mode.SUBSCRIPTION,),
    # https://docs.stripe.com/payments/checkout/receipts: invoices for one-time payments.
    "invoice_creation": (Mode.PAYMENT,),
    "payment_intent_data": (Mode.PAYMENT,),
    "saved_payment_method_options": (Mode.PAYMENT, Mode.SUBSCRIPTION),
    "submit_type": (Mode.PAYMENT, Mode.SUBSCRIPTION),
    # A PaymentIntent's: subscriptions and setups have none to capture.
    "capture_method": (Mode.PAYMENT,),
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
    problems.identifier("customer_id", cmd.customer_id, STRIPE_ID_MAX)
    if cmd.customer_id and cmd.customer_email:
        problems.add("customer_email", "not allowed with customer_id")
    email = cmd.customer_email
    if email and (len(email) > EMAIL_MAX or not email.isprintable() or not _EMAIL.fullmatch(email)):
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
    _payment_method_types(
        "allowed_payment_method_types", cmd.allowed_payment_method_types, problems
    )


def _payment_method_types(path: str, kinds: tuple[str, ...], problems: Problems) -> None:
    if len(kinds) > PAYMENT_METHOD_TYPES_MAX:
        problems.add(path, f"at most {PAYMENT_METHOD_TYPES_MAX}")
    seen = set()
    for i, kind in enumerate(kinds):
        if (
            len(kind) > PAYMENT_METHOD_TYPE_MAX
            or not _PAYMENT_METHOD_TYPE.fullmatch(kind)
            or kind in seen
        ):
            problems.add(f"{path}[{i}]", "a distinct Stripe type like card")
        seen.add(kind)


def _discounts(cmd: CreateSessionCommand, problems: Problems) -> None:
    if cmd.discounts and cmd.allow_promotion_codes:
        problems.add("discounts", "not allowed with allow_promotion_codes")
    if len(cmd.discounts) > DISCOUNTS_MAX:
        problems.add("discounts", "at most one")
    for i, discount in enumerate(cmd.discounts):
        if not discount.coupon.strip() and not discount.promotion_code.strip():
            problems.add(f"discounts[{i}]", "one of coupon or promotion_code is required")
        problems.identifier(f"discounts[{i}].coupon", discount.coupon, STRIPE_ID_MAX)
        problems.identifier(
            f"discounts[{i}].promotion_code", discount.promotion_code, STRIPE_ID_MAX
        )


def _shipping(cmd: CreateSessionCommand, problems: Problems) -> None:
    countries = cmd.shipping_countries
    if countries is not None:
        field = "shipping_address_collection.allowed_countries"
        if not countries:
            problems.add(field, "at least one country")
        if len(countries) > COUNTRIES_MAX:
            problems.add(field, f"at most {COUNTRIES_MAX}")
        for i, country in enumerate(countries):
            if not _COUNTRY.fullmatch(country):
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
        else:
            problems.identifier(f"{path}.shipping_rate_id", option.shipping_rate_id, STRIPE_ID_MAX)
        return
    path = f"{path}.shipping_rate_data"
    if not data.display_name.strip():
        problems.add(f"{path}.display_name", "required")
    else:
        problems.text(f"{path}.display_name", data.display_name, SHIPPING_DISPLAY_NAME_MAX)
    if not 0 <= data.amount <= UNIT_AMOUNT_MAX:
        problems.add(f"{path}.amount", f"must be between 0 and {UNIT_AMOUNT_MAX}")
    if data.tax_code and not _TAX_CODE.fullmatch(data.tax_code):
        problems.add(f"{path}.tax_code", "a Stripe tax code such as txcd_92010001")
    for name, bound in (("minimum", data.minimum_delivery), ("maximum", data.maximum_delivery)):
        if bound is None:
            continue
        if not bound.unit:
            problems.add(f"{path}.delivery_estimate.{name}.unit", "required")
        if not 1 <= bound.value <= DELIVERY_VALUE_MAX:
            problems.add(f"{path}.delivery_estimate.{name}.value", f"1 to {DELIVERY_VALUE_MAX}")
    _metadata(f"{path}.metadata", data.metadata, problems, adds_service_keys=False)


# What the service sets each of its own metadata keys to.
_RESERVED = {ORDER_ID_KEY: "the order id", CALLER_KEY: "the caller's name"}


def _metadata(
    path: str, metadata: Mapping[str, str], problems: Problems, *, adds_service_keys: bool = True
) -> None:
    """Stripe's metadata rules; `adds_service_keys`: the service adds the order id and the
    caller to it (model.service_metadata), so those keys are taken and count."""
    reserved = SERVICE_METADATA_KEYS if adds_service_keys else ()
    for key in reserved:
        if key in metadata:
            problems.add(f"{path}[{key}]", f"reserved: the service sets it to {_RESERVED[key]}")
    if reserved and len(metadata) + len(reserved) > METADATA_MAX_KEYS:
        problems.add(
            path,
            f"at most {METADATA_MAX_KEYS - len(reserved)} keys: Stripe allows "
            f"{METADATA_MAX_KEYS} and the service adds {' and '.join(reserved)}",
        )
    elif len(metadata) > METADATA_MAX_KEYS:
        problems.add(path, f"at most {METADATA_MAX_KEYS} keys")
    for key, value in metadata.items():
        field = f"{path}[{_shown(key)}]"
        if (
            not key
            or len(key) > METADATA_KEY_MAX
            or "[" in key
            or "]" in key
            or not key.isprintable()
        ):
            problems.add(
                field,
                f"keys are 1 to {METADATA_KEY_MAX} printable characters, without [ or ]",
            )
        if len(value) > METADATA_VALUE_MAX:
            problems.add(field, f"values are at most {METADATA_VALUE_MAX} characters")
        elif _CONTROL.search(value):
            problems.add(field, "values hold no control characters but tabs and line breaks")


def _shown(key: str) -> str:
    """A map key as it can be named in an error: escaped when not printable, shortened when
    longer than any valid key could be."""
    shown = key if key.isprintable() else key.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= _SHOWN_KEY_MAX else f"{shown[:_SHOWN_KEY_MAX]}..."


_URL_RULE = f"must be an absolute http(s) URL of at most {URL_MAX} printable characters"


def _is_web_url(value: str) -> bool:
    # Of the whitespace, only the ASCII space is printable: the other characters str.isspace
    # knows are control characters or separators, which isprintable refuses.
    if len(value) > URL_MAX or not value.isprintable() or " " in value:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        # urlsplit refuses some malformed authorities, e.g. an unclosed `[` of an IPv6 host.
        return False


# What Checkout collects and does around the payment: custom fields and text, consent,
# invoices, recovery, the PaymentIntent's settings, saved payment methods, names, 3D Secure and
# trials (https://docs.stripe.com/api/checkout/sessions/create). Left to Stripe, whose refusal
# is mapped back onto the field (create_plan.py): whether the account has a terms of service URL
# (`consent_collection.terms_of_service`), whether a product exists (`price_data.product_id`),
# and what needs a Customer or an address that only Stripe can judge
# (`saved_payment_method_options`, `custom_text.shipping_address`).


def _what_checkout_collects(
    cmd: CreateSessionCommand, mode: Mode, ui_mode: UiMode, now: datetime, problems: Problems
) -> None:
    elements = ui_mode is UiMode.ELEMENTS
    for name, given in (
        ("custom_fields", bool(cmd.custom_fields)),
        ("custom_text", cmd.custom_text is not None),
        ("after_expiration", cmd.recovery is not None),
        ("submit_type", cmd.submit_type is not None),
    ):
        if given and elements:
            problems.add(name, "not allowed with ui_mode ELEMENTS")
    if cmd.recovery is not None and ui_mode is UiMode.EMBEDDED_PAGE:
        # The recovery URL opens the copy on a Stripe-hosted page:
        # https://docs.stripe.com/payments/checkout/abandoned-carts
        problems.add("after_expiration.recovery", "only with ui_mode HOSTED_PAGE")
    _custom_fields(cmd.custom_fields, mode, problems)
    _custom_text(cmd, problems)
    if cmd.invoice_creation is not None and cmd.invoice_creation.data is not None:
        _invoice_data("invoice_creation.invoice_data", cmd.invoice_creation.data, problems)
    if cmd.payment_intent_data is not None:
        _payment_intent_data(cmd.payment_intent_data, problems)
    _saved_payment_methods(cmd, problems)
    _payment_method_types(
        "excluded_payment_method_types", cmd.excluded_payment_method_types, problems
    )
    _trial(cmd, now, problems)


def _custom_fields(fields: tuple[CustomField, ...], mode: Mode, problems: Problems) -> None:
    if fields and mode is Mode.SETUP:
        problems.add("custom_fields", "not allowed in SETUP mode")
    if len(fields) > CUSTOM_FIELDS_MAX:
        problems.add("custom_fields", f"at most {CUSTOM_FIELDS_MAX}")
    keys: set[str] = set()
    for i, custom in enumerate(fields):
        path = f"custom_fields[{i}]"
        if len(custom.key) > CUSTOM_FIELD_KEY_MAX or not _ALPHANUMERIC.fullmatch(custom.key):
            problems.add(f"{path}.key", f"1 to {CUSTOM_FIELD_KEY_MAX} letters and digits")
        elif custom.key in keys:
            problems.add(f"{path}.key", "already the key of another custom field")
        keys.add(custom.key)
        if not custom.label.strip():
            problems.add(f"{path}.label", "required")
        else:
            problems.text(f"{path}.label", custom.label, CUSTOM_FIELD_LABEL_MAX)
        if not custom.type:
            problems.add(f"{path}.type", "required: TEXT, NUMERIC or DROPDOWN")
        for kind in ("text", "numeric", "dropdown"):
            if getattr(custom, kind) is not None and custom.type and kind != custom.type:
                problems.add(f"{path}.{kind}", f"only for type {kind.upper()}")
        if custom.type == "dropdown":
            _dropdown(path, custom, problems)
        settings = custom.text if custom.type == "text" else custom.numeric
        if custom.type in ("text", "numeric") and settings is not None:
            _text_settings(f"{path}.{custom.type}", settings, custom.type == "numeric", problems)


def _dropdown(path: str, custom: CustomField, problems: Problems) -> None:
    options = custom.dropdown.options if custom.dropdown is not None else ()
    if not options:
        problems.add(f"{path}.dropdown.options", "at least one option")
    if len(options) > DROPDOWN_OPTIONS_MAX:
        problems.add(f"{path}.dropdown.options", f"at most {DROPDOWN_OPTIONS_MAX}")
    values: set[str] = set()
    for j, option in enumerate(options):
        where = f"{path}.dropdown.options[{j}]"
        if not option.label.strip():
            problems.add(f"{where}.label", "required")
        else:
            problems.text(f"{where}.label", option.label, DROPDOWN_OPTION_MAX)
        if len(option.value) > DROPDOWN_OPTION_MAX or not _ALPHANUMERIC.fullmatch(option.value):
            problems.add(f"{where}.value", f"1 to {DROPDOWN_OPTION_MAX} letters and digits")
        elif option.value in values:
            problems.add(f"{where}.value", "already the value of another option")
        values.add(option.value)
    default = custom.dropdown.default_value if custom.dropdown is not None else ""
    if default and default not in values:
        problems.add(f"{path}.dropdown.default_value", "must be the value of one of the options")


def _text_settings(path: str, settings: TextSettings, numeric: bool, problems: Problems) -> None:
    low, high = settings.minimum_length, settings.maximum_length
    if not 0 <= low <= CUSTOM_FIELD_LENGTH_MAX:
        problems.add(f"{path}.minimum_length", f"0 to {CUSTOM_FIELD_LENGTH_MAX}")
    if not 0 <= high <= CUSTOM_FIELD_LENGTH_MAX:
        problems.add(f"{path}.maximum_length", f"1 to {CUSTOM_FIELD_LENGTH_MAX}")
    elif high and low > high:
        problems.add(f"{path}.minimum_length", "must not exceed maximum_length")
    default = settings.default_value
    if (
        numeric
        and default
        and (len(default) > CUSTOM_FIELD_LENGTH_MAX or not _DIGITS.fullmatch(default))
    ):
        problems.add(f"{path}.default_value", f"at most {CUSTOM_FIELD_LENGTH_MAX} digits")
    elif not numeric:
        problems.text(f"{path}.default_value", default, CUSTOM_FIELD_LENGTH_MAX)


def _custom_text(cmd: CreateSessionCommand, problems: Problems) -> None:
    text = cmd.custom_text
    if text is None:
        return
    for name in ("submit", "after_submit", "shipping_address", "terms_of_service_acceptance"):
        message: str = getattr(text, name)
        if message and not message.strip():
            problems.add(f"custom_text.{name}", "must not be blank (empty: no text)")
        else:
            problems.text(f"custom_text.{name}", message, CUSTOM_TEXT_MAX)
    consent = cmd.consent_collection
    if text.terms_of_service_acceptance and (
        consent is None or consent.terms_of_service != "required"
    ):
        # It replaces the text beside the terms checkbox, which only a required consent shows.
        problems.add(
            "custom_text.terms_of_service_acceptance",
            "needs consent_collection.terms_of_service REQUIRED",
        )


def _invoice_data(path: str, data: InvoiceData, problems: Problems) -> None:
    problems.text(f"{path}.description", data.description, INVOICE_DESCRIPTION_MAX)
    problems.text(f"{path}.footer", data.footer, INVOICE_FOOTER_MAX)
    if len(data.custom_fields) > INVOICE_CUSTOM_FIELDS_MAX:
        problems.add(f"{path}.custom_fields", f"at most {INVOICE_CUSTOM_FIELDS_MAX}")
    for i, (name, value) in enumerate(data.custom_fields):
        where = f"{path}.custom_fields[{i}]"
        for part, text, maximum in (
            ("name", name, INVOICE_CUSTOM_FIELD_NAME_MAX),
            ("value", value, INVOICE_CUSTOM_FIELD_VALUE_MAX),
        ):
            if not text.strip():
                problems.add(f"{where}.{part}", "required")
            else:
                problems.text(f"{where}.{part}", text, maximum)
    _metadata(f"{path}.metadata", data.metadata, problems)
    if len(data.account_tax_ids) > ACCOUNT_TAX_IDS_MAX:
        problems.add(f"{path}.account_tax_ids", f"at most {ACCOUNT_TAX_IDS_MAX}")
    for i, tax_id in enumerate(data.account_tax_ids):
        if not tax_id.strip():
            problems.add(f"{path}.account_tax_ids[{i}]", "must not be empty")
        else:
            problems.identifier(f"{path}.account_tax_ids[{i}]", tax_id, STRIPE_ID_MAX)


def _payment_intent_data(data: PaymentIntentData, problems: Problems) -> None:
    path = "payment_intent_data"
    problems.text(f"{path}.description", data.description, PAYMENT_DESCRIPTION_MAX)
    suffix = data.statement_descriptor_suffix
    if suffix and (
        len(suffix) > STATEMENT_DESCRIPTOR_SUFFIX_MAX
        or not suffix.isprintable()
        or not _LETTER.search(suffix)
        or _DESCRIPTOR_FORBIDDEN.intersection(suffix)
    ):
        problems.add(
            f"{path}.statement_descriptor_suffix",
            f"at most {STATEMENT_DESCRIPTOR_SUFFIX_MAX} printable characters with a letter and "
            "none of < > \\ ' \" *",
        )
    email = data.receipt_email
    if email and (len(email) > EMAIL_MAX or not email.isprintable() or not _EMAIL.fullmatch(email)):
        problems.add(f"{path}.receipt_email", "not an email address")


def _saved_payment_methods(cmd: CreateSessionCommand, problems: Problems) -> None:
    options = cmd.saved_payment_method_options
    if options is None:
        return
    path = "saved_payment_method_options"
    seen: set[str] = set()
    for i, kind in enumerate(options.allow_redisplay_filters):
        if not kind or kind in seen:
            problems.add(
                f"{path}.allow_redisplay_filters[{i}]",
                "a distinct one of ALWAYS, LIMITED, NOT_RECORDED",
            )
        seen.add(kind)
    intent = cmd.payment_intent_data
    if options.payment_method_save and intent is not None and intent.setup_future_usage:
        # One saves the card when the customer asks, the other always: Stripe takes one.
        problems.add(
            f"{path}.payment_method_save", "not with payment_intent_data.setup_future_usage"
        )


def _trial(cmd: CreateSessionCommand, now: datetime, problems: Problems) -> None:
    data = cmd.subscription_data
    if data is None:
        return
    if data.trial_end is not None:
        if data.trial_period_days:
            problems.add("subscription_data.trial_end", "not with trial_period_days")
        elif not now + MIN_TRIAL_END <= data.trial_end <= now + timedelta(days=TRIAL_DAYS_MAX):
            problems.add(
                "subscription_data.trial_end",
                f"must be between 48 hours and {TRIAL_DAYS_MAX} days from now",
            )
    if data.trial_missing_payment_method == "":
        problems.add(
            "subscription_data.trial_settings.missing_payment_method",
            "required: CANCEL, CREATE_INVOICE or PAUSE",
        )
