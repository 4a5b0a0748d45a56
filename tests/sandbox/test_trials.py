"""A subscription with a trial charges nothing now for its recurring prices: the session's
amounts are what is due today, and paying completes it with `no_payment_required`."""

import time
from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params


def monthly(unit_amount: int = 900) -> dict[str, Any]:
    item = line_item(unit_amount, name="Coffee club")
    item["price_data"]["recurring"] = {"interval": "month"}
    return item


async def test_a_pure_trial_is_due_nothing_and_needs_no_payment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            monthly(),
            mode="subscription",
            subscription_data={"trial_period_days": 14},
            expand=["line_items"],
        )
    )
    assert (session.amount_subtotal, session.amount_total) == (0, 0)
    assert session.line_items is not None
    [item] = session.line_items.data
    assert (item.amount_subtotal, item.amount_total) == (0, 0)
    assert item.price is not None and item.price.unit_amount == 900

    done = await pay(raw, session.id, email="ada@example.com")
    assert (done["status"], done["payment_status"]) == ("complete", "no_payment_required")
    assert (done["amount_total"], done["payment_intent"]) == (0, None)
    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription"]}
    )
    assert isinstance(paid.subscription, stripe.Subscription)
    assert paid.subscription.status == "trialing"


async def test_a_trial_with_a_one_time_fee_charges_the_fee_now(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            monthly(),
            line_item(1500, name="Starter kit"),
            mode="subscription",
            subscription_data={"trial_end": int(time.time()) + 3 * 24 * 60 * 60},
        )
    )
    assert (session.amount_subtotal, session.amount_total) == (1500, 1500)
    done = await pay(raw, session.id)
    assert (done["payment_status"], done["amount_total"]) == ("paid", 1500)


async def test_without_a_trial_the_first_period_is_due(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(monthly(), mode="subscription")
    )
    assert session.amount_total == 900
    assert (await pay(raw, session.id))["payment_status"] == "paid"


@pytest.mark.parametrize(
    ("subscription_data", "param"),
    [
        ({"trial_end": int(time.time()) + 47 * 60 * 60}, "subscription_data[trial_end]"),
        (
            {"trial_end": int(time.time()) + 3 * 24 * 60 * 60, "trial_period_days": 3},
            "subscription_data[trial_end]",
        ),
        ({"trial_period_days": 0}, "subscription_data[trial_period_days]"),
    ],
)
async def test_trials_stripe_refuses(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    subscription_data: dict[str, Any],
    param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params(monthly(), mode="subscription", subscription_data=subscription_data)
        )
    assert caught.value.param == param
