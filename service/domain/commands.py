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
    product_id: str = ""
    """An existing Product the price belongs to, instead of the one `product_name` describes."""
    product_metadata: Mapping[str, str] = field(default_factory=dict)


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
    metadata: Mapping[str, str] = field(default_factory=dict)


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
    metadata: Mapping[str, str] = field(default_factory=dict)


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
    trial_end: datetime | None = None
    trial_missing_payment_method: str | None = None
    """`trial_settings.end_behavior.missing_payment_method`: `cancel`, `create_invoice` or
    `pause`; None without `trial_settings`, empty when they name none."""


@dataclass(frozen=True, slots=True)
class TextSettings:
    """A text or numeric custom field's bounds (0: not given) and prefilled value."""

    minimum_length: int = 0
    maximum_length: int = 0
    default_value: str = ""


@dataclass(frozen=True, slots=True)
class DropdownOption:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Dropdown:
    options: tuple[DropdownOption, ...] = ()
    default_value: str = ""


@dataclass(frozen=True, slots=True)
class CustomField:
    key: str
    label: str
    type: str
    """`text`, `numeric` or `dropdown`; empty when the caller gave none."""
    optional: bool = False
    text: TextSettings | None = None
    numeric: TextSettings | None = None
    dropdown: Dropdown | None = None


@dataclass(frozen=True, slots=True)
class CustomText:
    """Messages shown on the page; empty: none."""

    submit: str = ""
    after_submit: str = ""
    shipping_address: str = ""
    terms_of_service_acceptance: str = ""


@dataclass(frozen=True, slots=True)
class ConsentCollection:
    terms_of_service: str | None = None
    """`none` or `required`."""
    promotions: str | None = None
    """`auto` or `none`."""
    payment_method_reuse_agreement: str | None = None
    """`auto` or `hidden`."""


@dataclass(frozen=True, slots=True)
class InvoiceData:
    description: str = ""
    footer: str = ""
    custom_fields: tuple[tuple[str, str], ...] = ()
    """(name, value) pairs."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    account_tax_ids: tuple[str, ...] = ()
    amount_tax_display: str | None = None
    """`exclude_tax` or `include_inclusive_tax`."""


@dataclass(frozen=True, slots=True)
class InvoiceCreation:
    enabled: bool
    data: InvoiceData | None = None


@dataclass(frozen=True, slots=True)
class Recovery:
    """`after_expiration.recovery`."""

    enabled: bool
    allow_promotion_codes: bool = False


@dataclass(frozen=True, slots=True)
class PaymentIntentData:
    """What the caller sets of `payment_intent_data` (the service adds the order id to its
    metadata)."""

    setup_future_usage: str | None = None
    """`on_session` or `off_session`."""
    description: str = ""
    statement_descriptor_suffix: str = ""
    receipt_email: str = ""


@dataclass(frozen=True, slots=True)
class SavedPaymentMethodOptions:
    payment_method_save: bool = False
    payment_method_remove: bool = False
    allow_redisplay_filters: tuple[str, ...] = ()
    """`always`, `limited`, `unspecified`; an empty entry where the caller gave none."""


@dataclass(frozen=True, slots=True)
class NameField:
    enabled: bool
    optional: bool = False


@dataclass(frozen=True, slots=True)
class NameCollection:
    business: NameField | None = None
    individual: NameField | None = None


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
    # Added with issue 20. Left at their defaults, they leave a request's fingerprint as it was
    # (create_plan.fingerprint).
    custom_fields: tuple[CustomField, ...] = ()
    custom_text: CustomText | None = None
    consent_collection: ConsentCollection | None = None
    invoice_creation: InvoiceCreation | None = None
    recovery: Recovery | None = None
    payment_intent_data: PaymentIntentData | None = None
    saved_payment_method_options: SavedPaymentMethodOptions | None = None
    excluded_payment_method_types: tuple[str, ...] = ()
    submit_type: str | None = None
    name_collection: NameCollection | None = None
    request_three_d_secure: str | None = None
    """`payment_method_options.card.request_three_d_secure`: `automatic`, `any` or
    `challenge`."""
    # Added with issue 21, likewise.
    capture_method: str | None = None
    """`automatic` or `manual` (`payment_intent_data.capture_method`); None: Stripe's default."""
