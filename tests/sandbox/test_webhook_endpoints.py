"""Webhook endpoints through stripe-python: created with a secret shown once, listed, updated,
deleted, and refused like Stripe refuses them."""

import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import ids

URL = "https://shop.example/stripe/webhook"


async def test_create_shows_the_secret_once(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    created = await client.v1.webhook_endpoints.create_async(
        {
            "url": URL,
            "enabled_events": ["checkout.session.completed", "checkout.session.expired"],
            "description": "orders",
            "metadata": {"team": "checkout"},
            "api_version": "2026-10-28.endive",
        }
    )
    assert isinstance(created, stripe.WebhookEndpoint)
    assert created.id.startswith("we_") and created.object == "webhook_endpoint"
    assert created.secret is not None and created.secret.startswith("whsec_")
    assert (created.status, created.livemode, created.url, created.description) == (
        "enabled",
        False,
        URL,
        "orders",
    )
    assert created.enabled_events == ["checkout.session.completed", "checkout.session.expired"]
    assert created.api_version == "2026-10-28.endive"
    assert created.metadata["team"] == "checkout"
    assert created.created > 0

    fetched = await client.v1.webhook_endpoints.retrieve_async(created.id)
    assert fetched.url == URL and "secret" not in fetched
    listed = await client.v1.webhook_endpoints.list_async()
    assert ids(listed.data) == [created.id] and "secret" not in listed.data[0]


async def test_list_update_and_delete(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    first = await client.v1.webhook_endpoints.create_async({"url": URL, "enabled_events": ["*"]})
    second = await client.v1.webhook_endpoints.create_async(
        {"url": "http://localhost:8080/hook", "enabled_events": ["*"], "metadata": {"a": "1"}}
    )
    assert second.api_version is None
    listed = await client.v1.webhook_endpoints.list_async({"limit": 1})
    assert ids(listed.data) == [second.id] and listed.has_more

    updated = await client.v1.webhook_endpoints.update_async(
        second.id,
        {
            "url": "https://shop.example/v2/hook",
            "enabled_events": ["checkout.session.expired"],
            "disabled": True,
            "metadata": {"a": "", "b": "2"},
            "description": "moved",
        },
    )
    assert (updated.url, updated.status, updated.description) == (
        "https://shop.example/v2/hook",
        "disabled",
        "moved",
    )
    assert updated.enabled_events == ["checkout.session.expired"]
    assert updated.metadata.to_dict() == {"b": "2"}
    assert "secret" not in updated
    enabled = await client.v1.webhook_endpoints.update_async(
        second.id, {"disabled": False, "description": ""}
    )
    assert (enabled.status, enabled.description) == ("enabled", None)

    deleted = await client.v1.webhook_endpoints.delete_async(first.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (first.id, "webhook_endpoint", True)
    assert ids((await client.v1.webhook_endpoints.list_async()).data) == [second.id]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.webhook_endpoints.retrieve_async(first.id)
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"enabled_events": ["*"]}, "url", "parameter_missing"),
        ({"url": URL}, "enabled_events", "parameter_missing"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url", "url_invalid"),
        ({"url": "ftp://shop.example/hook", "enabled_events": ["*"]}, "url", "url_invalid"),
        # A Stripe event the sandbox never sends.
        ({"url": URL, "enabled_events": ["invoice.paid"]}, "enabled_events[0]", None),
        ({"url": URL, "enabled_events": ["*"], "api_version": "2020-08-27"}, "api_version", None),
        ({"url": URL, "enabled_events": ["*"], "secret": "whsec_mine"}, "secret", None),
    ],
)
async def test_refusals(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    params: dict[str, object],
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.webhook_endpoints.create_async(params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    assert caught.value.param == param
    if code is not None:
        assert caught.value.code == code
