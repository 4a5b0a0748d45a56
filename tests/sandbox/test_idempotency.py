"""`Idempotency-Key` as Stripe honours it: replay, mismatch, in-flight conflicts, and which
outcomes are saved (https://docs.stripe.com/api/idempotent_requests)."""

import asyncio

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import API_KEY, add_fault, line_item, session_params, stats

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_the_same_key_and_parameters_replay_the_same_session(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    params = session_params(metadata={"order_id": "42"})
    first = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-1"})
    again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-1"})
    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    counts = await stats(raw)
    assert counts["sessions_created"] == 1 and counts["sessions"] == 1
    assert counts["requests"]["POST /v1/checkout/sessions"] == 2
    assert counts["idempotent_replays"] == 1


async def test_the_same_key_with_other_parameters_is_an_idempotency_error(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    await client.v1.checkout.sessions.create_async(session_params(), {"idempotency_key": "k-2"})
    with pytest.raises(stripe.IdempotencyError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params(line_item(quantity=2)), {"idempotency_key": "k-2"}
        )
    assert caught.value.http_status == 400
    assert caught.value.user_message.startswith(
        "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with."
    )


async def test_the_same_key_on_another_endpoint_is_an_idempotency_error(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "k-3"}
    )
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.checkout.sessions.expire_async(session.id, None, {"idempotency_key": "k-3"})


async def test_validation_failures_are_not_saved(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    params = session_params(success_url="not a url")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-4"})
    # Nothing was saved, so the same key may carry a corrected request.
    fixed = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "k-4"}
    )
    assert fixed.status == "open"


async def test_refusals_made_while_executing_are_replayed(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id)
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await client.v1.checkout.sessions.expire_async(
                session.id, None, {"idempotency_key": "k-5"}
            )
        assert "has a status of `expired`" in caught.value.user_message
    assert (await stats(raw))["idempotent_replays"] == 1


async def test_a_key_in_flight_gets_409(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await add_fault(raw, path_prefix="/v1/checkout/sessions", method="POST", delay_ms=400)
    params = session_params()
    slow = asyncio.create_task(
        client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-6"})
    )
    await asyncio.sleep(0.15)
    with pytest.raises(stripe.APIError) as caught:
        await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-6"})
    assert caught.value.http_status == 409
    assert isinstance(caught.value.json_body, dict)
    assert caught.value.json_body["error"]["code"] == "idempotency_key_in_use"
    first = await slow
    # The 409 was not saved: once the first request is done, the key replays its session.
    again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "k-6"})
    assert again.id == first.id
    assert (await stats(raw))["sessions_created"] == 1


async def test_keys_longer_than_255_characters_are_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            session_params(), {"idempotency_key": "k" * 256}
        )


async def test_get_requests_ignore_keys(sandbox: SandboxProcess, raw: httpx.AsyncClient) -> None:
    for _ in range(2):
        response = await raw.get(
            "/v1/checkout/sessions", headers={**AUTH, "Idempotency-Key": "k-7"}
        )
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
