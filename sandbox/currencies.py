"""The currencies the sandbox charges in: Stripe's presentment currencies, their minor units, and
a fixed exchange rate for each.

The list is Stripe's (https://docs.stripe.com/currencies#presentment-currencies), so a currency
Stripe accepts is accepted here and one it refuses is refused. How amounts are written
(https://docs.stripe.com/currencies#minor-units-in-api-amounts):

- two-decimal currencies, the default: `1000` is 10.00;
- zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal): `1000` is 1,000 JPY;
- three-decimal currencies (bhd jod kwd omr tnd): `1000` is 1.000 KWD, and a charge must end in
  0 (https://docs.stripe.com/currencies#three-decimal);
- ISK and UGX, zero-decimal in fact but written with two decimals that are always `00`
  (https://docs.stripe.com/currencies#special-cases): a charge must be a multiple of 100.

The rates (units of the currency per US dollar) are fixed and approximate, so amounts stay
predictable in tests; they convert the USD minimum charge into currencies without a minimum of
their own (`charge_limits.py`) and Adaptive Pricing's amounts (`adaptive_pricing.py`, which
presents only a subset). The eleven Adaptive Pricing rates are the ones its docstring and the
README show.
"""

from decimal import Decimal

# code, decimals in the API's amounts, units per US dollar.
_TABLE = """
usd 2 1      aed 2 3.6725 afn 2 70     all 2 93     amd 2 388    ang 2 1.79   aoa 2 850
ars 2 900    aud 2 1.52   awg 2 1.79   azn 2 1.7    bam 2 1.8    bbd 2 2      bdt 2 117
bgn 2 1.8    bhd 3 0.376  bif 0 2870   bmd 2 1      bnd 2 1.34   bob 2 6.91   brl 2 5
bsd 2 1      bwp 2 13.6   byn 2 3.27   bzd 2 2      cad 2 1.36   cdf 2 2800   chf 2 0.88
clp 0 930    cny 2 7.2    cop 2 3900   crc 2 520    cve 2 101    czk 2 23     djf 0 178
dkk 2 6.9    dop 2 59     dzd 2 134    egp 2 48     etb 2 57     eur 2 0.92   fjd 2 2.25
fkp 2 0.79   gbp 2 0.79   gel 2 2.7    gip 2 0.79   gmd 2 68     gnf 0 8600   gtq 2 7.8
gyd 2 209    hkd 2 7.8    hnl 2 24.7   htg 2 132    huf 2 360    idr 2 16000  ils 2 3.7
inr 2 83     isk 2 138    jmd 2 156    jod 3 0.709  jpy 0 150    kes 2 130    kgs 2 88
khr 2 4100   kmf 0 452    krw 0 1350   kwd 3 0.307  kyd 2 0.83   kzt 2 450    lak 2 21000
lbp 2 89500  lkr 2 300    lrd 2 194    lsl 2 18.5   mad 2 10     mdl 2 17.7   mga 0 4500
mkd 2 56.7   mmk 2 2100   mnt 2 3400   mop 2 8.05   mur 2 46     mvr 2 15.4   mwk 2 1730
mxn 2 17     myr 2 4.7    mzn 2 63.9   nad 2 18.5   ngn 2 1500   nio 2 36.8   nok 2 10.6
npr 2 133    nzd 2 1.64   omr 3 0.385  pab 2 1      pen 2 3.75   pgk 2 3.85   php 2 56
pkr 2 278    pln 2 4      pyg 0 7500   qar 2 3.64   ron 2 4.6    rsd 2 108    rub 2 90
rwf 0 1300   sar 2 3.75   sbd 2 8.4    scr 2 13.7   sek 2 10.5   sgd 2 1.34   shp 2 0.79
sle 2 22.5   sos 2 571    srd 2 32     std 2 22000  szl 2 18.5   thb 2 36     tjs 2 10.9
tnd 3 3.1    top 2 2.36   try 2 32     ttd 2 6.78   twd 2 32     tzs 2 2600   uah 2 40
ugx 2 3800   uyu 2 39     uzs 2 12600  vnd 0 25000  vuv 0 119    wst 2 2.72   xaf 0 605
xcd 2 2.7    xof 0 605    xpf 0 110    yer 2 250    zar 2 18.5   zmw 2 26
"""


def _parse(table: str) -> tuple[dict[str, int], dict[str, Decimal]]:
    words = table.split()
    decimals: dict[str, int] = {}
    rates: dict[str, Decimal] = {}
    for index in range(0, len(words), 3):
        code, places, rate = words[index : index + 3]
        decimals[code] = int(places)
        rates[code] = Decimal(rate)
    return decimals, rates


DECIMALS, UNITS_PER_USD = _parse(_TABLE)
CURRENCIES = frozenset(DECIMALS)
ZERO_DECIMAL = frozenset(code for code, places in DECIMALS.items() if places == 0)
THREE_DECIMAL = frozenset(code for code, places in DECIMALS.items() if places == 3)

# The smallest step a charge may take, in the API's minor units; 1 unless listed.
_CHARGE_STEP = {
    **dict.fromkeys(THREE_DECIMAL, 10),
    "isk": 100,
    "ugx": 100,
}


def minor_units(currency: str) -> Decimal:
    """How many of the API's units make one unit of the currency (100 for USD, 1 for JPY)."""
    return Decimal(10) ** DECIMALS[currency]


def charge_step(currency: str) -> int:
    return _CHARGE_STEP.get(currency, 1)


def to_usd(amount: int, currency: str) -> Decimal:
    """An amount in the API's units of `currency`, in US dollars at the fixed rate."""
    return Decimal(amount) / minor_units(currency) / UNITS_PER_USD[currency]


def format_amount(amount: int, currency: str) -> str:
    """`1,234.50 USD`, `1,500 JPY`, `1.250 KWD`: the amount in the currency's major unit."""
    places = DECIMALS.get(currency, 2)
    major = Decimal(amount) / (Decimal(10) ** places)
    return f"{major:,.{places}f} {currency.upper()}"
