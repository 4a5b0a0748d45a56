"""Adaptive Pricing: the currency a customer abroad pays in (`presentment_details`).

As on Stripe (https://docs.stripe.com/payments/checkout/adaptive-pricing), the presentment
currency is chosen when the customer opens the page, from where they are, and they may switch
back to the session's currency; so a new session has no `presentment_details`, and a completed
one records what the customer paid in. The hosted page takes the customer's location as
`?country=DE` (or a currency as `?presentment_currency=eur`); the control API's
`/_sandbox/checkout/sessions/{id}/pay` takes `presentment_currency`, else uses the country of the
address it is given, else the Customer's. The conversion of `amount_total` uses this fixed
table of units per US dollar (`currencies.py`), rounding half up in the presentment currency's
minor unit:

    aud 1.52   cad 1.36   chf 0.88   eur 0.92   gbp 0.79   inr 83.0
    jpy 150    nzd 1.64   sek 10.5   sgd 1.34   usd 1

Countries and their currencies: AU aud, CA cad, CH chf, GB gbp, IN inr, JP jpy, NZ nzd,
SE sek, SG sgd, US usd; AT BE DE ES FI FR IE IT NL PT eur. Real Adaptive Pricing presents many
more currencies, uses live rates and adds a conversion fee; the sandbox presents these, adds no
fee, so amounts are predictable in tests.
"""

from decimal import Decimal

from .currencies import UNITS_PER_USD as RATES
from .currencies import minor_units
from .totals import round_half_up

# The currencies Adaptive Pricing presents in the sandbox, with their rates from `currencies.py`.
PRESENTED = ("aud", "cad", "chf", "eur", "gbp", "inr", "jpy", "nzd", "sek", "sgd", "usd")
UNITS_PER_USD: dict[str, Decimal] = {code: RATES[code] for code in PRESENTED}
_EURO_COUNTRIES = ("AT", "BE", "DE", "ES", "FI", "FR", "IE", "IT", "NL", "PT")
CURRENCY_BY_COUNTRY: dict[str, str] = {
    "AU": "aud",
    "CA": "cad",
    "CH": "chf",
    "GB": "gbp",
    "IN": "inr",
    "JP": "jpy",
    "NZ": "nzd",
    "SE": "sek",
    "SG": "sgd",
    "US": "usd",
    **dict.fromkeys(_EURO_COUNTRIES, "eur"),
}


def presentment(amount: int, currency: str, country: str | None) -> dict[str, object] | None:
    """`presentment_details` for a customer in `country`, or None when nothing is converted."""
    target = CURRENCY_BY_COUNTRY.get(country or "")
    return None if target is None else convert(amount, currency, target)


def convert(amount: int, currency: str, target: str) -> dict[str, object] | None:
    """`presentment_details` for paying `amount` in `target`; None when that is `currency` or
    Adaptive Pricing does not present it."""
    if target == currency or target not in UNITS_PER_USD:
        return None
    major = Decimal(amount) / minor_units(currency)
    converted = major / RATES[currency] * UNITS_PER_USD[target]
    return {
        "presentment_amount": round_half_up(converted * minor_units(target)),
        "presentment_currency": target,
    }
