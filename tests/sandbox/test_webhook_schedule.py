"""Webhook delivery on Stripe's schedule, driven by the sandbox clock (`webhook_schedule.py`):
retries with exponential backoff for three days, then the delivery is given up and an endpoint
that failed all along is disabled; during a secret rotation every event carries a `v1`
signature for each secret (`webhook_signing.py`)."""

import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess
from tests.support import eventually, run_sandbox, stop_sandbox

from .support import Receiver, deliveries, endpoint, session_params, stripe_client

DAY = 24 * 60 * 60


@pytest.fixture
async def live_schedule() -> AsyncIterator[SandboxProcess]:
    """A sandbox of its own, with the default, unscaled schedule."""
    running = await run_sandbox("--port", "0", "--webhook-timeout", "2")
    yield running
    assert await stop_sandbox(running) == 0


async def advance_to(raw: httpx.AsyncClient, due: float) -> float:
    """Move the sandbox clock just past `due`; the sandbox time it is then."""
    offset = (await raw.get("/_sandbox/clock")).json()["offset"]
    seconds = max(0, math.ceil(due - (time.time() + offset)) + 1)
    response = await raw.post("/_sandbox/clock/advance", json={"seconds": seconds})
    return float(response.json()["now"])


async def scheduled(raw: httpx.AsyncClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await deliveries(raw))["scheduled"]
    return entries


async def expire_one(client: stripe.StripeClient) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id)


async def test_retries_back_off_for_three_days_then_the_endpoint_is_disabled(
    live_schedule: SandboxProcess, http_client: stripe.HTTPXClient, receiver: Receiver
) -> None:
    client = stripe_client(live_schedule.url, http_client)
    receiver.answers = [500] * 20
    hook = await endpoint(client, receiver.url)
    async with httpx.AsyncClient(base_url=live_schedule.url, timeout=10) as raw:
        started = time.time()
        await expire_one(client)
        await receiver.count(1)
        waits = []
        previous = started
        for attempt in range(2, 20):

            async def rescheduled(attempt: int = attempt) -> bool:
                entries = await scheduled(raw)
                return not entries or entries[0]["attempts"] == attempt - 1

            await eventually(rescheduled)
            entries = await scheduled(raw)
            if not entries:
                break
            due = entries[0]["next_attempt_at"]
            waits.append(due - previous)
            previous = await advance_to(raw, due)
            await receiver.count(attempt)
        state = await deliveries(raw)

    # 1 minute, then doubling: 13 attempts, the last 2 days 20 hours after the first.
    assert len(receiver.requests) == 13
    assert [a["attempt"] for a in state["deliveries"]] == list(range(1, 14))
    assert [round(wait / 60) for wait in waits] == [2**n for n in range(12)]
    assert sum(waits) < 3 * DAY
    assert (state["pending"], state["scheduled"]) == (0, [])
    disabled = await client.v1.webhook_endpoints.retrieve_async(hook.id)
    assert disabled.status == "disabled"
    [event] = (await client.v1.events.list_async()).data
    assert event.pending_webhooks == 1
    # A disabled endpoint is sent nothing more.
    await expire_one(client)
    events = (await client.v1.events.list_async()).data
    assert [e.pending_webhooks for e in events] == [0, 1]
    assert len(receiver.requests) == 13


async def test_an_endpoint_that_recovers_stays_enabled(
    live_schedule: SandboxProcess, http_client: stripe.HTTPXClient, receiver: Receiver
) -> None:
    client = stripe_client(live_schedule.url, http_client)
    receiver.answers = [503, 503]
    hook = await endpoint(client, receiver.url)
    async with httpx.AsyncClient(base_url=live_schedule.url, timeout=10) as raw:
        await expire_one(client)
        for attempt in (2, 3):

            async def due_soon(attempt: int = attempt) -> bool:
                entries = await scheduled(raw)
                return bool(entries) and entries[0]["attempts"] == attempt - 1

            await eventually(due_soon)
            # Nothing happens until the clock reaches the attempt: a minute, then two.
            assert len(receiver.requests) == attempt - 1
            await advance_to(raw, (await scheduled(raw))[0]["next_attempt_at"])
            await receiver.count(attempt)

        async def delivered() -> bool:
            return bool((await deliveries(raw))["pending"] == 0)

        await eventually(delivered)
        await advance_to(raw, time.time() + 4 * DAY)
    assert (await client.v1.webhook_endpoints.retrieve_async(hook.id)).status == "enabled"
    [event] = (await client.v1.events.list_async()).data
    assert event.pending_webhooks == 0


def signatures(received_headers: dict[str, str]) -> list[str]:
    return [
        part.removeprefix("v1=")
        for part in received_headers["Stripe-Signature"].split(",")
        if part.startswith("v1=")
    ]


async def test_a_rolled_secret_signs_beside_the_old_one_until_it_expires(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(client, receiver.url)
    assert hook.secret is not None
    rolled = await raw.post(
        f"/_sandbox/webhook_endpoints/{hook.id}/roll_secret", json={"expires_in": 3600}
    )
    assert rolled.status_code == 200
    new_secret = rolled.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook.secret
    assert rolled.json()["previous_secret_expires_at"] > time.time() + 3500

    await expire_one(client)
    [during] = await receiver.count(1)
    assert len(signatures(during.headers)) == 2
    for secret in (new_secret, hook.secret):
        event = stripe.Webhook.construct_event(
            during.body, during.headers["Stripe-Signature"], secret
        )
        assert event.type == "checkout.session.expired"

    await raw.post("/_sandbox/clock/advance", json={"seconds": 3601})
    await expire_one(client)
    [_, after] = await receiver.count(2)
    assert len(signatures(after.headers)) == 1
    stripe.Webhook.construct_event(after.body, after.headers["Stripe-Signature"], new_secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(after.body, after.headers["Stripe-Signature"], hook.secret)
    assert json.loads(after.body)["type"] == "checkout.session.expired"

    unknown = await raw.post("/_sandbox/webhook_endpoints/we_nope/roll_secret", json={})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "resource_missing")
