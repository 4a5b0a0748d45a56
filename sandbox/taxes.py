"""Tax rates (`/v1/tax_rates`) and the rate table behind the sandbox's automatic tax.

Automatic tax (`automatic_tax[enabled]=true`) uses this fixed table, by the customer's country
(shipping address first, then billing address), one standard rate per country:

    country  rate    name         country  rate    name
    AU       10 %    GST          GB       20 %    VAT
    CA        5 %    GST          IE       23 %    VAT
    CH        8.1 %  VAT          IT       22 %    IVA
    DE       19 %    USt          JP       10 %    JCT
    ES       21 %    IVA          NL       21 %    btw
    FR       20 %    TVA          NZ       15 %    GST
    SE       25 %    moms         SG        9 %    GST
    US        8.25 % Sales tax    (any other country: 0 %, not collecting)

Tax is collected only in countries where the account is registered (`tax_settings.py`). Real
Stripe Tax also depends on the state and the product tax code; the sandbox does not model those.
Until the country is known the session's automatic tax is `requires_location_inputs` and adds
nothing.
"""

from decimal import Decimal
from typing import Any

from .api import ApiRequest, Route
from .errors import resource_missing
from .lists import in_range, paginate
from .params import (
    COUNTRY_CODE_LENGTH,
    EXPAND,
    LIST_PARAMS,
    Boolean,
    Choice,
    Metadata,
    Number,
    Text,
    hash_of,
)
from .store import new_id

TAX_RATE = "tax_rate"
# https://docs.stripe.com/api/tax_rates/create: the `maxLength`s of Stripe's OpenAPI description,
# https://github.com/stripe/openapi.
DISPLAY_NAME_MAX_LENGTH = 50
JURISDICTION_MAX_LENGTH = 50

AUTOMATIC_RATES: dict[str, tuple[Decimal, str]] = {
    "AU": (Decimal(10), "GST"),
    "CA": (Decimal(5), "GST"),
    "CH": (Decimal("8.1"), "VAT"),
    "DE": (Decimal(19), "USt"),
    "ES": (Decimal(21), "IVA"),
    "FR": (Decimal(20), "TVA"),
    "GB": (Decimal(20), "VAT"),
    "IE": (Decimal(23), "VAT"),
    "IT": (Decimal(22), "IVA"),
    "JP": (Decimal(10), "JCT"),
    "NL": (Decimal(21), "btw"),
    "NZ": (Decimal(15), "GST"),
    "SE": (Decimal(25), "moms"),
    "SG": (Decimal(9), "GST"),
    "US": (Decimal("8.25"), "Sales tax"),
}

_TAX_TYPES = (
    "amusement_tax",
    "communications_tax",
    "gst",
    "hst",
    "igst",
    "jct",
    "lease_tax",
    "pst",
    "qst",
    "retail_delivery_fee",
    "rst",
    "sales_tax",
    "service_tax",
    "vat",
)
_CREATE = hash_of(
    "display_name",
    "inclusive",
    "percentage",
    active=Boolean(),
    country=Text(COUNTRY_CODE_LENGTH),
    description=Text(),
    display_name=Text(DISPLAY_NAME_MAX_LENGTH, non_blank=True),
    expand=EXPAND,
    inclusive=Boolean(),
    jurisdiction=Text(JURISDICTION_MAX_LENGTH),
    metadata=Metadata(),
    percentage=Number(Decimal(0), Decimal(100)),
    state=Text(),
    tax_type=Choice(_TAX_TYPES),
)
_LIST = hash_of(**LIST_PARAMS, active=Boolean(), inclusive=Boolean())
_RETRIEVE = hash_of(expand=EXPAND)


def tax_rate_object(
    rate_id: str, now: int, data: dict[str, Any], *, percentage: Decimal
) -> dict[str, Any]:
    return {
        "id": rate_id,
        "object": "tax_rate",
        "active": data.get("active", True),
        "country": data.get("country"),
        "created": now,
        "description": data.get("description"),
        "display_name": data["display_name"],
        "effective_percentage": float(percentage),
        "flat_amount": None,
        "inclusive": data["inclusive"],
        "jurisdiction": data.get("jurisdiction"),
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "percentage": float(percentage),
        "rate_type": "percentage",
        "state": data.get("state"),
        "tax_type": data.get("tax_type"),
    }


def automatic_rate(country: str, now: int, inclusive: bool) -> dict[str, Any] | None:
    """The tax rate automatic tax applies in `country`, as a tax_rate object, or None."""
    if country not in AUTOMATIC_RATES:
        return None
    percentage, name = AUTOMATIC_RATES[country]
    behaviour = "inclusive" if inclusive else "exclusive"
    data = {"display_name": name, "inclusive": inclusive, "country": country}
    return tax_rate_object(f"txr_auto_{country}_{behaviour}", now, data, percentage=percentage)


def _create(request: ApiRequest) -> dict[str, Any]:
    data = _CREATE.parse(request.params)
    rate_id = new_id("txr_")
    rate = tax_rate_object(rate_id, request.clock.now(), data, percentage=data["percentage"])
    request.store.insert(TAX_RATE, rate_id, rate)
    return request.render(rate, data.get("expand", []))


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    rate = request.store.get(TAX_RATE, request.path["tax_rate"])
    if rate is None:
        raise resource_missing("tax rate", request.path["tax_rate"], "tax_rate", status=404)
    return request.render(rate, data.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)

    def keep(rate: dict[str, Any]) -> bool:
        return all(
            name not in data or rate[name] == data[name] for name in ("active", "inclusive")
        ) and in_range(rate["created"], data.get("created"))

    rates = list(request.store.all(TAX_RATE))[::-1]
    page = paginate(rates, data, "/v1/tax_rates", "tax_rate", keep)
    return request.render(page, data.get("expand", []))


ROUTES = [
    Route("POST", "/v1/tax_rates", _create),
    Route("GET", "/v1/tax_rates", _list),
    Route("GET", "/v1/tax_rates/{tax_rate}", _retrieve),
]
