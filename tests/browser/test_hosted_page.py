"""The sandbox's hosted page as a customer uses it, in Chromium, for sessions the checkout
service made: apply a promotion code, change a quantity, pick a shipping option, fill a custom
field, give a phone number, a tax ID and a business name, accept the terms and opt in to news,
pass a 3D Secure challenge, pay, and land on the shop's `success_url` with the session id; a
declined card and a failed challenge leave the session open.

Each scenario ends with what the shop sees (`what_the_shop_sees`): the caller's GetSession
once Stripe's webhook has reached the service, which shows every value the customer entered.
"""

import re
import uuid
from pathlib import Path

from playwright.async_api import Page, expect

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import new_order_id, stored, until_stored

from .conftest import Service, Shop, skip_without_chromium

skip_without_chromium()

Req = api.CreateSessionRequest
TERMS_URL = "https://shop.example/terms"
CARD_NEEDING_AUTHENTICATION = "4000002760003184"
DECLINED_CARD = "4000000000000002"


async def what_the_shop_sees(service: Service, order_id: str, **expected: object) -> pb.Session:
    """The order's session as the caller reads it, once the webhook has brought `expected`."""
    return await until_stored(service.stub, order_id, **expected)


async def a_promotion_code(service: Service) -> str:
    """A code for 5.00 off that the customer types, unique to the scenario (the sandbox's
    codes are unique among active ones); its id."""
    client = service.sandbox.client
    coupon = await client.v1.coupons.create_async({"amount_off": 500, "currency": "usd"})
    code = await client.v1.promotion_codes.create_async(
        {
            "promotion": {"type": "coupon", "coupon": coupon.id},
            "code": f"WELCOME5{uuid.uuid4().hex[:6].upper()}",
        }
    )
    return code.id


def a_shop_session(order_id: str, shop: Shop, **more: object) -> Req:
    """Two T-shirts' worth of choices: an adjustable quantity, a promotion code box, two
    shipping options, a gift note, a phone number, a tax ID, news and the shop's terms."""
    shipping = [
        Req.ShippingOption(
            shipping_rate_data=Req.ShippingRateData(display_name=name, amount=amount)
        )
        for name, amount in (("Standard", 500), ("Express", 1500))
    ]
    fields: dict[str, object] = {
        "order_id": order_id,
        "currency": "usd",
        "line_items": [
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=1500, product_name="T-shirt"),
                quantity=1,
                adjustable_quantity=Req.AdjustableQuantity(enabled=True),
                metadata={"sku": "TS-RED-M"},
            ),
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=990, product_name="Mug"),
                quantity=1,
                metadata={"sku": "MUG-BLUE"},
            ),
        ],
        "allow_promotion_codes": True,
        "shipping_address_collection": Req.ShippingAddressCollection(allowed_countries=["US"]),
        "shipping_options": shipping,
        "custom_fields": [
            Req.CustomField(key="giftnote", label="Gift note", type=Req.CustomField.TEXT)
        ],
        "phone_number_collection": Req.PhoneNumberCollection(enabled=True),
        "tax_id_collection": Req.TaxIdCollection(enabled=True),
        "consent_collection": Req.ConsentCollection(
            terms_of_service=Req.ConsentCollection.TERMS_OF_SERVICE_REQUIRED,
            promotions=Req.ConsentCollection.PROMOTIONS_AUTO,
        ),
        "success_url": shop.success_url,
    }
    fields.update(more)
    return Req(**fields)  # type: ignore[arg-type]


async def created(service: Service, request: Req) -> pb.Session:
    """The session the service made, with the account's terms of service URL set for it."""
    terms = {"terms_of_service_url": TERMS_URL}
    service.sandbox.control("POST", "/_sandbox/account/public_details", terms)
    return (await service.stub.CreateSession(request)).session


async def fill_the_address(page: Page) -> None:
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Address line 1").fill("1 Main St")
    await page.get_by_label("City").fill("San Francisco")
    await page.get_by_label("State").fill("CA")
    await page.get_by_label("Postal code").fill("94103")
    await page.get_by_label("Country (two letters)").fill("US")


async def fill_the_rest(page: Page) -> None:
    """What the session asks for besides the card and the address."""
    await page.get_by_label("Phone number").fill("+1 415 555 0123")
    await page.get_by_label("Business name").fill("Analytical Engines Ltd")
    await page.get_by_label("Type").select_option("us_ein")
    await page.get_by_label("Number", exact=True).fill("12-3456789")


async def test_a_customer_changes_the_cart_authenticates_and_pays(
    service: Service, page: Page, shop: Shop, screenshots: Path | None
) -> None:
    promotion_code = await a_promotion_code(service)
    code = (await service.sandbox.client.v1.promotion_codes.retrieve_async(promotion_code)).code
    order_id = new_order_id()
    session = await created(service, a_shop_session(order_id, shop))
    await page.goto(session.url)
    await page.get_by_label("Promotion code").fill(code.lower())
    await page.get_by_label("T-shirt: quantity").fill("2")
    await page.get_by_label("Express shipping, 15.00 USD").check()
    await page.get_by_role("button", name="Update").click()
    # 2 x 15.00 + 9.90, less 5.00, plus 15.00 of shipping.
    await expect(page.locator("tr.total")).to_contain_text("49.90 USD")

    await page.get_by_label("Gift note").fill("Happy birthday, Ada!")
    await fill_the_address(page)
    await fill_the_rest(page)
    await page.get_by_label("Card number").fill(CARD_NEEDING_AUTHENTICATION)
    # The terms are not accepted yet: the page does not let the customer pay.
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/c/pay/cs_test_\w+/update$"))
    assert (await stored(service.stub, order_id)).status == pb.Session.OPEN
    await page.get_by_label("Send me news and offers by email").check()
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

    seen = await what_the_shop_sees(service, order_id, status=pb.Session.COMPLETE)
    assert (seen.payment_status, seen.amount_total) == (pb.Session.PAID, 4990)
    assert [(li.description, li.quantity, li.metadata["sku"]) for li in seen.line_items] == [
        ("T-shirt", 2, "TS-RED-M"),
        ("Mug", 1, "MUG-BLUE"),
    ]
    assert (list(seen.discount_ids), seen.total_details.amount_discount) == ([promotion_code], 500)
    assert [(d.promotion_code_id, d.amount) for d in seen.total_details.breakdown.discounts] == [
        (promotion_code, 500)
    ]
    at_stripe = await service.sandbox.client.v1.checkout.sessions.retrieve_async(session.id)
    express = at_stripe.shipping_options[1].shipping_rate
    assert (seen.shipping_cost.shipping_rate_id, seen.shipping_cost.amount_total) == (express, 1500)
    assert [(f.key, f.value) for f in seen.custom_fields] == [("giftnote", "Happy birthday, Ada!")]
    assert (seen.consent.terms_of_service, seen.consent.promotions) == (
        pb.Consent.ACCEPTED,
        pb.Consent.OPT_IN,
    )
    details = seen.customer_details
    assert (details.name, details.phone, details.business_name) == (
        "Ada Lovelace",
        "+14155550123",
        "Analytical Engines Ltd",
    )
    assert [(t.type, t.value) for t in details.tax_ids] == [("us_ein", "12-3456789")]
    assert (details.address.city, details.address.postal_code) == ("San Francisco", "94103")
    shipping = seen.shipping_details
    assert (shipping.name, shipping.address.line1, shipping.address.state) == (
        "Ada Lovelace",
        "1 Main St",
        "CA",
    )


async def test_a_declined_card_leaves_the_session_open(
    service: Service, page: Page, shop: Shop
) -> None:
    order_id = new_order_id()
    session = await created(service, a_shop_session(order_id, shop))
    await page.goto(session.url)
    await page.get_by_label("Gift note").fill("Hello")
    await fill_the_rest(page)
    await page.get_by_label("I agree to the terms of service").check()
    await page.get_by_label("Card number").fill(DECLINED_CARD)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    # What was entered is still there to correct.
    await expect(page.get_by_label("Gift note")).to_have_value("Hello")

    refreshed = await service.stub.GetSession(
        api.GetSessionRequest(order_id=order_id, refresh=True)
    )
    seen = refreshed.session
    assert (seen.status, seen.payment_status) == (pb.Session.OPEN, pb.Session.UNPAID)
    assert [f.value for f in seen.custom_fields] == [""]
    assert not seen.HasField("customer_details")
    assert shop.landed == []


async def test_a_failed_challenge_leaves_the_session_open(
    service: Service, page: Page, shop: Shop
) -> None:
    order_id = new_order_id()
    request = Req(
        order_id=order_id,
        currency="usd",
        line_items=[
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=2500, product_name="Lamp"), quantity=1
            )
        ],
        payment_method_options=Req.PaymentMethodOptions(
            card=Req.CardOptions(request_three_d_secure=Req.CardOptions.REQUEST_THREE_D_SECURE_ANY)
        ),
        success_url=shop.success_url,
    )
    session = (await service.stub.CreateSession(request)).session
    await page.goto(session.url)
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.get_by_role("button", name="Fail").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "We are unable to authenticate your payment method."
    )
    refreshed = await service.stub.GetSession(
        api.GetSessionRequest(order_id=order_id, refresh=True)
    )
    assert (refreshed.session.status, refreshed.session.payment_status) == (
        pb.Session.OPEN,
        pb.Session.UNPAID,
    )
    assert shop.landed == []

    # The customer tries again and passes.
    await page.get_by_role("button", name="Pay", exact=True).click()
    await page.get_by_role("button", name="Complete").click()
    await expect(page.locator("#session")).to_have_text(session.id)
    seen = await what_the_shop_sees(service, order_id, status=pb.Session.COMPLETE)
    assert (seen.id, seen.payment_status) == (session.id, pb.Session.PAID)
