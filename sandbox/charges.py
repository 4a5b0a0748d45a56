"""Charges: `GET /v1/charges/{charge}` and `GET /v1/charges` (filtered by `payment_intent` or
`customer`), the money movement behind a PaymentIntent (`payment_objects.py` makes them).

A charge shows what happened to the payment: `captured` and `amount_captured`, `amount_refunded`
and `refunded` (`refunds.py`), `disputed` (`disputes.py`), and, for a card authorisation,
`payment_method_details.card.capture_before`. Its refunds are listed when expanded
(`expand[]=refunds`) or at `/v1/charges/{charge}/refunds`, as on Stripe since API version
2022-11-15.
"""

from typing import Any

from .api import ApiRequest, Expander, Route, reference
from .errors import resource_missing
from .lists import in_range, paginate
from .params import EXPAND, LIST_PARAMS, Text, hash_of
from .payment_objects import CHARGE, PAYMENT_INTENT

_RETRIEVE = hash_of(expand=EXPAND)
_LIST = hash_of(**LIST_PARAMS, customer=Text(), payment_intent=Text())
_FILTERS = ("customer", "payment_intent")


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    charge = request.store.get(CHARGE, request.path["charge"])
    if charge is None:
        raise resource_missing("charge", request.path["charge"], "charge", status=404)
    return request.render(charge, params.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    params = _LIST.parse(request.params)

    def keep(charge: dict[str, Any]) -> bool:
        return all(
            name not in params or charge[name] == params[name] for name in _FILTERS
        ) and in_range(charge["created"], params.get("created"))

    charges = list(request.store.all(CHARGE))[::-1]
    page = paginate(charges, params, "/v1/charges", "charge", keep)
    return request.render(page, params.get("expand", []))


ROUTES = [
    Route("GET", "/v1/charges", _list),
    Route("GET", "/v1/charges/{charge}", _retrieve),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (CHARGE, "customer"): reference("customer", "customer"),
    (CHARGE, "payment_intent"): reference(PAYMENT_INTENT, "payment_intent"),
}
