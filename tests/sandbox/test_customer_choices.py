"""What the customer changes on the page: a promotion code, a quantity, a shipping option
(`customer_choices.py`). The amounts follow, and the completed session and its line items show
the final ones."""

import re
from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, pay, session_params


def adjustable(unit_amount: int, quantity: int = 1, **bounds: int) -> dict[str, Any]:
    item = line_item(unit_amount, quantity)
    item["adjustable_quantity"] = {"enabled": True, **bounds}
    return item


def shipping(name: str, amount: int) -> dict[str, Any]:
    return {
        "shipping_rate_data": {
            "display_name": name,
            "fixed_amount": {"amount": amount, "currency": "usd"},
        }
    }


async def welcome_code(client: stripe.StripeClient, amount_off: int = 500) -> stripe.PromotionCode:
    coupon = await client.v1.coupons.create_async({"amount_off": amount_off, "currency": "usd"})
    return await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "WELCOME5"}
    )


async def refused(raw: httpx.AsyncClient, session_id: str, **choices: Any) -> dict[str, Any]:
    response = await raw.post(f"/_sandbox/checkout/sessions/{session_id}/pay", json=choices)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_the_customer_pays_with_their_choices(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    code = await welcome_code(client)
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            adjustable(1500, 1, maximum=5),
            line_item(990, name="Mug"),
            allow_promotion_codes=True,
            shipping_address_collection={"allowed_countries": ["US"]},
            shipping_options=[shipping("Standard", 500), shipping("Express", 1500)],
        )
    )
    assert session.amount_total == 1500 + 990 + 500
    express = session.shipping_options[1].shipping_rate
    done = await pay(
        raw,
        session.id,
        promotion_code="welcome5",
        line_items=[{"quantity": 3}],
        shipping_rate=express,
        country="US",
    )
    assert done["status"] == "complete"
    # 3 x 15.00 + 9.90 - 5.00 + 15.00 express shipping.
    assert (done["amount_subtotal"], done["amount_total"]) == (5490, 5490 - 500 + 1500)
    assert done["total_details"]["amount_discount"] == 500
    assert done["discounts"] == [{"coupon": None, "promotion_code": code.id}]
    assert (done["shipping_cost"]["shipping_rate"], done["shipping_cost"]["amount_total"]) == (
        express,
        1500,
    )
    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [(i.quantity, i.amount_subtotal) for i in items.data] == [(3, 4500), (1, 990)]
    assert sum(i.amount_discount for i in items.data) == 500


@pytest.mark.parametrize(
    ("choices", "param"),
    [
        ({"promotion_code": "NOPE"}, "promotion_code"),
        ({"line_items": [{"quantity": 6}]}, "line_items[0][quantity]"),
        ({"line_items": [None, {"quantity": 2}]}, "line_items[1][quantity]"),
        ({"line_items": [None, None, {"quantity": 1}]}, "line_items[2][quantity]"),
        ({"shipping_rate": "shr_elsewhere"}, "shipping_rate"),
    ],
)
async def test_choices_stripe_would_refuse(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    choices: dict[str, Any],
    param: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            adjustable(1500, 1, maximum=5),
            line_item(990, name="Mug"),
            allow_promotion_codes=True,
            shipping_options=[shipping("Standard", 500)],
        )
    )
    error = await refused(raw, session.id, **choices)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    unchanged = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (unchanged.status, unchanged.amount_total) == ("open", 1500 + 990 + 500)


async def test_a_code_needs_allow_promotion_codes_and_a_chargeable_total(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await welcome_code(client, amount_off=1460)
    closed = await client.v1.checkout.sessions.create_async(session_params())
    error = await refused(raw, closed.id, promotion_code="WELCOME5")
    assert error["param"] == "promotion_code"
    # 15.00 - 14.60 leaves 0.40, under the 0.50 minimum.
    open_to_codes = await client.v1.checkout.sessions.create_async(
        session_params(allow_promotion_codes=True)
    )
    error = await refused(raw, open_to_codes.id, promotion_code="WELCOME5")
    assert (error["code"], error.get("param")) == ("amount_too_small", None)


async def test_a_line_taken_to_zero_leaves_the_line_items(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(adjustable(1500, 2, minimum=0), line_item(990, name="Mug"))
    )
    done = await pay(raw, session.id, line_items=[{"quantity": 0}])
    assert done["amount_total"] == 990
    items = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [i.description for i in items.data] == ["Mug"]
    only = await client.v1.checkout.sessions.create_async(
        session_params(adjustable(1500, 2, minimum=0))
    )
    error = await refused(raw, only.id, line_items=[{"quantity": 0}])
    assert error["param"] == "line_items"


async def test_the_hosted_page_lets_the_customer_choose(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await welcome_code(client)
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            adjustable(1500, 1, maximum=5),
            allow_promotion_codes=True,
            shipping_options=[shipping("Standard", 500), shipping("Express", 1500)],
        )
    )
    assert session.url is not None
    page = (await raw.get(session.url)).text
    update = re.search(r'<form method="post" action="([^"]+/update)">', page)
    assert update is not None
    for field in (
        'name="promotion_code"',
        'name="line_items[0][quantity]"',
        'name="shipping_rate"',
    ):
        assert field in page
    express = session.shipping_options[1].shipping_rate

    bad = await raw.post(update.group(1), data={"promotion_code": "NOPE"})
    assert bad.status_code == 400 and "not a valid promotion code" in bad.text
    changed = await raw.post(
        update.group(1),
        data={
            "promotion_code": "WELCOME5",
            "line_items[0][quantity]": "2",
            "shipping_rate": express,
        },
    )
    assert changed.status_code == 200
    assert "40.00 USD" in changed.text  # 2 x 15.00 - 5.00 + 15.00
    open_session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (open_session.status, open_session.amount_total) == ("open", 4000)

    paid = await raw.post(f"/c/pay/{session.id}/pay")
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["line_items"]})
    assert (done.status, done.amount_total) == ("complete", 4000)
    assert done.line_items is not None
    assert [(i.quantity, i.amount_total) for i in done.line_items.data] == [(2, 2500)]
