"""What the sandbox tests share: stripe-python clients for the sandbox, request builders, the
control API's reads, and a webhook receiver that records what it gets."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import stripe
from aiohttp import web
from stripe.params.checkout import SessionCreateParams

from tests.support import eventually

API_KEY = "sk_test_123"


def stripe_client(
    url: str, http: stripe.HTTPXClient, api_key: str = API_KEY
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, base_addresses={"api": url}, http_client=http, max_network_retries=0
    )


async def stats(raw_http: httpx.AsyncClient) -> dict[str, Any]:
    response = await raw_http.get("/_sandbox/stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def add_fault(raw_http: httpx.AsyncClient, **fault: Any) -> None:
    (await raw_http.post("/_sandbox/faults", json=fault)).raise_for_status()


def line_item(
    unit_amount: int = 1500, quantity: int = 1, currency: str = "usd", name: str = "T-shirt"
) -> dict[str, Any]:
    return {
        "price_data": {
            "currency": currency,
            "unit_amount": unit_amount,
            "product_data": {"name": name},
        },
        "quantity": quantity,
    }


def session_params(*items: dict[str, Any], **extra: Any) -> SessionCreateParams:
    """A session's parameters, `extra` added and those set to None left out. Typed as
    stripe-python's parameters, although tests also build ones that Stripe refuses."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": list(items) or [line_item()],
        "success_url": "https://shop.example/done?cs={CHECKOUT_SESSION_ID}",
    }
    params.update(extra)
    return cast(
        SessionCreateParams, {name: value for name, value in params.items() if value is not None}
    )


def ids(objects: Sequence[Any]) -> list[str]:
    return [item.id for item in objects]


async def deliveries(raw_http: httpx.AsyncClient) -> dict[str, Any]:
    response = await raw_http.get("/_sandbox/webhook_deliveries")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def settled(raw_http: httpx.AsyncClient) -> None:
    """Wait until no delivery is owed: each was delivered or given up."""

    async def nothing_owed() -> bool:
        return bool((await deliveries(raw_http))["pending"] == 0)

    await eventually(nothing_owed)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A webhook endpoint at `url`: records every request, answers `answers` in turn, then 200.
    `stalled_url` records requests and answers none until the test ends."""

    url: str = ""
    stalled_url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), dict(request.headers)))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def stall(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), dict(request.headers)))
        await self.released.wait()
        return web.Response()

    async def count(self, expected: int) -> list[Received]:
        """The requests, once exactly `expected` have arrived."""

        async def arrived() -> bool:
            return len(self.requests) >= expected

        await eventually(arrived)
        assert len(self.requests) == expected
        return self.requests


async def endpoint(
    client: stripe.StripeClient, url: str, events: Sequence[str] = ("*",)
) -> stripe.WebhookEndpoint:
    # stripe-python types event names as literals; tests name them as plain strings.
    enabled_events: list[Any] = list(events)
    return await client.v1.webhook_endpoints.create_async(
        {"url": url, "enabled_events": enabled_events}
    )


async def pay(raw_http: httpx.AsyncClient, session_id: str, **details: Any) -> dict[str, Any]:
    response = await raw_http.post(f"/_sandbox/checkout/sessions/{session_id}/pay", json=details)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def advance_clock(raw_http: httpx.AsyncClient, seconds: int) -> None:
    (await raw_http.post("/_sandbox/clock/advance", json={"seconds": seconds})).raise_for_status()


async def checkout_payment(
    client: stripe.StripeClient,
    raw_http: httpx.AsyncClient,
    *,
    unit_amount: int = 1500,
    currency: str = "usd",
    capture_method: str | None = None,
    payment_status: str = "paid",
    paid_by: dict[str, Any] | None = None,
    **extra: Any,
) -> stripe.PaymentIntent:
    """The PaymentIntent of a payment-mode session (`extra` its parameters) that the customer
    has just paid (`paid_by`: the control route's details), with `latest_charge` expanded."""
    data = None if capture_method is None else {"capture_method": capture_method}
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(unit_amount, currency=currency), payment_intent_data=data, **extra)
    )
    await pay(raw_http, session.id, payment_status=payment_status, **(paid_by or {}))
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert isinstance(paid.payment_intent, str)
    return await client.v1.payment_intents.retrieve_async(
        paid.payment_intent, {"expand": ["latest_charge"]}
    )


def charge_of(intent: stripe.PaymentIntent) -> stripe.Charge:
    """The expanded `latest_charge` of a PaymentIntent."""
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    return charge


def missing_fields(value: stripe.StripeObject, *includable: str) -> list[str]:
    """The fields stripe-python's typed class declares that `value` lacks: none, when the
    sandbox returns Stripe's whole shape. `includable` fields are there only when expanded."""
    declared = [name for name in type(value).__annotations__ if not name.isupper()]
    return [name for name in declared if name not in value and name not in includable]


async def event_types(client: stripe.StripeClient, *types: str) -> list[str]:
    """The types of the events of `types` (`/v1/events`' `types` filter), oldest first."""
    filters: list[Any] = list(types)
    listed = await client.v1.events.list_async({"types": filters, "limit": 100})
    return [str(event.type) for event in listed.data][::-1]
