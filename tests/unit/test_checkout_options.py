"""What Checkout collects and does around the payment (issue 20), from command to Stripe's
parameters: Stripe's rules for each field, the parameters each becomes, Stripe's refusals mapped
back onto the fields, and fingerprints that stay what they were for requests that use none."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checkout.v1 import checkout_service_pb2 as api
from service.domain.commands import (
    ConsentCollection,
    CreateSessionCommand,
    CustomField,
    CustomText,
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
    TextSettings,
    UiMode,
)
from service.domain.create_plan import field_for_stripe_param, fingerprint, plan_create
from service.domain.errors import InvalidRequest
from service.edge import mapping

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# tests/unit/test_create_plan.py pins this digest for the same request, taken before issue 20.
PINNED = "9e60631b2da32114b63ebe566f7f696efe18a1e3fc5e5e7105d93a45f40e5d15"


def command(**overrides: Any) -> CreateSessionCommand:
    fields: dict[str, Any] = {
        "order_id": "order-1",
        "currency": "usd",
        "line_items": (
            LineItemRequest(quantity=2, price_data=PriceData(1500, "T-shirt")),
            LineItemRequest(quantity=1, price_id="price_123"),
        ),
        "success_url": "https://shop.example/done",
    }
    fields.update(overrides)
    return CreateSessionCommand(**fields)


def subscription(**overrides: Any) -> CreateSessionCommand:
    club = PriceData(900, "Club", recurring=Recurring("month"))
    return command(
        mode=Mode.SUBSCRIPTION, line_items=(LineItemRequest(1, price_data=club),), **overrides
    )


def refused_fields(cmd: CreateSessionCommand) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        plan_create(cmd, NOW, caller="shop")
    return [v.field for v in caught.value.violations]


def text_field(key: str = "giftnote", **fields: Any) -> CustomField:
    return CustomField(**{"key": key, "label": "Gift note", "type": "text", **fields})


def dropdown(*values: str, default: str = "") -> CustomField:
    options = tuple(DropdownOption(v.title(), v) for v in values)
    return text_field("size", type="dropdown", dropdown=Dropdown(options, default))


TERMS = ConsentCollection(terms_of_service="required")


# -- fingerprints --


def test_a_request_that_uses_no_new_field_keeps_its_fingerprint() -> None:
    """Rows store fingerprints and later creates compare with them: the fields issue 20 added,
    left unset, must leave the digest of every older request as it was."""
    assert fingerprint(command()) == PINNED
    # As the edge builds it from a request that sets none of them.
    request = api.CreateSessionRequest(
        order_id="order-1",
        currency="usd",
        line_items=[
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(
                    unit_amount=1500, product_name="T-shirt"
                ),
                quantity=2,
            ),
            api.CreateSessionRequest.LineItem(price_id="price_123", quantity=1),
        ],
        success_url="https://shop.example/done",
    )
    assert fingerprint(mapping.create_command(request)) == PINNED
    # The new fields of nested values, given as their defaults, leave it alone too.
    explicit = command(
        line_items=(
            LineItemRequest(
                quantity=2,
                price_data=PriceData(1500, "T-shirt", product_id="", product_metadata={}),
                metadata={},
            ),
            LineItemRequest(quantity=1, price_id="price_123"),
        ),
        custom_fields=(),
        excluded_payment_method_types=(),
        custom_text=None,
        request_three_d_secure=None,
    )
    assert fingerprint(explicit) == PINNED


@pytest.mark.parametrize(
    "overrides",
    [
        {"custom_fields": (text_field(),)},
        {"custom_text": CustomText(submit="Thanks")},
        {"consent_collection": TERMS},
        {"invoice_creation": InvoiceCreation(True)},
        {"recovery": Recovery(True)},
        {"payment_intent_data": PaymentIntentData(description="Order 1")},
        {"saved_payment_method_options": SavedPaymentMethodOptions(payment_method_save=True)},
        {"excluded_payment_method_types": ("klarna",)},
        {"submit_type": "donate"},
        {"name_collection": NameCollection(business=NameField(True))},
        {"request_three_d_secure": "any"},
    ],
    ids=lambda overrides: next(iter(overrides)),
)
def test_each_new_field_counts_in_the_fingerprint(overrides: dict[str, Any]) -> None:
    assert fingerprint(command(**overrides)) != PINNED


def test_line_and_product_references_count_in_the_fingerprint() -> None:
    plain = LineItemRequest(1, price_data=PriceData(500, "Mug"))
    assert fingerprint(command(line_items=(plain,))) != fingerprint(
        command(line_items=(dataclasses.replace(plain, metadata={"sku": "MUG"}),))
    )
    assert fingerprint(command(line_items=(plain,))) != fingerprint(
        command(
            line_items=(
                dataclasses.replace(
                    plain, price_data=PriceData(500, "Mug", product_metadata={"a": "b"})
                ),
            )
        )
    )
    rate = ShippingRateData("Ground", 500)
    assert fingerprint(command(shipping_options=(ShippingOption(shipping_rate_data=rate),))) != (
        fingerprint(
            command(
                shipping_options=(
                    ShippingOption(
                        shipping_rate_data=dataclasses.replace(rate, metadata={"c": "d"})
                    ),
                )
            )
        )
    )
    base = SubscriptionData(description="Club")
    assert fingerprint(subscription(subscription_data=base)) != fingerprint(
        subscription(
            subscription_data=dataclasses.replace(base, trial_missing_payment_method="pause")
        )
    )
    end = NOW + timedelta(days=3)
    assert fingerprint(subscription(subscription_data=base)) != fingerprint(
        subscription(subscription_data=dataclasses.replace(base, trial_end=end))
    )


# -- Stripe's rules --

ELEMENTS = {
    "ui_mode": UiMode.ELEMENTS,
    "success_url": "",
    "allowed_payment_method_types": ("card",),
}
SETUP = {"mode": Mode.SETUP, "line_items": ()}


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {"custom_fields": (text_field("a"), text_field("b"), text_field("c"), text_field("d"))},
            ["custom_fields"],
        ),
        ({**SETUP, "custom_fields": (text_field(),)}, ["custom_fields"]),
        ({**ELEMENTS, "custom_fields": (text_field(),)}, ["custom_fields"]),
        ({"custom_fields": (text_field("gift-note"),)}, ["custom_fields[0].key"]),
        ({"custom_fields": (text_field("k" * 201),)}, ["custom_fields[0].key"]),
        ({"custom_fields": (text_field(), text_field())}, ["custom_fields[1].key"]),
        ({"custom_fields": (text_field(label=" "),)}, ["custom_fields[0].label"]),
        ({"custom_fields": (text_field(label="x" * 101),)}, ["custom_fields[0].label"]),
        ({"custom_fields": (text_field(type=""),)}, ["custom_fields[0].type"]),
        (
            {"custom_fields": (text_field(dropdown=Dropdown((DropdownOption("Red", "red"),))),)},
            ["custom_fields[0].dropdown"],
        ),
        ({"custom_fields": (text_field(numeric=TextSettings()),)}, ["custom_fields[0].numeric"]),
        ({"custom_fields": (dropdown(),)}, ["custom_fields[0].dropdown.options"]),
        ({"custom_fields": (text_field(type="dropdown"),)}, ["custom_fields[0].dropdown.options"]),
        (
            {"custom_fields": (dropdown("red", "red"),)},
            ["custom_fields[0].dropdown.options[1].value"],
        ),
        (
            {"custom_fields": (dropdown("dark-red"),)},
            ["custom_fields[0].dropdown.options[0].value"],
        ),
        (
            {"custom_fields": (dropdown("red", default="green"),)},
            ["custom_fields[0].dropdown.default_value"],
        ),
        (
            {
                "custom_fields": (
                    text_field(text=TextSettings(minimum_length=10, maximum_length=5)),
                )
            },
            ["custom_fields[0].text.minimum_length"],
        ),
        (
            {"custom_fields": (text_field(text=TextSettings(maximum_length=256)),)},
            ["custom_fields[0].text.maximum_length"],
        ),
        (
            {
                "custom_fields": (
                    text_field(type="numeric", numeric=TextSettings(default_value="12a")),
                )
            },
            ["custom_fields[0].numeric.default_value"],
        ),
        ({"custom_text": CustomText(submit="x" * 1201)}, ["custom_text.submit"]),
        ({"custom_text": CustomText(after_submit=" \n")}, ["custom_text.after_submit"]),
        ({**ELEMENTS, "custom_text": CustomText(submit="Hi")}, ["custom_text"]),
        (
            {"custom_text": CustomText(terms_of_service_acceptance="I agree")},
            ["custom_text.terms_of_service_acceptance"],
        ),
        ({**SETUP, "invoice_creation": InvoiceCreation(True)}, ["invoice_creation"]),
        (
            {"mode": Mode.SUBSCRIPTION, "invoice_creation": InvoiceCreation(True)},
            ["invoice_creation"],
        ),
        (
            {
                "invoice_creation": InvoiceCreation(
                    True, InvoiceData(custom_fields=(("a", "b"),) * 5)
                )
            },
            ["invoice_creation.invoice_data.custom_fields"],
        ),
        (
            {
                "invoice_creation": InvoiceCreation(
                    True, InvoiceData(custom_fields=(("n" * 41, "v"),))
                )
            },
            ["invoice_creation.invoice_data.custom_fields[0].name"],
        ),
        (
            {"invoice_creation": InvoiceCreation(True, InvoiceData(custom_fields=(("n", " "),)))},
            ["invoice_creation.invoice_data.custom_fields[0].value"],
        ),
        (
            {"invoice_creation": InvoiceCreation(True, InvoiceData(description="d" * 1501))},
            ["invoice_creation.invoice_data.description"],
        ),
        (
            {"invoice_creation": InvoiceCreation(True, InvoiceData(metadata={"order_id": "x"}))},
            ["invoice_creation.invoice_data.metadata[order_id]"],
        ),
        (
            {
                "invoice_creation": InvoiceCreation(
                    True, InvoiceData(metadata={"checkout_caller": "x"})
                )
            },
            ["invoice_creation.invoice_data.metadata[checkout_caller]"],
        ),
        ({**ELEMENTS, "recovery": Recovery(True)}, ["after_expiration"]),
        (
            {
                "ui_mode": UiMode.EMBEDDED_PAGE,
                "success_url": "",
                "return_url": "https://s.example/r",
                "recovery": Recovery(True),
            },
            ["after_expiration.recovery"],
        ),
        (
            {**SETUP, "payment_intent_data": PaymentIntentData(description="x")},
            ["payment_intent_data"],
        ),
        (
            {"payment_intent_data": PaymentIntentData(description="x" * 1001)},
            ["payment_intent_data.description"],
        ),
        (
            {"payment_intent_data": PaymentIntentData(statement_descriptor_suffix="1234")},
            ["payment_intent_data.statement_descriptor_suffix"],
        ),
        (
            {"payment_intent_data": PaymentIntentData(statement_descriptor_suffix="SHOP*1")},
            ["payment_intent_data.statement_descriptor_suffix"],
        ),
        (
            {"payment_intent_data": PaymentIntentData(statement_descriptor_suffix="X" * 23)},
            ["payment_intent_data.statement_descriptor_suffix"],
        ),
        (
            {"payment_intent_data": PaymentIntentData(receipt_email="nobody")},
            ["payment_intent_data.receipt_email"],
        ),
        (
            {**SETUP, "saved_payment_method_options": SavedPaymentMethodOptions(True)},
            ["saved_payment_method_options"],
        ),
        (
            {
                "customer_id": "cus_1",
                "saved_payment_method_options": SavedPaymentMethodOptions(True),
                "payment_intent_data": PaymentIntentData(setup_future_usage="off_session"),
            },
            ["saved_payment_method_options.payment_method_save"],
        ),
        (
            {
                "saved_payment_method_options": SavedPaymentMethodOptions(
                    allow_redisplay_filters=("always", "always")
                )
            },
            ["saved_payment_method_options.allow_redisplay_filters[1]"],
        ),
        (
            {
                "saved_payment_method_options": SavedPaymentMethodOptions(
                    allow_redisplay_filters=("",)
                )
            },
            ["saved_payment_method_options.allow_redisplay_filters[0]"],
        ),
        (
            {"excluded_payment_method_types": ("klarna", "klarna")},
            ["excluded_payment_method_types[1]"],
        ),
        ({"excluded_payment_method_types": ("Klarna",)}, ["excluded_payment_method_types[0]"]),
        ({**SETUP, "submit_type": "pay"}, ["submit_type"]),
        ({**ELEMENTS, "submit_type": "pay"}, ["submit_type"]),
        (
            {"line_items": (LineItemRequest(1, price_data=PriceData(500, "", product_id=" ")),)},
            ["line_items[0].price_data.product_id"],
        ),
        (
            {
                "line_items": (
                    LineItemRequest(1, price_data=PriceData(500, "Mug", product_id="prod_1")),
                )
            },
            ["line_items[0].price_data.product_id"],
        ),
        (
            {
                "line_items": (
                    LineItemRequest(
                        1,
                        price_data=PriceData(
                            500, "", tax_code="txcd_99999999", product_id="prod_1"
                        ),
                    ),
                )
            },
            ["line_items[0].price_data.product_id"],
        ),
        (
            {"line_items": (LineItemRequest(1, price_data=PriceData(500, "")),)},
            ["line_items[0].price_data"],
        ),
        (
            {"line_items": (LineItemRequest(1, price_data=PriceData(500, " ")),)},
            ["line_items[0].price_data.product_name"],
        ),
        (
            {"line_items": (LineItemRequest(1, price_id="price_1", metadata={"k" * 41: "v"}),)},
            [f"line_items[0].metadata[{'k' * 41}]"],
        ),
        (
            {
                "line_items": (
                    LineItemRequest(
                        1, price_id="price_1", metadata={f"k{i}": "v" for i in range(51)}
                    ),
                )
            },
            ["line_items[0].metadata"],
        ),
        (
            {
                "line_items": (
                    LineItemRequest(
                        1, price_data=PriceData(500, "Mug", product_metadata={"a": "v" * 501})
                    ),
                )
            },
            ["line_items[0].price_data.product_metadata[a]"],
        ),
        (
            {
                "shipping_options": (
                    ShippingOption(
                        shipping_rate_data=ShippingRateData("G", 1, metadata={"a[b]": "v"})
                    ),
                )
            },
            ["shipping_options[0].shipping_rate_data.metadata[a[b]]"],
        ),
    ],
)
def test_refuses_what_stripe_would_refuse_naming_the_field(
    overrides: dict[str, Any], fields: list[str]
) -> None:
    assert refused_fields(command(**overrides)) == fields


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (
            SubscriptionData(trial_end=NOW + timedelta(hours=47, minutes=59)),
            ["subscription_data.trial_end"],
        ),
        (
            SubscriptionData(trial_end=NOW + timedelta(days=730, seconds=1)),
            ["subscription_data.trial_end"],
        ),
        (
            SubscriptionData(trial_period_days=7, trial_end=NOW + timedelta(days=3)),
            ["subscription_data.trial_end"],
        ),
        (
            SubscriptionData(trial_period_days=7, trial_missing_payment_method=""),
            ["subscription_data.trial_settings.missing_payment_method"],
        ),
    ],
)
def test_trials_follow_stripes_rules(data: SubscriptionData, fields: list[str]) -> None:
    assert refused_fields(subscription(subscription_data=data)) == fields


def test_limits_at_their_edges_are_accepted() -> None:
    plan_create(
        command(
            custom_fields=(
                text_field("k" * 200, label="l" * 100, text=TextSettings(0, 255, "d" * 255)),
                dropdown(*(f"v{i}" for i in range(200))),
                text_field("n", type="numeric", numeric=TextSettings(255, 255, "1" * 255)),
            ),
            custom_text=CustomText(submit="s" * 1200),
            invoice_creation=InvoiceCreation(
                True,
                InvoiceData(
                    "d" * 1500,
                    "f" * 5000,
                    (("n" * 40, "v" * 140),) * 4,
                    {f"k{i}": "v" for i in range(48)},
                ),
            ),
            payment_intent_data=PaymentIntentData(
                description="d" * 1000, statement_descriptor_suffix="S" * 22
            ),
            line_items=(
                LineItemRequest(
                    1, price_id="price_1", metadata={f"k{i}": "v" * 500 for i in range(50)}
                ),
            ),
        ),
        NOW,
        caller="shop",
    )
    plan_create(
        subscription(subscription_data=SubscriptionData(trial_end=NOW + timedelta(hours=48))),
        NOW,
        caller="shop",
    )
    plan_create(
        subscription(subscription_data=SubscriptionData(trial_end=NOW + timedelta(days=730))),
        NOW,
        caller="shop",
    )


# -- Stripe's parameters --


def test_every_new_field_becomes_stripes_parameter() -> None:
    cmd = command(
        customer_id="cus_1",
        line_items=(
            LineItemRequest(
                1,
                price_data=PriceData(990, "", product_id="sku_mug_blue"),
                metadata={"sku": "MUG-1"},
            ),
            LineItemRequest(
                2, price_data=PriceData(1500, "T-shirt", product_metadata={"sku": "TS-1"})
            ),
        ),
        shipping_options=(
            ShippingOption(
                shipping_rate_data=ShippingRateData("Ground", 500, metadata={"carrier": "DHL"})
            ),
        ),
        custom_fields=(
            text_field(optional=True, text=TextSettings(maximum_length=140, default_value="Hi")),
            dropdown("s", "m", default="m"),
            text_field("po", type="numeric", label="PO", numeric=TextSettings()),
        ),
        custom_text=CustomText(submit="We ship in 2 days", terms_of_service_acceptance="I agree"),
        consent_collection=ConsentCollection("required", "auto", "hidden"),
        invoice_creation=InvoiceCreation(
            True,
            InvoiceData(
                description="Order 1",
                custom_fields=(("PO", "4711"),),
                metadata={"ledger": "EU"},
                amount_tax_display="include_inclusive_tax",
            ),
        ),
        recovery=Recovery(True, allow_promotion_codes=True),
        payment_intent_data=PaymentIntentData(
            "off_session", "Order 1", "ORDER 1", "ada@shop.example"
        ),
        saved_payment_method_options=SavedPaymentMethodOptions(False, True, ("always", "limited")),
        excluded_payment_method_types=("klarna",),
        submit_type="donate",
        name_collection=NameCollection(
            business=NameField(True, optional=True), individual=NameField(True)
        ),
        request_three_d_secure="any",
    )
    params = plan_create(cmd, NOW, caller="shop").stripe_params

    assert params["line_items"] == [
        {
            "quantity": 1,
            "price_data": {"currency": "usd", "unit_amount": 990, "product": "sku_mug_blue"},
            "metadata": {"sku": "MUG-1"},
        },
        {
            "quantity": 2,
            "price_data": {
                "currency": "usd",
                "unit_amount": 1500,
                "product_data": {"name": "T-shirt", "metadata": {"sku": "TS-1"}},
            },
        },
    ]
    assert params["shipping_options"][0]["shipping_rate_data"]["metadata"] == {"carrier": "DHL"}
    assert params["custom_fields"] == [
        {
            "key": "giftnote",
            "label": {"type": "custom", "custom": "Gift note"},
            "type": "text",
            "optional": True,
            "text": {"maximum_length": 140, "default_value": "Hi"},
        },
        {
            "key": "size",
            "label": {"type": "custom", "custom": "Gift note"},
            "type": "dropdown",
            "dropdown": {
                "options": [{"label": "S", "value": "s"}, {"label": "M", "value": "m"}],
                "default_value": "m",
            },
        },
        {"key": "po", "label": {"type": "custom", "custom": "PO"}, "type": "numeric"},
    ]
    assert params["custom_text"] == {
        "submit": {"message": "We ship in 2 days"},
        "terms_of_service_acceptance": {"message": "I agree"},
    }
    assert params["consent_collection"] == {
        "terms_of_service": "required",
        "promotions": "auto",
        "payment_method_reuse_agreement": {"position": "hidden"},
    }
    # The invoice carries the order and its caller, as the session and its PaymentIntent do.
    assert params["invoice_creation"] == {
        "enabled": True,
        "invoice_data": {
            "metadata": {"ledger": "EU", "order_id": "order-1", "checkout_caller": "shop"},
            "description": "Order 1",
            "custom_fields": [{"name": "PO", "value": "4711"}],
            "rendering_options": {"amount_tax_display": "include_inclusive_tax"},
        },
    }
    assert params["after_expiration"] == {
        "recovery": {"enabled": True, "allow_promotion_codes": True}
    }
    assert params["payment_intent_data"] == {
        "metadata": {"order_id": "order-1", "checkout_caller": "shop"},
        "setup_future_usage": "off_session",
        "description": "Order 1",
        "statement_descriptor_suffix": "ORDER 1",
        "receipt_email": "ada@shop.example",
    }
    assert params["saved_payment_method_options"] == {
        "payment_method_remove": "enabled",
        "allow_redisplay_filters": ["always", "limited"],
    }
    assert params["excluded_payment_method_types"] == ["klarna"]
    assert params["submit_type"] == "donate"
    assert params["name_collection"] == {
        "business": {"enabled": True, "optional": True},
        "individual": {"enabled": True, "optional": False},
    }
    assert params["payment_method_options"] == {"card": {"request_three_d_secure": "any"}}


def test_a_trial_until_a_date_and_what_happens_then() -> None:
    end = NOW + timedelta(days=3)
    data = SubscriptionData(trial_end=end, trial_missing_payment_method="pause")
    params = plan_create(subscription(subscription_data=data), NOW, caller="shop").stripe_params
    assert params["subscription_data"] == {
        "metadata": {"order_id": "order-1", "checkout_caller": "shop"},
        "trial_end": int(end.timestamp()),
        "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
    }


def test_an_invoice_turned_off_is_sent_as_off_and_unset_settings_are_left_out() -> None:
    params = plan_create(
        command(
            invoice_creation=InvoiceCreation(False),
            consent_collection=ConsentCollection(),
            custom_text=CustomText(),
            saved_payment_method_options=SavedPaymentMethodOptions(),
        ),
        NOW,
        caller="shop",
    ).stripe_params
    assert params["invoice_creation"] == {"enabled": False}
    for name in (
        "consent_collection",
        "custom_text",
        "saved_payment_method_options",
        "after_expiration",
    ):
        assert name not in params, name


# -- Stripe's refusals, mapped back --


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("consent_collection[terms_of_service]", "consent_collection.terms_of_service"),
        (
            "consent_collection[payment_method_reuse_agreement][position]",
            "consent_collection.payment_method_reuse_agreement",
        ),
        ("line_items[1][price_data][product]", "line_items[1].price_data.product_id"),
        (
            "line_items[0][price_data][product_data][metadata][sku]",
            "line_items[0].price_data.product_metadata",
        ),
        ("line_items[2][metadata][sku]", "line_items[2].metadata"),
        (
            "shipping_options[0][shipping_rate_data][metadata][c]",
            "shipping_options[0].shipping_rate_data.metadata",
        ),
        ("custom_fields[1][label][custom]", "custom_fields[1].label"),
        (
            "custom_fields[0][dropdown][options][3][value]",
            "custom_fields[0].dropdown.options[3].value",
        ),
        ("custom_fields[0][text][maximum_length]", "custom_fields[0].text.maximum_length"),
        ("custom_text[shipping_address]", "custom_text.shipping_address"),
        ("custom_text[submit][message]", "custom_text.submit"),
        ("invoice_creation", "invoice_creation"),
        (
            "invoice_creation[invoice_data][rendering_options][amount_tax_display]",
            "invoice_creation.invoice_data.amount_tax_display",
        ),
        (
            "invoice_creation[invoice_data][metadata][ledger]",
            "invoice_creation.invoice_data.metadata",
        ),
        ("after_expiration[recovery][enabled]", "after_expiration.recovery.enabled"),
        (
            "payment_intent_data[statement_descriptor_suffix]",
            "payment_intent_data.statement_descriptor_suffix",
        ),
        (
            "saved_payment_method_options[payment_method_save]",
            "saved_payment_method_options.payment_method_save",
        ),
        ("excluded_payment_method_types[0]", "excluded_payment_method_types[0]"),
        ("name_collection[business][enabled]", "name_collection.business.enabled"),
        (
            "payment_method_options[card][request_three_d_secure]",
            "payment_method_options.card.request_three_d_secure",
        ),
        ("subscription_data[trial_end]", "subscription_data.trial_end"),
        (
            "subscription_data[trial_settings][end_behavior][missing_payment_method]",
            "subscription_data.trial_settings.missing_payment_method",
        ),
    ],
)
def test_stripes_refusals_name_the_request_field(param: str, field: str) -> None:
    assert field_for_stripe_param(param) == field
