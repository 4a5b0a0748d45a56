"""The client package: its channel carries the service config, so a caller rides out a brief
Stripe outage without writing a retry loop, and every call has a deadline."""

from __future__ import annotations

import json

from checkout_client import CheckoutClient, service_config

from checkout.v1 import checkout_service_pb2
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.helpers import Sandbox, cart_request, new_order_id


def test_every_method_has_a_deadline_or_is_a_stream_and_retries_unavailable() -> None:
    config = json.loads(service_config())
    methods = {name["method"]: entry for entry in config["methodConfig"] for name in entry["name"]}
    service = checkout_service_pb2.DESCRIPTOR.services_by_name["CheckoutService"]
    assert set(methods) == {method.name for method in service.methods}
    assert {
        "ListEvents",
        "StreamEvents",
        "CapturePayment",
        "CancelPayment",
        "RefundPayment",
    } <= set(methods)
    for method, entry in methods.items():
        assert entry["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert ("timeout" in entry) == (method not in ("WatchSession", "StreamEvents"))


async def test_a_brief_stripe_outage_is_retried_by_the_channel(
    app: Application, sandbox: Sandbox
) -> None:
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": "/v1/checkout/sessions", "method": "POST", "status": 503, "count": 2},
    )
    try:
        async with CheckoutClient.connect(f"127.0.0.1:{app.grpc_port}", plaintext=True) as client:
            created = await client.stub.CreateSession(cart_request(new_order_id()))
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    assert created.session.status == pb.Session.OPEN
