"""Checkout Sessions: the `checkout.session` object and its `/v1/checkout/sessions` routes."""

from typing import Any

from .api import ApiRequest, Expander, Route
from .checkout_objects import (
    check_amounts,
    first_totals,
    inline_price,
    line_item_object,
    session_object,
)
from .checkout_rules import plan_session
from .errors import StripeError, resource_missing
from .events import emit
from .lists import in_range, list_object, paginate
from .params import EXPAND, LIST_PARAMS, Choice, Text, hash_of
from .shipping import SHIPPING_RATE, create_shipping_rate
from .store import Store, new_id
from .trials import check_trial

SESSION = "checkout.session"
# Attachments keyed by session id.
LINE_ITEMS = "checkout.session.line_items"
# Attachment keyed by line item id: its `discounts` and `taxes`, which Stripe includes only
# when they are expanded (`line_items.data.taxes`; `data.taxes` on `/line_items`).
LINE_ITEM_INCLUDABLES = "checkout.session.line_item.includables"
INCLUDABLE = ("discounts", "taxes")
BREAKDOWN = "checkout.session.breakdown"
CREATE_PARAMS = "checkout.session.params"
# The `scheme://host:port` a session was created through, for the URLs it hands out later.
ORIGIN = "checkout.session.origin"
# A recovery URL (`recovery.py`) works for 30 days
# (https://docs.stripe.com/payments/checkout/abandoned-carts).
RECOVERY_PATH = "/c/recover/{session}"
RECOVERY_LIFETIME = 30 * 24 * 60 * 60

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
    session = create_session(request)
    return request.render(session, session_expand(request.params))


def session_expand(raw: dict[str, Any]) -> list[str]:
    expand: list[str] = EXPAND.coerce(raw.get("expand", []), "expand")
    return expand


def create_session(request: ApiRequest, recovered_from: str | None = None) -> dict[str, Any]:
    """Create and store a session from `request.params`; returns the stored session."""
    store, now = request.store, request.clock.now()
    plan = plan_session(store, now, request.params)
    check_trial(plan.params, now)
    session_id = new_id("cs_test_a1", 56)
    check_amounts(store, plan, session_id, now)
    prices = [line.price or inline_price(store, now, line) for line in plan.lines]
    rates = [
        option.get("rate") or create_shipping_rate(store, now, option["data"])
        for option in plan.shipping
    ]
    totals = first_totals(store, plan, session_id, now, prices, rates)
    items = [
        line_item_object(store, line, price, amounts)
        for line, price, amounts in zip(plan.lines, prices, totals.lines, strict=True)
    ]
    session = session_object(request, plan, session_id, now, totals, rates)
    session["recovered_from"] = recovered_from
    store.insert(SESSION, session_id, session)
    store_line_items(store, session_id, items)
    store.attach(BREAKDOWN, session_id, totals.breakdown())
    store.attach(CREATE_PARAMS, session_id, request.params)
    store.attach(ORIGIN, session_id, request.origin)
    return session


def store_line_items(store: Store, session_id: str, items: list[dict[str, Any]]) -> None:
    """Keep the session's line items, their includable fields apart."""
    for item in items:
        includables = {name: item.pop(name) for name in INCLUDABLE if name in item}
        if includables:
            store.attach(LINE_ITEM_INCLUDABLES, item["id"], includables)
    store.attach(LINE_ITEMS, session_id, items)


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
    recovery = (session["after_expiration"] or {}).get("recovery")
    if recovery is not None and recovery["enabled"]:
        path = RECOVERY_PATH.format(session=session["id"])
        recovery["url"] = f"{store.attached(ORIGIN, session['id'])}{path}"
        recovery["expires_at"] = now + RECOVERY_LIFETIME
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


def visible_line_items(store: Store, session_id: str) -> list[dict[str, Any]]:
    """The session's line items; one the customer took down to quantity 0 is gone from them."""
    return [item for item in store.attached(LINE_ITEMS, session_id) if item["quantity"] > 0]


def _list_line_items(request: ApiRequest) -> dict[str, Any]:
    params = _LINE_ITEMS_LIST.parse(request.params)
    session = _find(request)
    items = visible_line_items(request.store, session["id"])
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    return request.render(paginate(items, params, url, "line_item"), params.get("expand", []))


def _expand_line_items(store: Store, session: dict[str, Any]) -> Any:
    # Like any list Stripe expands: its first page of 10, with `has_more`
    # (https://docs.stripe.com/expand#lists); the rest through `/line_items`.
    items = visible_line_items(store, session["id"])
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    shown = items[:_EXPANDED_LINE_ITEMS]
    return list_object(url, shown, len(items) > len(shown))


def _includable(name: str) -> Expander:
    def expand(store: Store, item: dict[str, Any]) -> Any:
        return (store.attached(LINE_ITEM_INCLUDABLES, item["id"]) or {}).get(name, [])

    return expand


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
    **{("item", name): _includable(name) for name in INCLUDABLE},
    (SESSION, "shipping_cost.shipping_rate"): lambda store, session: store.get(
        SHIPPING_RATE, session["shipping_cost"]["shipping_rate"]
    ),
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
