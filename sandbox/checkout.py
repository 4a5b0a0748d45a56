"""Checkout Sessions: the `checkout.session` object and its `/v1/checkout/sessions` routes."""

from typing import Any

from .adaptive_pricing import presentment
from .api import ApiRequest, Expander, Route
from .catalog import PRODUCT, create_price, create_product
from .checkout_rules import LinePlan, SessionPlan, plan_session
from .checkout_totals import automatic_tax, line_amounts, session_amounts
from .customers import country_of
from .errors import StripeError, resource_missing
from .events import emit
from .lists import in_range, list_object, paginate
from .params import EXPAND, LIST_PARAMS, Choice, Text, hash_of
from .shipping import create_shipping_rate
from .store import Store, new_id
from .totals import Amounts, CartLine, Totals, compute_totals

SESSION = "checkout.session"
# Attachments keyed by session id.
LINE_ITEMS = "checkout.session.line_items"
BREAKDOWN = "checkout.session.breakdown"
CREATE_PARAMS = "checkout.session.params"

# Line items shown inside an expanded session; the rest are paged through `/line_items`.
_EXPANDED_LINE_ITEMS = 10

_RETRIEVE = hash_of(expand=EXPAND)
_LIST = hash_of(
    **LIST_PARAMS,
    status=Choice(("open", "complete", "expired")),
    customer=Text(),
    customer_account=Text(),
    customer_details=hash_of("email", email=Text()),
    payment_intent=Text(),
    payment_link=Text(),
    subscription=Text(),
)
_LIST_FILTERS = (
    "status",
    "customer",
    "customer_account",
    "payment_intent",
    "payment_link",
    "subscription",
)
_LINE_ITEMS_LIST = hash_of(**LIST_PARAMS)


def _create(request: ApiRequest) -> dict[str, Any]:
    store, now = request.store, request.clock.now()
    plan = plan_session(store, now, request.params)
    session_id = new_id("cs_test_a1", 56)
    prices = [line.price or _inline_price(store, now, line) for line in plan.lines]
    rates = [
        option.get("rate") or create_shipping_rate(store, now, option["data"])
        for option in plan.shipping
    ]
    totals = _totals(plan, session_id, now, prices, rates)
    items = [
        _line_item(store, line, price, amounts)
        for line, price, amounts in zip(plan.lines, prices, totals.lines, strict=True)
    ]
    session = _session_object(request, plan, session_id, now, totals, rates)
    store.insert(SESSION, session_id, session)
    store.attach(LINE_ITEMS, session_id, items)
    store.attach(BREAKDOWN, session_id, totals.breakdown())
    store.attach(CREATE_PARAMS, session_id, request.params)
    return request.render(session, plan.params.get("expand", []))


def _inline_price(store: Store, now: int, line: LinePlan) -> Any:
    data = line.price_data
    assert data is not None
    product_id = data.get("product")
    if product_id is None:
        # Checkout's inline products and prices exist but are archived, out of the catalog.
        product_id = create_product(store, now, data["product_data"], active=False)["id"]
    return create_price(store, now, data, product_id, active=False)


def _totals(
    plan: SessionPlan,
    session_id: str,
    now: int,
    prices: list[dict[str, Any]],
    rates: list[dict[str, Any]],
) -> Totals:
    cart = [
        CartLine(line.subtotal, price["product"], price["tax_behavior"], line.tax_rates)
        for line, price in zip(plan.lines, prices, strict=True)
    ]
    coupon = discount = None
    if plan.discounts:
        coupon, code = plan.discounts[0]["coupon"], plan.discounts[0]["promotion_code"]
        discount = {
            "id": new_id("di_"),
            "object": "discount",
            "checkout_session": session_id,
            "customer": None if plan.customer is None else plan.customer["id"],
            "customer_account": None,
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None if code is None else code["id"],
            "source": {"coupon": coupon["id"], "type": "coupon"},
            "start": now,
            "subscription": None,
            "subscription_item": None,
        }
    enabled = plan.params.get("automatic_tax", {}).get("enabled", False)
    automatic = automatic_tax(enabled, country_of(plan.customer), now)
    return compute_totals(cart, coupon, discount, rates[0] if rates else None, automatic)


def _line_item(
    store: Store, line: LinePlan, price: dict[str, Any], amounts: Amounts
) -> dict[str, Any]:
    adjustable = line.adjustable_quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "adjustable_quantity": None
        if adjustable is None
        else {
            "enabled": adjustable["enabled"],
            "maximum": adjustable.get("maximum", 99),
            "minimum": adjustable.get("minimum", 0),
        },
        **line_amounts(amounts),
        "currency": price["currency"],
        "description": store.get(PRODUCT, price["product"])["name"],
        "metadata": line.metadata,
        "price": price,
        "quantity": line.quantity,
    }


def _session_object(
    request: ApiRequest,
    plan: SessionPlan,
    session_id: str,
    now: int,
    totals: Totals,
    rates: list[dict[str, Any]],
) -> dict[str, Any]:
    params, mode, ui_mode = plan.params, plan.mode, plan.ui_mode
    paying = mode != "setup"
    hosted = ui_mode == "hosted_page"
    allowed = params.get("allowed_payment_method_types")
    excluded = params.get("excluded_payment_method_types", [])
    automatic_tax = params.get("automatic_tax", {"enabled": False})
    country = country_of(plan.customer)
    adaptive = params.get("adaptive_pricing", {}).get("enabled", False)
    tax_ids = params.get("tax_id_collection", {"enabled": False})
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": adaptive},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "allowed_payment_method_types": allowed,
        **session_amounts(totals, paying),
        "automatic_tax": {
            "enabled": automatic_tax["enabled"],
            "liability": {"account": None} | automatic_tax.get("liability", {"type": "self"})
            if automatic_tax["enabled"]
            else None,
            "provider": "stripe" if automatic_tax["enabled"] else None,
            "status": ("complete" if country else "requires_location_inputs")
            if automatic_tax["enabled"]
            else None,
        },
        "billing_address_collection": params.get("billing_address_collection"),
        "branding_settings": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None if hosted else f"{session_id}_secret_{new_id('', 24)}",
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": plan.currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": plan.customer["id"] if plan.customer else None,
        "customer_account": None,
        "customer_creation": params.get("customer_creation", "if_required")
        if mode != "subscription"
        else None,
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [
            # A promotion code's discount names the code, not the coupon behind it.
            {"coupon": None, "promotion_code": discount["promotion_code"]["id"]}
            if discount["promotion_code"]
            else {"coupon": discount["coupon"]["id"], "promotion_code": None}
            for discount in plan.discounts
        ],
        "excluded_payment_method_types": params.get("excluded_payment_method_types"),
        "expires_at": plan.expires_at,
        "integration_identifier": params.get("integration_identifier"),
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": None,
        "metadata": params.get("metadata", {}),
        "mode": mode,
        "name_collection": None,
        "optional_items": None,
        "origin_context": params.get("origin_context"),
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": params.get("payment_method_collection", "always")
        if mode == "subscription"
        else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [kind for kind in (allowed or ["card"]) if kind not in excluded],
        "payment_status": "unpaid" if paying else "no_payment_required",
        "permissions": None,
        "phone_number_collection": {
            "enabled": params.get("phone_number_collection", {}).get("enabled", False)
        },
        "presentment_details": presentment(totals.total, plan.currency, country)
        if adaptive and paying and plan.currency
        else None,
        "recovered_from": None,
        "redirect_on_completion": None
        if hosted
        else params.get("redirect_on_completion", "always"),
        "return_url": params.get("return_url"),
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        }
        if paying
        else None,
        "setup_intent": None,
        "shipping_address_collection": params.get("shipping_address_collection"),
        "shipping_options": [
            {"shipping_amount": rate["fixed_amount"]["amount"], "shipping_rate": rate["id"]}
            for rate in rates
        ],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "tax_id_collection": {
            "enabled": tax_ids["enabled"],
            "required": tax_ids.get("required", "never"),
        },
        "ui_mode": ui_mode,
        "url": f"{request.origin}/c/pay/{session_id}" if hosted else None,
        "wallet_options": None,
    }


def expire_due(store: Store, now: int) -> None:
    """Expire every open session whose `expires_at` has passed, as Stripe's sweeper does."""
    due = [s for s in store.all(SESSION) if s["status"] == "open" and s["expires_at"] <= now]
    for session in due:
        _expire(store, now, session)


def _expire(
    store: Store,
    now: int,
    session: dict[str, Any],
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    session["status"] = "expired"
    session["url"] = None
    store.replace(SESSION, session["id"], session)
    emit(store, now, "checkout.session.expired", session, request_id, idempotency_key)


def find_session(store: Store, now: int, session_id: str) -> dict[str, Any]:
    """The session as it is at `now` (expired if its time has come), or a 404."""
    expire_due(store, now)
    session: dict[str, Any] | None = store.get(SESSION, session_id)
    if session is None:
        raise resource_missing("checkout.session", session_id, "session", status=404)
    return session


def _find(request: ApiRequest) -> dict[str, Any]:
    return find_session(request.store, request.clock.now(), request.path["session"])


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    return request.render(_find(request), params.get("expand", []))


def _expire_route(request: ApiRequest) -> dict[str, Any]:
    params = _RETRIEVE.parse(request.params)
    session = _find(request)
    if session["status"] != "open":
        # The endpoint has begun executing here, so Stripe saves this refusal under the key.
        raise StripeError(
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f"Session has a status of `{session['status']}`.",
            saved=True,
        )
    _expire(
        request.store, request.clock.now(), session, request.request_id, request.idempotency_key
    )
    return request.render(session, params.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    params = _LIST.parse(request.params)
    expire_due(request.store, request.clock.now())
    email = params.get("customer_details", {}).get("email")

    def keep(session: dict[str, Any]) -> bool:
        details = session["customer_details"] or {}
        return (
            all(name not in params or session[name] == params[name] for name in _LIST_FILTERS)
            and (email is None or details.get("email") == email)
            and in_range(session["created"], params.get("created"))
        )

    sessions = list(request.store.all(SESSION))[::-1]
    page = paginate(sessions, params, "/v1/checkout/sessions", "checkout.session", keep)
    return request.render(page, params.get("expand", []))


def _list_line_items(request: ApiRequest) -> dict[str, Any]:
    params = _LINE_ITEMS_LIST.parse(request.params)
    session = _find(request)
    items = request.store.attached(LINE_ITEMS, session["id"])
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    return request.render(paginate(items, params, url, "line_item"), params.get("expand", []))


def _expand_line_items(store: Store, session: dict[str, Any]) -> Any:
    items = store.attached(LINE_ITEMS, session["id"])
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    shown = items[:_EXPANDED_LINE_ITEMS]
    return list_object(url, shown, len(items) > len(shown))


def _expander(kind: str, field: str) -> Expander:
    def expand(store: Store, parent: dict[str, Any]) -> Any:
        return None if parent[field] is None else store.get(kind, parent[field])

    return expand


ROUTES = [
    Route("POST", "/v1/checkout/sessions", _create),
    Route("GET", "/v1/checkout/sessions", _list),
    Route("GET", "/v1/checkout/sessions/{session}", _retrieve),
    Route("POST", "/v1/checkout/sessions/{session}/expire", _expire_route),
    Route("GET", "/v1/checkout/sessions/{session}/line_items", _list_line_items),
]
EXPANDERS: dict[tuple[str, str], Expander] = {
    (SESSION, "line_items"): _expand_line_items,
    (SESSION, "total_details.breakdown"): lambda store, session: store.attached(
        BREAKDOWN, session["id"]
    ),
    **{
        (SESSION, field): _expander(kind, field)
        for field, kind in {
            "customer": "customer",
            "invoice": "invoice",
            "payment_intent": "payment_intent",
            "payment_link": "payment_link",
            "setup_intent": "setup_intent",
            "subscription": "subscription",
        }.items()
    },
}
