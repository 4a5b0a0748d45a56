"""Proto ↔ domain: pure functions. Enum values travel as Stripe's strings inside the domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2
from checkout.v1 import session_pb2 as pb
from service.domain.commands import (
    AdjustableQuantity,
    ConsentCollection,
    CreateSessionCommand,
    CustomerUpdate,
    CustomField,
    CustomText,
    DeliveryBound,
    Discount,
    Dropdown,
    DropdownOption,
    InvoiceCreation,
    InvoiceData,
    LineItemRequest,
    Mode,
    NameCollection,
    NameField,
    PaymentIntentData,
    PriceData,
    Recovery,
    Recurring,
    SavedPaymentMethodOptions,
    ShippingOption,
    ShippingRateData,
    SubscriptionData,
    TaxIdCollection,
    TextSettings,
    UiMode,
)
from service.domain.model import (
    CustomerDetails,
    LedgerEntry,
    LineItemSnapshot,
    SessionSnapshot,
    ShippingCost,
    field_values,
)
from service.edge.payment_mapping import payment_message

M = TypeVar("M", pb.ShippingCost, pb.SessionLineItem)

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
_CUSTOM_FIELD_TYPE_OUT = {
    "text": pb.CustomFieldValue.TEXT,
    "numeric": pb.CustomFieldValue.NUMERIC,
    "dropdown": pb.CustomFieldValue.DROPDOWN,
}
_TERMS_OUT = {"accepted": pb.Consent.ACCEPTED}
_PROMOTIONS_OUT = {"opt_in": pb.Consent.OPT_IN, "opt_out": pb.Consent.OPT_OUT}
_AUTOMATIC_TAX_OUT = {
    "complete": pb.Session.AUTOMATIC_TAX_COMPLETE,
    "failed": pb.Session.AUTOMATIC_TAX_FAILED,
    "requires_location_inputs": pb.Session.AUTOMATIC_TAX_REQUIRES_LOCATION_INPUTS,
}
_TAX_EXEMPT_OUT = {
    "none": pb.CustomerDetails.NONE,
    "exempt": pb.CustomerDetails.EXEMPT,
    "reverse": pb.CustomerDetails.REVERSE,
}
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
_CAPTURE_METHODS = {
    payments_pb2.Payment.AUTOMATIC: "automatic",
    payments_pb2.Payment.MANUAL: "manual",
}
_CUSTOM_FIELD_TYPES = {
    Req.CustomField.TEXT: "text",
    Req.CustomField.NUMERIC: "numeric",
    Req.CustomField.DROPDOWN: "dropdown",
}
_TERMS_OF_SERVICE = {
    Req.ConsentCollection.TERMS_OF_SERVICE_NONE: "none",
    Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED: "required",
}
_PROMOTIONS = {
    Req.ConsentCollection.PROMOTIONS_AUTO: "auto",
    Req.ConsentCollection.PROMOTIONS_NONE: "none",
}
_REUSE_AGREEMENT = {
    Req.ConsentCollection.PAYMENT_METHOD_REUSE_AGREEMENT_AUTO: "auto",
    Req.ConsentCollection.PAYMENT_METHOD_REUSE_AGREEMENT_HIDDEN: "hidden",
}
_AMOUNT_TAX_DISPLAY = {
    Req.InvoiceData.EXCLUDE_TAX: "exclude_tax",
    Req.InvoiceData.INCLUDE_INCLUSIVE_TAX: "include_inclusive_tax",
}
_SETUP_FUTURE_USAGE = {
    Req.PaymentIntentData.ON_SESSION: "on_session",
    Req.PaymentIntentData.OFF_SESSION: "off_session",
}
_ALLOW_REDISPLAY = {
    Req.SavedPaymentMethodOptions.ALLOW_REDISPLAY_ALWAYS: "always",
    Req.SavedPaymentMethodOptions.ALLOW_REDISPLAY_LIMITED: "limited",
    Req.SavedPaymentMethodOptions.ALLOW_REDISPLAY_NOT_RECORDED: "unspecified",
}
_SUBMIT_TYPES = {
    Req.SUBMIT_TYPE_AUTO: "auto",
    Req.SUBMIT_TYPE_BOOK: "book",
    Req.SUBMIT_TYPE_DONATE: "donate",
    Req.SUBMIT_TYPE_PAY: "pay",
    Req.SUBMIT_TYPE_SUBSCRIBE: "subscribe",
}
_THREE_D_SECURE = {
    Req.CardOptions.REQUEST_THREE_D_SECURE_AUTOMATIC: "automatic",
    Req.CardOptions.REQUEST_THREE_D_SECURE_ANY: "any",
    Req.CardOptions.REQUEST_THREE_D_SECURE_CHALLENGE: "challenge",
}
_MISSING_PAYMENT_METHOD = {
    Req.TrialSettings.CANCEL: "cancel",
    Req.TrialSettings.CREATE_INVOICE: "create_invoice",
    Req.TrialSettings.PAUSE: "pause",
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
        capture_method=_CAPTURE_METHODS.get(request.capture_method),
        **_collected(request),
    )


def _collected(request: Req) -> dict[str, Any]:
    """The command's fields for what Checkout collects and does around the payment."""
    return {
        "custom_fields": tuple(_custom_field(custom) for custom in request.custom_fields),
        "custom_text": (
            CustomText(**_fields(request.custom_text)) if request.HasField("custom_text") else None
        ),
        "consent_collection": _consent_collection(request),
        "invoice_creation": _invoice_creation(request),
        "recovery": (
            Recovery(**_fields(request.after_expiration.recovery))
            if request.after_expiration.HasField("recovery")
            else None
        ),
        "payment_intent_data": _payment_intent_data(request),
        "saved_payment_method_options": _saved_payment_method_options(request),
        "excluded_payment_method_types": tuple(request.excluded_payment_method_types),
        "submit_type": _SUBMIT_TYPES.get(request.submit_type),
        "name_collection": _name_collection(request),
        "request_three_d_secure": _THREE_D_SECURE.get(
            request.payment_method_options.card.request_three_d_secure
        ),
    }


def _fields(message: Message) -> dict[str, Any]:
    """A message of scalars as keyword arguments, by the field names the command shares."""
    return {field.name: getattr(message, field.name) for field in message.DESCRIPTOR.fields}


def _custom_field(custom: Req.CustomField) -> CustomField:
    dropdown = None
    if custom.HasField("dropdown"):
        dropdown = Dropdown(
            options=tuple(DropdownOption(o.label, o.value) for o in custom.dropdown.options),
            default_value=custom.dropdown.default_value,
        )
    return CustomField(
        key=custom.key,
        label=custom.label,
        type=_CUSTOM_FIELD_TYPES.get(custom.type, ""),
        optional=custom.optional,
        text=TextSettings(**_fields(custom.text)) if custom.HasField("text") else None,
        numeric=TextSettings(**_fields(custom.numeric)) if custom.HasField("numeric") else None,
        dropdown=dropdown,
    )


def _consent_collection(request: Req) -> ConsentCollection | None:
    if not request.HasField("consent_collection"):
        return None
    given = request.consent_collection
    return ConsentCollection(
        terms_of_service=_TERMS_OF_SERVICE.get(given.terms_of_service),
        promotions=_PROMOTIONS.get(given.promotions),
        payment_method_reuse_agreement=_REUSE_AGREEMENT.get(given.payment_method_reuse_agreement),
    )


def _invoice_creation(request: Req) -> InvoiceCreation | None:
    if not request.HasField("invoice_creation"):
        return None
    given = request.invoice_creation
    data = None
    if given.HasField("invoice_data"):
        invoice = given.invoice_data
        data = InvoiceData(
            description=invoice.description,
            footer=invoice.footer,
            custom_fields=tuple((f.name, f.value) for f in invoice.custom_fields),
            metadata=dict(invoice.metadata),
            account_tax_ids=tuple(invoice.account_tax_ids),
            amount_tax_display=_AMOUNT_TAX_DISPLAY.get(invoice.amount_tax_display),
        )
    return InvoiceCreation(enabled=given.enabled, data=data)


def _payment_intent_data(request: Req) -> PaymentIntentData | None:
    if not request.HasField("payment_intent_data"):
        return None
    given = request.payment_intent_data
    return PaymentIntentData(
        setup_future_usage=_SETUP_FUTURE_USAGE.get(given.setup_future_usage),
        description=given.description,
        statement_descriptor_suffix=given.statement_descriptor_suffix,
        receipt_email=given.receipt_email,
    )


def _saved_payment_method_options(request: Req) -> SavedPaymentMethodOptions | None:
    if not request.HasField("saved_payment_method_options"):
        return None
    given = request.saved_payment_method_options
    return SavedPaymentMethodOptions(
        payment_method_save=given.payment_method_save,
        payment_method_remove=given.payment_method_remove,
        allow_redisplay_filters=tuple(
            _ALLOW_REDISPLAY.get(kind, "") for kind in given.allow_redisplay_filters
        ),
    )


def _name_collection(request: Req) -> NameCollection | None:
    if not request.HasField("name_collection"):
        return None
    given = request.name_collection
    return NameCollection(
        business=NameField(**_fields(given.business)) if given.HasField("business") else None,
        individual=(
            NameField(**_fields(given.individual)) if given.HasField("individual") else None
        ),
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
        trial_end=_moment(given.trial_end) if given.HasField("trial_end") else None,
        trial_missing_payment_method=(
            _MISSING_PAYMENT_METHOD.get(given.trial_settings.missing_payment_method, "")
            if given.HasField("trial_settings")
            else None
        ),
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
            product_id=data.product_id,
            product_metadata=dict(data.product_metadata),
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
        metadata=dict(item.metadata),
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
            metadata=dict(data.metadata),
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
    if entry.payment is not None:
        message.payment.CopyFrom(payment_message(entry.payment))
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
        message.shipping_cost.CopyFrom(_with_amounts(pb.ShippingCost, s.shipping_cost))
    message.discount_ids.extend(s.discount_ids)
    message.line_items.extend(_with_amounts(pb.SessionLineItem, li) for li in s.line_items)
    _fill_collected(message, s)


def _with_amounts(kind: type[M], value: ShippingCost | LineItemSnapshot) -> M:
    """The message of a snapshot value whose fields it shares by name, with its `taxes` and
    `discounts` (tuples of TaxAmount and DiscountAmount) made messages too."""
    values = field_values(value)
    taxes = values.pop("taxes", ())
    discounts = values.pop("discounts", ())
    message = kind(**values)
    message.taxes.extend(pb.TaxAmount(**field_values(tax)) for tax in taxes)
    if discounts:
        assert isinstance(message, pb.SessionLineItem)
        message.discounts.extend(pb.DiscountAmount(**field_values(d)) for d in discounts)
    return message


def _fill_collected(message: pb.Session, s: SessionSnapshot) -> None:
    """What the buyer entered, what Checkout made around the payment, and the breakdowns."""
    if s.customer_details is not None:
        message.customer_details.CopyFrom(_customer_details(s.customer_details))
    message.custom_fields.extend(
        pb.CustomFieldValue(
            key=custom.key,
            label=custom.label,
            type=_CUSTOM_FIELD_TYPE_OUT.get(custom.type, pb.CustomFieldValue.TYPE_UNSPECIFIED),
            value=custom.value,
        )
        for custom in s.custom_fields
    )
    if s.consent is not None:
        message.consent.terms_of_service = _TERMS_OUT.get(
            s.consent.terms_of_service, pb.Consent.TERMS_OF_SERVICE_UNSPECIFIED
        )
        message.consent.promotions = _PROMOTIONS_OUT.get(
            s.consent.promotions, pb.Consent.PROMOTIONS_UNSPECIFIED
        )
    message.invoice_id = s.invoice_id or ""
    if s.recovery_url:
        message.recovery.url = s.recovery_url
        if s.recovery_expires_at is not None:
            message.recovery.expire_time.seconds = s.recovery_expires_at
    message.recovered_from = s.recovered_from or ""
    if s.automatic_tax_enabled:
        message.automatic_tax.enabled = True
        message.automatic_tax.status = _AUTOMATIC_TAX_OUT.get(
            s.automatic_tax_status or "", pb.Session.AUTOMATIC_TAX_STATUS_UNSPECIFIED
        )
    breakdown = message.total_details.breakdown
    breakdown.taxes.extend(pb.TaxAmount(**field_values(tax)) for tax in s.tax_breakdown)
    breakdown.discounts.extend(pb.DiscountAmount(**field_values(d)) for d in s.discount_breakdown)


def _customer_details(details: CustomerDetails) -> pb.CustomerDetails:
    message = pb.CustomerDetails(
        name=details.name,
        email=details.email,
        phone=details.phone,
        tax_ids=[pb.TaxId(type=t.type, value=t.value) for t in details.tax_ids],
        business_name=details.business_name,
        individual_name=details.individual_name,
        tax_exempt=_TAX_EXEMPT_OUT.get(
            details.tax_exempt, pb.CustomerDetails.TAX_EXEMPT_UNSPECIFIED
        ),
    )
    if details.address is not None:
        message.address.CopyFrom(pb.Address(**field_values(details.address)))
    return message
