"""Turns a CreateSession request into the exact Stripe parameters, or refuses it.

Everything Stripe would refuse and that can be known without asking Stripe is refused here,
before anything is written or sent (DESIGN §2.5). The limits are Stripe's:
https://docs.stripe.com/api/checkout/sessions/create and ../shared/reference/stripe-checkout.md §2.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.model import CreateSessionCommand, LineItemRequest, Mode, UiMode

MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(hours=24)
ORDER_ID_MAX = 200  # Stripe's limit on client_reference_id, where the order id goes
REQUEST_ID_MAX = 255  # Stripe's limit on an idempotency key
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
PAYMENT_LINE_ITEMS_MAX = 100
UNIT_AMOUNT_MAX = 99_999_999  # Stripe accepts at most 8 digits
QUANTITY_MAX = 999_999
URL_MAX = 5000
ORDER_ID_KEY = "order_id"
"""Metadata key the service adds to the session and to the PaymentIntent, Subscription or
SetupIntent, so that anything seen in the Stripe dashboard leads back to the order."""

_CURRENCY = re.compile(r"^[a-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class CreatePlan:
    order_id: str
    fingerprint: str
    """Identifies the request's payload: equal fingerprints ask for the same session."""
    stripe_params: dict[str, Any]
    expires_at: datetime


def plan_create(cmd: CreateSessionCommand, now: datetime) -> CreatePlan:
    problems = _Problems()
    mode = cmd.mode or Mode.PAYMENT
    ui_mode = cmd.ui_mode or UiMode.HOSTED_PAGE
    order_id = cmd.order_id.strip()
    if not order_id:
        problems.add("order_id", "required")
    elif len(order_id) > ORDER_ID_MAX:
        problems.add("order_id", f"at most {ORDER_ID_MAX} characters")
    if len(cmd.request_id) > REQUEST_ID_MAX:
        problems.add("request_id", f"at most {REQUEST_ID_MAX} characters")

    currency = cmd.currency.strip().lower()
    if currency and not _CURRENCY.match(currency):
        problems.add("currency", "a three-letter ISO-4217 code such as usd")
    needs_currency = mode is Mode.SETUP or any(li.price_data for li in cmd.line_items)
    if not currency and needs_currency:
        reason = "in SETUP mode" if mode is Mode.SETUP else "with price_data line items"
        problems.add("currency", f"required {reason}")

    line_items = _line_items(cmd.line_items, mode, currency, problems)
    _urls(cmd, ui_mode, problems)
    if cmd.customer_email and (
        len(cmd.customer_email) > 512 or not _EMAIL.match(cmd.customer_email)
    ):
        problems.add("customer_email", "not an email address")
    expires_at = _expiry(cmd.expire_time, now, problems)
    metadata = _metadata(cmd.metadata, order_id, problems)
    problems.raise_if_any()

    params: dict[str, Any] = {
        "mode": mode.value,
        "ui_mode": ui_mode.value,
        "client_reference_id": order_id,
        "metadata": metadata,
        "expires_at": int(expires_at.timestamp()),
        # Line items are only returned when expanded; the ledger keeps them with the session.
        "expand": ["line_items"],
    }
    if line_items:
        params["line_items"] = line_items
    if currency:
        params["currency"] = currency
    for name in ("success_url", "cancel_url", "return_url", "customer_email"):
        if value := getattr(cmd, name):
            params[name] = value
    # The order id also goes on the object that moves the money, which Stripe does not copy
    # from the session: stripe-checkout.md §2.9.
    downstream = {
        Mode.PAYMENT: "payment_intent_data",
        Mode.SUBSCRIPTION: "subscription_data",
        Mode.SETUP: "setup_intent_data",
    }[mode]
    params[downstream] = {"metadata": {ORDER_ID_KEY: order_id}}

    return CreatePlan(
        order_id=order_id,
        fingerprint=fingerprint(cmd),
        stripe_params=params,
        expires_at=expires_at,
    )


def fingerprint(cmd: CreateSessionCommand) -> str:
    """A digest of everything in the request that shapes the session. `request_id` is left out
    (it names the call, not the cart), and so is the time of the call: the same cart sent twice
    is the same cart, even though a default expiry would differ."""
    payload = {
        "order_id": cmd.order_id.strip(),
        "mode": (cmd.mode or Mode.PAYMENT).value,
        "ui_mode": (cmd.ui_mode or UiMode.HOSTED_PAGE).value,
        "currency": cmd.currency.strip().lower(),
        "line_items": [
            {
                "price_id": li.price_id,
                "price_data": None
                if li.price_data is None
                else [
                    li.price_data.unit_amount,
                    li.price_data.product_name,
                    li.price_data.product_description,
                ],
                "quantity": li.quantity,
            }
            for li in cmd.line_items
        ],
        "success_url": cmd.success_url,
        "cancel_url": cmd.cancel_url,
        "return_url": cmd.return_url,
        "customer_email": cmd.customer_email,
        "expire_time": None if cmd.expire_time is None else cmd.expire_time.isoformat(),
        "metadata": dict(sorted(cmd.metadata.items())),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def field_for_stripe_param(param: str | None) -> str:
    """The request field that a Stripe `param` (as in its error JSON) came from:
    `line_items[1][price_data][product_data][name]` → `line_items[1].price_data.product_name`.
    """
    if not param:
        return ""
    parts = re.findall(r"[^\[\]]+", param)
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    for stripe_name, ours in _PARAM_RENAMES:
        path = re.sub(stripe_name, ours, path)
    return path


_PARAM_RENAMES = (
    (r"\.price$", ".price_id"),
    (r"\.price_data\.product_data\.name$", ".price_data.product_name"),
    (r"\.price_data\.product_data\.description$", ".price_data.product_description"),
    (r"\.price_data\.product_data$", ".price_data.product_name"),
    (r"^expires_at$", "expire_time"),
    (r"^client_reference_id$", "order_id"),
    (r"^metadata\..*$", "metadata"),
)


class _Problems:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidRequest(self.violations)


def _line_items(
    items: tuple[LineItemRequest, ...], mode: Mode, currency: str, problems: _Problems
) -> list[dict[str, Any]]:
    if mode is Mode.SETUP:
        if items:
            problems.add("line_items", "not allowed in SETUP mode")
        return []
    if not items:
        problems.add("line_items", f"at least one is required in {mode.name} mode")
    elif mode is Mode.PAYMENT and len(items) > PAYMENT_LINE_ITEMS_MAX:
        problems.add("line_items", f"at most {PAYMENT_LINE_ITEMS_MAX} in PAYMENT mode")
    params = []
    for i, item in enumerate(items):
        path = f"line_items[{i}]"
        if not 1 <= item.quantity <= QUANTITY_MAX:
            problems.add(f"{path}.quantity", f"must be between 1 and {QUANTITY_MAX}")
        line: dict[str, Any] = {"quantity": item.quantity}
        if item.price_data is not None:
            data = item.price_data
            if not 0 <= data.unit_amount <= UNIT_AMOUNT_MAX:
                problems.add(
                    f"{path}.price_data.unit_amount", f"must be between 0 and {UNIT_AMOUNT_MAX}"
                )
            if not data.product_name.strip():
                problems.add(f"{path}.price_data.product_name", "required")
            product: dict[str, Any] = {"name": data.product_name}
            if data.product_description:
                product["description"] = data.product_description
            line["price_data"] = {
                "currency": currency,
                "unit_amount": data.unit_amount,
                "product_data": product,
            }
        elif item.price_id.strip():
            line["price"] = item.price_id.strip()
        else:
            problems.add(f"{path}.price_id", "one of price_id or price_data is required")
        params.append(line)
    return params


def _urls(cmd: CreateSessionCommand, ui_mode: UiMode, problems: _Problems) -> None:
    # Stripe's rules per UI mode: stripe-checkout.md §2.2.
    allowed: tuple[str, ...]
    refused: tuple[str, ...]
    if ui_mode is UiMode.HOSTED_PAGE:
        allowed, refused = ("success_url", "cancel_url"), ("return_url",)
    else:
        allowed, refused = ("return_url",), ("success_url", "cancel_url")
    for name in refused:
        if getattr(cmd, name):
            problems.add(name, f"not allowed with ui_mode {ui_mode.name}")
    if ui_mode is UiMode.EMBEDDED_PAGE and not cmd.return_url:
        # The embedded form sends the customer there once paid (redirect_on_completion=always).
        problems.add("return_url", "required with ui_mode EMBEDDED_PAGE")
    for name in allowed:
        value: str = getattr(cmd, name)
        if value and not _is_web_url(value):
            problems.add(name, "must be an absolute http(s) URL")


def _is_web_url(value: str) -> bool:
    if len(value) > URL_MAX or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _expiry(expire_time: datetime | None, now: datetime, problems: _Problems) -> datetime:
    if expire_time is None:
        return now + MAX_EXPIRY
    if not now + MIN_EXPIRY <= expire_time <= now + MAX_EXPIRY:
        problems.add("expire_time", "must be between 30 minutes and 24 hours from now")
    return expire_time


def _metadata(metadata: Mapping[str, str], order_id: str, problems: _Problems) -> dict[str, str]:
    if ORDER_ID_KEY in metadata:
        problems.add(f"metadata[{ORDER_ID_KEY}]", "reserved: the service sets it to the order id")
    if len(metadata) + 1 > METADATA_MAX_KEYS:
        problems.add(
            "metadata",
            f"at most {METADATA_MAX_KEYS - 1} keys: Stripe allows {METADATA_MAX_KEYS} and the "
            f"service adds {ORDER_ID_KEY}",
        )
    for key, value in metadata.items():
        if not key or len(key) > METADATA_KEY_MAX or "[" in key or "]" in key:
            problems.add(
                f"metadata[{key}]", f"keys are 1 to {METADATA_KEY_MAX} characters, without [ or ]"
            )
        if len(value) > METADATA_VALUE_MAX:
            problems.add(f"metadata[{key}]", f"values are at most {METADATA_VALUE_MAX} characters")
    return {**metadata, ORDER_ID_KEY: order_id}
