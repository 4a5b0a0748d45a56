"""Webhook endpoints: `/v1/webhook_endpoints`, the URLs the sandbox delivers events to.

As on Stripe, the signing secret (`whsec_…`) is in the create response only; it is kept beside
the endpoint (an attachment), never in the object that retrieve, list and update return.

An endpoint that has failed every delivery for three days is disabled by the sandbox, as by
Stripe (`webhook_schedule.py`): its `status` is `disabled` until it is updated with
`disabled=false`.

The sandbox emits the Checkout Session events and those of the money after checkout
(`EVENT_TYPES`), so an endpoint may subscribe to those or to `*`. Unlike Stripe it accepts
`localhost` and plain-HTTP URLs: the receivers in tests and on a developer's machine are local.
"""

from typing import Any

from .api import API_VERSION, ApiRequest, Route
from .errors import invalid, parameter_missing, resource_missing
from .lists import paginate
from .params import (
    EXPAND,
    LIST_PARAMS,
    Array,
    Boolean,
    Choice,
    Hash,
    Metadata,
    Text,
    Url,
    hash_of,
    updated_metadata,
)
from .store import Store, new_id

WEBHOOK_ENDPOINT = "webhook_endpoint"
SECRET = "webhook_endpoint.secret"

EVENT_TYPES = (
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    # What moves money after checkout (payment_objects.py, payment_intents.py, refunds.py,
    # disputes.py).
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.succeeded",
    "refund.created",
    "refund.failed",
    "refund.updated",
)
_EVENTS = Array(Choice((*EVENT_TYPES, "*")))
_FIELDS = {
    "description": Text(),
    "enabled_events": _EVENTS,
    "expand": EXPAND,
    "metadata": Metadata(),
    "url": Url(),
}
_CREATE = hash_of(
    "url",
    "enabled_events",
    **_FIELDS,
    # Events are rendered in one version only, so that is the only one an endpoint may pin.
    api_version=Choice((API_VERSION,)),
    connect=Boolean(),
)
_UPDATE = hash_of(**_FIELDS, disabled=Boolean())
_LIST = hash_of(**{name: spec for name, spec in LIST_PARAMS.items() if name != "created"})
_RETRIEVE = hash_of(expand=EXPAND)


def subscribers(store: Store, event_type: str) -> list[str]:
    """Ids of the enabled endpoints that receive events of `event_type`, oldest first."""
    return [
        endpoint["id"]
        for endpoint in store.all(WEBHOOK_ENDPOINT)
        if endpoint["status"] == "enabled"
        and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
    ]


def _parse(schema: Hash, raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The parameters, and whether they unset `description` (Stripe's `Literal['']`)."""
    unset = raw.get("description") == ""
    data = schema.parse(
        {name: value for name, value in raw.items() if not (unset and name == "description")}
    )
    if "enabled_events" in data and not data["enabled_events"]:
        raise parameter_missing("enabled_events")
    return data, unset


def _create(request: ApiRequest) -> dict[str, Any]:
    data, _ = _parse(_CREATE, request.params)
    if data.get("connect"):
        raise invalid("The sandbox has no connected accounts: `connect` must be false.", "connect")
    endpoint_id, secret = new_id("we_"), new_id("whsec_", 32)
    endpoint = {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": data.get("api_version"),
        "application": None,
        "created": request.clock.now(),
        "description": data.get("description"),
        "enabled_events": data["enabled_events"],
        "livemode": False,
        "metadata": data.get("metadata", {}),
        "status": "enabled",
        "url": data["url"],
    }
    request.store.insert(WEBHOOK_ENDPOINT, endpoint_id, endpoint)
    request.store.attach(SECRET, endpoint_id, secret)
    return request.render({**endpoint, "secret": secret}, data.get("expand", []))


def _find(request: ApiRequest) -> dict[str, Any]:
    endpoint_id = request.path["webhook_endpoint"]
    endpoint: dict[str, Any] | None = request.store.get(WEBHOOK_ENDPOINT, endpoint_id)
    if endpoint is None:
        raise resource_missing("webhook endpoint", endpoint_id, "webhook_endpoint", status=404)
    return endpoint


def _retrieve(request: ApiRequest) -> dict[str, Any]:
    data = _RETRIEVE.parse(request.params)
    return request.render(_find(request), data.get("expand", []))


def _update(request: ApiRequest) -> dict[str, Any]:
    data, unset_description = _parse(_UPDATE, request.params)
    endpoint = _find(request)
    if unset_description:
        endpoint["description"] = None
    for name in ("description", "enabled_events", "url"):
        if name in data:
            endpoint[name] = data[name]
    if "disabled" in data:
        endpoint["status"] = "disabled" if data["disabled"] else "enabled"
    if "metadata" in data:
        endpoint["metadata"] = updated_metadata(endpoint["metadata"], request.params["metadata"])
    request.store.replace(WEBHOOK_ENDPOINT, endpoint["id"], endpoint)
    return request.render(endpoint, data.get("expand", []))


def _delete(request: ApiRequest) -> dict[str, Any]:
    endpoint = _find(request)
    request.store.remove(WEBHOOK_ENDPOINT, endpoint["id"])
    request.store.detach(SECRET, endpoint["id"])
    return {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}


def _list(request: ApiRequest) -> dict[str, Any]:
    data = _LIST.parse(request.params)
    endpoints = list(request.store.all(WEBHOOK_ENDPOINT))[::-1]
    page = paginate(endpoints, data, "/v1/webhook_endpoints", "webhook_endpoint")
    return request.render(page, data.get("expand", []))


ROUTES = [
    Route("POST", "/v1/webhook_endpoints", _create),
    Route("GET", "/v1/webhook_endpoints", _list),
    Route("GET", "/v1/webhook_endpoints/{webhook_endpoint}", _retrieve),
    Route("POST", "/v1/webhook_endpoints/{webhook_endpoint}", _update),
    Route("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", _delete),
]
