"""The hosted payment page at a session's `url`: what it shows, and its Pay, bank debit and
Decline buttons, driven over plain HTTP as a browser would."""

import httpx
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, session_params


async def test_the_page_shows_the_cart_and_three_buttons(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    coupon = await client.v1.coupons.create_async({"amount_off": 100, "currency": "usd"})
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            line_item(1500, 2),
            line_item(990, name="Mug"),
            discounts=[{"coupon": coupon.id}],
        )
    )
    assert session.url is not None
    page = await raw.get(session.url)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for text in ("T-shirt, qty 2", "Mug, qty 1", "30.00 USD", "9.90 USD", "-1.00 USD"):
        assert text in html
    assert "Total (USD)" in html and "38.90 USD" in html
    for action in ("pay", "bank_debit", "decline"):
        assert f'action="/c/pay/{session.id}/{action}"' in html
    assert "<script" not in html and "http" not in html.split("<body>")[1]


async def test_pay_redirects_to_the_success_url(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await raw.post(f"/c/pay/{session.id}/pay")
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"https://shop.example/done?cs={session.id}"
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    page = await raw.get(f"/c/pay/{session.id}")
    assert "This Checkout Session is complete." in page.text and "<button" not in page.text
    again = await raw.post(f"/c/pay/{session.id}/pay")
    assert again.status_code == 409


async def test_bank_debit_completes_unpaid(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(success_url=None))
    answer = await raw.post(f"/c/pay/{session.id}/bank_debit")
    assert answer.status_code == 200 and "Payment complete" in answer.text
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "unpaid")


async def test_decline_leaves_the_session_open(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await raw.post(f"/c/pay/{session.id}/decline")
    assert answer.status_code == 200
    assert "Your card was declined." in answer.text and "<button" in answer.text
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    assert (await client.v1.events.list_async()).data == []


async def test_expired_and_unknown_sessions(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(session.id)
    page = await raw.get(f"/c/pay/{session.id}")
    assert page.status_code == 200
    assert "This Checkout Session has expired." in page.text and "<button" not in page.text
    assert (await raw.post(f"/c/pay/{session.id}/pay")).status_code == 409
    missing = await raw.get("/c/pay/cs_test_<b>nope")
    assert missing.status_code == 404
    assert "No such Checkout Session" in missing.text and "<b>" not in missing.text


async def test_everything_printed_is_escaped(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(line_item(name="<script>alert('x')</script> & co"))
    )
    html = (await raw.get(f"/c/pay/{session.id}")).text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html


async def test_the_page_asks_for_what_the_session_collects(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    terms = {"terms_of_service_url": "https://shop.example/terms"}
    (await raw.post("/_sandbox/account/public_details", json=terms)).raise_for_status()
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            phone_number_collection={"enabled": True},
            tax_id_collection={"enabled": True},
            custom_fields=[
                {
                    "key": "giftnote",
                    "label": {"type": "custom", "custom": "Gift note"},
                    "type": "text",
                }
            ],
            consent_collection={"terms_of_service": "required"},
            custom_text={"submit": {"message": "Ships <tomorrow>"}},
        )
    )
    html = (await raw.get(f"/c/pay/{session.id}")).text
    for name in ("card_number", "phone", "business_name", "tax_id[value]", "line1"):
        assert f'name="{name}"' in html
    assert 'name="custom_fields[giftnote]"' in html and "Gift note" in html
    assert 'name="consent[terms_of_service]"' in html
    assert 'href="https://shop.example/terms"' in html
    assert "Ships &lt;tomorrow&gt;" in html

    # Without the required entries the page refuses to pay and keeps what was entered.
    answer = await raw.post(f"/c/pay/{session.id}/pay", data={"phone": "+14155550100"})
    assert answer.status_code == 400
    assert 'value="+14155550100"' in answer.text and 'class="error"' in answer.text
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    entries = {
        "phone": "+14155550100",
        "custom_fields[giftnote]": "For Ada",
        "consent[terms_of_service]": "accepted",
        # What the form sends for the optional tax ID left empty.
        "tax_id[type]": "eu_vat",
        "tax_id[value]": "",
        "business_name": "",
    }
    paid = await raw.post(f"/c/pay/{session.id}/pay", data=entries)
    assert paid.status_code == 303
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert done.custom_fields[0].text is not None
    assert done.custom_fields[0].text.value == "For Ada"


async def test_a_card_that_needs_authentication_shows_a_challenge(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    card = {"card_number": "4000002760003184"}
    challenged = await raw.post(f"/c/pay/{session.id}/pay", data=card)
    assert challenged.status_code == 303
    assert challenged.headers["Location"] == f"/c/pay/{session.id}/authenticate"
    challenge = await raw.get(challenged.headers["Location"])
    assert 'value="complete"' in challenge.text and 'value="fail"' in challenge.text

    failed = await raw.post(f"/c/pay/{session.id}/authenticate", data={"outcome": "fail"})
    assert failed.status_code == 200
    assert "We are unable to authenticate your payment method" in failed.text
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    # The challenge was used up: the page starts over.
    assert (await raw.get(f"/c/pay/{session.id}/authenticate")).status_code == 303

    await raw.post(f"/c/pay/{session.id}/pay", data=card)
    passed = await raw.post(f"/c/pay/{session.id}/authenticate", data={"outcome": "complete"})
    assert passed.status_code == 303
    assert passed.headers["Location"] == f"https://shop.example/done?cs={session.id}"
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "complete"


async def test_a_declined_test_card_is_shown_on_the_page(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    answer = await raw.post(f"/c/pay/{session.id}/pay", data={"card_number": "4000000000000002"})
    assert answer.status_code == 200 and "Your card was declined." in answer.text
    assert 'value="4000000000000002"' in answer.text
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
