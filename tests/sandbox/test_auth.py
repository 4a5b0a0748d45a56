"""Only secret test-mode keys get in, as on Stripe, and a refused key is never echoed whole."""

import base64

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import stripe_client


@pytest.mark.parametrize(
    "api_key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_test_TYooMQauvdEDq54NiTphI7jx",
        "sk_test_has spaces!",
        "nonsense",
    ],
)
async def test_other_keys_are_refused_without_being_echoed(
    sandbox: SandboxProcess, http_client: stripe.HTTPXClient, api_key: str
) -> None:
    client = stripe_client(sandbox.url, http_client, api_key)
    with pytest.raises(stripe.AuthenticationError) as caught:
        await client.v1.checkout.sessions.list_async()
    assert caught.value.http_status == 401
    assert "Invalid API Key provided" in caught.value.user_message
    assert api_key not in caught.value.user_message
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


async def test_the_mask_keeps_the_prefix_and_last_four(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    response = await raw.get(
        "/v1/prices", headers={"Authorization": "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc"}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "Invalid API Key provided: sk_live_********************p7dc",
    }


async def test_a_missing_key_is_refused(sandbox: SandboxProcess, raw: httpx.AsyncClient) -> None:
    response = await raw.get("/v1/checkout/sessions")
    assert response.status_code == 401
    assert "You did not provide an API key" in response.json()["error"]["message"]
    assert response.headers["Request-Id"].startswith("req_")


async def test_basic_auth_with_the_key_as_user_is_accepted(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    token = base64.b64encode(b"sk_test_123:").decode()
    response = await raw.get("/v1/prices", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 200


async def test_the_control_api_needs_no_key(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    assert (await raw.get("/_sandbox/stats")).status_code == 200


async def test_unknown_urls_answer_like_stripe(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.raw_request_async("get", "/v1/nothing_here")
    assert caught.value.http_status == 404
    assert "Unrecognized request URL (GET: /v1/nothing_here)" in caught.value.user_message
