"""Stripe's tables that the service checks requests against: locales, presentment currencies and
how their amounts are written, the charge limits of each, and the payment methods that leave
the page. One place, so that following Stripe is one edit: a value missing here (a locale Stripe
added since) is refused until this module is brought up to date.

Taken from Stripe's docs on 2026-12-01 (the locales on 2026-11-26), and checked against
stripe-python 16.1.0's `SessionCreateParams`:
- locales: https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-locale
- currencies: https://docs.stripe.com/currencies#presentment-currencies, their minor units
  (https://docs.stripe.com/currencies#minor-units-in-api-amounts) and charge limits
  (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts)
- payment methods: https://docs.stripe.com/payments/payment-methods/overview

The sandbox keeps tables of its own (sandbox/currencies.py, sandbox/charge_limits.py,
sandbox/checkout_params.py, sandbox/payment_methods.py), on purpose: it is another program,
standing in for Stripe, which nothing in `service` may import (pyproject.toml's import
contracts); and with one shared table a wrong entry would pass the service's check and the
sandbox's alike, so no test could catch it.
"""

from __future__ import annotations

LOCALES = frozenset(
    # As text: one locale per line would bury the module.
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hi-IN hr hu id it ja ko lt lv ms "  # noqa: SIM905
    "mt nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW".split()
)

CURRENCIES = frozenset(
    "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd "  # noqa: SIM905
    "bwp byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp "
    "gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw "
    "kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad "
    "ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek "
    "sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst "
    "xaf xcd xof xpf yer zar zmw".split()
)
# Amounts in the currency's smallest unit (`1000` is 1,000 JPY), and three-decimal ones (`1000`
# is 1.000 KWD), whose charges Stripe takes only in steps of 10
# (https://docs.stripe.com/currencies#zero-decimal, #three-decimal). ISK and UGX are written
# with two decimals that must be `00` (https://docs.stripe.com/currencies#special-cases).
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())  # noqa: SIM905
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905
CHARGE_STEP = {**dict.fromkeys(THREE_DECIMAL, 10), "isk": 100, "ugx": 100}
# The minimum charge of the currencies Stripe's table names, in the API's units. Any other
# currency's minimum is 0.50 USD converted at the day's rate into it, which only Stripe knows:
# its refusal (`amount_too_small`) is mapped onto `line_items` (create_plan.py).
MINIMUM_CHARGE = {
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
# At most eight digits in the API's units; nine for INR, twelve for IDR.
MAXIMUM_CHARGE = {"inr": 999_999_999, "idr": 999_999_999_999}
DEFAULT_MAXIMUM_CHARGE = 99_999_999

# Payment methods that send the customer to another site or app and back, so that an ELEMENTS
# session offering one needs a return_url (SessionCreateParams.return_url).
REDIRECT_BASED_METHODS = frozenset(
    "affirm afterpay_clearpay alipay alma amazon_pay bancontact billie bizum cashapp crypto eps "  # noqa: SIM905
    "fpx giropay grabpay ideal kakao_pay klarna kr_card mobilepay naver_pay pay_by_bank payco "
    "paypal paypay revolut_pay samsung_pay satispay scalapay sequra sofort sunbit swish twint "
    "wechat_pay zip".split()
)
