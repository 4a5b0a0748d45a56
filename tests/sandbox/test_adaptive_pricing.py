"""Adaptive Pricing chooses the currency when the customer opens the page, not when the session
is created: a new session has no `presentment_details`, and the completed one records what the
customer paid in (`adaptive_pricing.py`)."""

import re

import httpx
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params


async def test_a_new_session_has_no_presentment_details(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    # Even when the Customer's address says where they are.
    german = await client.v1.customers.create_async({"address": {"country": "DE"}})
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(5000), customer=german.id, adaptive_pricing={"enabled": True})
    )
    assert session.adaptive_pricing is not None and session.adaptive_pricing.enabled
    assert session.presentment_details is None
    retrieved = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert retrieved.presentment_details is None


async def test_the_hosted_page_presents_the_customers_currency(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(5000), adaptive_pricing={"enabled": True})
    )
    assert session.url is not None
    page = (await raw.get(session.url, params={"country": "DE"})).text
    assert "You pay (EUR)" in page and "46.00 EUR" in page  # 50.00 USD at 0.92
    pay_form = re.search(r'<form[^>]*action="([^"]+/pay)"[^>]*>(.*?)</form>', page)
    assert pay_form is not None
    assert 'name="presentment_currency" value="eur"' in pay_form.group(2)
    # The customer may stay with the session's currency: no conversion is shown then.
    assert "You pay" not in (await raw.get(session.url)).text

    paid = await raw.post(pay_form.group(1), data={"presentment_currency": "eur"})
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert done.presentment_details is not None
    assert (
        done.presentment_details.presentment_amount,
        done.presentment_details.presentment_currency,
    ) == (4600, "eur")
    assert (done.currency, done.amount_total) == ("usd", 5000)


async def test_the_control_api_takes_the_customers_currency_or_country(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    def adaptive() -> dict[str, object]:
        return dict(session_params(line_item(1000), adaptive_pricing={"enabled": True}))

    by_currency = await client.v1.checkout.sessions.create_async(adaptive())  # type: ignore[arg-type]
    done = await pay(raw, by_currency.id, presentment_currency="gbp")
    assert done["presentment_details"] == {"presentment_amount": 790, "presentment_currency": "gbp"}
    by_country = await client.v1.checkout.sessions.create_async(adaptive())  # type: ignore[arg-type]
    done = await pay(raw, by_country.id, country="JP")
    assert done["presentment_details"] == {
        "presentment_amount": 1500,
        "presentment_currency": "jpy",
    }
