"""Stripe's minimum and maximum charge amounts, applied to what a Checkout Session asks the
customer to pay now (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).

Minimum: Stripe's fee must not exceed the charge, so a charge must reach the minimum of the
currency it settles in. The sandbox's account settles every currency of Stripe's table in that
currency (as if it had a bank account in each), so 0.50 USD, 0.50 EUR, 0.30 GBP, 50 JPY…; any
other currency converts to its default settlement currency, USD, and must come to at least
0.50 USD at the fixed rate of `currencies.py` (rounded up to the currency's charge step). Zero is
always allowed: a free session (a 100 % coupon) or a trial charges nothing now, and "subscription
charges support zero-amount charges".

Maximum: eight digits in the API's units (99,999,999), nine for INR, twelve for IDR. Stripe
allows more for cards in COP, HUF, JPY and LBP; the sandbox keeps the general limit, the strict
reading, as Checkout may offer methods other than cards.

A refusal is an `invalid_request_error` with code `amount_too_small` or `amount_too_large`
(https://docs.stripe.com/error-codes#amount-too-small) and no `param`: Stripe names none for a
session's total, and an integration must not rely on one. Its message is Stripe's: "The
Checkout Session's total amount due must add up to at least $0.50 usd". Three-decimal
currencies, ISK and UGX also refuse an amount that is not a multiple of their charge step
(`invalid_charge_amount`).
"""

from decimal import ROUND_CEILING, Decimal

from .currencies import UNITS_PER_USD, charge_step, format_amount, minor_units
from .errors import StripeError

# Settlement currency -> minimum charge in the API's units (the table at the URL above).
SETTLEMENT_MINIMUMS: dict[str, int] = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}
_DEFAULT_SETTLEMENT = "usd"
_MAXIMUM_DIGITS = {"idr": 12, "inr": 9}
_DEFAULT_DIGITS = 8


def minimum_charge(currency: str) -> int:
    """The smallest non-zero amount due now, in the API's units of `currency`."""
    if currency in SETTLEMENT_MINIMUMS:
        return SETTLEMENT_MINIMUMS[currency]
    usd = Decimal(SETTLEMENT_MINIMUMS[_DEFAULT_SETTLEMENT]) / minor_units(_DEFAULT_SETTLEMENT)
    exact = usd * UNITS_PER_USD[currency] * minor_units(currency)
    step = charge_step(currency)
    steps = (exact / step).to_integral_value(rounding=ROUND_CEILING)
    return int(steps) * step


def maximum_charge(currency: str) -> int:
    return int(10 ** _MAXIMUM_DIGITS.get(currency, _DEFAULT_DIGITS)) - 1


def check_charge(amount: int, currency: str) -> None:
    """Refuse an amount due now that Stripe could not charge in `currency`."""
    if amount == 0:
        return
    minimum, maximum = minimum_charge(currency), maximum_charge(currency)
    if amount < minimum:
        raise StripeError(
            "The Checkout Session's total amount due must add up to at least "
            f"{_shown(minimum, currency)}; this one is {_shown(amount, currency)}.",
            code="amount_too_small",
        )
    if amount > maximum:
        raise StripeError(
            "The Checkout Session's total amount due must be no more than "
            f"{_shown(maximum, currency)}; this one is {_shown(amount, currency)}.",
            code="amount_too_large",
        )
    step = charge_step(currency)
    if amount % step:
        raise StripeError(
            f"Amounts in {currency.upper()} must be a multiple of {step} in the API's units; "
            f"the Checkout Session's total amount due is {amount}.",
            code="invalid_charge_amount",
        )


def _shown(amount: int, currency: str) -> str:
    """Stripe's way: the amount in the major unit, then the currency code in lower case."""
    major = format_amount(amount, currency).rsplit(" ", 1)[0]
    prefix = "$" if currency == "usd" else ""
    return f"{prefix}{major} {currency}"
