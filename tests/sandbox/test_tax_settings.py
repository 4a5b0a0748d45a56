"""The account's Tax settings (`tax_settings.py`): unset on a new account; automatic tax refuses
prices without a tax behaviour unless the account has a default; it collects only where the
account is registered."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params


async def tax_settings(raw: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    if changes:
        response = await raw.post("/_sandbox/tax/settings", json=changes)
    else:
        response = await raw.get("/_sandbox/tax/settings")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def taxed_item(unit_amount: int = 1000, behavior: str | None = None, currency: str = "usd") -> Any:
    item = line_item(unit_amount, currency=currency)
    if behavior is not None:
        item["price_data"]["tax_behavior"] = behavior
    return item


async def test_a_new_account_has_no_default_and_no_registrations(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    settings = await tax_settings(raw)
    assert settings["object"] == "tax.settings"
    assert settings["defaults"]["tax_behavior"] is None
    assert settings["registrations"] == []


async def test_automatic_tax_needs_a_tax_behavior(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as inline:
        await client.v1.checkout.sessions.create_async(
            session_params(taxed_item(), automatic_tax={"enabled": True})
        )
    assert (inline.value.http_status, inline.value.param) == (
        400,
        "line_items[0][price_data][tax_behavior]",
    )
    assert isinstance(inline.value.json_body, dict)
    assert inline.value.json_body["error"]["type"] == "invalid_request_error"
    price = await client.v1.prices.create_async(
        {"currency": "usd", "unit_amount": 1000, "product_data": {"name": "Desk"}}
    )
    with pytest.raises(stripe.InvalidRequestError) as existing:
        await client.v1.checkout.sessions.create_async(
            session_params({"price": price.id, "quantity": 1}, automatic_tax={"enabled": True})
        )
    assert existing.value.param == "line_items[0][price]"
    # Without automatic tax nothing needs one; with a behaviour on the price, automatic tax works.
    await client.v1.checkout.sessions.create_async(session_params(taxed_item()))
    await client.v1.checkout.sessions.create_async(
        session_params(taxed_item(behavior="exclusive"), automatic_tax={"enabled": True})
    )

    settings = await tax_settings(raw, defaults={"tax_behavior": "exclusive"})
    assert settings["defaults"]["tax_behavior"] == "exclusive"
    allowed = await client.v1.checkout.sessions.create_async(
        session_params(taxed_item(), automatic_tax={"enabled": True})
    )
    assert allowed.automatic_tax.enabled
    unset = await raw.post("/_sandbox/tax/settings", json={"defaults": {"tax_behavior": ""}})
    assert (unset.status_code, unset.json()["error"]["param"]) == (400, "defaults[tax_behavior]")


async def test_tax_is_collected_only_where_the_account_is_registered(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tax_settings(raw, registrations=["US"])
    german = await client.v1.customers.create_async({"address": {"country": "DE"}})

    async def tax_for_german_customer() -> int:
        session = await client.v1.checkout.sessions.create_async(
            session_params(
                taxed_item(behavior="exclusive"),
                customer=german.id,
                automatic_tax={"enabled": True},
            )
        )
        assert session.automatic_tax.status == "complete"
        assert session.total_details is not None
        return session.total_details.amount_tax

    assert await tax_for_german_customer() == 0
    settings = await tax_settings(raw, registrations=["US", "DE"])
    assert [r["country"] for r in settings["registrations"]] == ["DE", "US"]
    assert await tax_for_german_customer() == 190  # 19 % of 10.00


async def test_the_default_can_follow_the_currency(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tax_settings(
        raw, defaults={"tax_behavior": "inferred_by_currency"}, registrations=["DE", "US"]
    )
    euros = await client.v1.checkout.sessions.create_async(
        session_params(taxed_item(1190, currency="eur"), automatic_tax={"enabled": True})
    )
    done = await pay(raw, euros.id, country="DE")
    # EUR prices are inclusive: 19 % carved out of 11.90, nothing added.
    assert (done["amount_total"], done["total_details"]["amount_tax"]) == (1190, 190)
    dollars = await client.v1.checkout.sessions.create_async(
        session_params(taxed_item(1000), automatic_tax={"enabled": True})
    )
    done = await pay(raw, dollars.id, country="US")
    assert (done["amount_total"], done["total_details"]["amount_tax"]) == (1083, 83)


async def test_a_failing_tax_calculation(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    settings = await tax_settings(raw, registrations=["DE", "FR"], failing=["FR"])
    assert settings["failing"] == ["FR"]
    french = await client.v1.customers.create_async({"address": {"country": "FR"}})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            taxed_item(1000, "exclusive"), customer=french.id, automatic_tax={"enabled": True}
        )
    )
    assert session.automatic_tax.status == "failed"
    assert session.total_details is not None and session.total_details.amount_tax == 0
    refused = await raw.post(f"/_sandbox/checkout/sessions/{session.id}/pay", json={})
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "country")
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"

    # Another address calculates again: 19 % in Germany.
    await pay(raw, session.id, country="DE", city="Berlin")
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.automatic_tax.status == "complete"
    assert paid.total_details is not None and paid.total_details.amount_tax == 190
    assert (await tax_settings(raw, failing=[]))["failing"] == []
