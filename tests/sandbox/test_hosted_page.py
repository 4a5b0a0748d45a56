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
