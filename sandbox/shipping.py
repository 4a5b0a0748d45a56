"""Shipping rates: `/v1/shipping_rates`, and those Checkout's `shipping_rate_data` creates."""

from typing import Any

from .api import ApiRequest, Route
from .catalog import TAX_BEHAVIORS
from .errors import parameter_missing, resource_missing
from .lists import in_range, paginate
from .params import EXPAND, LIST_PARAMS, Boolean, Choice, Currency, Integer, Metadata, Text, hash_of
from .store import Store, new_id

SHIPPING_RATE = "shipping_rate"
# https://docs.stripe.com/api/shipping_rates/create: the `maxLength` of `display_name` in
# Stripe's OpenAPI description, https://github.com/stripe/openapi.
DISPLAY_NAME_MAX_LENGTH = 100

_DELIVERY_BOUND = hash_of(
    "unit",
    "value",
    unit=Choice(("business_day", "day", "hour", "month", "week")),
    value=Integer(1),
)
_FIELDS = {
    "display_name": Text(DISPLAY_NAME_MAX_LENGTH, non_blank=True),
    "type": Choice(("fixed_amount",)),
    "fixed_amount": hash_of("amount", "currency", amount=Integer(0), currency=Currency()),
    "delivery_estimate": hash_of(maximum=_DELIVERY_BOUND, minimum=_DELIVERY_BOUND),
    "tax_behavior": Choice(TAX_BEHAVIORS),
    "tax_code": Text(),
    "metadata": Metadata(),
}
SHIPPING_RATE_DATA = hash_of("display_name", **_FIELDS)
_CREATE = hash_of("display_name", **_FIELDS, expand=EXPAND)
_LIST = hash_of(**LIST_PARAMS, active=Boolean(), currency=Currency())
_RETRIEVE = hash_of(expand=EXPAND)


def check_shipping_rate_data(data: dict[str, Any], path: str) -> None:
    # `type` defaults to fixed_amount, the only type there is, so the amount is always required.
    if "fixed_amount" not in data:
        raise parameter_missing(f"{path}[fixed_amount]" if path else "fixed_amount")


def create_shipping_rate(store: Store, now: int, data: dict[str, Any]) -> Any:
    fixed = data["fixed_amount"]
    estimate = data.get("delivery_estimate")
    rate_id = new_id("shr_")
    rate = {
        "id": rate_id,
        "object": "shipping_rate",
        "active": True,
        "created": now,
        "delivery_estimate": None
        if estimate is None
        else {"maximum": estimate.get("maximum"), "minimum": estimate.get("minimum")},
        "display_name": data["display_name"],
        "fixed_amount": {"amount": fixed["amount"], "currency": fixed["currency"]},
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "tax_behavior": data.get("tax_behavior", "unspecified"),
        "tax_code": data.get("tax_code"),
        "type": "fixed_amount",
    }
    store.insert(SHIPPING_RATE, rate_id, rate)
    return rate


def _create(request: ApiRequest) -> dict[str, Any]:
    data = _CREATE.parse(request.params)
    check_shipping_rate_data(data, "")
    rate = create_shipping_rate(request.store, request.clock.now(), data)
    return request.render(rate, data.get("expand", []))


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    rate_id = request.path["shipping_rate_token"]
    rate = request.store.get(SHIPPING_RATE, rate_id)
    if rate is None:
        raise resource_missing("shipping rate", rate_id, "shipping_rate_token", status=404)
    return request.render(rate, data.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)

    def keep(rate: dict[str, Any]) -> bool:
        return (
            ("active" not in data or rate["active"] == data["active"])
            and ("currency" not in data or rate["fixed_amount"]["currency"] == data["currency"])
            and in_range(rate["created"], data.get("created"))
        )

    rates = list(request.store.all(SHIPPING_RATE))[::-1]
    page = paginate(rates, data, "/v1/shipping_rates", "shipping_rate", keep)
    return request.render(page, data.get("expand", []))


ROUTES = [
    Route("POST", "/v1/shipping_rates", _create),
    Route("GET", "/v1/shipping_rates", _list),
    Route("GET", "/v1/shipping_rates/{shipping_rate_token}", _retrieve),
]
