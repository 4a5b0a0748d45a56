"""Proto ↔ domain, pure functions. Enum values travel as Stripe's strings inside the domain."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.domain.model import (
    CreateSessionCommand,
    LedgerEntry,
    LineItemRequest,
    Mode,
    PriceData,
    SessionSnapshot,
    UiMode,
)

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


def create_command(request: api.CreateSessionRequest) -> CreateSessionCommand:
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
        expire_time=(
            request.expire_time.ToDatetime(tzinfo=UTC) if request.HasField("expire_time") else None
        ),
        metadata=dict(request.metadata),
    )


def _line_item(item: api.CreateSessionRequest.LineItem) -> LineItemRequest:
    price_data = None
    if item.HasField("price_data"):
        price_data = PriceData(
            unit_amount=item.price_data.unit_amount,
            product_name=item.price_data.product_name,
            product_description=item.price_data.product_description,
        )
    return LineItemRequest(quantity=item.quantity, price_id=item.price_id, price_data=price_data)


def session_message(entry: LedgerEntry) -> pb.Session:
    message = pb.Session(
        order_id=entry.order_id,
        update_time=_timestamp(entry.updated_at),
        async_payment_failed=entry.async_payment_failed,
    )
    if entry.snapshot is not None:
        _fill(message, entry.snapshot)
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
    if s.shipping is not None:
        address = s.shipping.address
        message.shipping_details.name = s.shipping.name
        message.shipping_details.address.CopyFrom(
            pb.Address(
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                state=address.state,
                postal_code=address.postal_code,
                country=address.country,
            )
        )
    message.metadata.update(s.metadata)
    message.livemode = s.livemode
    message.create_time.CopyFrom(_timestamp(datetime.fromtimestamp(s.created, UTC)))
    message.expire_time.CopyFrom(_timestamp(datetime.fromtimestamp(s.expires_at, UTC)))
    message.success_url = s.success_url or ""
    message.cancel_url = s.cancel_url or ""
    message.return_url = s.return_url or ""
    message.line_items.extend(
        pb.SessionLineItem(
            id=li.id,
            description=li.description,
            quantity=li.quantity,
            price_id=li.price_id,
            currency=li.currency,
            unit_amount=li.unit_amount,
            amount_subtotal=li.amount_subtotal,
            amount_discount=li.amount_discount,
            amount_tax=li.amount_tax,
            amount_total=li.amount_total,
        )
        for li in s.line_items
    )


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
