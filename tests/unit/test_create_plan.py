"""The request → Stripe parameters plan: pure, no I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

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
from service.domain.create_plan import field_for_stripe_param, fingerprint, plan_create
from service.domain.errors import InvalidRequest

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def command(**overrides: object) -> CreateSessionCommand:
    fields: dict[str, object] = {
        "order_id": "order-1",
        "currency": "usd",
        "line_items": (
            LineItemRequest(quantity=2, price_data=PriceData(1500, "T-shirt")),
            LineItemRequest(quantity=1, price_id="price_123"),
        ),
        "success_url": "https://shop.example/done",
    }
    fields.update(overrides)
    return CreateSessionCommand(**fields)  # type: ignore[arg-type]


def refused_fields(cmd: CreateSessionCommand) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        plan_create(cmd, NOW, caller="shop")
    return [v.field for v in caught.value.violations]


def test_builds_stripe_parameters_with_the_order_and_its_caller_everywhere_stripe_shows_it() -> (
    None
):
    plan = plan_create(command(metadata={"cart": "42"}), NOW, caller="shop")

    assert plan.stripe_params == {
        "mode": "payment",
        "ui_mode": "hosted_page",
        "client_reference_id": "order-1",
        "metadata": {"cart": "42", "order_id": "order-1", "checkout_caller": "shop"},
        "expires_at": int((NOW + timedelta(hours=24)).timestamp()),
        # What the ledger keeps and Stripe shows only when expanded.
        "expand": [
            "line_items",
            "line_items.data.taxes",
            "line_items.data.discounts",
            "total_details.breakdown",
        ],
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1500,
                    "product_data": {"name": "T-shirt"},
                },
            },
            {"quantity": 1, "price": "price_123"},
        ],
        "currency": "usd",
        "success_url": "https://shop.example/done",
        "payment_intent_data": {"metadata": {"order_id": "order-1", "checkout_caller": "shop"}},
    }
    assert plan.expires_at == NOW + timedelta(hours=24)


@pytest.mark.parametrize(
    ("mode", "key"),
    [(Mode.SUBSCRIPTION, "subscription_data"), (Mode.SETUP, "setup_intent_data")],
)
def test_the_order_and_its_caller_go_on_the_object_each_mode_creates(mode: Mode, key: str) -> None:
    items = () if mode is Mode.SETUP else command().line_items
    plan = plan_create(command(mode=mode, line_items=items), NOW, caller="billing")
    assert plan.stripe_params[key] == {
        "metadata": {"order_id": "order-1", "checkout_caller": "billing"}
    }
    assert "payment_intent_data" not in plan.stripe_params


def test_fingerprint_ignores_request_id_time_and_caller_but_not_the_cart() -> None:
    base = command()
    assert fingerprint(base) == fingerprint(command(request_id="r-1"))
    assert (
        plan_create(base, NOW, caller="shop").fingerprint
        == plan_create(base, NOW + timedelta(hours=1), caller="shop").fingerprint
        == plan_create(base, NOW, caller="billing").fingerprint
    )
    assert fingerprint(base) != fingerprint(command(currency="eur"))
    assert fingerprint(base) != fingerprint(command(metadata={"a": "b"}))
    assert fingerprint(base) != fingerprint(
        command(line_items=(LineItemRequest(quantity=3, price_id="price_123"),))
    )


def test_currency_is_normalized_to_lowercase() -> None:
    assert (
        plan_create(command(currency="USD"), NOW, caller="shop").stripe_params["currency"] == "usd"
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_id": " "}, "order_id"),
        ({"order_id": "x" * 201}, "order_id"),
        ({"request_id": "r" * 256}, "request_id"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"line_items": ()}, "line_items"),
        ({"line_items": (LineItemRequest(quantity=1),)}, "line_items[0].price_id"),
        ({"line_items": (LineItemRequest(quantity=0, price_id="p"),)}, "line_items[0].quantity"),
        (
            {"line_items": (LineItemRequest(quantity=1, price_data=PriceData(-1, "x")),)},
            "line_items[0].price_data.unit_amount",
        ),
        (
            {"line_items": (LineItemRequest(quantity=1, price_data=PriceData(1, " ")),)},
            "line_items[0].price_data.product_name",
        ),
        ({"line_items": (LineItemRequest(quantity=1, price_id="p"),) * 101}, "line_items"),
        ({"success_url": "/relative"}, "success_url"),
        ({"cancel_url": "ftp://shop.example"}, "cancel_url"),
        ({"return_url": "https://shop.example/r"}, "return_url"),
        ({"ui_mode": UiMode.EMBEDDED_PAGE}, "success_url"),
        ({"ui_mode": UiMode.EMBEDDED_PAGE, "success_url": ""}, "return_url"),
        ({"ui_mode": UiMode.ELEMENTS, "success_url": "", "return_url": "nope"}, "return_url"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"expire_time": NOW + timedelta(minutes=29)}, "expire_time"),
        ({"expire_time": NOW + timedelta(hours=24, seconds=1)}, "expire_time"),
        # Stripe allows 50 keys, and the service adds two.
        ({"metadata": {f"k{i}": "v" for i in range(49)}}, "metadata"),
        ({"metadata": {"order_id": "other"}}, "metadata[order_id]"),
        ({"metadata": {"checkout_caller": "other"}}, "metadata[checkout_caller]"),
        ({"metadata": {"a[b]": "v"}}, "metadata[a[b]]"),
        ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]"),
        ({"metadata": {"k": "v" * 501}}, "metadata[k]"),
        ({"mode": Mode.SETUP}, "line_items"),
        ({"mode": Mode.SETUP, "line_items": (), "currency": ""}, "currency"),
    ],
)
def test_refuses_what_stripe_would_refuse_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    assert field in refused_fields(command(**overrides))


def test_reports_every_bad_field_at_once() -> None:
    fields = refused_fields(command(order_id="", currency="x", success_url="nope"))
    assert fields == ["order_id", "currency", "success_url"]


def test_limits_at_their_edges_are_accepted() -> None:
    plan = plan_create(
        command(
            order_id="o" * 200,
            metadata={f"k{i}": "v" * 500 for i in range(48)},
            expire_time=NOW + timedelta(minutes=30),
        ),
        NOW,
        caller="shop",
    )
    assert len(plan.stripe_params["metadata"]) == 50
    plan_create(command(expire_time=NOW + timedelta(hours=24)), NOW, caller="shop")


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("line_items[1][price]", "line_items[1].price_id"),
        ("line_items[0][quantity]", "line_items[0].quantity"),
        ("line_items[2][price_data][unit_amount]", "line_items[2].price_data.unit_amount"),
        ("line_items[0][price_data][product_data][name]", "line_items[0].price_data.product_name"),
        ("expires_at", "expire_time"),
        ("client_reference_id", "order_id"),
        ("metadata[cart]", "metadata"),
        ("success_url", "success_url"),
        (None, ""),
    ],
)
def test_stripe_params_map_back_to_request_fields(param: str | None, field: str) -> None:
    assert field_for_stripe_param(param) == field


def test_every_feature_becomes_stripes_parameter() -> None:
    cmd = command(
        mode=Mode.SUBSCRIPTION,
        ui_mode=UiMode.EMBEDDED_PAGE,
        success_url="",
        return_url="https://shop.example/r",
        redirect_on_completion="if_required",
        line_items=(
            LineItemRequest(
                quantity=1,
                price_data=PriceData(
                    900,
                    "Plan",
                    "Monthly coffee",
                    ("https://img.example/p.png",),
                    Recurring("month", 1),
                    "exclusive",
                    "txcd_10000000",
                ),
                adjustable_quantity=AdjustableQuantity(True, 1, 5),
                tax_rate_ids=("txr_1",),
            ),
        ),
        customer_id="cus_1",
        customer_update=CustomerUpdate(address=True, name=True),
        billing_address_collection="required",
        phone_number_collection=True,
        locale="de",
        allowed_payment_method_types=("card", "sepa_debit"),
        tax_id_collection=TaxIdCollection(enabled=True, required=True),
        discounts=(Discount(promotion_code="promo_1"),),
        shipping_countries=("DE", "AT"),
        shipping_options=(
            ShippingOption(shipping_rate_id="shr_1"),
            ShippingOption(
                shipping_rate_data=ShippingRateData(
                    "Express", 1500, DeliveryBound("business_day", 1), None, "inclusive"
                )
            ),
        ),
        subscription_data=SubscriptionData(14, "Coffee club", {"plan": "basic"}),
        payment_method_collection="if_required",
        adaptive_pricing=True,
    )
    params = plan_create(cmd, NOW, caller="shop").stripe_params

    assert params["line_items"] == [
        {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": 900,
                "product_data": {
                    "name": "Plan",
                    "description": "Monthly coffee",
                    "images": ["https://img.example/p.png"],
                    "tax_code": "txcd_10000000",
                },
                "recurring": {"interval": "month", "interval_count": 1},
                "tax_behavior": "exclusive",
            },
            "adjustable_quantity": {"enabled": True, "minimum": 1, "maximum": 5},
            "tax_rates": ["txr_1"],
        }
    ]
    assert params["subscription_data"] == {
        "metadata": {"plan": "basic", "order_id": "order-1", "checkout_caller": "shop"},
        "trial_period_days": 14,
        "description": "Coffee club",
    }
    assert params["customer_update"] == {"address": "auto", "name": "auto", "shipping": "never"}
    assert params["tax_id_collection"] == {"enabled": True, "required": "if_supported"}
    assert params["discounts"] == [{"promotion_code": "promo_1"}]
    assert params["shipping_address_collection"] == {"allowed_countries": ["DE", "AT"]}
    assert params["shipping_options"] == [
        {"shipping_rate": "shr_1"},
        {
            "shipping_rate_data": {
                "display_name": "Express",
                "type": "fixed_amount",
                "fixed_amount": {"amount": 1500, "currency": "usd"},
                "delivery_estimate": {"minimum": {"unit": "business_day", "value": 1}},
                "tax_behavior": "inclusive",
            }
        },
    ]
    for name, value in {
        "customer": "cus_1",
        "redirect_on_completion": "if_required",
        "billing_address_collection": "required",
        "phone_number_collection": {"enabled": True},
        "locale": "de",
        "allowed_payment_method_types": ["card", "sepa_debit"],
        "payment_method_collection": "if_required",
        "adaptive_pricing": {"enabled": True},
        "return_url": "https://shop.example/r",
    }.items():
        assert params[name] == value, name
    assert "payment_intent_data" not in params
    assert "allow_promotion_codes" not in params


def test_absent_settings_are_left_to_stripes_defaults() -> None:
    params = plan_create(command(), NOW, caller="shop").stripe_params
    for name in ("automatic_tax", "adaptive_pricing", "phone_number_collection", "locale"):
        assert name not in params


def test_explicitly_off_is_sent_as_off() -> None:
    params = plan_create(
        command(automatic_tax=False, adaptive_pricing=False), NOW, caller="shop"
    ).stripe_params
    assert params["automatic_tax"] == {"enabled": False}
    assert params["adaptive_pricing"] == {"enabled": False}


def test_every_field_counts_in_the_fingerprint() -> None:
    base = fingerprint(command())
    assert fingerprint(command(allow_promotion_codes=True)) != base
    assert fingerprint(command(shipping_countries=("US",))) != base
    assert fingerprint(command(adaptive_pricing=False)) != base
    assert fingerprint(command(adaptive_pricing=False)) != fingerprint(
        command(adaptive_pricing=True)
    )


@pytest.mark.parametrize(
    ("param", "code", "field"),
    [
        ("line_items[0][tax_rates][1]", None, "line_items[0].tax_rate_ids[1]"),
        (
            "line_items[0][price_data][product_data][images][2]",
            None,
            "line_items[0].price_data.product_images[2]",
        ),
        ("shipping_options[1][shipping_rate]", None, "shipping_options[1].shipping_rate_id"),
        (
            "shipping_options[0][shipping_rate_data][fixed_amount][amount]",
            None,
            "shipping_options[0].shipping_rate_data.amount",
        ),
        ("customer", None, "customer_id"),
        ("customer", "customer_tax_location_invalid", "customer_update"),
        ("discounts[0][coupon]", "resource_missing", "discounts[0].coupon"),
        ("subscription_data[metadata][x]", None, "subscription_data.metadata"),
        # Stripe names no param for a total outside the charge limits: it is the lines'.
        (None, "amount_too_small", "line_items"),
        (None, "amount_too_large", "line_items"),
        (None, "invalid_charge_amount", "line_items"),
        (None, "resource_missing", ""),
    ],
)
def test_stripe_refusals_of_features_map_to_request_fields(
    param: str | None, code: str | None, field: str
) -> None:
    assert field_for_stripe_param(param, code) == field


def inline(unit_amount: int, quantity: int = 1, **extra: object) -> LineItemRequest:
    return LineItemRequest(
        quantity=quantity,
        price_data=PriceData(unit_amount, "Item"),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("currency", "items"),
    [
        ("usd", (inline(49),)),
        ("usd", (inline(20), inline(29))),
        ("gbp", (inline(29),)),
        ("jpy", (inline(49),)),
        ("huf", (inline(17499),)),
        ("usd", (inline(99_999_999, 2),)),
        ("inr", (inline(99_999_999, 11),)),
        ("kwd", (inline(1005),)),
        ("isk", (inline(12345),)),
    ],
)
def test_a_total_stripe_cannot_charge_is_refused_on_line_items(
    currency: str, items: tuple[LineItemRequest, ...]
) -> None:
    assert refused_fields(command(currency=currency, line_items=items)) == ["line_items"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"currency": "usd", "line_items": (inline(50),)},
        {"currency": "usd", "line_items": (inline(25), inline(25))},
        {"currency": "usd", "line_items": (inline(99_999_999),)},
        {"currency": "gbp", "line_items": (inline(30),)},
        {"currency": "jpy", "line_items": (inline(50),)},
        {"currency": "kwd", "line_items": (inline(1010),)},
        {"currency": "isk", "line_items": (inline(12300),)},
        {"currency": "idr", "line_items": (inline(99_999_999, 100),)},
        # Nothing due is no charge.
        {"currency": "usd", "line_items": (inline(0),)},
        # Outside Stripe's table the minimum follows the day's rate: Stripe's to judge.
        {"currency": "krw", "line_items": (inline(1),)},
        # Only Stripe knows the total: a price by id, a discount, a code the customer may type,
        # a quantity the customer may change.
        {"currency": "usd", "line_items": (inline(1), LineItemRequest(1, price_id="price_1"))},
        {"currency": "usd", "line_items": (inline(1),), "discounts": (Discount(coupon="c"),)},
        {"currency": "usd", "line_items": (inline(1),), "allow_promotion_codes": True},
        {
            "currency": "usd",
            "line_items": (inline(1, adjustable_quantity=AdjustableQuantity(True, 1, 99)),),
        },
        # Shipping and tax may lift the total over the minimum.
        {
            "currency": "usd",
            "line_items": (inline(10),),
            "shipping_options": (ShippingOption(shipping_rate_id="shr_1"),),
        },
        {"currency": "usd", "line_items": (inline(10, tax_rate_ids=("txr_1",)),)},
        {"currency": "usd", "line_items": (inline(10),), "automatic_tax": True},
        # In a subscription a trial may make the total 0.
        {
            "currency": "usd",
            "mode": Mode.SUBSCRIPTION,
            "line_items": (
                LineItemRequest(1, price_data=PriceData(10, "Club", recurring=Recurring("month"))),
            ),
        },
    ],
)
def test_a_total_stripe_may_charge_or_only_stripe_knows_is_left_to_stripe(
    overrides: dict[str, object],
) -> None:
    plan_create(command(**overrides), NOW, caller="shop")


def test_shipping_and_tax_only_add_so_over_the_maximum_is_known() -> None:
    over = command(
        line_items=(inline(99_999_999, 2),),
        shipping_options=(ShippingOption(shipping_rate_id="shr_1"),),
        automatic_tax=True,
    )
    assert refused_fields(over) == ["line_items"]


@pytest.mark.parametrize("currency", ["jpy", "kwd", "bhd", "isk", "ugx", "xof", "inr", "idr"])
def test_stripes_presentment_currencies_are_taken(currency: str) -> None:
    plan_create(command(currency=currency, line_items=(inline(100_000),)), NOW, caller="shop")


@pytest.mark.parametrize("currency", ["xyz", "usx", "eu"])
def test_other_currencies_are_refused(currency: str) -> None:
    assert refused_fields(command(currency=currency)) == ["currency"]


@pytest.mark.parametrize(
    ("interval", "longest"), [("day", 1095), ("week", 156), ("month", 36), ("year", 3)]
)
def test_recurring_prices_may_bill_up_to_every_three_years(interval: str, longest: int) -> None:
    def every(count: int) -> CreateSessionCommand:
        price = PriceData(900, "Club", recurring=Recurring(interval, count))
        return command(mode=Mode.SUBSCRIPTION, line_items=(LineItemRequest(1, price_data=price),))

    plan_create(every(longest), NOW, caller="shop")
    assert refused_fields(every(longest + 1)) == [
        "line_items[0].price_data.recurring.interval_count"
    ]


ELEMENTS = {"ui_mode": UiMode.ELEMENTS, "success_url": ""}


@pytest.mark.parametrize(
    "overrides",
    [
        # Without a list the Dashboard's methods are offered, which may redirect (strict).
        ELEMENTS,
        {**ELEMENTS, "allowed_payment_method_types": ("card", "ideal")},
        {**ELEMENTS, "allowed_payment_method_types": ("klarna",)},
        {"ui_mode": UiMode.EMBEDDED_PAGE, "success_url": ""},
    ],
)
def test_return_url_is_required_where_the_customer_may_be_redirected(
    overrides: dict[str, object],
) -> None:
    assert refused_fields(command(**overrides)) == ["return_url"]
    fixed = plan_create(
        command(**overrides, return_url="https://shop.example/r"), NOW, caller="shop"
    )
    assert fixed.stripe_params["return_url"] == "https://shop.example/r"


def test_elements_that_may_redirect_cannot_be_told_never_to() -> None:
    # redirect_on_completion does not turn off Elements' redirect-based methods.
    never = command(**ELEMENTS, redirect_on_completion="never")
    assert refused_fields(never) == ["return_url"]
    plan_create(
        dataclasses.replace(never, allowed_payment_method_types=("card",)), NOW, caller="shop"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {**ELEMENTS, "allowed_payment_method_types": ("card",)},
        {**ELEMENTS, "allowed_payment_method_types": ("card", "link", "sepa_debit")},
        {"ui_mode": UiMode.EMBEDDED_PAGE, "success_url": "", "redirect_on_completion": "never"},
    ],
)
def test_return_url_is_not_required_where_nothing_redirects(overrides: dict[str, object]) -> None:
    assert "return_url" not in plan_create(command(**overrides), NOW, caller="shop").stripe_params


def test_the_default_tax_behavior_goes_on_inline_prices_that_give_none() -> None:
    cmd = command(
        line_items=(
            LineItemRequest(1, price_data=PriceData(1500, "T-shirt")),
            LineItemRequest(1, price_data=PriceData(990, "Mug", tax_behavior="inclusive")),
            LineItemRequest(1, price_id="price_123"),
        ),
        automatic_tax=True,
    )
    with_default = plan_create(
        cmd, NOW, default_tax_behavior="exclusive", caller="shop"
    ).stripe_params
    without = plan_create(cmd, NOW, caller="shop").stripe_params

    assert [li.get("price_data", {}).get("tax_behavior") for li in with_default["line_items"]] == [
        "exclusive",
        "inclusive",
        None,
    ]
    assert [li.get("price_data", {}).get("tax_behavior") for li in without["line_items"]] == [
        None,
        "inclusive",
        None,
    ]


def test_fingerprints_stay_what_they_were() -> None:
    """Ledger rows keep the fingerprint of the request that made them and later calls, maybe
    from a newer release, compare with it: a change here would make every open session look
    like another cart's, and be expired and made again. These digests were taken before the
    fingerprint was made faster; they change only on purpose, with the fields of a request."""
    rich = CreateSessionCommand(
        order_id="order-9",
        request_id="req-1",
        mode=Mode.SUBSCRIPTION,
        ui_mode=UiMode.EMBEDDED_PAGE,
        currency="eur",
        line_items=(
            LineItemRequest(
                quantity=2,
                price_data=PriceData(
                    1500,
                    "Plan",
                    "Monthly",
                    ("https://img.example/a.png",),
                    Recurring("month", 1),
                    "exclusive",
                    "txcd_10000000",
                ),
                adjustable_quantity=AdjustableQuantity(True, 1, 5),
                tax_rate_ids=("txr_1",),
            ),
            LineItemRequest(quantity=1, price_id="price_123"),
        ),
        return_url="https://shop.example/back",
        customer_email="a@example.com",
        expire_time=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        metadata={"cart": "c-1", "a": "b"},
        redirect_on_completion="if_required",
        billing_address_collection="required",
        phone_number_collection=False,
        locale="fr",
        allowed_payment_method_types=("card",),
        automatic_tax=True,
        tax_id_collection=TaxIdCollection(True, True),
        customer_update=CustomerUpdate(address=True),
        discounts=(Discount(coupon="c1"),),
        shipping_countries=("FR", "DE"),
        shipping_options=(
            ShippingOption(
                shipping_rate_data=ShippingRateData(
                    "Post", 500, DeliveryBound("day", 2), DeliveryBound("day", 5), "inclusive"
                )
            ),
            ShippingOption(shipping_rate_id="shr_1"),
        ),
        subscription_data=SubscriptionData(7, "Trial", {"k": "v"}),
        payment_method_collection="if_required",
        adaptive_pricing=True,
    )

    assert fingerprint(rich) == "4203cc58921d1f6cf4f13991332c06ec4534f167c317546070388ed76de98336"
    assert fingerprint(command()) == (
        "9e60631b2da32114b63ebe566f7f696efe18a1e3fc5e5e7105d93a45f40e5d15"
    )


def test_a_manual_capture_is_asked_of_the_payment_intent_and_counts_in_the_fingerprint() -> None:
    manual = command(capture_method="manual")

    plan = plan_create(manual, NOW, caller="shop")

    assert plan.stripe_params["payment_intent_data"] == {
        "metadata": {"order_id": "order-1", "checkout_caller": "shop"},
        "capture_method": "manual",
    }
    assert (
        "capture_method"
        not in plan_create(command(capture_method="automatic"), NOW, caller="shop").stripe_params[
            "payment_intent_data"
        ]
    )
    assert (
        len(
            {
                fingerprint(command()),
                fingerprint(manual),
                fingerprint(command(capture_method="automatic")),
            }
        )
        == 3
    )
