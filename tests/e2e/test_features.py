"""Every Checkout feature through the contract, end to end: gRPC → service → stripe-python →
sandbox, with the numbers Checkout computes (the README's "Every Checkout feature")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import grpc
import pytest
import stripe

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id, reason, violated_fields

Req = api.CreateSessionRequest


def line(amount: int, name: str, quantity: int = 1, **extra: Any) -> Req.LineItem:
    price_fields = {k: extra.pop(k) for k in ("recurring", "tax_behavior") if k in extra}
    return Req.LineItem(
        price_data=Req.PriceData(unit_amount=amount, product_name=name, **price_fields),
        quantity=quantity,
        **extra,
    )


def monthly() -> Req.Recurring:
    return Req.Recurring(interval=Req.Recurring.MONTH)


async def coupon(sandbox: Sandbox, percent: float) -> stripe.Coupon:
    return await sandbox.client.v1.coupons.create_async(
        {"percent_off": percent, "duration": "once"}
    )


async def tax_rate(sandbox: Sandbox, percentage: float, inclusive: bool) -> stripe.TaxRate:
    return await sandbox.client.v1.tax_rates.create_async(
        {"display_name": "Sales tax", "percentage": percentage, "inclusive": inclusive}
    )


async def test_each_ui_mode_returns_its_own_redirect_field(stub: Stub) -> None:
    hosted = (await stub.CreateSession(cart_request(new_order_id()))).session
    embedded = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                ui_mode=pb.Session.EMBEDDED_PAGE,
                success_url="",
                return_url="https://shop.example/return?session={CHECKOUT_SESSION_ID}",
            )
        )
    ).session
    # Cards never leave the page, so Elements offering only them needs no return_url.
    elements = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                ui_mode=pb.Session.ELEMENTS,
                success_url="",
                allowed_payment_method_types=["card"],
            )
        )
    ).session
    elements_redirecting = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                ui_mode=pb.Session.ELEMENTS,
                success_url="",
                allowed_payment_method_types=["card", "ideal"],
                return_url="https://shop.example/return?session={CHECKOUT_SESSION_ID}",
            )
        )
    ).session

    assert (hosted.url != "", hosted.client_secret) == (True, "")
    assert (embedded.url, embedded.client_secret.startswith(embedded.id)) == ("", True)
    assert embedded.return_url == "https://shop.example/return?session={CHECKOUT_SESSION_ID}"
    assert (elements.url, elements.client_secret.startswith(elements.id)) == ("", True)
    assert elements.return_url == ""
    assert elements_redirecting.client_secret.startswith(elements_redirecting.id)
    assert elements_redirecting.return_url == embedded.return_url
    assert [s.ui_mode for s in (hosted, embedded, elements)] == [
        pb.Session.HOSTED_PAGE,
        pb.Session.EMBEDDED_PAGE,
        pb.Session.ELEMENTS,
    ]


async def test_an_embedded_page_that_never_redirects_needs_no_return_url(stub: Stub) -> None:
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                ui_mode=pb.Session.EMBEDDED_PAGE,
                success_url="",
                redirect_on_completion=Req.REDIRECT_ON_COMPLETION_NEVER,
            )
        )
    ).session
    assert session.client_secret
    assert session.return_url == ""


async def test_a_subscription_with_a_14_day_trial(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    response = await stub.CreateSession(
        cart_request(
            order_id,
            mode=pb.Session.SUBSCRIPTION,
            line_items=[line(900, "Coffee club", recurring=monthly()), line(1500, "Mug")],
            subscription_data=Req.SubscriptionData(
                trial_period_days=14, description="Coffee club", metadata={"plan": "basic"}
            ),
            payment_method_collection=Req.PAYMENT_METHOD_COLLECTION_IF_REQUIRED,
        )
    )

    session = response.session
    assert session.mode == pb.Session.SUBSCRIPTION
    assert (session.url != "", session.client_secret) == (True, "")
    assert [li.description for li in session.line_items] == ["Coffee club", "Mug"]
    [at_stripe] = await sandbox.sessions_for(order_id)
    assert at_stripe.mode == "subscription"


async def test_a_subscription_priced_by_an_existing_recurring_price(
    stub: Stub, sandbox: Sandbox
) -> None:
    price = await sandbox.client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "year"},
            "product_data": {"name": "Annual plan"},
        }
    )
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                mode=pb.Session.SUBSCRIPTION,
                line_items=[Req.LineItem(price_id=price.id, quantity=1)],
            )
        )
    ).session
    assert [(li.price_id, li.amount_total) for li in session.line_items] == [(price.id, 1200)]


async def test_a_recurring_price_in_payment_mode_is_refused_as_stripe_refuses_it(
    stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    price = await sandbox.client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Monthly"},
        }
    )
    order_id = new_order_id()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(
            cart_request(order_id, line_items=[Req.LineItem(price_id=price.id, quantity=1)])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(caught.value) == "STRIPE_REFUSED"
    assert violated_fields(caught.value) == ["line_items[0]"]
    assert "subscription" in str(caught.value.details())
    rows = await db.fetchval("SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id)
    assert rows == 0


async def test_setup_mode_saves_a_payment_method_and_charges_nothing(stub: Stub) -> None:
    session = (
        await stub.CreateSession(
            api.CreateSessionRequest(
                order_id=new_order_id(),
                mode=pb.Session.SETUP,
                currency="eur",
                success_url="https://shop.example/saved",
                customer_creation=Req.CUSTOMER_CREATION_ALWAYS,
            )
        )
    ).session
    assert session.mode == pb.Session.SETUP
    assert session.payment_status == pb.Session.NO_PAYMENT_REQUIRED
    assert not session.HasField("amount_total")
    assert list(session.line_items) == []


async def test_the_worked_cart_gives_checkouts_totals_field_by_field(
    stub: Stub, sandbox: Sandbox
) -> None:
    """2 x 15.00 + 1 x 9.90 USD, a 10 % coupon, a 5.00 shipping rate and an exclusive 8.25 %
    tax rate on each line: the README's worked example."""
    ten_percent = await coupon(sandbox, 10)
    shipping = await sandbox.client.v1.shipping_rates.create_async(
        {
            "display_name": "Ground",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 500, "currency": "usd"},
        }
    )
    sales_tax = await tax_rate(sandbox, 8.25, inclusive=False)
    rates = [sales_tax.id]

    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                line_items=[
                    line(1500, "T-shirt", 2, tax_rate_ids=rates),
                    line(990, "Mug", 1, tax_rate_ids=rates),
                ],
                discounts=[Req.Discount(coupon=ten_percent.id)],
                shipping_address_collection=Req.ShippingAddressCollection(
                    allowed_countries=["US", "CA"]
                ),
                shipping_options=[Req.ShippingOption(shipping_rate_id=shipping.id)],
            )
        )
    ).session

    totals = session.total_details
    assert session.amount_subtotal == 3990
    assert totals.amount_discount == 399  # 10 % of 3990, rounded half up
    assert totals.amount_shipping == 500
    # 8.25 % of each discounted line, rounded per line: 8.25 % of 2700 = 222.75 → 223 and
    # 8.25 % of 891 = 73.51 → 74. Manual rates on line items do not tax shipping.
    assert totals.amount_tax == 297
    assert session.amount_total == 3990 - 399 + 500 + 297 == 4388
    assert [
        (li.description, li.amount_subtotal, li.amount_discount, li.amount_tax, li.amount_total)
        for li in session.line_items
    ] == [("T-shirt", 3000, 300, 223, 2923), ("Mug", 990, 99, 74, 965)]
    assert session.shipping_cost == pb.ShippingCost(
        shipping_rate_id=shipping.id, amount_subtotal=500, amount_tax=0, amount_total=500
    )
    assert list(session.discount_ids) == [ten_percent.id]


async def test_inclusive_tax_is_carved_out_of_the_price(stub: Stub, sandbox: Sandbox) -> None:
    vat = await tax_rate(sandbox, 20, inclusive=True)
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                currency="eur",
                line_items=[line(1200, "Book", 1, tax_rate_ids=[vat.id])],
            )
        )
    ).session
    assert (session.amount_subtotal, session.amount_total) == (1200, 1200)
    assert session.total_details.amount_tax == 200  # 1200 - 1200 / 1.2


async def test_a_promotion_code_discounts_and_allow_promotion_codes_is_accepted(
    stub: Stub, sandbox: Sandbox
) -> None:
    five_off = await sandbox.client.v1.coupons.create_async(
        {"amount_off": 500, "currency": "usd", "duration": "once"}
    )
    promo = await sandbox.client.v1.promotion_codes.create_async(
        {
            "promotion": {"type": "coupon", "coupon": five_off.id},
            "code": f"SAVE{uuid.uuid4().hex[:6]}",
        }
    )
    discounted = (
        await stub.CreateSession(
            cart_request(new_order_id(), discounts=[Req.Discount(promotion_code=promo.id)])
        )
    ).session
    open_to_codes = (
        await stub.CreateSession(cart_request(new_order_id(), allow_promotion_codes=True))
    ).session

    assert discounted.total_details.amount_discount == 500
    assert discounted.amount_total == 3990 - 500
    assert list(discounted.discount_ids) == [promo.id]
    assert open_to_codes.total_details.amount_discount == 0


async def test_inline_shipping_rates_the_first_is_selected(stub: Stub) -> None:
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["DE"]),
                shipping_options=[
                    Req.ShippingOption(
                        shipping_rate_data=Req.ShippingRateData(
                            display_name="Standard",
                            amount=500,
                            delivery_estimate=Req.DeliveryEstimate(
                                minimum=Req.DeliveryBound(
                                    unit=Req.DeliveryBound.BUSINESS_DAY, value=2
                                ),
                                maximum=Req.DeliveryBound(
                                    unit=Req.DeliveryBound.BUSINESS_DAY, value=5
                                ),
                            ),
                        )
                    ),
                    Req.ShippingOption(
                        shipping_rate_data=Req.ShippingRateData(display_name="Express", amount=1500)
                    ),
                ],
            )
        )
    ).session
    assert session.total_details.amount_shipping == 500
    assert session.amount_total == 3990 + 500
    assert session.shipping_cost.shipping_rate_id.startswith("shr_")


async def test_an_existing_customer_and_customer_settings(stub: Stub, sandbox: Sandbox) -> None:
    customer = await sandbox.client.v1.customers.create_async(
        {
            "email": "ada@example.com",
            "address": {"country": "US", "postal_code": "94103", "line1": "1 Main St"},
        }
    )
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                customer_id=customer.id,
                customer_update=Req.CustomerUpdate(address=True, name=True),
                automatic_tax=Req.AutomaticTax(enabled=True),
                tax_id_collection=Req.TaxIdCollection(enabled=True),
                billing_address_collection=Req.BILLING_ADDRESS_COLLECTION_REQUIRED,
                phone_number_collection=Req.PhoneNumberCollection(enabled=True),
                locale="fr",
                allowed_payment_method_types=["card", "link"],
                adaptive_pricing=Req.AdaptivePricing(enabled=True),
            )
        )
    ).session
    assert session.customer_id == customer.id
    assert session.status == pb.Session.OPEN
    assert not session.HasField("presentment_details")  # known once the customer pays


async def test_automatic_tax_for_a_customer_without_address_needs_customer_update(
    stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    customer = await sandbox.client.v1.customers.create_async({"email": "no-address@example.com"})
    order_id = new_order_id()
    request = cart_request(
        order_id, customer_id=customer.id, automatic_tax=Req.AutomaticTax(enabled=True)
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(request)
    request.customer_update.shipping = True
    fixed = await stub.CreateSession(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["customer_update"]
    assert fixed.session.status == pb.Session.OPEN
    rows = await db.fetchval("SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id)
    assert rows == 1


async def test_the_order_and_its_caller_go_into_stripe_and_count_against_the_metadata_limit(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    caller_keys = {f"k{i}": "v" for i in range(48)}
    session = (await stub.CreateSession(cart_request(order_id, metadata=caller_keys))).session
    [at_stripe] = await sandbox.sessions_for(order_id)
    ours = {"order_id": order_id, "checkout_caller": "local"}

    assert dict(session.metadata) == {**caller_keys, **ours}
    assert at_stripe.client_reference_id == order_id
    assert at_stripe.metadata is not None
    assert at_stripe.metadata.to_dict() == {**caller_keys, **ours}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(cart_request(order_id, metadata={**caller_keys, "one": "more"}))
    assert violated_fields(caught.value) == ["metadata"]


def _bad(**overrides: Any) -> Callable[[str], Req]:
    return lambda order_id: cart_request(order_id, **overrides)


# Each of Stripe's rules for the features above, refused by the service itself.
REFUSALS: list[tuple[str, Callable[[str], Req], str]] = [
    (
        "discounts with allow_promotion_codes",
        _bad(discounts=[Req.Discount(coupon="c")], allow_promotion_codes=True),
        "discounts",
    ),
    (
        "two discounts",
        _bad(discounts=[Req.Discount(coupon="a"), Req.Discount(coupon="b")]),
        "discounts",
    ),
    ("a discount with neither", _bad(discounts=[Req.Discount()]), "discounts[0]"),
    (
        "six shipping options",
        _bad(shipping_options=[Req.ShippingOption(shipping_rate_id="shr_x")] * 6),
        "shipping_options",
    ),
    (
        "a shipping rate without a name",
        _bad(
            shipping_options=[
                Req.ShippingOption(shipping_rate_data=Req.ShippingRateData(amount=100))
            ]
        ),
        "shipping_options[0].shipping_rate_data.display_name",
    ),
    (
        "no countries to ship to",
        _bad(shipping_address_collection=Req.ShippingAddressCollection()),
        "shipping_address_collection.allowed_countries",
    ),
    (
        "a country that is not ISO",
        _bad(shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["usa"])),
        "shipping_address_collection.allowed_countries[0]",
    ),
    (
        "redirect_on_completion on a hosted page",
        _bad(redirect_on_completion=Req.REDIRECT_ON_COMPLETION_IF_REQUIRED),
        "redirect_on_completion",
    ),
    (
        "return_url when never redirecting",
        _bad(
            ui_mode=pb.Session.EMBEDDED_PAGE,
            success_url="",
            return_url="https://shop.example/r",
            redirect_on_completion=Req.REDIRECT_ON_COMPLETION_NEVER,
        ),
        "return_url",
    ),
    (
        "cancel_url with Elements",
        _bad(ui_mode=pb.Session.ELEMENTS, success_url="", cancel_url="https://x.example"),
        "cancel_url",
    ),
    ("return_url on a hosted page", _bad(return_url="https://shop.example/r"), "return_url"),
    (
        "subscription_data in payment mode",
        _bad(subscription_data=Req.SubscriptionData(trial_period_days=14)),
        "subscription_data",
    ),
    (
        "payment_method_collection in payment mode",
        _bad(payment_method_collection=Req.PAYMENT_METHOD_COLLECTION_IF_REQUIRED),
        "payment_method_collection",
    ),
    (
        "customer_creation in subscription mode",
        _bad(
            mode=pb.Session.SUBSCRIPTION,
            line_items=[line(900, "Plan", recurring=monthly())],
            customer_creation=Req.CUSTOMER_CREATION_ALWAYS,
        ),
        "customer_creation",
    ),
    (
        "a recurring inline price in payment mode",
        _bad(line_items=[line(900, "Plan", recurring=monthly())]),
        "line_items[0].price_data.recurring",
    ),
    (
        "a subscription of one-time prices only",
        _bad(mode=pb.Session.SUBSCRIPTION),
        "line_items",
    ),
    (
        "a trial of 731 days",
        _bad(
            mode=pb.Session.SUBSCRIPTION,
            line_items=[line(900, "Plan", recurring=monthly())],
            subscription_data=Req.SubscriptionData(trial_period_days=731),
        ),
        "subscription_data.trial_period_days",
    ),
    (
        "a recurring price without interval",
        _bad(
            mode=pb.Session.SUBSCRIPTION,
            line_items=[line(900, "Plan", recurring=Req.Recurring())],
        ),
        "line_items[0].price_data.recurring.interval",
    ),
    (
        "line items in setup mode",
        _bad(mode=pb.Session.SETUP),
        "line_items",
    ),
    (
        "setup mode without a currency",
        lambda o: Req(order_id=o, mode=pb.Session.SETUP, success_url="https://x.example"),
        "currency",
    ),
    (
        "customer_id with customer_email",
        _bad(customer_id="cus_1", customer_email="a@b.example"),
        "customer_email",
    ),
    (
        "customer_update without a customer",
        _bad(customer_update=Req.CustomerUpdate(address=True)),
        "customer_update",
    ),
    (
        "tax ids for an existing customer without saving the name",
        _bad(customer_id="cus_1", tax_id_collection=Req.TaxIdCollection(enabled=True)),
        "customer_update.name",
    ),
    (
        "required tax ids with Elements",
        _bad(
            ui_mode=pb.Session.ELEMENTS,
            success_url="",
            tax_id_collection=Req.TaxIdCollection(enabled=True, required=True),
        ),
        "tax_id_collection.required",
    ),
    (
        "manual tax rates with automatic tax",
        _bad(
            automatic_tax=Req.AutomaticTax(enabled=True),
            line_items=[line(900, "Mug", tax_rate_ids=["txr_1"])],
        ),
        "line_items[0].tax_rate_ids",
    ),
    (
        "six tax rates on a line",
        _bad(line_items=[line(900, "Mug", tax_rate_ids=[f"txr_{i}" for i in range(6)])]),
        "line_items[0].tax_rate_ids",
    ),
    (
        "an adjustable quantity with minimum above maximum",
        _bad(
            line_items=[
                line(
                    900,
                    "Mug",
                    2,
                    adjustable_quantity=Req.AdjustableQuantity(enabled=True, minimum=5, maximum=3),
                )
            ]
        ),
        "line_items[0].adjustable_quantity.minimum",
    ),
    (
        "a quantity outside its adjustable bounds",
        _bad(
            line_items=[
                line(
                    900,
                    "Mug",
                    10,
                    adjustable_quantity=Req.AdjustableQuantity(enabled=True, minimum=1, maximum=5),
                )
            ]
        ),
        "line_items[0].quantity",
    ),
    (
        "nine product images",
        _bad(
            line_items=[
                Req.LineItem(
                    price_data=Req.PriceData(
                        unit_amount=100,
                        product_name="Mug",
                        product_images=[f"https://img.example/{i}.png" for i in range(9)],
                    ),
                    quantity=1,
                )
            ]
        ),
        "line_items[0].price_data.product_images",
    ),
    ("an unknown locale", _bad(locale="klingon"), "locale"),
    (
        "a payment method type that is not one",
        _bad(allowed_payment_method_types=["Credit Card"]),
        "allowed_payment_method_types[0]",
    ),
    (
        "49 subscription metadata keys plus the order id and the caller",
        _bad(
            mode=pb.Session.SUBSCRIPTION,
            line_items=[line(900, "Plan", recurring=monthly())],
            subscription_data=Req.SubscriptionData(metadata={f"k{i}": "v" for i in range(49)}),
        ),
        "subscription_data.metadata",
    ),
    (
        "Elements offering a redirect-based method without return_url",
        _bad(ui_mode=pb.Session.ELEMENTS, success_url="", allowed_payment_method_types=["ideal"]),
        "return_url",
    ),
    (
        "Elements with the Dashboard's methods without return_url",
        _bad(ui_mode=pb.Session.ELEMENTS, success_url=""),
        "return_url",
    ),
    # Stripe's charge limits, when the total is known before asking Stripe.
    (
        "a total under the minimum charge",
        _bad(line_items=[line(30, "Pen"), line(19, "Clip")]),
        "line_items",
    ),
    (
        "a total under GBP's minimum",
        _bad(currency="gbp", line_items=[line(29, "Pen")]),
        "line_items",
    ),
    (
        "a total over the maximum charge",
        _bad(line_items=[line(99_999_999, "Yacht", quantity=2)]),
        "line_items",
    ),
    (
        "a three-decimal total that is not in tens",
        _bad(currency="kwd", line_items=[line(1005, "Tea")]),
        "line_items",
    ),
    ("a currency Stripe does not present", _bad(currency="xyz"), "currency"),
    (
        "a price billed every 37 months",
        _bad(
            mode=pb.Session.SUBSCRIPTION,
            line_items=[
                line(
                    900,
                    "Club",
                    recurring=Req.Recurring(interval=Req.Recurring.MONTH, interval_count=37),
                )
            ],
        ),
        "line_items[0].price_data.recurring.interval_count",
    ),
]


@pytest.mark.parametrize(("case", "build", "field"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_stripes_rules_are_refused_naming_the_field_with_nothing_written(
    stub: Stub,
    db: asyncpg.Pool,
    sandbox: Sandbox,
    case: str,
    build: Callable[[str], Req],
    field: str,
) -> None:
    rows_before = await db.fetchval("SELECT count(*) FROM checkout_sessions")
    posts_before = sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(build(new_order_id()))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violated_fields(caught.value)
    assert reason(caught.value) == "INVALID_REQUEST"  # refused by us, before Stripe
    assert await db.fetchval("SELECT count(*) FROM checkout_sessions") == rows_before
    assert sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0) == posts_before


async def test_line_item_options_reach_stripe(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    session = (
        await stub.CreateSession(
            cart_request(
                order_id,
                line_items=[
                    Req.LineItem(
                        price_data=Req.PriceData(
                            unit_amount=1500,
                            product_name="T-shirt",
                            product_description="Organic cotton",
                            product_images=["https://img.example/shirt.png"],
                            tax_behavior=Req.PriceData.EXCLUSIVE,
                            tax_code="txcd_99999999",
                        ),
                        quantity=2,
                        adjustable_quantity=Req.AdjustableQuantity(
                            enabled=True, minimum=1, maximum=10
                        ),
                    )
                ],
            )
        )
    ).session

    items = await sandbox.client.v1.checkout.sessions.line_items.list_async(session.id)
    [item] = items.data
    assert item.adjustable_quantity is not None
    assert (item.adjustable_quantity.minimum, item.adjustable_quantity.maximum) == (1, 10)
    assert item.price is not None
    assert item.price.tax_behavior == "exclusive"
    product = await sandbox.client.v1.products.retrieve_async(str(item.price.product))
    assert (product.description, product.images, product.tax_code) == (
        "Organic cotton",
        ["https://img.example/shirt.png"],
        "txcd_99999999",
    )
    assert [(li.description, li.quantity, li.amount_total) for li in session.line_items] == [
        ("T-shirt", 2, 3000)
    ]
