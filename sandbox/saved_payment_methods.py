"""Cards Checkout saves on a Customer, and the routes that read them: `GET
/v1/payment_methods/{payment_method}` and `GET /v1/customers/{customer}/payment_methods`.

Every card payment has its PaymentMethod (the PaymentIntent's `payment_method`), attached to
no one unless Checkout saves it. Checkout saves the card it was paid with (https://docs.stripe.com/payments/checkout/save-during-payment,
https://docs.stripe.com/payments/checkout/how-checkout-works#saved-payment-methods):

- in `setup` mode, and in `subscription` mode, always, on the session's Customer;
- in `payment` mode with `payment_intent_data[setup_future_usage]`, when there is a Customer
  (given, or created by `customer_creation=always`), without asking: `allow_redisplay` is
  `limited`;
- with `saved_payment_method_options[payment_method_save]=enabled`, when the customer ticks
  "Save my payment details" (`save_payment_method` on the page and on `/pay`):
  `allow_redisplay` is `always`.

A returning customer is offered the saved cards whose `allow_redisplay` is in the session's
`saved_payment_method_options[allow_redisplay_filters]` (`always` unless given) and may pay with
one (`payment_method` on the page and on `/pay`). The sandbox does not model removing them
(`payment_method_remove` is echoed only).
"""

from typing import Any

from .api import ApiRequest, Route
from .cards import Card
from .customers import CUSTOMER
from .errors import invalid, resource_missing
from .lists import paginate
from .params import EXPAND, LIST_PARAMS, Choice, hash_of
from .store import Store, new_id

PAYMENT_METHOD = "payment_method"
# Attachment keyed by payment method id: the card's number, which Stripe keeps and never shows,
# so that a saved card pays (or is declined) as the card itself would.
CARD_NUMBER = "payment_method.card_number"
# Test cards expire in the future; the sandbox gives each the same date.
_EXPIRY_MONTH, _EXPIRY_YEAR = 12, 2034

_RETRIEVE = hash_of(expand=EXPAND)
_LIST = hash_of(
    **LIST_PARAMS,
    allow_redisplay=Choice(("always", "limited", "unspecified")),
    type=Choice(("card",)),
)


def save_card(
    store: Store,
    now: int,
    card: Card,
    customer_id: str | None,
    allow_redisplay: str,
    billing: dict[str, Any],
) -> dict[str, Any]:
    """The PaymentMethod of a card that paid, attached to the Customer when one is given;
    `billing` is its `billing_details`."""
    method: dict[str, Any] = {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": allow_redisplay,
        "billing_details": billing,
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": _EXPIRY_MONTH,
            "exp_year": _EXPIRY_YEAR,
            # Stripe's fingerprint tells the same number apart across customers.
            "fingerprint": card.number[-8:],
            "funding": "credit",
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now,
        "customer": customer_id,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
    store.insert(PAYMENT_METHOD, method["id"], method)
    store.attach(CARD_NUMBER, method["id"], card.number)
    return method


def offered_to(store: Store, session: dict[str, Any]) -> list[dict[str, Any]]:
    """The saved cards the session shows its returning customer."""
    options = session["saved_payment_method_options"]
    if session["customer"] is None or options is None:
        return []
    filters = options["allow_redisplay_filters"] or ["always"]
    return [
        method
        for method in store.all(PAYMENT_METHOD)
        if method["customer"] == session["customer"] and method["allow_redisplay"] in filters
    ]


def saved_card(store: Store, session: dict[str, Any], method_id: str) -> Card:
    """The card of a saved payment method the session offers, for paying with it."""
    for method in offered_to(store, session):
        if method["id"] == method_id:
            return Card(store.attached(CARD_NUMBER, method_id))
    raise invalid(
        f"`{method_id}` is not one of the saved payment methods this Checkout Session offers.",
        "payment_method",
    )


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    method_id = request.path["payment_method"]
    method = request.store.get(PAYMENT_METHOD, method_id)
    if method is None:
        raise resource_missing("payment method", method_id, "payment_method", status=404)
    return request.render(method, data.get("expand", []))


def _list_for_customer(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)
    customer_id = request.path["customer"]
    if request.store.get(CUSTOMER, customer_id) is None:
        raise resource_missing("customer", customer_id, "customer", status=404)

    def keep(method: dict[str, Any]) -> bool:
        return method["customer"] == customer_id and (
            "allow_redisplay" not in data or method["allow_redisplay"] == data["allow_redisplay"]
        )

    methods = list(request.store.all(PAYMENT_METHOD))[::-1]
    url = f"/v1/customers/{customer_id}/payment_methods"
    return request.render(
        paginate(methods, data, url, "payment_method", keep), data.get("expand", [])
    )


ROUTES = [
    Route("GET", "/v1/payment_methods/{payment_method}", _retrieve),
    Route("GET", "/v1/customers/{customer}/payment_methods", _list_for_customer),
]
