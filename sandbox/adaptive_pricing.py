"""Adaptive Pricing: what a customer in another currency is shown (`presentment_details`).

The sandbox knows the presentment currency once it knows the customer's country (from the
Customer's shipping or billing address, or the address given when the session is completed), or
when the completion names it (`presentment_currency`). It converts `amount_total` with this fixed
table of units per US dollar, rounding half up in the presentment currency's minor unit:

    aud 1.52   cad 1.36   chf 0.88   eur 0.92   gbp 0.79   inr 83.0
    jpy 150    nzd 1.64   sek 10.5   sgd 1.34   usd 1

Countries and their currencies: AU aud, CA cad, CH chf, GB gbp, IN inr, JP jpy, NZ nzd,
SE sek, SG sgd, US usd; AT BE DE ES FI FR IE IT NL PT eur. Real Adaptive Pricing uses live rates
and adds a conversion fee; the sandbox adds none, so amounts are predictable in tests.
"""

from decimal import Decimal

from .totals import round_half_up

UNITS_PER_USD: dict[str, Decimal] = {
    "aud": Decimal("1.52"),
    "cad": Decimal("1.36"),
    "chf": Decimal("0.88"),
    "eur": Decimal("0.92"),
    "gbp": Decimal("0.79"),
    "inr": Decimal("83.0"),
    "jpy": Decimal(150),
    "nzd": Decimal("1.64"),
    "sek": Decimal("10.5"),
    "sgd": Decimal("1.34"),
    "usd": Decimal(1),
}
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
# Currencies without a minor unit (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd"})


def presentment(amount: int, currency: str, country: str | None) -> dict[str, object] | None:
    """`presentment_details` for a customer in `country`, or None when nothing is converted."""
    target = CURRENCY_BY_COUNTRY.get(country or "")
    return None if target is None else convert(amount, currency, target)


def convert(amount: int, currency: str, target: str) -> dict[str, object] | None:
    """`presentment_details` for paying `amount` in `target`; None when that is `currency` or
    either is missing from the table."""
    if target == currency or currency not in UNITS_PER_USD or target not in UNITS_PER_USD:
        return None
    major = Decimal(amount) / _minor_units(currency)
    converted = major / UNITS_PER_USD[currency] * UNITS_PER_USD[target]
    return {
        "presentment_amount": round_half_up(converted * _minor_units(target)),
        "presentment_currency": target,
    }


def _minor_units(currency: str) -> Decimal:
    return Decimal(1) if currency in ZERO_DECIMAL else Decimal(100)
