"""Keys and what Stripe says about failures: restricted keys and their 403 `PermissionError`
(`restricted_keys.py`), `request_log_url` and `Stripe-Should-Retry` (`failure_hints.py`), and
Stripe's presentment currencies, three-decimal and zero-decimal ones included."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import add_fault, checkout_payment, line_item, session_params, stripe_client

RESTRICTED = "rk_test_51Sandbox0restricted0key0abcd"


async def permit(raw: httpx.AsyncClient, key: str, *permissions: str) -> dict[str, Any]:
    response = await raw.post(
        "/_sandbox/restricted_keys", json={"key": key, "permissions": list(permissions)}
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def test_restricted_keys_get_in(
    sandbox: SandboxProcess, http_client: stripe.HTTPXClient
) -> None:
    client = stripe_client(sandbox.url, http_client, RESTRICTED)
    session = await client.v1.checkout.sessions.create_async(session_params())
    assert session.id.startswith("cs_test_")
    live = stripe_client(sandbox.url, http_client, "rk_live_51Sandbox0restricted0key0abcd")
    with pytest.raises(stripe.AuthenticationError):
        await live.v1.checkout.sessions.list_async()


async def test_a_request_outside_the_permissions_is_a_permission_error(
    sandbox: SandboxProcess, http_client: stripe.HTTPXClient, raw: httpx.AsyncClient
) -> None:
    shown = await permit(raw, RESTRICTED, "rak_checkout_session_read")
    assert shown["permissions"] == ["rak_checkout_session_read"]
    assert RESTRICTED not in str(shown)
    client = stripe_client(sandbox.url, http_client, RESTRICTED)
    assert (await client.v1.checkout.sessions.list_async()).data == []
    with pytest.raises(stripe.PermissionError) as caught:
        await client.v1.checkout.sessions.create_async(session_params())
    error = caught.value
    assert error.http_status == 403
    assert isinstance(error.json_body, dict)
    body = error.json_body["error"]
    assert body["type"] == "invalid_request_error"
    assert "code" not in body and "param" not in body
    assert "'rak_checkout_session_write'" in body["message"]
    assert RESTRICTED not in body["message"]
    with pytest.raises(stripe.PermissionError) as prices:
        await client.v1.prices.list_async()
    assert "'rak_price_read'" in prices.value.user_message

    # Write includes read; an empty list takes every permission away.
    await permit(raw, RESTRICTED, "rak_checkout_session_write", "rak_price_read")
    created = await client.v1.checkout.sessions.create_async(session_params())
    assert (await client.v1.checkout.sessions.retrieve_async(created.id)).id == created.id
    await permit(raw, RESTRICTED)
    with pytest.raises(stripe.PermissionError):
        await client.v1.checkout.sessions.list_async()
    refused = await raw.post(
        "/_sandbox/restricted_keys", json={"key": RESTRICTED, "permissions": ["rak_everything"]}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "permissions")


async def test_the_money_after_checkout_has_permissions_of_its_own(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    http_client: stripe.HTTPXClient,
    raw: httpx.AsyncClient,
) -> None:
    intent = await checkout_payment(client, raw, unit_amount=5000, capture_method="manual")
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    await permit(raw, RESTRICTED, "rak_payment_intent_read", "rak_charge_read", "rak_refund_write")
    restricted = stripe_client(sandbox.url, http_client, RESTRICTED)
    assert (await restricted.v1.payment_intents.retrieve_async(intent.id)).id == intent.id
    assert (await restricted.v1.charges.retrieve_async(charge.id)).id == charge.id
    with pytest.raises(stripe.PermissionError) as capture:
        await restricted.v1.payment_intents.capture_async(intent.id)
    assert "'rak_payment_intent_write'" in capture.value.user_message
    with pytest.raises(stripe.PermissionError) as disputes:
        await restricted.v1.disputes.list_async()
    assert "'rak_dispute_read'" in disputes.value.user_message
    await client.v1.payment_intents.capture_async(intent.id)
    refund = await restricted.v1.refunds.create_async({"payment_intent": intent.id})
    assert (await restricted.v1.refunds.retrieve_async(refund.id)).amount == 5000


async def test_errors_carry_their_request_log_url(
    sandbox: SandboxProcess, client: stripe.StripeClient, http_client: stripe.HTTPXClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(session_params(mode=None))
    error = caught.value.error
    assert error is not None and error.request_log_url is not None
    assert error.request_log_url.startswith(
        f"https://dashboard.stripe.com/test/logs/{caught.value.request_id}?t="
    )
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.checkout.sessions.retrieve_async("cs_test_nope")
    assert missing.value.error is not None and missing.value.error.request_log_url
    # A refused key has no account, so no log.
    stranger = stripe_client(sandbox.url, http_client, "sk_live_nope")
    with pytest.raises(stripe.AuthenticationError) as unauthenticated:
        await stranger.v1.checkout.sessions.list_async()
    assert unauthenticated.value.error is not None
    assert unauthenticated.value.error.request_log_url is None


async def test_responses_say_whether_a_retry_could_help(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    headers = {"Authorization": "Bearer sk_test_123"}

    async def should_retry(method: str, path: str, **extra: Any) -> tuple[int, str | None]:
        response = await raw.request(method, path, headers={**headers, **extra}, data={})
        return response.status_code, response.headers.get("Stripe-Should-Retry")

    assert await should_retry("GET", "/v1/checkout/sessions") == (200, None)
    assert await should_retry("POST", "/v1/checkout/sessions") == (400, "false")
    assert await should_retry("GET", "/v1/checkout/sessions/cs_test_nope") == (404, "false")
    await add_fault(raw, path_prefix="/v1/prices", status=503)
    assert await should_retry("GET", "/v1/prices") == (503, "true")
    await add_fault(raw, path_prefix="/v1/prices", status=429)
    assert await should_retry("GET", "/v1/prices") == (429, "false")


async def test_stripe_python_retries_what_the_header_allows(
    sandbox: SandboxProcess, http_client: stripe.HTTPXClient, raw: httpx.AsyncClient
) -> None:
    retrying = stripe.StripeClient(
        "sk_test_123",
        base_addresses={"api": sandbox.url},
        http_client=http_client,
        max_network_retries=1,
    )
    # The answer was lost after the session was made: a retry replays it, so it is worth one.
    await add_fault(raw, path_prefix="/v1/checkout/sessions", status=500, phase="after")
    session = await retrying.v1.checkout.sessions.create_async(session_params())
    listed = await retrying.v1.checkout.sessions.list_async()
    assert [s.id for s in listed.data] == [session.id]
    # A refusal of the request itself is not retried.
    with pytest.raises(stripe.InvalidRequestError):
        await retrying.v1.checkout.sessions.create_async(session_params(mode=None))
    requests = (await raw.get("/_sandbox/stats")).json()["requests"]
    assert requests["POST /v1/checkout/sessions"] == 3


@pytest.mark.parametrize(
    ("currency", "unit_amount"),
    [
        ("bhd", 1000),
        ("jod", 1000),
        ("kwd", 1000),
        ("omr", 1000),
        ("tnd", 2000),
        ("jpy", 500),
        ("krw", 5000),
        ("vnd", 50000),
        ("clp", 1000),
        ("xof", 1000),
        ("isk", 10000),
        ("ugx", 500000),
        ("brl", 1000),
    ],
)
async def test_stripes_presentment_currencies_are_accepted(
    sandbox: SandboxProcess, client: stripe.StripeClient, currency: str, unit_amount: int
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(unit_amount, currency=currency))
    )
    assert (session.currency, session.amount_total) == (currency, unit_amount)


async def test_other_currencies_are_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.prices.create_async(
            {"currency": "xyz", "unit_amount": 100, "product_data": {"name": "x"}}
        )
    assert caught.value.param == "currency"
    assert "kwd" in caught.value.user_message and "vnd" in caught.value.user_message
