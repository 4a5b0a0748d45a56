"""Checkout's amounts: discounts, shipping, manual and automatic tax, Adaptive Pricing
(`totals.py`, `taxes.py` and `adaptive_pricing.py` document the rules and tables)."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.adaptive_pricing import presentment
from sandbox.launcher import SandboxProcess
from sandbox.totals import CartLine, compute_totals

from .support import line_item, session_params


def exclusive(item: dict[str, Any]) -> dict[str, Any]:
    """A line whose price says how automatic tax treats it, which automatic tax needs."""
    item["price_data"]["tax_behavior"] = "exclusive"
    return item


def tax_rate(percentage: str, inclusive: bool = False) -> dict[str, Any]:
    return {"id": f"txr_{percentage}", "percentage": float(percentage), "inclusive": inclusive}


def test_the_worked_case() -> None:
    rate = tax_rate("8.25")
    totals = compute_totals(
        [
            CartLine(3000, "prod_a", "unspecified", [rate]),
            CartLine(990, "prod_b", "unspecified", [rate]),
        ],
        coupon={"percent_off": 10.0, "amount_off": None, "applies_to": None},
        discount={"id": "di_1"},
        shipping_rate={
            "id": "shr_1",
            "fixed_amount": {"amount": 500},
            "tax_behavior": "unspecified",
        },
        automatic=None,
    )
    assert (totals.subtotal, totals.discount, totals.tax, totals.total) == (3990, 399, 297, 4388)
    assert [line.discount for line in totals.lines] == [300, 99]
    assert [line.tax for line in totals.lines] == [223, 74]
    assert totals.shipping is not None and totals.shipping.tax == 0


def test_inclusive_tax_is_carved_out() -> None:
    totals = compute_totals(
        [CartLine(1200, "prod_a", "unspecified", [tax_rate("20", inclusive=True)])],
        coupon=None,
        discount=None,
        shipping_rate=None,
        automatic=None,
    )
    assert (totals.tax, totals.total) == (200, 1200)
    assert totals.lines[0].taxes[0]["taxable_amount"] == 1000


def test_amount_off_is_capped_and_spread_over_the_lines_it_applies_to() -> None:
    coupon = {"percent_off": None, "amount_off": 1000, "applies_to": {"products": ["prod_a"]}}
    totals = compute_totals(
        [
            CartLine(300, "prod_a", "unspecified", []),
            CartLine(500, "prod_b", "unspecified", []),
            CartLine(400, "prod_a", "unspecified", []),
        ],
        coupon=coupon,
        discount={"id": "di_1"},
        shipping_rate=None,
        automatic=None,
    )
    assert [line.discount for line in totals.lines] == [300, 0, 400]
    assert totals.total == 500


def test_presentment_uses_the_fixed_table() -> None:
    assert presentment(4388, "usd", "DE") == {
        "presentment_amount": 4037,
        "presentment_currency": "eur",
    }
    assert presentment(1000, "usd", "JP") == {
        "presentment_amount": 1500,
        "presentment_currency": "jpy",
    }
    assert presentment(1000, "usd", "US") is None
    assert presentment(1000, "usd", None) is None


async def test_the_worked_case_through_the_api(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    coupon = await client.v1.coupons.create_async({"percent_off": 10})
    rate = await client.v1.tax_rates.create_async(
        {"display_name": "Sales tax", "percentage": 8.25, "inclusive": False}
    )
    shipping = await client.v1.shipping_rates.create_async(
        {"display_name": "Ground", "fixed_amount": {"amount": 500, "currency": "usd"}}
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            {**line_item(1500, 2), "tax_rates": [rate.id]},
            {**line_item(990, 1, name="Mug"), "tax_rates": [rate.id]},
            discounts=[{"coupon": coupon.id}],
            shipping_options=[
                {"shipping_rate": shipping.id},
                {
                    "shipping_rate_data": {
                        "display_name": "Express",
                        "fixed_amount": {"amount": 1500, "currency": "usd"},
                    }
                },
            ],
            # A line item's taxes are included only when expanded, as on Stripe.
            expand=["line_items.data.taxes", "total_details.breakdown"],
        )
    )
    assert (session.amount_subtotal, session.amount_total) == (3990, 4388)
    details = session.total_details
    assert details is not None
    assert (details.amount_discount, details.amount_shipping, details.amount_tax) == (399, 500, 297)
    assert details.breakdown is not None
    assert [d.amount for d in details.breakdown.discounts] == [399]
    assert details.breakdown.discounts[0].discount.source.coupon == coupon.id
    assert [(t.amount, t.rate.id) for t in details.breakdown.taxes] == [(297, rate.id)]
    assert session.discounts is not None
    assert (session.discounts[0].coupon, session.discounts[0].promotion_code) == (coupon.id, None)
    assert session.shipping_cost is not None
    assert (session.shipping_cost.amount_total, session.shipping_cost.shipping_rate) == (
        500,
        shipping.id,
    )
    assert [(o.shipping_amount, o.shipping_rate) for o in session.shipping_options] == [
        (500, shipping.id),
        (1500, session.shipping_options[1].shipping_rate),
    ]
    assert session.line_items is not None
    lines = [
        (li.amount_subtotal, li.amount_discount, li.amount_tax, li.amount_total)
        for li in session.line_items.data
    ]
    assert lines == [(3000, 300, 223, 2923), (990, 99, 74, 965)]
    taxes = session.line_items.data[0].taxes
    assert taxes is not None and taxes[0].rate.id == rate.id and taxes[0].taxable_amount == 2700


async def test_promotion_codes_apply_their_coupon_and_restrictions(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    coupon = await client.v1.coupons.create_async({"amount_off": 5000, "currency": "usd"})
    promo = await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "BIG"}
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(1500, 2), discounts=[{"promotion_code": promo.id}])
    )
    assert (
        session.amount_total,
        session.total_details and session.total_details.amount_discount,
    ) == (
        0,
        3000,
    )
    assert session.discounts is not None and session.discounts[0].promotion_code == promo.id

    minimum = await client.v1.promotion_codes.create_async(
        {
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "restrictions": {"minimum_amount": 10000, "minimum_amount_currency": "usd"},
        }
    )
    inactive = await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "active": False}
    )
    for code in (minimum, inactive):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await client.v1.checkout.sessions.create_async(
                session_params(discounts=[{"promotion_code": code.id}])
            )
        assert caught.value.param == "discounts[0][promotion_code]"
    with pytest.raises(stripe.InvalidRequestError) as currency:
        await client.v1.checkout.sessions.create_async(
            session_params(line_item(currency="eur"), discounts=[{"coupon": coupon.id}])
        )
    assert currency.value.param == "discounts[0][coupon]"


async def test_inclusive_tax_rates_do_not_add_to_the_total(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    vat = await client.v1.tax_rates.create_async(
        {"display_name": "VAT", "percentage": 20, "inclusive": True}
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params({**line_item(1200, 1, currency="eur"), "tax_rates": [vat.id]})
    )
    assert session.amount_total == 1200
    assert session.total_details is not None and session.total_details.amount_tax == 200


async def test_automatic_tax_needs_a_location(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    without = await client.v1.checkout.sessions.create_async(
        session_params(exclusive(line_item()), automatic_tax={"enabled": True})
    )
    assert without.automatic_tax.status == "requires_location_inputs"
    assert without.total_details is not None and without.total_details.amount_tax == 0

    nowhere = await client.v1.customers.create_async({"email": "a@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params(customer=nowhere.id, automatic_tax={"enabled": True})
        )
    assert caught.value.code == "customer_tax_location_invalid"
    allowed = await client.v1.checkout.sessions.create_async(
        session_params(
            exclusive(line_item()),
            customer=nowhere.id,
            automatic_tax={"enabled": True},
            customer_update={"address": "auto"},
        )
    )
    assert allowed.automatic_tax.status == "requires_location_inputs"


async def test_automatic_tax_and_adaptive_pricing_from_the_customer_address(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    (await raw.post("/_sandbox/tax/settings", json={"registrations": ["DE"]})).raise_for_status()
    customer = await client.v1.customers.create_async(
        {"email": "hans@example.com", "address": {"country": "DE", "city": "Berlin"}}
    )
    shipping = await client.v1.shipping_rates.create_async(
        {
            "display_name": "DHL",
            "fixed_amount": {"amount": 500, "currency": "usd"},
            "tax_behavior": "exclusive",
        }
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            exclusive(line_item(1000, 1)),
            customer=customer.id,
            automatic_tax={"enabled": True},
            adaptive_pricing={"enabled": True},
            shipping_options=[{"shipping_rate": shipping.id}],
        )
    )
    assert session.automatic_tax.status == "complete"
    assert session.automatic_tax.provider == "stripe"
    # 19 % German VAT on the line (190) and on the exclusive shipping rate (95).
    assert session.total_details is not None and session.total_details.amount_tax == 285
    assert session.shipping_cost is not None and session.shipping_cost.amount_tax == 95
    taxes = session.shipping_cost.taxes
    assert taxes is not None and [(t.amount, t.rate.country) for t in taxes] == [(95, "DE")]
    assert session.amount_total == 1000 + 500 + 285
    # Adaptive Pricing waits for the customer to open the page (adaptive_pricing.py).
    assert session.presentment_details is None
