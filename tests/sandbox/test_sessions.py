"""Checkout Sessions through stripe-python: the object Stripe returns, its line items, lists and
expiry."""

import time

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import ids, line_item, session_params, stats


async def test_a_hosted_payment_session(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    before = int(time.time())
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            line_item(1500, 2),
            line_item(990, 1, name="Mug"),
            client_reference_id="order_42",
            metadata={"order_id": "42"},
            customer_email="ada@example.com",
            locale="fr",
            payment_intent_data={"metadata": {"order_id": "42"}},
        )
    )
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.status, session.payment_status, session.mode, session.ui_mode) == (
        "open",
        "unpaid",
        "payment",
        "hosted_page",
    )
    assert session.url == f"{sandbox.url}/c/pay/{session.id}"
    assert session.client_secret is None
    assert (session.currency, session.amount_subtotal, session.amount_total) == ("usd", 3990, 3990)
    assert session.total_details is not None
    assert (
        session.total_details.amount_discount,
        session.total_details.amount_shipping,
        session.total_details.amount_tax,
    ) == (0, 0, 0)
    assert before <= session.created <= int(time.time())
    assert session.expires_at == session.created + 24 * 60 * 60
    assert not session.livemode
    assert session.metadata is not None and session.metadata["order_id"] == "42"
    assert (session.client_reference_id, session.customer_email, session.locale) == (
        "order_42",
        "ada@example.com",
        "fr",
    )
    assert session.payment_intent is None and session.subscription is None
    assert session.presentment_details is None and session.collected_information is None
    assert session.payment_method_types == ["card"]
    assert session.automatic_tax.enabled is False
    assert "line_items" not in session


@pytest.mark.parametrize("ui_mode", ["embedded_page", "elements"])
async def test_embedded_and_elements_sessions_get_a_client_secret(
    sandbox: SandboxProcess, client: stripe.StripeClient, ui_mode: str
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            success_url=None,
            ui_mode=ui_mode,
            return_url="https://shop.example/r?cs={CHECKOUT_SESSION_ID}",
        )
    )
    assert session.url is None
    assert session.client_secret is not None
    assert session.client_secret.startswith(f"{session.id}_secret_")
    assert session.return_url == "https://shop.example/r?cs={CHECKOUT_SESSION_ID}"


async def test_subscription_and_setup_sessions(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    price = await client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 900,
            "product_data": {"name": "Plan"},
            "recurring": {"interval": "month"},
        }
    )
    subscription = await client.v1.checkout.sessions.create_async(
        session_params(
            {"price": price.id, "quantity": 1},
            line_item(500, name="Setup fee"),
            mode="subscription",
            subscription_data={"trial_period_days": 7, "metadata": {"order_id": "7"}},
        )
    )
    # During the trial only the one-time setup fee is due now (trials.py).
    assert (subscription.mode, subscription.amount_subtotal) == ("subscription", 500)
    setup = await client.v1.checkout.sessions.create_async(
        {"mode": "setup", "currency": "eur", "success_url": "https://shop.example/ok"}
    )
    assert (setup.payment_status, setup.currency, setup.amount_total) == (
        "no_payment_required",
        "eur",
        None,
    )


async def test_line_items_when_expanded_and_through_their_route(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    items = [line_item(100 + n, n + 1, name=f"Item {n}") for n in range(12)]
    session = await client.v1.checkout.sessions.create_async(
        session_params(*items, expand=["line_items"])
    )
    assert session.line_items is not None
    assert len(session.line_items.data) == 10 and session.line_items.has_more
    first = session.line_items.data[0]
    assert isinstance(first, stripe.LineItem)
    assert first.id.startswith("li_") and first.object == "item"
    assert (first.description, first.quantity, first.currency) == ("Item 0", 1, "usd")
    assert (first.amount_subtotal, first.amount_discount, first.amount_tax, first.amount_total) == (
        100,
        0,
        0,
        100,
    )
    assert isinstance(first.price, stripe.Price) and first.price.unit_amount == 100

    page = await client.v1.checkout.sessions.line_items.list_async(session.id, {"limit": 5})
    assert [item.description for item in page.data] == [f"Item {n}" for n in range(5)]
    assert page.has_more
    rest = await client.v1.checkout.sessions.line_items.list_async(
        session.id, {"starting_after": page.data[-1].id, "limit": 100}
    )
    assert len(rest.data) == 7 and not rest.has_more

    retrieved = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["line_items.data.price.product"]}
    )
    assert retrieved.line_items is not None
    product = retrieved.line_items.data[0].price
    assert product is not None and isinstance(product.product, stripe.Product)


async def test_expanding_something_unexpandable_is_refused(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["mode"]})
    assert caught.value.param == "expand"


async def test_list_is_newest_first_and_pages_both_ways(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    created = [await client.v1.checkout.sessions.create_async(session_params()) for _ in range(5)]
    newest_first = [s.id for s in reversed(created)]
    default = await client.v1.checkout.sessions.list_async()
    assert ids(default.data) == newest_first and not default.has_more

    page = await client.v1.checkout.sessions.list_async({"limit": 2})
    assert ids(page.data) == newest_first[:2] and page.has_more
    page = await client.v1.checkout.sessions.list_async(
        {"limit": 2, "starting_after": page.data[-1].id}
    )
    assert ids(page.data) == newest_first[2:4] and page.has_more
    page = await client.v1.checkout.sessions.list_async(
        {"limit": 2, "starting_after": page.data[-1].id}
    )
    assert ids(page.data) == newest_first[4:] and not page.has_more
    back = await client.v1.checkout.sessions.list_async(
        {"limit": 2, "ending_before": newest_first[3]}
    )
    assert ids(back.data) == newest_first[1:3] and back.has_more

    everything = [s.id async for s in default.auto_paging_iter()]
    assert everything == newest_first


async def test_list_filters(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    open_one = await client.v1.checkout.sessions.create_async(session_params())
    expired = await client.v1.checkout.sessions.create_async(session_params())
    await client.v1.checkout.sessions.expire_async(expired.id)
    listed = await client.v1.checkout.sessions.list_async({"status": "open"})
    assert ids(listed.data) == [open_one.id]
    listed = await client.v1.checkout.sessions.list_async({"status": "expired"})
    assert ids(listed.data) == [expired.id]
    # A cursor may name a session the filter leaves out, as on Stripe.
    listed = await client.v1.checkout.sessions.list_async(
        {"status": "open", "ending_before": expired.id}
    )
    assert ids(listed.data) == []
    listed = await client.v1.checkout.sessions.list_async({"customer": "cus_nobody"})
    assert listed.data == []


async def test_list_refusals(sandbox: SandboxProcess, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.list_async({"starting_after": "cs_test_nope"})
    assert (caught.value.param, caught.value.code) == ("starting_after", "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as both:
        await client.v1.checkout.sessions.list_async(
            {"starting_after": "cs_a", "ending_before": "cs_b"}
        )
    assert both.value.code == "parameters_exclusive"
    with pytest.raises(stripe.InvalidRequestError) as status:
        await client.v1.checkout.sessions.list_async({"status": "paid"})
    assert status.value.param == "status"


async def test_expire_once_then_refuse(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert caught.value.http_status == 400
    assert caught.value.user_message == (
        'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
        "Session has a status of `expired`."
    )
    fetched = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert fetched.status == "expired"
    assert (await stats(raw))["routes"]["POST /v1/checkout/sessions/{session}/expire"] == 2


async def test_unknown_sessions_are_404(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    sessions = client.v1.checkout.sessions
    for call in (
        lambda: sessions.retrieve_async("cs_test_nope"),
        lambda: sessions.expire_async("cs_test_nope"),
        lambda: sessions.line_items.list_async("cs_test_nope"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            await call()
        assert (caught.value.http_status, caught.value.code, caught.value.param) == (
            404,
            "resource_missing",
            "session",
        )
