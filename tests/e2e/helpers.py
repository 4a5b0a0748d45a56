"""What the end-to-end tests share: building requests, reading rich error details back, and a
view of the Stripe sandbox."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar

import grpc
import stripe
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from tests.support import eventually

M = TypeVar("M", bound=Message)
# What `CheckoutServiceStub(channel)` is on a grpc.aio channel: its calls are awaitable. The
# class exists for type checkers only, hence the quotes.
Stub: TypeAlias = "api_grpc.CheckoutServiceAsyncStub"


# An address for the customer paying through the sandbox's control route (`Sandbox.pay`).
SAN_FRANCISCO = {
    "line1": "1 Main St",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94103",
    "country": "US",
}


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def cart_request(order_id: str, **overrides: Any) -> api.CreateSessionRequest:
    """The README's first example: two inline-priced lines on a hosted page, paid in USD."""
    fields: dict[str, Any] = {
        "order_id": order_id,
        "mode": pb.Session.PAYMENT,
        "ui_mode": pb.Session.HOSTED_PAGE,
        "currency": "usd",
        "line_items": [
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(
                    unit_amount=1500, product_name="T-shirt"
                ),
                quantity=2,
            ),
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(unit_amount=990, product_name="Mug"),
                quantity=1,
            ),
        ],
        "success_url": "https://shop.example/done?cs={CHECKOUT_SESSION_ID}",
    }
    fields.update(overrides)
    return api.CreateSessionRequest(**fields)


async def stored(stub: Stub, order_id: str) -> pb.Session:
    return (await stub.GetSession(api.GetSessionRequest(order_id=order_id))).session


async def until_stored(stub: Stub, order_id: str, **expected: Any) -> pb.Session:
    """The ledger's view once the webhook has landed (no refresh: no peeking at Stripe)."""

    async def landed() -> bool:
        session = await stored(stub, order_id)
        return all(getattr(session, k) == v for k, v in expected.items())

    await eventually(landed, within_seconds=10)
    return await stored(stub, order_id)


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M:
    """The one detail of `kind` in the error's google.rpc.Status; fails if absent."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    for any_detail in status.details:
        if any_detail.Is(kind.DESCRIPTOR):
            message = kind()
            any_detail.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in {error.code()}: {error.details()}")


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations]


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(detail(error, error_details_pb2.ErrorInfo).reason)


class Sandbox:
    """The test's view of the Stripe sandbox: the real stripe-python client and its stats."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = stripe.HTTPXClient()
        self.client = stripe.StripeClient(
            "sk_test_tests", base_addresses={"api": url}, http_client=self.http
        )

    async def sessions_for(self, order_id: str) -> list[stripe.checkout.Session]:
        page = await self.client.v1.checkout.sessions.list_async({"limit": 100})
        return [s async for s in page.auto_paging_iter() if s.client_reference_id == order_id]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=5) as response:
            return dict(json.load(response))

    @contextmanager
    def registered_for_tax(self, *countries: str) -> Iterator[None]:
        """The account registered for tax in `countries` too (its Tax settings), and as before
        afterwards: Stripe Tax collects only where the account is registered, and a new
        account is registered nowhere."""
        settings = self.control("GET", "/_sandbox/tax/settings")
        before = [r["country"] for r in settings["registrations"]]
        path = "/_sandbox/tax/settings"
        self.control("POST", path, {"registrations": sorted({*before, *countries})})
        try:
            yield
        finally:
            self.control("POST", path, {"registrations": before})

    @contextmanager
    def terms_of_service(self, url: str = "https://shop.example/terms") -> Iterator[None]:
        """The account's public details name `url` as its terms of service (consent to them
        needs one; empty: none), and what they named before afterwards."""
        path = "/_sandbox/account/public_details"
        before = self.control("GET", path)["terms_of_service_url"] or ""
        self.control("POST", path, {"terms_of_service_url": url})
        try:
            yield
        finally:
            self.control("POST", path, {"terms_of_service_url": before})

    def pay(self, session_id: str, **choices: Any) -> dict[str, Any]:
        """The customer pays on Stripe's page (the control API stands in for them)."""
        return self.control("POST", f"/_sandbox/checkout/sessions/{session_id}/pay", choices)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A control route's answer (`/_sandbox/…`), as JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.load(response)
        return answer if isinstance(answer, dict) else {}
