"""What operators watch: the counters at /metrics move by what a scenario did, with no
unbounded label values; with tracing on, each RPC is a span in the caller's trace with child
spans for Stripe and Postgres, and log lines carry the trace id."""

from __future__ import annotations

import json
import re
import secrets
import signal
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2 as pay
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id
from tests.e2e.processes import service_process
from tests.support import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(app: Application) -> Samples:
    async with httpx.AsyncClient() as http:
        page = await http.get(f"http://127.0.0.1:{app.http_port}/metrics")
    assert page.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
    }


async def webhooks_settled(sandbox: Sandbox) -> bool:
    """No webhook delivery due within the next minute: what earlier tests paid has been
    delivered, and a retry another test left scheduled far ahead cannot land in this test's
    window. (The app is shared by the package, and so are its counters.)"""
    owed = sandbox.control("GET", "/_sandbox/webhook_deliveries")["scheduled"]
    now = sandbox.control("GET", "/_sandbox/clock")["now"]
    return all(d["next_attempt_at"] is not None and d["next_attempt_at"] > now + 60 for d in owed)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_the_counters_move_by_what_a_scenario_did(
    app: Application, stub: Stub, sandbox: Sandbox
) -> None:
    await eventually(lambda: webhooks_settled(sandbox))
    before = await scrape(app)
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session
    await stub.CreateSession(cart_request(order_id))  # reused: no Stripe call
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.CreateSession(cart_request(new_order_id(), currency="usdx"))
    sandbox.pay(created.id, payment_status="paid")

    async def paid() -> bool:
        got = await stub.GetSession(api.GetSessionRequest(order_id=order_id))
        # The session's webhook, and its payment's (payment_intent.succeeded).
        return bool(
            got.session.payment_status == pb.Session.PAID
            and got.session.payment.status == pay.Payment.SUCCEEDED
        )

    await eventually(paid)
    after = await scrape(app)

    rpc = {"grpc_type": "unary", "grpc_service": "checkout.v1.CheckoutService"}
    create = {**rpc, "grpc_method": "CreateSession"}
    assert delta(before, after, "grpc_server_started_total", **create) == 3
    assert delta(before, after, "grpc_server_handled_total", **create, grpc_code="OK") == 2
    assert (
        delta(before, after, "grpc_server_handled_total", **create, grpc_code="INVALID_ARGUMENT")
        == 1
    )
    assert delta(before, after, "grpc_server_handling_seconds_count", **create) == 3
    assert (
        delta(before, after, "checkout_stripe_requests_total", operation="create", outcome="ok")
        == 1
    )
    assert delta(before, after, "checkout_sessions_total", event="created") == 1
    assert delta(before, after, "checkout_sessions_total", event="completed") == 1
    assert (
        delta(
            before,
            after,
            "checkout_webhook_events_total",
            type="checkout.session.completed",
            result="applied",
        )
        == 1
    )
    assert (
        delta(
            before,
            after,
            "checkout_webhook_events_total",
            type="payment_intent.succeeded",
            result="applied",
        )
        == 1
    )
    assert delta(before, after, "checkout_payment_transitions_total", transition="captured") == 1
    # One lag per applied event: the session's and its payment's.
    assert delta(before, after, "checkout_webhook_lag_seconds_count") == 2
    # No order, session or caller id ever becomes a label value.
    for _, labels in after:
        for _, value in labels:
            assert order_id not in value and created.id not in value


def value(samples: Samples, name: str) -> float:
    return samples[(name, ())]


async def test_what_the_process_holds_is_served_and_follows_its_streams(
    app: Application, stub: Stub
) -> None:
    """What `make soak` samples: memory, file descriptors, asyncio tasks, pool connections."""
    order_id = new_order_id()
    await stub.CreateSession(cart_request(order_id))
    before = await scrape(app)
    streams = [stub.WatchSession(api.WatchSessionRequest(order_id=order_id)) for _ in range(5)]
    for stream in streams:
        await stream.read()  # the session as it is: each stream is open and served
    during = await scrape(app)
    for stream in streams:
        stream.cancel()

    async def back() -> bool:
        after = await scrape(app)
        return value(after, "checkout_asyncio_tasks") <= value(before, "checkout_asyncio_tasks")

    await eventually(back)
    # The service runs in this process here: its memory and descriptors are the test's.
    assert value(before, "process_resident_memory_bytes") > 0
    assert value(before, "process_open_fds") > 0
    # One task per open stream at least, gone with the streams.
    tasks = value(during, "checkout_asyncio_tasks") - value(before, "checkout_asyncio_tasks")
    assert tasks >= len(streams)
    assert value(before, "checkout_db_pool_connections") >= 1
    assert value(before, "checkout_db_pool_connections") >= value(before, "checkout_db_pool_in_use")


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_the_access_log_names_each_failed_call_and_successful_ones_at_debug(
    environ: dict[str, str], level: str
) -> None:
    mine, failing = f"req-{secrets.token_hex(6)}", f"req-{secrets.token_hex(6)}"
    async with service_process(environ, log_level=level) as replica:
        await replica.stub.CreateSession(
            cart_request(new_order_id()), metadata=(("x-request-id", mine),)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await replica.stub.CreateSession(
                cart_request(new_order_id(), currency="usdx"),
                metadata=(("x-request-id", failing),),
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await replica.stub.GetSession(api.GetSessionRequest(order_id=new_order_id()))
        replica.process.send_signal(signal.SIGTERM)
        await replica.next_event("stopped")

    lines = [line for line in replica.lines if line.get("event") == "rpc"]
    create = "/checkout.v1.CheckoutService/CreateSession"
    assert [(line["method"], line["code"], line["level"]) for line in lines] == [
        *([(create, "OK", "debug")] if level == "debug" else []),
        (create, "INVALID_ARGUMENT", "info"),
        ("/checkout.v1.CheckoutService/GetSession", "NOT_FOUND", "info"),
    ]
    assert all(line["caller"] == "local" for line in lines)
    # The caller's request id, or one made up for a call that sent none.
    sent = [mine, failing] if level == "debug" else [failing]
    assert [line["request_id"] for line in lines[:-1]] == sent
    assert re.fullmatch("[0-9a-f]{32}", lines[-1]["request_id"])


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in a stream of log lines and pretty-printed spans."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        try:
            value, at = decoder.raw_decode(text, start)
        except ValueError:
            at = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


async def test_with_tracing_on_an_rpc_continues_the_callers_trace(
    environ: dict[str, str],
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    env = {**environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "checkout-test"}
    # Successful calls are logged at debug.
    async with service_process(env, log_level="debug") as replica:
        await replica.stub.CreateSession(
            cart_request(new_order_id()),
            metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),),
        )
        replica.process.send_signal(signal.SIGTERM)
        await replica.next_event("stopped")
        assert replica.process.stdout is not None
        rest = (await replica.process.stdout.read()).decode()

    printed = "\n".join(line.get("raw") or json.dumps(line) for line in replica.lines)
    objects = json_objects(printed + rest)
    ours = [o for o in objects if o.get("context", {}).get("trace_id") == f"0x{trace_id}"]
    [server] = [s for s in ours if s["name"] == "/checkout.v1.CheckoutService/CreateSession"]
    assert server["kind"] == "SpanKind.SERVER"
    assert server["parent_id"] == f"0x{parent_id}"
    children = {s["name"] for s in ours if s["parent_id"] == server["context"]["span_id"]}
    assert {"stripe create", "postgres"} <= children
    [rpc_line] = [
        o for o in objects if o.get("event") == "rpc" and o.get("method", "").endswith("Session")
    ]
    assert rpc_line["trace_id"] == trace_id
