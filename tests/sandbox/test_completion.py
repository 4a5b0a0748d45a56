"""Completing sessions through the control API, as a customer would in Checkout: card and bank
debit payments, setup and free sessions, what Checkout creates and collects, and the settlement
of a delayed payment. Each change emits its event."""

import httpx
import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Unter den Linden",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


async def event_types(client: stripe.StripeClient, pattern: str = "*") -> list[str]:
    """Oldest first; `pattern` is `/v1/events`' `type` filter."""
    listed = await client.v1.events.list_async({"type": pattern, "limit": 100})
    types: list[str] = [event.type for event in listed.data]
    return types[::-1]


async def settle(raw: httpx.AsyncClient, session_id: str, outcome: str) -> httpx.Response:
    return await raw.post(
        f"/_sandbox/checkout/sessions/{session_id}/async_payment", json={"outcome": outcome}
    )


async def test_a_card_payment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            customer_email="ada@example.com",
            payment_intent_data={"metadata": {"order_id": "42"}},
        )
    )
    answer = await pay(raw, session.id, payment_status="paid", **ADDRESS)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent"]}
    )
    assert answer["id"] == session.id and answer["status"] == "complete"
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    details = paid.customer_details
    assert details is not None and details.address is not None
    assert (details.email, details.name, details.address.country) == (
        "ada@example.com",
        "Ada Lovelace",
        "DE",
    )
    # customer_creation=if_required: a guest, no Customer object, in payment mode.
    assert paid.customer is None
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.id.startswith("pi_")
    assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 1500, 1500)
    assert intent.metadata["order_id"] == "42"
    assert paid.collected_information is None
    # What Stripe sends when Checkout charges a card (payment_objects.py).
    assert await event_types(client) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]

    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(session.id)
    again = await raw.post(f"/_sandbox/checkout/sessions/{session.id}/pay", json={})
    assert again.status_code == 400
    assert "status of `complete`" in again.json()["error"]["message"]


async def test_a_bank_debit_settles_later(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    succeeds = await client.v1.checkout.sessions.create_async(session_params())
    fails = await client.v1.checkout.sessions.create_async(session_params())
    for session in (succeeds, fails):
        answer = await pay(raw, session.id, payment_status="unpaid")
        assert (answer["status"], answer["payment_status"]) == ("complete", "unpaid")

    settled = await settle(raw, succeeds.id, "succeeded")
    assert settled.status_code == 200 and settled.json()["payment_status"] == "paid"
    failed = await settle(raw, fails.id, "failed")
    assert failed.status_code == 200 and failed.json()["payment_status"] == "unpaid"
    assert await event_types(client, "checkout.session.*") == [
        "checkout.session.completed",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    ]
    ok = await client.v1.checkout.sessions.retrieve_async(
        succeeds.id, {"expand": ["payment_intent"]}
    )
    assert isinstance(ok.payment_intent, stripe.PaymentIntent)
    assert ok.payment_intent.status == "succeeded"
    # A delayed payment settles once.
    for session in (succeeds, fails):
        refused = await settle(raw, session.id, "succeeded")
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "invalid_request_error"


async def test_settling_is_refused_unless_a_payment_is_pending(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    open_one = await client.v1.checkout.sessions.create_async(session_params())
    by_card = await client.v1.checkout.sessions.create_async(session_params())
    await pay(raw, by_card.id)
    for session in (open_one, by_card):
        refused = await settle(raw, session.id, "succeeded")
        assert refused.status_code == 400
    assert (await settle(raw, "cs_test_nope", "failed")).status_code == 404
    bad = await settle(raw, by_card.id, "maybe")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "outcome")


async def test_paying_is_refused_for_sessions_that_are_not_open(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id)
    refused = await raw.post(f"/_sandbox/checkout/sessions/{session.id}/pay", json={})
    assert refused.status_code == 400
    assert "status of `expired`" in refused.json()["error"]["message"]
    missing = await raw.post("/_sandbox/checkout/sessions/cs_test_nope/pay", json={})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "resource_missing")
    bad = await raw.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay", json={"payment_status": "later"}
    )
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "payment_status")


async def test_setup_and_free_sessions_need_no_payment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    setup = await client.v1.checkout.sessions.create_async(
        {
            "mode": "setup",
            "currency": "eur",
            "success_url": "https://shop.example/ok",
            "setup_intent_data": {"metadata": {"order_id": "9"}},
        }
    )
    done = await pay(raw, setup.id, payment_status="unpaid", email="ada@example.com")
    assert (done["status"], done["payment_status"]) == ("complete", "no_payment_required")
    assert done["setup_intent"].startswith("seti_") and done["payment_intent"] is None
    assert done["customer"].startswith("cus_")
    assert done["customer_details"]["address"] is None
    customer = await client.v1.customers.retrieve_async(done["customer"])
    assert customer.email == "ada@example.com"

    coupon = await client.v1.coupons.create_async({"percent_off": 100})
    free = await client.v1.checkout.sessions.create_async(
        session_params(discounts=[{"coupon": coupon.id}])
    )
    assert free.amount_total == 0
    done = await pay(raw, free.id, payment_status="unpaid")
    assert (done["payment_status"], done["payment_intent"]) == ("no_payment_required", None)
    assert (await settle(raw, free.id, "succeeded")).status_code == 400


async def test_subscriptions_get_a_customer_and_their_trial(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    price = await client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 900,
            "product_data": {"name": "Plan"},
            "recurring": {"interval": "month"},
        }
    )
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            {"price": price.id, "quantity": 1},
            mode="subscription",
            subscription_data={"trial_period_days": 7, "metadata": {"order_id": "7"}},
        )
    )
    done = await pay(raw, session.id, email="bob@example.com", name="Bob")
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription", "customer"]}
    )
    # Nothing is due during the trial (trials.py).
    assert (done["payment_status"], done["amount_total"]) == ("no_payment_required", 0)
    assert isinstance(paid.customer, stripe.Customer)
    assert (paid.customer.email, paid.customer.name) == ("bob@example.com", "Bob")
    subscription = paid.subscription
    assert isinstance(subscription, stripe.Subscription)
    assert subscription.id.startswith("sub_") and subscription.status == "trialing"
    assert subscription.trial_end is not None and subscription.trial_start is not None
    assert subscription.trial_end - subscription.trial_start == 7 * 24 * 60 * 60
    assert subscription.metadata["order_id"] == "7"
    assert subscription.customer == paid.customer.id


async def test_an_existing_customer_is_kept_and_always_creates_one(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "eve@example.com"})
    given = await client.v1.checkout.sessions.create_async(session_params(customer=customer.id))
    done = await pay(raw, given.id)
    assert done["customer"] == customer.id
    assert done["customer_details"]["email"] == "eve@example.com"
    always = await client.v1.checkout.sessions.create_async(
        session_params(customer_creation="always")
    )
    done = await pay(raw, always.id, email="new@example.com")
    assert done["customer"].startswith("cus_") and done["customer"] != customer.id
    assert len((await client.v1.customers.list_async()).data) == 2


async def test_the_address_brings_shipping_details_tax_and_presentment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    # Automatic tax needs a tax behaviour and collects where the account is registered.
    await raw.post("/_sandbox/tax/settings", json={"registrations": ["DE"]})
    item = line_item(1000, 2)
    item["price_data"]["tax_behavior"] = "exclusive"
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            item,
            shipping_address_collection={"allowed_countries": ["DE", "FR"]},
            shipping_options=[
                {
                    "shipping_rate_data": {
                        "display_name": "Standard",
                        "type": "fixed_amount",
                        "fixed_amount": {"amount": 500, "currency": "usd"},
                    }
                }
            ],
            automatic_tax={"enabled": True},
            adaptive_pricing={"enabled": True},
        )
    )
    assert session.automatic_tax.status == "requires_location_inputs"
    assert (session.amount_total, session.total_details and session.total_details.amount_tax) == (
        2500,
        0,
    )
    refused = await raw.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay", json={**ADDRESS, "country": "US"}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "country")

    await pay(raw, session.id, **ADDRESS, presentment_currency="gbp")
    paid = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["line_items"]})
    assert paid.collected_information is not None
    shipping = paid.collected_information.shipping_details
    assert shipping is not None and shipping.name == "Ada Lovelace"
    assert (shipping.address.line1, shipping.address.country) == ("1 Unter den Linden", "DE")
    # Germany: 19 % on 2000 = 380; the shipping rate has no tax_behavior, so it is untaxed.
    assert paid.automatic_tax.status == "complete"
    assert paid.total_details is not None and paid.total_details.amount_tax == 380
    assert paid.amount_total == 2880
    assert paid.line_items is not None and paid.line_items.data[0].amount_tax == 380
    # 28.80 USD in GBP at 0.79 per USD: 22.752 -> 22.75.
    assert paid.presentment_details is not None
    assert (
        paid.presentment_details.presentment_amount,
        paid.presentment_details.presentment_currency,
    ) == (2275, "gbp")


async def test_presentment_follows_the_country_unless_one_is_chosen(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    def adaptive() -> SessionCreateParams:
        return session_params(line_item(1000), adaptive_pricing={"enabled": True})

    by_country = await client.v1.checkout.sessions.create_async(adaptive())
    done = await pay(raw, by_country.id, country="JP")
    assert done["presentment_details"] == {
        "presentment_amount": 1500,
        "presentment_currency": "jpy",
    }
    same = await client.v1.checkout.sessions.create_async(adaptive())
    done = await pay(raw, same.id, country="JP", presentment_currency="usd")
    assert done["presentment_details"] is None

    plain = await client.v1.checkout.sessions.create_async(session_params())
    refused = await raw.post(
        f"/_sandbox/checkout/sessions/{plain.id}/pay", json={"presentment_currency": "eur"}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "presentment_currency")
    unknown = await client.v1.checkout.sessions.create_async(adaptive())
    refused = await raw.post(
        f"/_sandbox/checkout/sessions/{unknown.id}/pay", json={"presentment_currency": "brl"}
    )
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "presentment_currency")
    still_open = await client.v1.checkout.sessions.retrieve_async(unknown.id)
    assert still_open.status == "open"
