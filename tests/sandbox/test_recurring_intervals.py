"""Recurring prices bill at most every three years, as on Stripe: 3 years, 36 months, 156 weeks
or 1095 days, on `/v1/prices` and in a session's `price_data`."""

from typing import Any

import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, session_params

LONGEST = [("year", 3), ("month", 36), ("week", 156), ("day", 1095)]


def plan(interval: str, count: int) -> dict[str, Any]:
    return {
        "currency": "usd",
        "unit_amount": 9900,
        "product_data": {"name": "Plan"},
        "recurring": {"interval": interval, "interval_count": count},
    }


@pytest.mark.parametrize(("interval", "count"), LONGEST)
async def test_up_to_three_years_is_accepted(
    sandbox: SandboxProcess, client: stripe.StripeClient, interval: str, count: int
) -> None:
    price = await client.v1.prices.create_async(plan(interval, count))  # type: ignore[arg-type]
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == (interval, count)
    item = line_item(9900)
    item["price_data"]["recurring"] = {"interval": interval, "interval_count": count}
    session = await client.v1.checkout.sessions.create_async(
        session_params(item, mode="subscription")
    )
    assert session.mode == "subscription" and session.amount_total == 9900


@pytest.mark.parametrize(("interval", "count"), [(i, c + 1) for i, c in LONGEST])
async def test_longer_is_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient, interval: str, count: int
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as price:
        await client.v1.prices.create_async(plan(interval, count))  # type: ignore[arg-type]
    assert price.value.param == "recurring[interval_count]"
    item = line_item(9900)
    item["price_data"]["recurring"] = {"interval": interval, "interval_count": count}
    with pytest.raises(stripe.InvalidRequestError) as inline:
        await client.v1.checkout.sessions.create_async(session_params(item, mode="subscription"))
    assert inline.value.param == "line_items[0][price_data][recurring][interval_count]"
