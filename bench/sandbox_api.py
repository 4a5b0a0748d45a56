"""The sandbox's control API and webhook endpoints, as the bench drives them over HTTP."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import stripe

from service.config import SANDBOX_API_KEY
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH

CHECKOUT_SESSIONS = "/v1/checkout/sessions"
# Nothing listens on the discard port: the endpoint points here until the service's HTTP port
# is known, and no event is emitted before then.
_NOWHERE = "http://127.0.0.1:9"


def _post(url: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def add_latency(api_base: str, path_prefix: str, delay_ms: int) -> None:
    """Every POST under `path_prefix` waits `delay_ms` first, until `clear_faults`."""
    _post(
        f"{api_base}/_sandbox/faults",
        {"path_prefix": path_prefix, "method": "POST", "delay_ms": delay_ms, "count": 10**9},
    )


def clear_faults(api_base: str) -> None:
    _post(f"{api_base}/_sandbox/faults", method="DELETE")


def pay(api_base: str, session_id: str) -> None:
    _post(f"{api_base}/_sandbox/checkout/sessions/{session_id}/pay", {"payment_status": "paid"})


def _client(api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(SANDBOX_API_KEY, base_addresses={"api": api_base})


def create_webhook_endpoint(api_base: str) -> tuple[str, str]:
    """A webhook endpoint for the events the service handles: its id and signing secret. Its
    URL is set once the service has bound its HTTP port (`point_webhook_endpoint`)."""
    # stripe-python types event names as literals; ours are plain strings of the same values.
    events: list[Any] = sorted(HANDLED_EVENTS)
    endpoint = _client(api_base).v1.webhook_endpoints.create(
        {"url": f"{_NOWHERE}{WEBHOOK_PATH}", "enabled_events": events}
    )
    return endpoint.id, str(endpoint.secret)


def point_webhook_endpoint(api_base: str, endpoint_id: str, http_addr: str) -> None:
    _client(api_base).v1.webhook_endpoints.update(
        endpoint_id, {"url": f"http://{http_addr}{WEBHOOK_PATH}"}
    )
