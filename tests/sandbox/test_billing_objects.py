"""Coupons, promotion codes, shipping rates, tax rates and customers: created, fetched and
listed through stripe-python, and resolvable from Checkout Sessions."""

import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import ids


async def test_coupons(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    percent = await client.v1.coupons.create_async(
        {"percent_off": 12.5, "duration": "repeating", "duration_in_months": 3, "name": "Spring"}
    )
    assert isinstance(percent, stripe.Coupon)
    assert (percent.percent_off, percent.amount_off, percent.duration, percent.valid) == (
        12.5,
        None,
        "repeating",
        True,
    )
    fixed = await client.v1.coupons.create_async(
        {"id": "FIVEOFF", "amount_off": 500, "currency": "usd"}
    )
    assert (fixed.id, fixed.amount_off, fixed.currency, fixed.duration) == (
        "FIVEOFF",
        500,
        "usd",
        "once",
    )
    assert (await client.v1.coupons.retrieve_async("FIVEOFF")).amount_off == 500
    assert ids((await client.v1.coupons.list_async()).data) == ["FIVEOFF", percent.id]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"duration": "once"}, "percent_off", None),
        (
            {"percent_off": 10, "amount_off": 5, "currency": "usd"},
            "amount_off",
            "parameters_exclusive",
        ),
        ({"amount_off": 5}, "currency", "parameter_missing"),
        ({"percent_off": 101}, "percent_off", None),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months", "parameter_missing"),
    ],
)
async def test_coupon_refusals(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    params: dict[str, object],
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.coupons.create_async(params)  # type: ignore[arg-type]
    assert (caught.value.param, caught.value.code) == (param, code)


async def test_promotion_codes(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    coupon = await client.v1.coupons.create_async({"percent_off": 10})
    promo = await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SAVE10"}
    )
    assert isinstance(promo, stripe.PromotionCode)
    assert promo.id.startswith("promo_") and promo.code == "SAVE10" and promo.active
    assert (promo.promotion.type, promo.promotion.coupon) == ("coupon", coupon.id)
    fetched = await client.v1.promotion_codes.retrieve_async(
        promo.id, {"expand": ["promotion.coupon"]}
    )
    assert isinstance(fetched.promotion.coupon, stripe.Coupon)
    listed = await client.v1.promotion_codes.list_async({"code": "save10"})
    assert ids(listed.data) == [promo.id]
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        await client.v1.promotion_codes.create_async(
            {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SAVE10"}
        )
    assert duplicate.value.param == "code"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.promotion_codes.create_async(
            {"promotion": {"type": "coupon", "coupon": "NOPE"}}
        )
    assert (missing.value.param, missing.value.code) == ("promotion[coupon]", "resource_missing")


async def test_shipping_rates(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    rate = await client.v1.shipping_rates.create_async(
        {
            "display_name": "Ground",
            "type": "fixed_amount",
            "fixed_amount": {"amount": 500, "currency": "usd"},
            "delivery_estimate": {
                "minimum": {"unit": "business_day", "value": 3},
                "maximum": {"unit": "business_day", "value": 5},
            },
            "tax_behavior": "exclusive",
        }
    )
    assert isinstance(rate, stripe.ShippingRate)
    assert rate.id.startswith("shr_") and rate.fixed_amount is not None
    assert (rate.fixed_amount.amount, rate.fixed_amount.currency) == (500, "usd")
    assert rate.delivery_estimate is not None and rate.delivery_estimate.maximum is not None
    assert rate.delivery_estimate.maximum.value == 5
    assert (await client.v1.shipping_rates.retrieve_async(rate.id)).display_name == "Ground"
    assert ids((await client.v1.shipping_rates.list_async({"currency": "usd"})).data) == [rate.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.shipping_rates.create_async({"display_name": "Free"})
    assert (caught.value.param, caught.value.code) == ("fixed_amount", "parameter_missing")


async def test_tax_rates(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    rate = await client.v1.tax_rates.create_async(
        {
            "display_name": "Sales tax",
            "percentage": 8.25,
            "inclusive": False,
            "country": "US",
            "jurisdiction": "US-TX",
        }
    )
    assert isinstance(rate, stripe.TaxRate)
    assert rate.id.startswith("txr_")
    assert (rate.percentage, rate.inclusive, rate.country, rate.jurisdiction) == (
        8.25,
        False,
        "US",
        "US-TX",
    )
    assert (await client.v1.tax_rates.retrieve_async(rate.id)).display_name == "Sales tax"
    assert ids((await client.v1.tax_rates.list_async({"inclusive": False})).data) == [rate.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.tax_rates.create_async({"display_name": "VAT", "percentage": 20})  # type: ignore[typeddict-item]
    assert (caught.value.param, caught.value.code) == ("inclusive", "parameter_missing")


async def test_customers(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    customer = await client.v1.customers.create_async(
        {
            "email": "ada@example.com",
            "name": "Ada",
            "address": {"line1": "1 Main St", "city": "Austin", "country": "US"},
        }
    )
    assert isinstance(customer, stripe.Customer)
    assert customer.id.startswith("cus_")
    assert customer.address is not None and customer.address.country == "US"
    assert (await client.v1.customers.retrieve_async(customer.id)).email == "ada@example.com"
    listed = await client.v1.customers.list_async({"email": "ada@example.com"})
    assert ids(listed.data) == [customer.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.customers.retrieve_async("cus_nope")
    assert (caught.value.http_status, caught.value.param) == (404, "customer")
