"""The Checkout features shops reach for next, through the contract (issue 20): each field
reaches Stripe (read back through stripe-python at the sandbox) and what it leads to comes back
on GetSession; what only Stripe can judge is refused by Stripe and named on the request's
field; what the service can judge is refused before anything is stored or sent."""

from __future__ import annotations

import json
import time
import urllib.error
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
import stripe
from google.protobuf.timestamp_pb2 import Timestamp

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import (
    SAN_FRANCISCO,
    Sandbox,
    Stub,
    cart_request,
    new_order_id,
    reason,
    stored,
    until_stored,
    violated_fields,
)

Req = api.CreateSessionRequest


def card_error(sandbox: Sandbox, session_id: str, **choices: Any) -> dict[str, Any]:
    """The customer's payment is refused (a 402 `card_error`): the error Stripe shows."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        sandbox.pay(session_id, **choices)
    with caught.value as refused:
        assert refused.code == 402
        error: dict[str, Any] = json.load(refused)["error"]
    return error


async def a_customer(sandbox: Sandbox) -> stripe.Customer:
    return await sandbox.client.v1.customers.create_async({"email": "ada@example.com"})


async def test_a_paid_invoice_is_issued_for_the_order(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    request = cart_request(
        order_id,
        invoice_creation=Req.InvoiceCreation(
            enabled=True,
            invoice_data=Req.InvoiceData(
                description="Order 1001",
                footer="Shop GmbH, Berlin",
                custom_fields=[Req.InvoiceCustomField(name="PO number", value="4711")],
                metadata={"ledger": "EU"},
                account_tax_ids=["txi_shop_de_vat"],
                amount_tax_display=Req.InvoiceData.INCLUDE_INCLUSIVE_TAX,
            ),
        ),
    )
    created = (await stub.CreateSession(request)).session
    assert created.invoice_id == ""
    asked = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
    assert asked.invoice_creation is not None
    data = asked.invoice_creation.invoice_data
    assert data.account_tax_ids == ["txi_shop_de_vat"]
    assert data.rendering_options is not None
    assert data.rendering_options.amount_tax_display == "include_inclusive_tax"

    sandbox.pay(created.id, name="Ada", **SAN_FRANCISCO)
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    invoice = await sandbox.client.v1.invoices.retrieve_async(paid.invoice_id)
    assert (invoice.status, invoice.amount_paid) == ("paid", paid.amount_total)
    assert (invoice.description, invoice.footer) == ("Order 1001", "Shop GmbH, Berlin")
    assert invoice.metadata is not None
    assert invoice.metadata.to_dict() == {
        "ledger": "EU",
        "order_id": order_id,
        "checkout_caller": "local",
    }
    assert [(f.name, f.value) for f in invoice.custom_fields or ()] == [("PO number", "4711")]


async def test_the_payment_gets_what_the_caller_set(stub: Stub, sandbox: Sandbox) -> None:
    customer = await a_customer(sandbox)
    order_id = new_order_id()
    request = cart_request(
        order_id,
        customer_id=customer.id,
        payment_intent_data=Req.PaymentIntentData(
            setup_future_usage=Req.PaymentIntentData.OFF_SESSION,
            description="Order 1001: 2 T-shirts, 1 mug",
            statement_descriptor_suffix="ORDER 1001",
            receipt_email="receipts@shop.example",
        ),
    )
    created = (await stub.CreateSession(request)).session
    sandbox.pay(created.id, **SAN_FRANCISCO)
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    intent = await sandbox.client.v1.payment_intents.retrieve_async(paid.payment_intent_id)
    assert (intent.description, intent.statement_descriptor_suffix) == (
        "Order 1001: 2 T-shirts, 1 mug",
        "ORDER 1001",
    )
    assert (intent.setup_future_usage, intent.receipt_email) == (
        "off_session",
        "receipts@shop.example",
    )
    assert intent.metadata["order_id"] == order_id
    # Saved for later payments, on the customer.
    saved = await sandbox.client.v1.customers.payment_methods.list_async(customer.id)
    assert len(saved.data) == 1


async def test_a_returning_customer_saves_a_card_after_3d_secure(
    stub: Stub, sandbox: Sandbox
) -> None:
    customer = await a_customer(sandbox)
    order_id = new_order_id()
    request = cart_request(
        order_id,
        customer_id=customer.id,
        saved_payment_method_options=Req.SavedPaymentMethodOptions(
            payment_method_save=True,
            payment_method_remove=True,
            allow_redisplay_filters=[Req.SavedPaymentMethodOptions.ALLOW_REDISPLAY_ALWAYS],
        ),
        payment_method_options=Req.PaymentMethodOptions(
            card=Req.CardOptions(request_three_d_secure=Req.CardOptions.REQUEST_THREE_D_SECURE_ANY)
        ),
    )
    created = (await stub.CreateSession(request)).session
    at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
    assert at_stripe.saved_payment_method_options is not None
    assert at_stripe.saved_payment_method_options.payment_method_save == "enabled"
    assert at_stripe.saved_payment_method_options.payment_method_remove == "enabled"
    assert at_stripe.saved_payment_method_options.allow_redisplay_filters == ["always"]
    assert at_stripe.payment_method_options is not None
    assert at_stripe.payment_method_options.card is not None
    assert at_stripe.payment_method_options.card.request_three_d_secure == "any"

    # The challenge fails: the session stays open, and the order's session with it.
    error = card_error(sandbox, created.id, three_d_secure="fail", **SAN_FRANCISCO)
    assert error["code"] == "payment_intent_authentication_failure"
    reread = await stub.GetSession(api.GetSessionRequest(order_id=order_id, refresh=True))
    assert reread.session.status == pb.Session.OPEN

    sandbox.pay(created.id, three_d_secure="complete", save_payment_method=True, **SAN_FRANCISCO)
    await until_stored(stub, order_id, status=pb.Session.COMPLETE)
    saved = await sandbox.client.v1.customers.payment_methods.list_async(customer.id)
    assert [method.allow_redisplay for method in saved.data] == ["always"]


async def test_what_the_page_says_and_offers(stub: Stub, sandbox: Sandbox) -> None:
    request = cart_request(
        new_order_id(),
        excluded_payment_method_types=["klarna", "affirm"],
        submit_type=Req.SUBMIT_TYPE_DONATE,
        shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["US"]),
        consent_collection=Req.ConsentCollection(
            terms_of_service=Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED,
            payment_method_reuse_agreement=(
                Req.ConsentCollection.PAYMENT_METHOD_REUSE_AGREEMENT_HIDDEN
            ),
        ),
        custom_text=Req.CustomText(
            submit="Every euro goes to the shelter.",
            after_submit="Thank you!",
            shipping_address="We ship to the US only.",
            terms_of_service_acceptance="I agree to the [terms](https://shop.example/terms).",
        ),
    )
    with sandbox.terms_of_service():
        created = (await stub.CreateSession(request)).session

    at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
    assert at_stripe.excluded_payment_method_types == ["klarna", "affirm"]
    assert at_stripe.submit_type == "donate"
    text = at_stripe.custom_text
    messages = [
        None if part is None else part.message
        for part in (
            text.submit,
            text.after_submit,
            text.shipping_address,
            text.terms_of_service_acceptance,
        )
    ]
    assert messages == [
        "Every euro goes to the shelter.",
        "Thank you!",
        "We ship to the US only.",
        "I agree to the [terms](https://shop.example/terms).",
    ]
    consent = at_stripe.consent_collection
    assert consent is not None and consent.payment_method_reuse_agreement is not None
    assert consent.payment_method_reuse_agreement.position == "hidden"


async def test_a_trial_that_ends_on_a_date(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    request = cart_request(
        order_id,
        mode=pb.Session.SUBSCRIPTION,
        line_items=[
            Req.LineItem(
                price_data=Req.PriceData(
                    unit_amount=900,
                    product_name="Coffee club",
                    recurring=Req.Recurring(interval=Req.Recurring.MONTH),
                ),
                quantity=1,
            )
        ],
        subscription_data=Req.SubscriptionData(
            trial_settings=Req.TrialSettings(missing_payment_method=Req.TrialSettings.PAUSE)
        ),
    )
    request.subscription_data.trial_end.FromDatetime(ends)
    created = (await stub.CreateSession(request)).session
    assert created.amount_total == 0

    sandbox.pay(created.id, **SAN_FRANCISCO)
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    assert paid.payment_status == pb.Session.NO_PAYMENT_REQUIRED
    at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(
        paid.id, {"expand": ["subscription"]}
    )
    subscription = at_stripe.subscription
    assert isinstance(subscription, stripe.Subscription)
    assert subscription.id == paid.subscription_id
    assert subscription.trial_end == int(ends.timestamp())
    assert subscription.trial_settings is not None
    assert subscription.trial_settings.end_behavior.missing_payment_method == "pause"


def recovered_copy(recovery_url: str) -> str:
    """The customer opens the recovery URL: the id of the session it sends them to."""
    answer = httpx.get(recovery_url, follow_redirects=False, timeout=5)
    assert answer.status_code == 303, answer.text
    return urlsplit(answer.headers["location"]).path.rsplit("/", 1)[-1]


async def test_an_abandoned_cart_comes_back_to_its_order(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    request = cart_request(
        order_id,
        after_expiration=Req.AfterExpiration(
            recovery=Req.Recovery(enabled=True, allow_promotion_codes=True)
        ),
    )
    abandoned = (await stub.CreateSession(request)).session
    assert not abandoned.HasField("recovery")

    expired = (await stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id))).session
    assert expired.recovery.url.startswith("http")
    assert expired.recovery.expire_time.seconds > time.time() + 29 * 24 * 3600

    copy_id = recovered_copy(expired.recovery.url)
    sandbox.pay(copy_id, **SAN_FRANCISCO)

    paid = await until_stored(stub, order_id, id=copy_id, status=pb.Session.COMPLETE)
    assert (paid.recovered_from, paid.payment_status) == (abandoned.id, pb.Session.PAID)
    assert paid.line_items[0].description == "T-shirt"
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id))
    assert [s.id for s in listed.sessions] == [copy_id, abandoned.id]
    # The order is paid: it gets no other session.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(request)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# What only Stripe can judge, refused by Stripe after the claim (which is then dropped), and
# named on the request's field.
STRIPE_JUDGES = [
    pytest.param(
        {
            "consent_collection": Req.ConsentCollection(
                terms_of_service=Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED
            )
        },
        "consent_collection.terms_of_service",
        id="terms need a terms of service URL in the account",
    ),
    pytest.param(
        {
            "line_items": [
                Req.LineItem(
                    price_data=Req.PriceData(unit_amount=500, product_id="prod_nobody_made"),
                    quantity=1,
                )
            ]
        },
        "line_items[0].price_data.product_id",
        id="an existing product that does not exist",
    ),
    pytest.param(
        {"saved_payment_method_options": Req.SavedPaymentMethodOptions(payment_method_save=True)},
        "saved_payment_method_options.payment_method_save",
        id="saving a card needs a customer",
    ),
    pytest.param(
        {"custom_text": Req.CustomText(shipping_address="We ship fast.")},
        "custom_text.shipping_address",
        id="text beside a shipping address that is not asked for",
    ),
]


@pytest.mark.parametrize(("overrides", "field"), STRIPE_JUDGES)
async def test_stripes_refusal_names_the_field(
    stub: Stub, sandbox: Sandbox, overrides: dict[str, Any], field: str
) -> None:
    order_id = new_order_id()
    with sandbox.terms_of_service(""), pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(cart_request(order_id, **overrides))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (violated_fields(caught.value), reason(caught.value)) == ([field], "STRIPE_REFUSED")
    # The refused attempt holds nothing: the order gets its session.
    assert (await stub.CreateSession(cart_request(order_id))).session.status == pb.Session.OPEN


def at(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


THE_SERVICE_JUDGES = [
    pytest.param(
        {
            "mode": pb.Session.SETUP,
            "line_items": [],
            "custom_fields": [Req.CustomField(key="note", label="Note", type=Req.CustomField.TEXT)],
        },
        ["custom_fields"],
        id="no custom fields in setup mode",
    ),
    pytest.param(
        {
            "custom_fields": [
                Req.CustomField(key=f"k{n}", label="K", type=Req.CustomField.TEXT) for n in range(4)
            ]
        },
        ["custom_fields"],
        id="at most 3 custom fields",
    ),
    pytest.param(
        {
            "mode": pb.Session.SUBSCRIPTION,
            "line_items": [
                Req.LineItem(
                    price_data=Req.PriceData(
                        unit_amount=900,
                        product_name="Club",
                        recurring=Req.Recurring(interval=Req.Recurring.MONTH),
                    ),
                    quantity=1,
                )
            ],
            "invoice_creation": Req.InvoiceCreation(enabled=True),
        },
        ["invoice_creation"],
        id="invoices only in payment mode",
    ),
    pytest.param(
        {
            "ui_mode": pb.Session.ELEMENTS,
            "success_url": "",
            "allowed_payment_method_types": ["card"],
            "after_expiration": Req.AfterExpiration(recovery=Req.Recovery(enabled=True)),
        },
        ["after_expiration"],
        id="no recovery with elements",
    ),
    pytest.param(
        {
            "line_items": [
                Req.LineItem(
                    price_data=Req.PriceData(
                        unit_amount=500, product_id="prod_1", product_name="Mug"
                    ),
                    quantity=1,
                )
            ]
        },
        ["line_items[0].price_data.product_id"],
        id="an existing product or one described, not both",
    ),
    pytest.param(
        {
            "mode": pb.Session.SUBSCRIPTION,
            "line_items": [
                Req.LineItem(
                    price_data=Req.PriceData(
                        unit_amount=900,
                        product_name="Club",
                        recurring=Req.Recurring(interval=Req.Recurring.MONTH),
                    ),
                    quantity=1,
                )
            ],
            "subscription_data": Req.SubscriptionData(
                trial_end=at(datetime.now(UTC) + timedelta(hours=47))
            ),
        },
        ["subscription_data.trial_end"],
        id="a trial ends 48 hours ahead at the earliest",
    ),
]


@pytest.mark.parametrize(("overrides", "fields"), THE_SERVICE_JUDGES)
async def test_what_the_service_can_judge_is_refused_before_stripe_is_asked(
    stub: Stub, sandbox: Sandbox, overrides: dict[str, Any], fields: list[str]
) -> None:
    order_id = new_order_id()
    posts = sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(cart_request(order_id, **overrides))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (violated_fields(caught.value), reason(caught.value)) == (fields, "INVALID_REQUEST")
    assert sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0) == posts
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stored(stub, order_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
