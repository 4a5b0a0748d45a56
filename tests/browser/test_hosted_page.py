"""The sandbox's hosted page as a customer uses it, in Chromium: apply a promotion code, change a
quantity, pick a shipping option, fill a custom field, accept the terms, pass a 3D Secure
challenge, pay, and land on the shop's `success_url` with the session id; a declined card and a
failed challenge leave the session open.

Each scenario ends with what the shop sees (`what_the_shop_sees`): the session as Stripe
reports it through stripe-python. The service's own view (`GetSession`) can be checked in the
same place.
"""

import re
from pathlib import Path
from typing import Any

import httpx
import stripe
from playwright.async_api import Page, expect

from sandbox.launcher import SandboxProcess
from tests.sandbox.support import line_item, session_params

from .conftest import Shop, skip_without_chromium

skip_without_chromium()

TERMS_URL = "https://shop.example/terms"
CARD_NEEDING_AUTHENTICATION = "4000002760003184"
DECLINED_CARD = "4000000000000002"


async def what_the_shop_sees(client: stripe.StripeClient, session_id: str) -> Any:
    """The session as the shop reads it from Stripe once the customer is done."""
    return await client.v1.checkout.sessions.retrieve_async(
        session_id, {"expand": ["line_items", "total_details.breakdown"]}
    )


async def a_shop_session(
    client: stripe.StripeClient, raw: httpx.AsyncClient, shop: Shop
) -> stripe.checkout.Session:
    """Two T-shirts' worth of choices: an adjustable quantity, a promotion code box, two
    shipping options, a gift note and the shop's terms."""
    terms = {"terms_of_service_url": TERMS_URL}
    (await raw.post("/_sandbox/account/public_details", json=terms)).raise_for_status()
    coupon = await client.v1.coupons.create_async({"amount_off": 500, "currency": "usd"})
    await client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "WELCOME5"}
    )
    shipping = [
        {
            "shipping_rate_data": {
                "display_name": name,
                "fixed_amount": {"amount": amount, "currency": "usd"},
            }
        }
        for name, amount in (("Standard", 500), ("Express", 1500))
    ]
    return await client.v1.checkout.sessions.create_async(
        session_params(
            {**line_item(1500, name="T-shirt"), "adjustable_quantity": {"enabled": True}},
            line_item(990, name="Mug"),
            allow_promotion_codes=True,
            shipping_address_collection={"allowed_countries": ["US"]},
            shipping_options=shipping,
            custom_fields=[
                {
                    "key": "giftnote",
                    "label": {"type": "custom", "custom": "Gift note"},
                    "type": "text",
                }
            ],
            consent_collection={"terms_of_service": "required"},
            success_url=shop.success_url,
        )
    )


async def fill_the_address(page: Page) -> None:
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Address line 1").fill("1 Main St")
    await page.get_by_label("City").fill("San Francisco")
    await page.get_by_label("State").fill("CA")
    await page.get_by_label("Postal code").fill("94103")
    await page.get_by_label("Country (two letters)").fill("US")


async def test_a_customer_changes_the_cart_authenticates_and_pays(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    page: Page,
    shop: Shop,
    screenshots: Path | None,
) -> None:
    session = await a_shop_session(client, raw, shop)
    assert session.url is not None
    await page.goto(session.url)
    await page.get_by_label("Promotion code").fill("welcome5")
    await page.get_by_label("T-shirt: quantity").fill("2")
    await page.get_by_label("Express shipping, 15.00 USD").check()
    await page.get_by_role("button", name="Update").click()
    # 2 x 15.00 + 9.90, less 5.00, plus 15.00 of shipping.
    await expect(page.locator("tr.total")).to_contain_text("49.90 USD")

    await page.get_by_label("Gift note").fill("Happy birthday, Ada!")
    await fill_the_address(page)
    await page.get_by_label("Card number").fill(CARD_NEEDING_AUTHENTICATION)
    # The terms are not accepted yet: the page does not let the customer pay.
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/c/pay/cs_test_\w+/update$"))
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    await page.get_by_label("I agree to the terms of service").check()
    if screenshots is not None:
        await page.screenshot(path=screenshots / "hosted-page.png", full_page=True)

    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/authenticate$"))
    if screenshots is not None:
        await page.screenshot(path=screenshots / "hosted-page-3d-secure.png", full_page=True)
    await page.get_by_role("button", name="Complete").click()
    await expect(page.locator("#session")).to_have_text(session.id)
    assert page.url.startswith(shop.success_url.split("?")[0])
    assert shop.landed == [session.id]
    if screenshots is not None:
        await page.goto(session.url)
        await page.screenshot(path=screenshots / "hosted-page-paid.png", full_page=True)

    seen = await what_the_shop_sees(client, session.id)
    assert (seen.status, seen.payment_status, seen.amount_total) == ("complete", "paid", 4990)
    assert [(item.description, item.quantity) for item in seen.line_items.data] == [
        ("T-shirt", 2),
        ("Mug", 1),
    ]
    assert seen.total_details.amount_discount == 500
    assert seen.discounts[0].promotion_code is not None
    express = seen.shipping_options[1].shipping_rate
    assert (seen.shipping_cost.shipping_rate, seen.shipping_cost.amount_total) == (express, 1500)
    assert seen.custom_fields[0].text.value == "Happy birthday, Ada!"
    assert seen.consent.terms_of_service == "accepted"
    shipping = seen.collected_information.shipping_details
    assert (shipping.name, shipping.address.city) == ("Ada Lovelace", "San Francisco")
    assert seen.customer_details.name == "Ada Lovelace"


async def test_a_declined_card_leaves_the_session_open(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    page: Page,
    shop: Shop,
) -> None:
    session = await a_shop_session(client, raw, shop)
    assert session.url is not None
    await page.goto(session.url)
    await page.get_by_label("Gift note").fill("Hello")
    await page.get_by_label("I agree to the terms of service").check()
    await page.get_by_label("Card number").fill(DECLINED_CARD)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    # What was entered is still there to correct.
    await expect(page.get_by_label("Gift note")).to_have_value("Hello")

    seen = await what_the_shop_sees(client, session.id)
    assert (seen.status, seen.payment_status) == ("open", "unpaid")
    assert shop.landed == []


async def test_a_failed_challenge_leaves_the_session_open(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    page: Page,
    shop: Shop,
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            payment_method_options={"card": {"request_three_d_secure": "any"}},
            success_url=shop.success_url,
        )
    )
    assert session.url is not None
    await page.goto(session.url)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.get_by_role("button", name="Fail").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "We are unable to authenticate your payment method."
    )
    seen = await what_the_shop_sees(client, session.id)
    assert (seen.status, seen.payment_status) == ("open", "unpaid")
    assert shop.landed == []

    # The customer tries again and passes.
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.get_by_role("button", name="Complete").click()
    await expect(page.locator("#session")).to_have_text(session.id)
    assert (await what_the_shop_sees(client, session.id)).status == "complete"
