"""Proto ↔ domain: pure functions. Enum values travel as Stripe's strings inside the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.domain.commands import (
    AdjustableQuantity,
    CreateSessionCommand,
    CustomerUpdate,
    DeliveryBound,
    Discount,
    LineItemRequest,
    Mode,
    PriceData,
    Recurring,
    ShippingOption,
    ShippingRateData,
    SubscriptionData,
    TaxIdCollection,
    UiMode,
)
from service.domain.model import LedgerEntry, SessionSnapshot, field_values

_MODES = {
    pb.Session.PAYMENT: Mode.PAYMENT,
    pb.Session.SUBSCRIPTION: Mode.SUBSCRIPTION,
    pb.Session.SETUP: Mode.SETUP,
}
_UI_MODES = {
    pb.Session.HOSTED_PAGE: UiMode.HOSTED_PAGE,
    pb.Session.EMBEDDED_PAGE: UiMode.EMBEDDED_PAGE,
    pb.Session.ELEMENTS: UiMode.ELEMENTS,
}
_MODE_OUT = {v.value: k for k, v in _MODES.items()}
_UI_MODE_OUT = {v.value: k for k, v in _UI_MODES.items()}
_STATUS_OUT = {
    "open": pb.Session.OPEN,
    "complete": pb.Session.COMPLETE,
    "expired": pb.Session.EXPIRED,
}
_PAYMENT_STATUS_OUT = {
    "paid": pb.Session.PAID,
    "unpaid": pb.Session.UNPAID,
    "no_payment_required": pb.Session.NO_PAYMENT_REQUIRED,
}


Req = api.CreateSessionRequest
_REDIRECTS = {
    Req.REDIRECT_ON_COMPLETION_ALWAYS: "always",
    Req.REDIRECT_ON_COMPLETION_IF_REQUIRED: "if_required",
    Req.REDIRECT_ON_COMPLETION_NEVER: "never",
}
_CUSTOMER_CREATION = {
    Req.CUSTOMER_CREATION_IF_REQUIRED: "if_required",
    Req.CUSTOMER_CREATION_ALWAYS: "always",
}
_PAYMENT_METHOD_COLLECTION = {
    Req.PAYMENT_METHOD_COLLECTION_ALWAYS: "always",
    Req.PAYMENT_METHOD_COLLECTION_IF_REQUIRED: "if_required",
}
_BILLING_ADDRESS = {
    Req.BILLING_ADDRESS_COLLECTION_AUTO: "auto",
    Req.BILLING_ADDRESS_COLLECTION_REQUIRED: "required",
}
_TAX_BEHAVIOR = {Req.PriceData.INCLUSIVE: "inclusive", Req.PriceData.EXCLUSIVE: "exclusive"}
_INTERVALS = {
    Req.Recurring.DAY: "day",
    Req.Recurring.WEEK: "week",
    Req.Recurring.MONTH: "month",
    Req.Recurring.YEAR: "year",
}
_DELIVERY_UNITS = {
    Req.DeliveryBound.HOUR: "hour",
    Req.DeliveryBound.DAY: "day",
    Req.DeliveryBound.BUSINESS_DAY: "business_day",
    Req.DeliveryBound.WEEK: "week",
    Req.DeliveryBound.MONTH: "month",
}


def request_bytes(request: Req) -> bytes:
    """The request's bytes, equal for equal requests (map fields in key order), by which the
    use case knows a request it has seen (domain/seen_requests.py)."""
    return request.SerializeToString(deterministic=True)


def read_create(data: bytes) -> CreateSessionCommand:
    """The command in a request's bytes: what the use case reads a request it has not seen
    lately with."""
    return create_command(Req.FromString(data))


def create_command(request: Req) -> CreateSessionCommand:
    return CreateSessionCommand(
        order_id=request.order_id,
        request_id=request.request_id,
        mode=_MODES.get(request.mode),
        ui_mode=_UI_MODES.get(request.ui_mode),
        currency=request.currency,
        line_items=tuple(_line_item(li) for li in request.line_items),
        success_url=request.success_url,
        cancel_url=request.cancel_url,
        return_url=request.return_url,
        customer_email=request.customer_email,
        expire_time=_moment(request.expire_time) if request.HasField("expire_time") else None,
        metadata=dict(request.metadata),
        redirect_on_completion=_REDIRECTS.get(request.redirect_on_completion),
        customer_id=request.customer_id,
        customer_creation=_CUSTOMER_CREATION.get(request.customer_creation),
        billing_address_collection=_BILLING_ADDRESS.get(request.billing_address_collection),
        phone_number_collection=_enabled(request, "phone_number_collection"),
        locale=request.locale,
        allowed_payment_method_types=tuple(request.allowed_payment_method_types),
        automatic_tax=_enabled(request, "automatic_tax"),
        tax_id_collection=_tax_id_collection(request),
        customer_update=_customer_update(request),
        discounts=tuple(
            Discount(coupon=d.coupon, promotion_code=d.promotion_code) for d in request.discounts
        ),
        allow_promotion_codes=request.allow_promotion_codes,
        shipping_countries=(
            tuple(request.shipping_address_collection.allowed_countries)
            if request.HasField("shipping_address_collection")
            else None
        ),
        shipping_options=tuple(_shipping_option(o) for o in request.shipping_options),
        subscription_data=_subscription_data(request),
        payment_method_collection=_PAYMENT_METHOD_COLLECTION.get(request.payment_method_collection),
        adaptive_pricing=_enabled(request, "adaptive_pricing"),
    )


def _enabled(
    request: Req,
    switch: Literal["phone_number_collection", "automatic_tax", "adaptive_pricing"],
) -> bool | None:
    """A `{enabled: …}` switch's value; None when the request leaves it to Stripe."""
    return bool(getattr(request, switch).enabled) if request.HasField(switch) else None


def _tax_id_collection(request: Req) -> TaxIdCollection | None:
    if not request.HasField("tax_id_collection"):
        return None
    given = request.tax_id_collection
    return TaxIdCollection(enabled=given.enabled, required=given.required)


def _customer_update(request: Req) -> CustomerUpdate | None:
    if not request.HasField("customer_update"):
        return None
    given = request.customer_update
    return CustomerUpdate(address=given.address, name=given.name, shipping=given.shipping)


def _subscription_data(request: Req) -> SubscriptionData | None:
    if not request.HasField("subscription_data"):
        return None
    given = request.subscription_data
    return SubscriptionData(
        trial_period_days=given.trial_period_days,
        description=given.description,
        metadata=dict(given.metadata),
    )


def _line_item(item: Req.LineItem) -> LineItemRequest:
    price_data = None
    if item.HasField("price_data"):
        data = item.price_data
        price_data = PriceData(
            unit_amount=data.unit_amount,
            product_name=data.product_name,
            product_description=data.product_description,
            product_images=tuple(data.product_images),
            recurring=(
                Recurring(
                    interval=_INTERVALS.get(data.recurring.interval, ""),
                    interval_count=data.recurring.interval_count,
                )
                if data.HasField("recurring")
                else None
            ),
            tax_behavior=_TAX_BEHAVIOR.get(data.tax_behavior),
            tax_code=data.tax_code,
        )
    adjustable = None
    if item.HasField("adjustable_quantity"):
        adjustable = AdjustableQuantity(
            enabled=item.adjustable_quantity.enabled,
            minimum=item.adjustable_quantity.minimum,
            maximum=item.adjustable_quantity.maximum,
        )
    return LineItemRequest(
        quantity=item.quantity,
        price_id=item.price_id,
        price_data=price_data,
        adjustable_quantity=adjustable,
        tax_rate_ids=tuple(item.tax_rate_ids),
    )


def _shipping_option(option: Req.ShippingOption) -> ShippingOption:
    if not option.HasField("shipping_rate_data"):
        return ShippingOption(shipping_rate_id=option.shipping_rate_id)
    data = option.shipping_rate_data
    estimate = data.delivery_estimate
    return ShippingOption(
        shipping_rate_data=ShippingRateData(
            display_name=data.display_name,
            amount=data.amount,
            minimum_delivery=_bound(estimate.minimum) if estimate.HasField("minimum") else None,
            maximum_delivery=_bound(estimate.maximum) if estimate.HasField("maximum") else None,
            tax_behavior=_TAX_BEHAVIOR.get(data.tax_behavior),
            tax_code=data.tax_code,
        )
    )


def _moment(stamp: Timestamp) -> datetime:
    """A Timestamp as a datetime. One that is not a valid Timestamp (seconds beyond the years
    1 to 9999, nanos outside 0 to 999999999) becomes the earliest datetime, which validation
    refuses like any other moment outside the allowed window: this mapping runs before the
    use case, where an exception would be no caller's error but an UNKNOWN."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        return datetime.min.replace(tzinfo=UTC)


def _bound(bound: Req.DeliveryBound) -> DeliveryBound:
    return DeliveryBound(unit=_DELIVERY_UNITS.get(bound.unit, ""), value=bound.value)


def session_message(entry: LedgerEntry, *, client_secret: bool) -> pb.Session:
    """The session as a caller sees it; `client_secret` False blanks it (operators)."""
    message = pb.Session(
        order_id=entry.order_id,
        caller=entry.caller,
        async_payment_failed=entry.async_payment_failed,
    )
    message.update_time.FromDatetime(entry.updated_at)
    if entry.snapshot is not None:
        _fill(message, entry.snapshot)
    if not client_secret:
        message.client_secret = ""
    return message


def _fill(message: pb.Session, s: SessionSnapshot) -> None:
    message.id = s.id
    message.mode = _MODE_OUT.get(s.mode, pb.Session.MODE_UNSPECIFIED)
    message.ui_mode = _UI_MODE_OUT.get(s.ui_mode, pb.Session.UI_MODE_UNSPECIFIED)
    message.status = _STATUS_OUT.get(s.status or "", pb.Session.STATUS_UNSPECIFIED)
    message.payment_status = _PAYMENT_STATUS_OUT.get(
        s.payment_status, pb.Session.PAYMENT_STATUS_UNSPECIFIED
    )
    message.url = s.url or ""
    message.client_secret = s.client_secret or ""
    message.currency = s.currency or ""
    if s.amount_subtotal is not None:
        message.amount_subtotal = s.amount_subtotal
    if s.amount_total is not None:
        message.amount_total = s.amount_total
    message.total_details.amount_discount = s.amount_discount
    message.total_details.amount_shipping = s.amount_shipping
    message.total_details.amount_tax = s.amount_tax
    if s.presentment_currency is not None:
        message.presentment_details.presentment_amount = s.presentment_amount or 0
        message.presentment_details.presentment_currency = s.presentment_currency
    message.customer_id = s.customer_id or ""
    message.customer_email = s.customer_email or ""
    message.payment_intent_id = s.payment_intent_id or ""
    message.subscription_id = s.subscription_id or ""
    message.setup_intent_id = s.setup_intent_id or ""
    # The snapshot's value classes use the contract's field names, so they copy over whole.
    if s.shipping is not None:
        message.shipping_details.name = s.shipping.name
        message.shipping_details.address.CopyFrom(pb.Address(**field_values(s.shipping.address)))
    message.metadata.update(s.metadata)
    message.livemode = s.livemode
    # Stripe's times are whole Unix seconds.
    message.create_time.seconds = s.created
    message.expire_time.seconds = s.expires_at
    message.success_url = s.success_url or ""
    message.cancel_url = s.cancel_url or ""
    message.return_url = s.return_url or ""
    if s.shipping_cost is not None:
        message.shipping_cost.CopyFrom(pb.ShippingCost(**field_values(s.shipping_cost)))
    message.discount_ids.extend(s.discount_ids)
    message.line_items.extend(pb.SessionLineItem(**field_values(li)) for li in s.line_items)
