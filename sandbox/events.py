"""Events: what the sandbox records when a Checkout Session changes, and `/v1/events`.

`emit` stores the `event` object, with a snapshot of the session as it is after the change, and
puts one delivery per subscribed endpoint in the outbox (an attachment keyed by event id: the
endpoints still owed a delivery and how many attempts each has had). Like Stripe, it picks the
endpoints when the event happens; `webhooks.py` drains the outbox. Because the outbox lives in the
store, undelivered events survive a restart with a state file.

`pending_webhooks` counts the endpoints that have not yet answered 2xx; an endpoint whose
deliveries were all refused stays counted, as on Stripe.
"""

import copy
import fnmatch
from typing import Any

from .api import API_VERSION, ApiRequest, Route
from .errors import parameters_exclusive, resource_missing
from .lists import in_range, paginate
from .params import EXPAND, LIST_PARAMS, Array, Boolean, Text, hash_of
from .store import Store, new_id
from .webhook_endpoints import subscribers

EVENT = "event"
OUTBOX = "event.outbox"

# `types` filters by up to 20 event types: https://docs.stripe.com/api/events/list
EVENT_TYPES_FILTER_MAX = 20
_LIST = hash_of(
    **LIST_PARAMS,
    type=Text(),
    types=Array(Text(), max_items=EVENT_TYPES_FILTER_MAX),
    delivery_success=Boolean(),
)
_RETRIEVE = hash_of(expand=EXPAND)


def emit(
    store: Store,
    now: int,
    event_type: str,
    subject: dict[str, Any],
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record that `subject` changed; `request_id` names the API request that changed it, and
    is None when Stripe itself (a customer in Checkout, the expiry sweeper) did."""
    event_id = new_id("evt_")
    endpoints = subscribers(store, event_type)
    event = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": {"object": copy.deepcopy(subject)},
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
    store.insert(EVENT, event_id, event)
    if endpoints:
        store.attach(OUTBOX, event_id, dict.fromkeys(endpoints, 0))
    return event


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    event = request.store.get(EVENT, request.path["id"])
    if event is None:
        raise resource_missing("event", request.path["id"], "id", status=404)
    return request.render(event, data.get("expand", []))


def _list(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)
    if "type" in data and "types" in data:
        raise parameters_exclusive("type", "types")
    # `type` may use `*` as a wildcard (`checkout.session.*`).
    patterns = data["types"] if "types" in data else [data.get("type", "*")]

    def keep(event: dict[str, Any]) -> bool:
        return (
            any(fnmatch.fnmatchcase(event["type"], pattern) for pattern in patterns)
            and in_range(event["created"], data.get("created"))
            and (
                "delivery_success" not in data
                or data["delivery_success"] == (event["pending_webhooks"] == 0)
            )
        )

    events = list(request.store.all(EVENT))[::-1]
    page = paginate(events, data, "/v1/events", "event", keep)
    return request.render(page, data.get("expand", []))


ROUTES = [
    Route("GET", "/v1/events", _list),
    Route("GET", "/v1/events/{id}", _retrieve),
]
