"""What a caller asks for, as it sent it (unvalidated). Optional Stripe settings are None when
absent, so that "absent" (Stripe's default) and "explicitly off" stay distinct."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Mode(StrEnum):
    PAYMENT = "payment"
    SUBSCRIPTION = "subscription"
    SETUP = "setup"


class UiMode(StrEnum):
    HOSTED_PAGE = "hosted_page"
    EMBEDDED_PAGE = "embedded_page"
    ELEMENTS = "elements"


@dataclass(frozen=True, slots=True)
class Recurring:
    interval: str
    """`day`, `week`, `month` or `year`; empty when the caller gave none."""
    interval_count: int = 0


@dataclass(frozen=True, slots=True)
class PriceData:
    unit_amount: int
    product_name: str
    product_description: str = ""
    product_images: tuple[str, ...] = ()
    recurring: Recurring | None = None
    tax_behavior: str | None = None
    tax_code: str = ""


@dataclass(frozen=True, slots=True)
class AdjustableQuantity:
    enabled: bool
    minimum: int = 0
    maximum: int = 0
    """0: Stripe's default (99)."""


@dataclass(frozen=True, slots=True)
class LineItemRequest:
    quantity: int
    price_id: str = ""
    price_data: PriceData | None = None
    adjustable_quantity: AdjustableQuantity | None = None
    tax_rate_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Discount:
    coupon: str = ""
    promotion_code: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryBound:
    unit: str
    value: int


@dataclass(frozen=True, slots=True)
class ShippingRateData:
    display_name: str
    amount: int
    minimum_delivery: DeliveryBound | None = None
    maximum_delivery: DeliveryBound | None = None
    tax_behavior: str | None = None
    tax_code: str = ""


@dataclass(frozen=True, slots=True)
class ShippingOption:
    shipping_rate_id: str = ""
    shipping_rate_data: ShippingRateData | None = None


@dataclass(frozen=True, slots=True)
class TaxIdCollection:
    enabled: bool
    required: bool = False


@dataclass(frozen=True, slots=True)
class CustomerUpdate:
    address: bool = False
    name: bool = False
    shipping: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionData:
    trial_period_days: int = 0
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateSessionCommand:
    order_id: str
    request_id: str = ""
    mode: Mode | None = None
    ui_mode: UiMode | None = None
    currency: str = ""
    line_items: tuple[LineItemRequest, ...] = ()
    success_url: str = ""
    cancel_url: str = ""
    return_url: str = ""
    customer_email: str = ""
    expire_time: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    redirect_on_completion: str | None = None
    customer_id: str = ""
    customer_creation: str | None = None
    billing_address_collection: str | None = None
    phone_number_collection: bool | None = None
    locale: str = ""
    allowed_payment_method_types: tuple[str, ...] = ()
    automatic_tax: bool | None = None
    tax_id_collection: TaxIdCollection | None = None
    customer_update: CustomerUpdate | None = None
    discounts: tuple[Discount, ...] = ()
    allow_promotion_codes: bool = False
    shipping_countries: tuple[str, ...] | None = None
    """`shipping_address_collection.allowed_countries`; None when not collecting."""
    shipping_options: tuple[ShippingOption, ...] = ()
    subscription_data: SubscriptionData | None = None
    payment_method_collection: str | None = None
    adaptive_pricing: bool | None = None
    capture_method: str | None = None
    """`automatic` or `manual` (`payment_intent_data.capture_method`); None: Stripe's default."""
