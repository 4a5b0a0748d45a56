"""Coupons (`/v1/coupons`) and promotion codes (`/v1/promotion_codes`).

stripe-python 16.x creates a promotion code with `promotion[type]=coupon` and
`promotion[coupon]=…` (PromotionCodeCreateParams), not the older top-level `coupon`.
"""

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
    hash_of,
)
from .store import Store, new_id

COUPON = "coupon"
PROMOTION_CODE = "promotion_code"

# Limits of https://docs.stripe.com/api/coupons/create and
# https://docs.stripe.com/api/promotion_codes/create: the `maxLength`s of Stripe's OpenAPI
# description, https://github.com/stripe/openapi.
COUPON_NAME_MAX_LENGTH = 40
PROMOTION_CODE_MAX_LENGTH = 500

_COUPON_CREATE = hash_of(
    amount_off=Integer(1),
    applies_to=hash_of(products=Array(Text())),
    currency=Currency(),
    duration=Choice(("forever", "once", "repeating")),
    duration_in_months=Integer(1),
    expand=EXPAND,
    id=Text(),
    max_redemptions=Integer(1),
    metadata=Metadata(),
    name=Text(COUPON_NAME_MAX_LENGTH),
    percent_off=Number(Decimal("0.01"), Decimal(100)),
    redeem_by=Integer(),
)
_PROMOTION_CODE_CREATE = hash_of(
    "promotion",
    active=Boolean(),
    code=Text(PROMOTION_CODE_MAX_LENGTH),
    customer=Text(),
    expand=EXPAND,
    expires_at=Integer(),
    max_redemptions=Integer(1),
    metadata=Metadata(),
    promotion=hash_of("type", type=Choice(("coupon",)), coupon=Text()),
    restrictions=hash_of(
        first_time_transaction=Boolean(),
        minimum_amount=Integer(0),
        minimum_amount_currency=Currency(),
    ),
)
_RETRIEVE = hash_of(expand=EXPAND)
_COUPON_LIST = hash_of(**LIST_PARAMS)
_PROMOTION_CODE_LIST = hash_of(
    **LIST_PARAMS, active=Boolean(), code=Text(), coupon=Text(), customer=Text()
)


def coupon_usable(coupon: dict[str, Any], now: int, currency: str | None, param: str) -> None:
    """Refuse a coupon Checkout could not apply to a session in `currency`."""
    if not coupon["valid"] or (coupon["redeem_by"] is not None and coupon["redeem_by"] <= now):
        raise invalid(f"Coupon `{coupon['id']}` is no longer valid.", param)
    if coupon["amount_off"] is not None and currency is not None and coupon["currency"] != currency:
        raise invalid(
            f"The coupon `{coupon['id']}` is in `{coupon['currency']}`, but the session is in "
            f"`{currency}`.",
            param,
        )


def promotion_code_usable(code: dict[str, Any], now: int, customer: str | None, param: str) -> None:
    if not code["active"]:
        raise invalid(f"The promotion code `{code['code']}` is inactive.", param)
    if code["expires_at"] is not None and code["expires_at"] <= now:
        raise invalid(f"The promotion code `{code['code']}` has expired.", param)
    if code["customer"] is not None and code["customer"] != customer:
        raise invalid(
            f"The promotion code `{code['code']}` is restricted to another customer.", param
        )


def check_minimum(code: dict[str, Any], subtotal: int, currency: str | None, param: str) -> None:
    restrictions = code["restrictions"]
    minimum = restrictions["minimum_amount"]
    if minimum is not None and (
        restrictions["minimum_amount_currency"] != currency or subtotal < minimum
    ):
        raise invalid(
            f"The promotion code `{code['code']}` requires a minimum order of {minimum} "
            f"{restrictions['minimum_amount_currency']}.",
            param,
        )


def _create_coupon(request: ApiRequest) -> dict[str, Any]:
    data = _COUPON_CREATE.parse(request.params)
    store = request.store
    if "amount_off" in data and "percent_off" in data:
        raise parameters_exclusive("amount_off", "percent_off")
    if "amount_off" not in data and "percent_off" not in data:
        raise invalid("You must pass either `amount_off` or `percent_off`.", "percent_off")
    if "amount_off" in data and "currency" not in data:
        raise parameter_missing("currency")
    duration = data.get("duration", "once")
    if duration == "repeating" and "duration_in_months" not in data:
        raise parameter_missing("duration_in_months")
    if duration != "repeating" and "duration_in_months" in data:
        raise invalid(
            "`duration_in_months` can only be used with `duration: repeating`.",
            "duration_in_months",
        )
    if "id" in data and store.get(COUPON, data["id"]) is not None:
        raise invalid("Coupon already exists.", "id", "resource_already_exists")
    coupon_id = data.get("id") or new_id("", 8).upper()
    coupon = coupon_object(coupon_id, request.clock.now(), data)
    store.insert(COUPON, coupon_id, coupon)
    return request.render(coupon, data.get("expand", []))


def coupon_object(coupon_id: str, now: int, data: dict[str, Any]) -> dict[str, Any]:
    """A Coupon from parameters parsed with `/v1/coupons`' schema."""
    percent = data.get("percent_off")
    applies_to = data.get("applies_to")
    return {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": data.get("amount_off"),
        "applies_to": None if applies_to is None else {"products": applies_to.get("products", [])},
        "created": now,
        "currency": data.get("currency") if "amount_off" in data else None,
        "currency_options": None,
        "duration": data.get("duration", "once"),
        "duration_in_months": data.get("duration_in_months"),
        "livemode": False,
        "max_redemptions": data.get("max_redemptions"),
        "metadata": data.get("metadata", {}),
        "name": data.get("name"),
        "percent_off": None if percent is None else float(percent),
        "redeem_by": data.get("redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }


def _retrieve_coupon(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    coupon = request.store.get(COUPON, request.path["coupon"])
    if coupon is None:
        raise resource_missing("coupon", request.path["coupon"], "coupon", status=404)
    return request.render(coupon, data.get("expand", []))


def _list_coupons(request: ApiRequest) -> dict[str, Any]:
    data = _COUPON_LIST.parse(request.params)
    coupons = list(request.store.all(COUPON))[::-1]
    page = paginate(
        coupons,
        data,
        "/v1/coupons",
        "coupon",
        lambda coupon: in_range(coupon["created"], data.get("created")),
    )
    return request.render(page, data.get("expand", []))


def _create_promotion_code(request: ApiRequest) -> dict[str, Any]:
    data = _PROMOTION_CODE_CREATE.parse(request.params)
    store = request.store
    promotion = data["promotion"]
    if "coupon" not in promotion:
        raise parameter_missing("promotion[coupon]")
    if store.get(COUPON, promotion["coupon"]) is None:
        raise resource_missing("coupon", promotion["coupon"], "promotion[coupon]")
    if "customer" in data and store.get("customer", data["customer"]) is None:
        raise resource_missing("customer", data["customer"], "customer")
    restrictions = data.get("restrictions", {})
    if "minimum_amount" in restrictions and "minimum_amount_currency" not in restrictions:
        raise parameter_missing("restrictions[minimum_amount_currency]")
    code = data.get("code") or new_id("", 8).upper()
    for other in store.all(PROMOTION_CODE):
        if other["active"] and other["code"].lower() == code.lower():
            raise invalid(f"An active promotion code with `code: {code}` already exists.", "code")
    promotion_code_id = new_id("promo_")
    promotion_code = promotion_code_object(
        promotion_code_id, request.clock.now(), {**data, "code": code}
    )
    store.insert(PROMOTION_CODE, promotion_code_id, promotion_code)
    return request.render(promotion_code, data.get("expand", []))


def promotion_code_object(code_id: str, now: int, data: dict[str, Any]) -> dict[str, Any]:
    """A Promotion code from parameters parsed with `/v1/promotion_codes`' schema."""
    restrictions = data.get("restrictions", {})
    return {
        "id": code_id,
        "object": "promotion_code",
        "active": data.get("active", True),
        "code": data["code"],
        "created": now,
        "customer": data.get("customer"),
        "customer_account": None,
        "expires_at": data.get("expires_at"),
        "livemode": False,
        "max_redemptions": data.get("max_redemptions"),
        "metadata": data.get("metadata", {}),
        "promotion": {"coupon": data["promotion"]["coupon"], "type": "coupon"},
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": restrictions.get("first_time_transaction", False),
            "minimum_amount": restrictions.get("minimum_amount"),
            "minimum_amount_currency": restrictions.get("minimum_amount_currency"),
        },
        "times_redeemed": 0,
    }


def _retrieve_promotion_code(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    code_id = request.path["promotion_code"]
    code = request.store.get(PROMOTION_CODE, code_id)
    if code is None:
        raise resource_missing("promotion code", code_id, "promotion_code", status=404)
    return request.render(code, data.get("expand", []))


def _list_promotion_codes(request: ApiRequest) -> dict[str, Any]:
    data = _PROMOTION_CODE_LIST.parse(request.params)

    def keep(code: dict[str, Any]) -> bool:
        return (
            ("active" not in data or code["active"] == data["active"])
            and ("code" not in data or code["code"].lower() == data["code"].lower())
            and ("coupon" not in data or code["promotion"]["coupon"] == data["coupon"])
            and ("customer" not in data or code["customer"] == data["customer"])
            and in_range(code["created"], data.get("created"))
        )

    codes = list(request.store.all(PROMOTION_CODE))[::-1]
    page = paginate(codes, data, "/v1/promotion_codes", "promotion_code", keep)
    return request.render(page, data.get("expand", []))


def coupon_of(store: Store, promotion_code: dict[str, Any]) -> Any:
    return store.get(COUPON, promotion_code["promotion"]["coupon"])


def _expand_promotion_coupon(store: Store, code: dict[str, Any]) -> Any:
    return coupon_of(store, code)


ROUTES = [
    Route("POST", "/v1/coupons", _create_coupon),
    Route("GET", "/v1/coupons", _list_coupons),
    Route("GET", "/v1/coupons/{coupon}", _retrieve_coupon),
    Route("POST", "/v1/promotion_codes", _create_promotion_code),
    Route("GET", "/v1/promotion_codes", _list_promotion_codes),
    Route("GET", "/v1/promotion_codes/{promotion_code}", _retrieve_promotion_code),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (PROMOTION_CODE, "promotion.coupon"): _expand_promotion_coupon,
}
