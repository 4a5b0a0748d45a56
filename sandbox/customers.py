"""Customers: `/v1/customers`, which Checkout Sessions reference by id."""

from typing import Any

from .api import ApiRequest, Route
from .errors import resource_missing
from .lists import in_range, paginate
from .params import (
    COUNTRY_CODE_LENGTH,
    EMAIL_MAX_LENGTH,
    EXPAND,
    LIST_PARAMS,
    Array,
    Choice,
    Email,
    Metadata,
    Text,
    hash_of,
)
from .store import Store, new_id

CUSTOMER = "customer"

# Limits of https://docs.stripe.com/api/customers/create: the `maxLength`s of Stripe's OpenAPI
# description, https://github.com/stripe/openapi.
ADDRESS_FIELD_MAX_LENGTH = 200
POSTAL_CODE_MAX_LENGTH = 20
NAME_MAX_LENGTH = 256
PHONE_MAX_LENGTH = 20

ADDRESS = hash_of(
    city=Text(ADDRESS_FIELD_MAX_LENGTH),
    country=Text(COUNTRY_CODE_LENGTH),
    line1=Text(ADDRESS_FIELD_MAX_LENGTH),
    line2=Text(ADDRESS_FIELD_MAX_LENGTH),
    postal_code=Text(POSTAL_CODE_MAX_LENGTH),
    state=Text(ADDRESS_FIELD_MAX_LENGTH),
)
_CREATE = hash_of(
    address=ADDRESS,
    description=Text(),
    email=Email(),
    expand=EXPAND,
    metadata=Metadata(),
    name=Text(NAME_MAX_LENGTH),
    phone=Text(PHONE_MAX_LENGTH),
    preferred_locales=Array(Text()),
    shipping=hash_of(
        "address",
        "name",
        address=ADDRESS,
        name=Text(NAME_MAX_LENGTH),
        phone=Text(PHONE_MAX_LENGTH),
    ),
    tax_exempt=Choice(("exempt", "none", "reverse")),
)
_LIST = hash_of(**LIST_PARAMS, email=Text(EMAIL_MAX_LENGTH))
_RETRIEVE = hash_of(expand=EXPAND)


def country_of(customer: dict[str, Any] | None) -> str | None:
    """Where tax and currency are decided: the shipping address first, as Stripe Tax does."""
    if customer is None:
        return None
    for place in ((customer["shipping"] or {}).get("address"), customer["address"]):
        if place and place.get("country"):
            country: str = place["country"].upper()
            return country
    return None


def address(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Stripe's address hash, every field present, from parameters parsed with `ADDRESS`."""
    if data is None:
        return None
    names = ("city", "country", "line1", "line2", "postal_code", "state")
    return {name: data.get(name) for name in names}


def create_customer(store: Store, now: int, data: dict[str, Any]) -> dict[str, Any]:
    """A Customer from parameters parsed with `/v1/customers`' schema, as Checkout creates one."""
    customer_id = new_id("cus_", 14)
    shipping = data.get("shipping")
    customer = {
        "id": customer_id,
        "object": "customer",
        "address": address(data.get("address")),
        "balance": 0,
        "business_name": None,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": data.get("description"),
        "discount": None,
        "email": data.get("email"),
        "individual_name": None,
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "name": data.get("name"),
        "next_invoice_sequence": 1,
        "phone": data.get("phone"),
        "preferred_locales": data.get("preferred_locales", []),
        "shipping": None
        if shipping is None
        else {
            "address": address(shipping["address"]),
            "carrier": None,
            "name": shipping["name"],
            "phone": shipping.get("phone"),
            "tracking_number": None,
        },
        "tax_exempt": data.get("tax_exempt", "none"),
        "test_clock": None,
    }
    store.insert(CUSTOMER, customer_id, customer)
    return customer


def _create(request: ApiRequest) -> dict[str, Any]:
    data = _CREATE.parse(request.params)
    customer = create_customer(request.store, request.clock.now(), data)
    return request.render(customer, data.get("expand", []))


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    customer = request.store.get(CUSTOMER, request.path["customer"])
    if customer is None:
        raise resource_missing("customer", request.path["customer"], "customer", status=404)
    return request.render(customer, data.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)

    def keep(customer: dict[str, Any]) -> bool:
        return ("email" not in data or customer["email"] == data["email"]) and in_range(
            customer["created"], data.get("created")
        )

    customers = list(request.store.all(CUSTOMER))[::-1]
    page = paginate(customers, data, "/v1/customers", "customer", keep)
    return request.render(page, data.get("expand", []))


ROUTES = [
    Route("POST", "/v1/customers", _create),
    Route("GET", "/v1/customers", _list),
    Route("GET", "/v1/customers/{customer}", _retrieve),
]
