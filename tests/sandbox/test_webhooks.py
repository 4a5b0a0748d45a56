"""Events and their signed delivery to a real receiver on loopback: verified by stripe-python,
retried with backoff, paused and resumed, kept for `/v1/events`, and kept across a restart."""

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess
from tests.support import run_sandbox, stop_sandbox

from .support import Receiver, deliveries, endpoint, pay, session_params, settled, stripe_client


def verified(body: bytes, headers: dict[str, str], secret: str) -> stripe.Event:
    """What the service does with a delivery: stripe-python checks the signature on the bytes."""
    event: stripe.Event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    return event


async def test_events_arrive_signed_with_the_session_after_the_change(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(client, receiver.url, ["checkout.session.completed"])
    assert hook.secret is not None
    session = await client.v1.checkout.sessions.create_async(
        session_params(metadata={"order_id": "42"})
    )
    await pay(raw, session.id, email="ada@example.com")

    [received] = await receiver.count(1)
    assert received.headers["Content-Type"].startswith("application/json")
    timestamp = int(received.headers["Stripe-Signature"].split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 60
    event = verified(received.body, received.headers, hook.secret)
    assert isinstance(event, stripe.Event)
    assert event.id.startswith("evt_") and event.object == "event"
    assert (event.type, event.api_version, event.livemode) == (
        "checkout.session.completed",
        "2026-10-28.endive",
        False,
    )
    assert event.request is not None and event.request.id is None
    snapshot = event.data.object
    assert (snapshot["id"], snapshot["status"], snapshot["payment_status"]) == (
        session.id,
        "complete",
        "paid",
    )
    assert snapshot["metadata"]["order_id"] == "42"
    assert snapshot["customer_details"]["email"] == "ada@example.com"
    with pytest.raises(stripe.SignatureVerificationError):
        verified(received.body, received.headers, "whsec_someone_else")

    await settled(raw)
    stored = await client.v1.events.retrieve_async(event.id)
    assert isinstance(stored, stripe.Event)
    assert stored.pending_webhooks == 0 and stored.type == "checkout.session.completed"
    assert stored.data.object["id"] == session.id
    [attempt] = (await deliveries(raw))["deliveries"]
    assert attempt == {
        "event": event.id,
        "type": "checkout.session.completed",
        "endpoint": hook.id,
        "url": receiver.url,
        "attempt": 1,
        "status": 200,
        "error": None,
        "delivered": True,
    }


async def test_a_failing_receiver_is_retried_until_it_answers(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    hook = await endpoint(client, receiver.url)
    assert hook.secret is not None
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id, options={"idempotency_key": "x-1"})

    received = await receiver.count(3)
    events = [verified(r.body, r.headers, hook.secret) for r in received]
    assert {event.id for event in events} == {events[0].id}
    assert events[0].type == "checkout.session.expired"
    assert events[0].request is not None
    assert events[0].request.idempotency_key == "x-1"
    assert events[0].request.id is not None and events[0].request.id.startswith("req_")
    await settled(raw)
    attempts = (await deliveries(raw))["deliveries"]
    assert [(a["attempt"], a["status"], a["delivered"]) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert (await client.v1.events.retrieve_async(events[0].id)).pending_webhooks == 0


async def test_pause_holds_deliveries_and_resume_sends_them(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await endpoint(client, receiver.url)
    paused = await raw.post("/_sandbox/webhooks/pause")
    assert paused.json()["paused"] is True
    sessions = [await client.v1.checkout.sessions.create_async(session_params()) for _ in range(2)]
    for session in sessions:
        await client.v1.checkout.sessions.expire_async(session.id)
    state = await deliveries(raw)
    assert (state["pending"], state["deliveries"]) == (2, [])
    listed = await client.v1.events.list_async({"delivery_success": False})
    assert [event.pending_webhooks for event in listed.data] == [1, 1]

    resumed = await raw.post("/_sandbox/webhooks/resume")
    assert resumed.json()["paused"] is False
    received = await receiver.count(2)
    subjects = {json.loads(r.body)["data"]["object"]["id"] for r in received}
    assert subjects == {session.id for session in sessions}
    await settled(raw)


async def test_endpoints_get_only_what_they_subscribe_to(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    await endpoint(client, receiver.url, ["checkout.session.expired"])
    ignored = await endpoint(client, receiver.url + "?disabled", ["*"])
    await client.v1.webhook_endpoints.update_async(ignored.id, {"disabled": True})
    paid = await client.v1.checkout.sessions.create_async(session_params())
    await pay(raw, paid.id)
    expired = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(expired.id)

    [received] = await receiver.count(1)
    assert json.loads(received.body)["type"] == "checkout.session.expired"
    # Both events exist; the completed one had nobody to go to.
    listed = await client.v1.events.list_async({"type": "checkout.session.*"})
    assert [(e.type, e.pending_webhooks) for e in listed.data] == [
        ("checkout.session.expired", 0),
        ("checkout.session.completed", 0),
    ]


async def test_deliveries_go_where_the_endpoint_points_now(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    """How the service's tests register it: the endpoint first (for its secret), its URL set
    once the service has bound its port."""
    hook = await endpoint(client, "http://127.0.0.1:9/not-yet", ["checkout.session.expired"])
    moved = await client.v1.webhook_endpoints.update_async(hook.id, {"url": receiver.url})
    assert (moved.url, moved.enabled_events, moved.status) == (
        receiver.url,
        ["checkout.session.expired"],
        "enabled",
    )
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id)

    [received] = await receiver.count(1)
    assert hook.secret is not None
    assert verified(received.body, received.headers, hook.secret).type == "checkout.session.expired"
    await settled(raw)
    attempts = (await deliveries(raw))["deliveries"]
    assert [(a["url"], a["delivered"]) for a in attempts] == [(receiver.url, True)]


async def test_the_events_list_filters_by_type(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    expired = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(expired.id)
    paid = await client.v1.checkout.sessions.create_async(session_params())
    await pay(raw, paid.id)

    async def types(params: Any) -> list[str]:
        return [event.type for event in (await client.v1.events.list_async(params)).data]

    assert await types({}) == [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.created",
        "checkout.session.expired",
    ]
    assert await types({"type": "checkout.session.expired"}) == ["checkout.session.expired"]
    assert await types({"type": "checkout.session.*"}) == [
        "checkout.session.completed",
        "checkout.session.expired",
    ]
    assert await types({"types": ["checkout.session.completed"]}) == ["checkout.session.completed"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.events.retrieve_async("evt_nope")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


async def test_advancing_the_clock_expires_due_sessions_at_once(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(client, receiver.url, ["checkout.session.expired"])
    assert hook.secret is not None
    soon = int(time.time()) + 31 * 60
    due = [
        await client.v1.checkout.sessions.create_async(session_params(expires_at=soon))
        for _ in range(2)
    ]
    later = await client.v1.checkout.sessions.create_async(session_params())
    advanced = await raw.post("/_sandbox/clock/advance", json={"seconds": 32 * 60})
    now = advanced.json()["now"]

    received = await receiver.count(2)
    events = [verified(r.body, r.headers, hook.secret) for r in received]
    assert {event.data.object["id"] for event in events} == {session.id for session in due}
    assert all(event.data.object["status"] == "expired" for event in events)
    assert all(event.created >= now for event in events)
    # Signed with the sandbox's clock, which is ahead of real time now.
    assert all(int(r.headers["Stripe-Signature"].split(",")[0][2:]) >= now for r in received)
    assert (await client.v1.checkout.sessions.retrieve_async(later.id)).status == "open"


async def test_deliveries_that_never_succeed_are_given_up(
    http_client: stripe.HTTPXClient, receiver: Receiver
) -> None:
    running = await run_sandbox(
        "--port",
        "0",
        "--webhook-attempts",
        "2",
        "--webhook-retry-delay",
        "0.01",
        # Long enough for the receiver in this test's own event loop to answer on a busy
        # machine; the stalled one never answers, however long the sandbox waits.
        "--webhook-timeout",
        "1",
    )
    try:
        client = stripe_client(running.url, http_client)
        await endpoint(client, receiver.url)
        await endpoint(client, receiver.stalled_url)
        await endpoint(client, "http://127.0.0.1:9/closed")
        receiver.answers = [500, 302, 200]
        session = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(session.id)
        async with httpx.AsyncClient(base_url=running.url) as raw:
            await settled(raw)
            attempts = (await deliveries(raw))["deliveries"]
        assert len(receiver.requests) == 4

        def outcomes(url: str) -> list[tuple[int, int | None, str | None, bool]]:
            return [
                (a["attempt"], a["status"], a["error"], a["delivered"])
                for a in attempts
                if a["url"] == url
            ]

        # A redirect is not followed: it fails like any other non-2xx answer.
        assert outcomes(receiver.url) == [(1, 500, None, False), (2, 302, None, False)]
        assert outcomes(receiver.stalled_url) == [
            (1, None, "timed out after 1 s", False),
            (2, None, "timed out after 1 s", False),
        ]
        refused = outcomes("http://127.0.0.1:9/closed")
        assert [(a, status, delivered) for a, status, _, delivered in refused] == [
            (1, None, False),
            (2, None, False),
        ]
        assert all(error and error.startswith("Client") for _, _, error, _ in refused)
        [event] = (await client.v1.events.list_async()).data
        assert event.pending_webhooks == 3
    finally:
        await stop_sandbox(running)


async def test_undelivered_events_survive_a_restart_and_the_sweeper_expires(
    tmp_path: Path, http_client: stripe.HTTPXClient, receiver: Receiver
) -> None:
    state = tmp_path / "sandbox.json"
    first = await run_sandbox("--port", "0", "--state-file", str(state))
    try:
        client = stripe_client(first.url, http_client)
        hook = await endpoint(client, receiver.url)
        async with httpx.AsyncClient(base_url=first.url) as raw:
            await raw.post("/_sandbox/webhooks/pause")
        queued = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(queued.id)
        overdue = await client.v1.checkout.sessions.create_async(session_params())
    finally:
        await stop_sandbox(first)
    assert receiver.requests == []
    # Time passes while the sandbox is down: the second session is past its expiry.
    saved = json.loads(state.read_text())
    saved["collections"]["checkout.session"][overdue.id]["expires_at"] = int(time.time()) - 1
    state.write_text(json.dumps(saved))

    second = await run_sandbox("--port", "0", "--state-file", str(state))
    try:
        # No request reaches the second sandbox: delivery resumes and the sweeper expires.
        received = await receiver.count(2)
        assert hook.secret is not None
        events = {verified(r.body, r.headers, hook.secret).data.object["id"]: r for r in received}
        assert set(events) == {queued.id, overdue.id}
    finally:
        await stop_sandbox(second)
