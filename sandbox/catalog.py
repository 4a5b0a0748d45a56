"""Products and Prices: `/v1/products` and `/v1/prices`, and the inline ones Checkout creates."""

from decimal import Decimal
from typing import Any

from .api import ApiRequest, Expander, Route
from .errors import invalid, parameter_missing, parameters_exclusive, resource_missing
from .lists import in_range, paginate
from .params import (
    EXPAND,
    LIST_PARAMS,
    Array,
    Boolean,
    Choice,
    Currency,
    Integer,
    Metadata,
    Number,
    Text,
    Url,
    hash_of,
)
from .store import Store, new_id

PRODUCT = "product"
PRICE = "price"

INTERVALS = ("day", "week", "month", "year")
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
# A recurring interval is at most three years: 3 years, 36 months, 156 weeks or 1095 days
# (https://docs.stripe.com/api/prices/create#create_price-recurring-interval_count).
_MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
# At most eight digits in the currency's minor unit:
# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
MAX_UNIT_AMOUNT = 99_999_999
# Limits of https://docs.stripe.com/api/products/create and
# https://docs.stripe.com/api/prices/create; the lengths are the `maxLength`s of Stripe's OpenAPI
# description, https://github.com/stripe/openapi.
PRODUCT_DESCRIPTION_MAX_LENGTH = 40_000
PRODUCT_IMAGES_MAX = 8
UNIT_LABEL_MAX_LENGTH = 12
STATEMENT_DESCRIPTOR_MAX_LENGTH = 22
LOOKUP_KEY_MAX_LENGTH = 200
LOOKUP_KEYS_MAX = 10
# A trial lasts at most two years: https://docs.stripe.com/billing/subscriptions/trials
TRIAL_PERIOD_DAYS_MAX = 730

_PRODUCT_FIELDS = {
    "name": Text(non_blank=True),
    "description": Text(PRODUCT_DESCRIPTION_MAX_LENGTH),
    "images": Array(Url(), max_items=PRODUCT_IMAGES_MAX),
    "metadata": Metadata(),
    "tax_code": Text(),
    "unit_label": Text(UNIT_LABEL_MAX_LENGTH),
}
PRODUCT_DATA = hash_of("name", **_PRODUCT_FIELDS)

_PRODUCT_CREATE = hash_of(
    "name",
    **_PRODUCT_FIELDS,
    id=Text(),
    active=Boolean(),
    shippable=Boolean(),
    statement_descriptor=Text(STATEMENT_DESCRIPTOR_MAX_LENGTH),
    url=Url(),
    expand=EXPAND,
)
_PRODUCT_LIST = hash_of(**LIST_PARAMS, active=Boolean(), ids=Array(Text()), shippable=Boolean())
_RETRIEVE = hash_of(expand=EXPAND)

_PRICE_CREATE = hash_of(
    "currency",
    currency=Currency(),
    unit_amount=Integer(0, MAX_UNIT_AMOUNT),
    unit_amount_decimal=Number(Decimal(0), Decimal(MAX_UNIT_AMOUNT)),
    product=Text(),
    product_data=hash_of(
        "name",
        name=Text(non_blank=True),
        active=Boolean(),
        metadata=Metadata(),
        statement_descriptor=Text(STATEMENT_DESCRIPTOR_MAX_LENGTH),
        tax_code=Text(),
        unit_label=Text(UNIT_LABEL_MAX_LENGTH),
    ),
    recurring=hash_of(
        "interval",
        interval=Choice(INTERVALS),
        interval_count=Integer(1),
        usage_type=Choice(("licensed", "metered")),
        trial_period_days=Integer(1, TRIAL_PERIOD_DAYS_MAX),
    ),
    tax_behavior=Choice(TAX_BEHAVIORS),
    metadata=Metadata(),
    nickname=Text(),
    lookup_key=Text(LOOKUP_KEY_MAX_LENGTH),
    active=Boolean(),
    expand=EXPAND,
)
_PRICE_LIST = hash_of(
    **LIST_PARAMS,
    active=Boolean(),
    currency=Currency(),
    product=Text(),
    type=Choice(("one_time", "recurring")),
    lookup_keys=Array(Text(LOOKUP_KEY_MAX_LENGTH), max_items=LOOKUP_KEYS_MAX),
)


def create_product(store: Store, now: int, data: dict[str, Any], *, active: bool = True) -> Any:
    product_id = data.get("id") or new_id("prod_", 14)
    product = {
        "id": product_id,
        "object": "product",
        "active": data.get("active", active),
        "created": now,
        "default_price": None,
        "description": data.get("description"),
        "images": data.get("images", []),
        "livemode": False,
        "marketing_features": [],
        "metadata": data.get("metadata", {}),
        "name": data["name"],
        "package_dimensions": None,
        "shippable": data.get("shippable"),
        "statement_descriptor": data.get("statement_descriptor"),
        "tax_code": data.get("tax_code"),
        "type": "service",
        "unit_label": data.get("unit_label"),
        "updated": now,
        "url": data.get("url"),
    }
    store.insert(PRODUCT, product_id, product)
    return product


def check_amount(data: dict[str, Any], path: str) -> None:
    """A per-unit price needs exactly one of `unit_amount` and `unit_amount_decimal`."""
    if "unit_amount" in data and "unit_amount_decimal" in data:
        raise parameters_exclusive(
            "unit_amount", "unit_amount_decimal", param=_at(path, "unit_amount")
        )
    if "unit_amount" not in data and "unit_amount_decimal" not in data:
        raise parameter_missing(_at(path, "unit_amount"))


def check_recurring(recurring: dict[str, Any] | None, path: str) -> None:
    if recurring is None:
        return
    interval, count = recurring["interval"], recurring.get("interval_count", 1)
    if count > _MAX_INTERVAL_COUNT[interval]:
        raise invalid(
            "The maximum billing interval is three years (3 years, 36 months, 156 weeks or "
            f"1095 days); {count} {interval}s is longer.",
            _at(path, "recurring[interval_count]"),
        )


def create_price(
    store: Store, now: int, data: dict[str, Any], product_id: str, *, active: bool = True
) -> Any:
    """Store a Price from validated parameters (`/v1/prices` or Checkout's `price_data`)."""
    amount: int | None = data.get("unit_amount")
    decimal: Decimal = data.get("unit_amount_decimal", Decimal(amount or 0))
    if decimal == decimal.to_integral_value():
        amount = int(decimal)
    recurring = data.get("recurring")
    price_id = new_id("price_")
    price = {
        "id": price_id,
        "object": "price",
        "active": data.get("active", active),
        "billing_scheme": "per_unit",
        "created": now,
        "currency": data["currency"],
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": data.get("lookup_key"),
        "metadata": data.get("metadata", {}),
        "nickname": data.get("nickname"),
        "product": product_id,
        "recurring": None
        if recurring is None
        else {
            "interval": recurring["interval"],
            "interval_count": recurring.get("interval_count", 1),
            "meter": None,
            "trial_period_days": recurring.get("trial_period_days"),
            "usage_type": recurring.get("usage_type", "licensed"),
        },
        "tax_behavior": data.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": _decimal_text(decimal),
    }
    store.insert(PRICE, price_id, price)
    return price


def unit_amount(price: dict[str, Any]) -> Decimal:
    return Decimal(price["unit_amount_decimal"])


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _at(path: str, name: str) -> str:
    if not path:
        return name
    head, bracket, rest = name.partition("[")
    return f"{path}[{head}]{bracket}{rest}"


def _create_product(request: ApiRequest) -> dict[str, Any]:
    data = _PRODUCT_CREATE.parse(request.params)
    if "id" in data and request.store.get(PRODUCT, data["id"]) is not None:
        raise invalid("Product already exists.", "id", "resource_already_exists")
    product = create_product(request.store, request.clock.now(), data)
    return request.render(product, data.get("expand", []))


def _retrieve_product(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    product = request.store.get(PRODUCT, request.path["id"])
    if product is None:
        raise resource_missing("product", request.path["id"], "id", status=404)
    return request.render(product, data.get("expand", []))


def _list_products(request: ApiRequest) -> dict[str, Any]:
    data = _PRODUCT_LIST.parse(request.params)
    ids = data.get("ids")

    def keep(product: dict[str, Any]) -> bool:
        return (
            _matches(product, data, "active", "shippable")
            and (ids is None or product["id"] in ids)
            and in_range(product["created"], data.get("created"))
        )

    products = list(request.store.all(PRODUCT))[::-1]
    page = paginate(products, data, "/v1/products", "product", keep)
    return request.render(page, data.get("expand", []))


def _create_price(request: ApiRequest) -> dict[str, Any]:
    data = _PRICE_CREATE.parse(request.params)
    store = request.store
    check_amount(data, "")
    check_recurring(data.get("recurring"), "")
    if "product" in data and "product_data" in data:
        raise parameters_exclusive("product", "product_data")
    if "product" not in data and "product_data" not in data:
        raise parameter_missing("product")
    if "product" in data and store.get(PRODUCT, data["product"]) is None:
        raise resource_missing("product", data["product"], "product")
    lookup_key = data.get("lookup_key")
    for other in store.all(PRICE):
        if lookup_key is not None and other["lookup_key"] == lookup_key:
            raise invalid(f"A price (`{other['id']}`) already uses that lookup key.", "lookup_key")
    now = request.clock.now()
    product_id = data.get("product") or create_product(store, now, data["product_data"])["id"]
    price = create_price(store, now, data, product_id)
    return request.render(price, data.get("expand", []))


def _retrieve_price(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    price = request.store.get(PRICE, request.path["price"])
    if price is None:
        raise resource_missing("price", request.path["price"], "price", status=404)
    return request.render(price, data.get("expand", []))


def _list_prices(request: ApiRequest) -> dict[str, Any]:
    data = _PRICE_LIST.parse(request.params)
    lookup_keys = data.get("lookup_keys")

    def keep(price: dict[str, Any]) -> bool:
        return (
            _matches(price, data, "active", "currency", "product", "type")
            and (lookup_keys is None or price["lookup_key"] in lookup_keys)
            and in_range(price["created"], data.get("created"))
        )

    prices = list(request.store.all(PRICE))[::-1]
    page = paginate(prices, data, "/v1/prices", "price", keep)
    return request.render(page, data.get("expand", []))


def _matches(item: dict[str, Any], filters: dict[str, Any], *names: str) -> bool:
    return all(name not in filters or item[name] == filters[name] for name in names)


def _expand_product(store: Store, parent: dict[str, Any]) -> Any:
    return store.get(PRODUCT, parent["product"])


ROUTES = [
    Route("POST", "/v1/products", _create_product),
    Route("GET", "/v1/products", _list_products),
    Route("GET", "/v1/products/{id}", _retrieve_product),
    Route("POST", "/v1/prices", _create_price),
    Route("GET", "/v1/prices", _list_prices),
    Route("GET", "/v1/prices/{price}", _retrieve_price),
]
EXPANDERS: dict[tuple[str, str], Expander] = {("price", "product"): _expand_product}
