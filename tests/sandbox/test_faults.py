"""Injected faults surface in stripe-python as real Stripe failures would."""

import time

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import add_fault, session_params, stats


async def test_a_500_is_an_api_error_once(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", status=500, count=1)
    with pytest.raises(stripe.APIError) as caught:
        await client.v1.checkout.sessions.create_async(session_params(), {"idempotency_key": "f-1"})
    assert caught.value.http_status == 500
    assert isinstance(caught.value.json_body, dict)
    assert caught.value.json_body["error"]["type"] == "api_error"
    # The fault hit before the API ran: nothing was created or saved, so a retry with the
    # same key creates the session.
    created = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "f-1"}
    )
    assert created.status == "open"
    counts = await stats(raw)
    assert (counts["faults_applied"], counts["sessions_created"]) == (1, 1)


async def test_a_429_is_a_rate_limit_error(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", method="GET", status=429, count=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as caught:
            await client.v1.checkout.sessions.list_async()
        assert caught.value.http_status == 429
        assert isinstance(caught.value.json_body, dict)
        assert caught.value.json_body["error"]["code"] == "rate_limit"
    assert (await client.v1.checkout.sessions.list_async()).data == []


async def test_a_dropped_connection_is_a_connection_error(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", drop=True)
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.create_async(session_params())
    assert (await stats(raw))["sessions_created"] == 0


async def test_a_response_lost_after_execution_is_recovered_with_the_key(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", drop=True, phase="after")
    with pytest.raises(stripe.APIConnectionError):
        await client.v1.checkout.sessions.create_async(session_params(), {"idempotency_key": "f-4"})
    assert (await stats(raw))["sessions_created"] == 1
    recovered = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "f-4"}
    )
    listed = await client.v1.checkout.sessions.list_async()
    assert [s.id for s in listed.data] == [recovered.id]


async def test_latency_and_clearing(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/prices", delay_ms=300, count=5)
    started = time.monotonic()
    await client.v1.prices.list_async()
    assert time.monotonic() - started >= 0.3
    assert len((await raw.get("/_sandbox/faults")).json()["faults"]) == 1
    (await raw.delete("/_sandbox/faults")).raise_for_status()
    assert (await raw.get("/_sandbox/faults")).json()["faults"] == []


async def test_faults_can_be_posted_as_a_form_and_are_checked(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    response = await raw.post(
        "/_sandbox/faults", data={"path_prefix": "/v1/prices", "status": "503"}
    )
    assert response.status_code == 200 and response.json()["fault"]["status"] == 503
    refused = await raw.post("/_sandbox/faults", json={"path_prefix": "/v1/prices"})
    assert refused.status_code == 400
    refused = await raw.post("/_sandbox/faults", json={"status": 500})
    assert refused.json()["error"]["param"] == "path_prefix"


async def test_a_failure_during_execution_is_saved_under_the_key_and_replayed(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", status=500, phase="during")
    with pytest.raises(stripe.APIError) as first:
        await client.v1.checkout.sessions.create_async(session_params(), {"idempotency_key": "f-9"})
    assert first.value.http_status == 500
    # The fault is spent, yet the key replays the saved 500: a retry cannot help.
    with pytest.raises(stripe.APIError) as again:
        await client.v1.checkout.sessions.create_async(session_params(), {"idempotency_key": "f-9"})
    assert again.value.http_status == 500
    assert (again.value.headers or {}).get("idempotent-replayed") == "true"
    assert (await stats(raw))["sessions_created"] == 0
    # Another key goes through.
    made = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "f-10"}
    )
    assert made.status == "open"
