"""The customer pays: the sandbox completes the session and delivers Stripe's signed webhooks
to the service, which records the outcome and tells every watcher (the README's "What happened
to the payment")."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from yarl import URL

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import (
    Sandbox,
    Stub,
    cart_request,
    detail,
    new_order_id,
    reason,
    until_stored,
)
from tests.e2e.processes import service_process
from tests.support import eventually

Req = api.CreateSessionRequest


async def test_paying_is_recorded_from_the_webhook_and_seen_by_a_watcher_elsewhere(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session
    async with service_process({**environ, "DATABASE_URL": pg_dsn}) as other_replica:
        updates: list[pb.Session] = []

        async def watch() -> None:
            async for update in other_replica.stub.WatchSession(
                api.WatchSessionRequest(order_id=order_id), timeout=30
            ):
                updates.append(update.session)

        watcher = asyncio.create_task(watch())

        async def watching() -> bool:
            return bool(updates)

        await eventually(watching)
        sandbox.pay(created.id, payment_status="paid")
        paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)
        await asyncio.wait_for(watcher, timeout=10)

    assert (paid.status, paid.payment_status) == (pb.Session.COMPLETE, pb.Session.PAID)
    assert paid.payment_intent_id.startswith("pi_")
    assert paid.url == ""
    assert [(u.status, u.payment_status) for u in updates] == [
        (pb.Session.OPEN, pb.Session.UNPAID),
        (pb.Session.COMPLETE, pb.Session.PAID),
    ]


async def test_a_paid_order_is_never_charged_again(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session
    sandbox.pay(created.id, payment_status="paid")
    await until_stored(stub, order_id, payment_status=pb.Session.PAID)
    changed_cart = cart_request(order_id, customer_email="again@example.com")

    for call in (
        stub.CreateSession(cart_request(order_id)),
        stub.CreateSession(changed_cart),
        stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        violation = detail(caught.value, error_details_pb2.PreconditionFailure).violations[0]
        assert violation.type == "SESSION_COMPLETE"
        assert violation.subject == f"sessions/{created.id}"
        assert reason(caught.value) == "ORDER_ALREADY_PAID"
    assert len(await sandbox.sessions_for(order_id)) == 1


async def test_a_delayed_payment_that_succeeds(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session

    sandbox.pay(created.id, payment_status="unpaid")
    pending = await until_stored(stub, order_id, status=pb.Session.COMPLETE)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateSession(cart_request(order_id))
    sandbox.control(
        "POST", f"/_sandbox/checkout/sessions/{created.id}/async_payment", {"outcome": "succeeded"}
    )
    settled = await until_stored(stub, order_id, payment_status=pb.Session.PAID)

    assert (pending.payment_status, pending.async_payment_failed) == (pb.Session.UNPAID, False)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert settled.status == pb.Session.COMPLETE


async def test_a_delayed_payment_that_fails_frees_the_order_for_a_new_session(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session
    sandbox.pay(created.id, payment_status="unpaid")
    await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    sandbox.control(
        "POST", f"/_sandbox/checkout/sessions/{created.id}/async_payment", {"outcome": "failed"}
    )
    failed = await until_stored(stub, order_id, async_payment_failed=True)
    retry = await stub.CreateSession(cart_request(order_id))

    assert (failed.status, failed.payment_status) == (pb.Session.COMPLETE, pb.Session.UNPAID)
    assert retry.reused is False
    assert retry.session.id != created.id
    assert retry.session.status == pb.Session.OPEN


async def test_paying_on_the_hosted_page_updates_the_service(stub: Stub) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session
    async with aiohttp.ClientSession() as browser:
        async with browser.get(created.url) as page:
            html = await page.text()
        assert "39.90" in html
        # The payment form, whose Pay button posts the customer's entries to `…/pay`.
        pay_form = re.search(r'<form[^>]*action="([^"]+/pay)"', html)
        assert pay_form is not None, html
        action = URL(created.url).join(URL(pay_form.group(1)))
        async with browser.post(action, allow_redirects=False) as paid:
            assert paid.status == 303
            assert paid.headers["Location"] == f"https://shop.example/done?cs={created.id}"

    session = await until_stored(stub, order_id, status=pb.Session.COMPLETE)
    assert session.payment_status == pb.Session.PAID


async def test_shipping_details_tax_and_presentment_are_known_once_the_customer_pays(
    stub: Stub, sandbox: Sandbox
) -> None:
    # Stripe Tax collects only where the account is registered (a new account is nowhere).
    with sandbox.registered_for_tax("DE"):
        order_id = new_order_id()
        created = (
            await stub.CreateSession(
                cart_request(
                    order_id,
                    automatic_tax=Req.AutomaticTax(enabled=True),
                    adaptive_pricing=Req.AdaptivePricing(enabled=True),
                    shipping_address_collection=Req.ShippingAddressCollection(
                        allowed_countries=["DE"]
                    ),
                )
            )
        ).session
        assert created.total_details.amount_tax == 0  # no address yet
        sandbox.pay(
            created.id,
            payment_status="paid",
            email="erika@example.com",
            name="Erika Mustermann",
            line1="Unter den Linden 1",
            city="Berlin",
            postal_code="10117",
            country="DE",
            presentment_currency="eur",
        )

    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    assert paid.shipping_details.name == "Erika Mustermann"
    assert paid.shipping_details.address.country == "DE"
    assert paid.customer_email == "erika@example.com"
    assert paid.total_details.amount_tax > 0
    assert paid.amount_total == paid.amount_subtotal + paid.total_details.amount_tax
    assert paid.presentment_details.presentment_currency == "eur"
    assert paid.presentment_details.presentment_amount > 0


async def test_the_order_id_is_on_the_payment_intent_and_the_subscription(
    stub: Stub, sandbox: Sandbox
) -> None:
    payment_order, subscription_order = new_order_id(), new_order_id()
    one_off = (await stub.CreateSession(cart_request(payment_order))).session
    recurring = (
        await stub.CreateSession(
            cart_request(
                subscription_order,
                mode=pb.Session.SUBSCRIPTION,
                line_items=[
                    Req.LineItem(
                        price_data=Req.PriceData(
                            unit_amount=900,
                            product_name="Coffee club",
                            recurring=Req.Recurring(interval=Req.Recurring.MONTH),
                        ),
                        quantity=1,
                    )
                ],
            )
        )
    ).session
    for session in (one_off, recurring):
        sandbox.pay(session.id)

    paid = await sandbox.client.v1.checkout.sessions.retrieve_async(
        one_off.id, {"expand": ["payment_intent"]}
    )
    subscribed = await sandbox.client.v1.checkout.sessions.retrieve_async(
        recurring.id, {"expand": ["subscription"]}
    )

    assert paid.payment_intent.metadata["order_id"] == payment_order  # type: ignore[union-attr]
    assert subscribed.subscription.metadata["order_id"] == subscription_order  # type: ignore[union-attr]
