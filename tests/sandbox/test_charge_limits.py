"""Stripe's minimum and maximum charge amounts (`charge_limits.py`), in every currency the
sandbox supports, refused as Stripe refuses them: `invalid_request_error`, `amount_too_small` or
`amount_too_large`, no `param`."""

from typing import Any

import pytest
import stripe

from sandbox.charge_limits import maximum_charge, minimum_charge
from sandbox.currencies import CURRENCIES, charge_step
from sandbox.launcher import SandboxProcess

from .support import line_item, session_params


def cart(unit_amount: int, currency: str, quantity: int = 1) -> Any:
    return session_params(line_item(unit_amount, quantity, currency=currency))


async def refusal(client: stripe.StripeClient, params: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)
    return caught.value


def test_the_limits_follow_stripes_table() -> None:
    assert [minimum_charge(c) for c in ("usd", "eur", "gbp", "jpy", "huf", "mxn")] == [
        50,
        50,
        30,
        50,
        17500,
        1000,
    ]
    # Outside the table: 0.50 USD at the fixed rate, rounded up to the currency's step.
    assert (minimum_charge("krw"), minimum_charge("kwd"), minimum_charge("ugx")) == (
        675,
        160,
        190000,
    )
    assert (maximum_charge("usd"), maximum_charge("inr"), maximum_charge("idr")) == (
        99_999_999,
        999_999_999,
        999_999_999_999,
    )


async def test_under_the_minimum_is_refused_like_stripe(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    error = await refusal(client, cart(49, "usd"))
    assert (error.http_status, error.code, error.param) == (400, "amount_too_small", None)
    assert isinstance(error.json_body, dict)
    assert error.json_body["error"]["type"] == "invalid_request_error"
    for unit_amount, currency in ((29, "gbp"), (49, "jpy"), (49, "eur"), (17499, "huf")):
        assert (await refusal(client, cart(unit_amount, currency))).code == "amount_too_small"
    for unit_amount, currency in ((50, "usd"), (30, "gbp"), (50, "jpy"), (17500, "huf")):
        session = await client.v1.checkout.sessions.create_async(cart(unit_amount, currency))
        assert session.amount_total == unit_amount
    # Two lines of 30 cents make 60: the total counts, not each line.
    two = await client.v1.checkout.sessions.create_async(
        session_params(line_item(30), line_item(30, name="Pen"))
    )
    assert two.amount_total == 60


async def test_over_the_maximum_is_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    error = await refusal(client, cart(99_999_999, "usd", quantity=2))
    assert (error.http_status, error.code, error.param) == (400, "amount_too_large", None)
    allowed = await client.v1.checkout.sessions.create_async(cart(99_999_999, "usd"))
    assert allowed.amount_total == 99_999_999
    # INR allows nine digits, IDR twelve.
    inr = await client.v1.checkout.sessions.create_async(cart(99_999_999, "inr", quantity=10))
    assert inr.amount_total == 999_999_990
    assert (await refusal(client, cart(99_999_999, "inr", quantity=11))).code == (
        "amount_too_large"
    )
    idr = await client.v1.checkout.sessions.create_async(cart(99_999_999, "idr", quantity=100))
    assert idr.amount_total == 9_999_999_900


async def test_nothing_due_is_not_a_charge(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    coupon = await client.v1.coupons.create_async({"percent_off": 100})
    free = await client.v1.checkout.sessions.create_async(
        session_params(line_item(20), discounts=[{"coupon": coupon.id}])
    )
    assert free.amount_total == 0
    # A discount that leaves a little to pay leaves too little.
    almost = await client.v1.coupons.create_async({"amount_off": 1480, "currency": "usd"})
    error = await refusal(client, session_params(discounts=[{"coupon": almost.id}]))
    assert error.code == "amount_too_small"


async def test_three_decimal_currencies_charge_in_tens(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    error = await refusal(client, cart(1005, "kwd"))
    assert (error.code, error.param) == ("invalid_charge_amount", None)
    session = await client.v1.checkout.sessions.create_async(cart(1010, "kwd"))
    assert (session.currency, session.amount_total) == ("kwd", 1010)


async def test_every_supported_currency_has_its_minimum(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    refused = []
    for currency in sorted(CURRENCIES):
        minimum = minimum_charge(currency)
        session = await client.v1.checkout.sessions.create_async(cart(minimum, currency))
        assert session.amount_total == minimum, currency
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await client.v1.checkout.sessions.create_async(
                cart(minimum - charge_step(currency), currency)
            )
        refused.append(caught.value.code)
    assert set(refused) == {"amount_too_small"}
    assert len(refused) >= 135
