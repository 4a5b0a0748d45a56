"""Stripe as it really is (issue 10), from the service's side: each behaviour the sandbox now
shares with Stripe, and what the service does about it, through gRPC (docs/architecture.md,
"The Stripe sandbox"; the sandbox's own tests are in tests/sandbox)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
import stripe
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.app import Application, start
from service.config import Settings
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH
from tests.e2e.helpers import (
    Sandbox,
    Stub,
    cart_request,
    detail,
    new_order_id,
    reason,
    stored,
    until_stored,
    violated_fields,
)
from tests.e2e.processes import ServiceProcess, service_process
from tests.support import eventually

Req = api.CreateSessionRequest
RETURN_URL = "https://shop.example/return?session={CHECKOUT_SESSION_ID}"


def line(amount: int, name: str, quantity: int = 1, **price: Any) -> Req.LineItem:
    return Req.LineItem(
        price_data=Req.PriceData(unit_amount=amount, product_name=name, **price),
        quantity=quantity,
    )


async def refusal(stub: Stub, request: Req) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(request)
    return caught.value


async def rows_for(db: asyncpg.Pool, order_id: str) -> int:
    count = await db.fetchval(
        "SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id
    )
    return int(count)


# 1. Amount limits -----------------------------------------------------------------------------


async def test_a_total_only_stripe_knows_is_refused_by_stripe_on_line_items(
    stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    # The service cannot know a coupon's worth, nor KRW's minimum (0.50 USD at the day's rate):
    # Stripe refuses the total without naming a param, and the refusal lands on line_items.
    almost_free = await sandbox.client.v1.coupons.create_async(
        {"amount_off": 3970, "currency": "usd", "duration": "once"}
    )
    discounted = cart_request(new_order_id(), discounts=[Req.Discount(coupon=almost_free.id)])
    won = cart_request(new_order_id(), currency="krw", line_items=[line(600, "Pen")])

    for request in (discounted, won):
        error = await refusal(stub, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error) == "STRIPE_REFUSED"
        assert violated_fields(error) == ["line_items"]
        assert await rows_for(db, request.order_id) == 0  # the order is free again


async def test_zero_and_three_decimal_currencies_are_charged_as_written(stub: Stub) -> None:
    cases = [("jpy", 500), ("krw", 1000), ("kwd", 1010), ("bhd", 250), ("isk", 20000)]
    for currency, amount in cases:
        session = (
            await stub.CreateSession(
                cart_request(new_order_id(), currency=currency, line_items=[line(amount, "Tea")])
            )
        ).session
        assert (session.currency, session.amount_total) == (currency, amount)


# 2. Recurring intervals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "count"),
    [
        (Req.Recurring.YEAR, 3),
        (Req.Recurring.MONTH, 36),
        (Req.Recurring.WEEK, 156),
        (Req.Recurring.DAY, 1095),
    ],
)
async def test_a_price_may_bill_every_three_years(
    stub: Stub, sandbox: Sandbox, interval: Req.Recurring.Interval.ValueType, count: int
) -> None:
    session = (
        await stub.CreateSession(
            cart_request(
                new_order_id(),
                mode=pb.Session.SUBSCRIPTION,
                line_items=[
                    line(
                        9000,
                        "Club",
                        recurring=Req.Recurring(interval=interval, interval_count=count),
                    )
                ],
            )
        )
    ).session
    items = await sandbox.client.v1.checkout.sessions.line_items.list_async(session.id)
    [item] = items.data
    assert item.price is not None and item.price.recurring is not None
    assert item.price.recurring.interval_count == count


# 3. Trials ------------------------------------------------------------------------------------


async def test_a_trial_completes_with_nothing_to_pay_and_is_final(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    monthly = Req.Recurring(interval=Req.Recurring.MONTH)
    created = (
        await stub.CreateSession(
            cart_request(
                order_id,
                mode=pb.Session.SUBSCRIPTION,
                line_items=[line(900, "Coffee club", recurring=monthly)],
                subscription_data=Req.SubscriptionData(trial_period_days=14),
            )
        )
    ).session
    # Nothing is due today: the subscription bills after the trial.
    assert (created.amount_total, created.line_items[0].amount_total) == (0, 0)

    updates: list[pb.Session] = []

    async def watch() -> None:
        async for update in stub.WatchSession(
            api.WatchSessionRequest(order_id=order_id), timeout=30
        ):
            updates.append(update.session)

    watcher = asyncio.create_task(watch())

    async def watching() -> bool:
        return bool(updates)

    await eventually(watching)
    sandbox.pay(created.id)
    # The stream ends by itself once the session is final, well before its deadline.
    await asyncio.wait_for(watcher, timeout=15)

    last = updates[-1]
    assert (last.status, last.payment_status) == (
        pb.Session.COMPLETE,
        pb.Session.NO_PAYMENT_REQUIRED,
    )
    assert last.amount_total == 0
    assert last.subscription_id.startswith("sub_")
    # Fulfilled: the order is not given another session.
    again = await refusal(stub, cart_request(order_id))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION


# 4. Adaptive Pricing --------------------------------------------------------------------------


async def test_presentment_details_appear_once_stripe_reports_them(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    created = (
        await stub.CreateSession(
            cart_request(order_id, adaptive_pricing=Req.AdaptivePricing(enabled=True))
        )
    ).session
    refreshed = (
        await stub.GetSession(api.GetSessionRequest(order_id=order_id, refresh=True))
    ).session
    assert not created.HasField("presentment_details")
    assert not refreshed.HasField("presentment_details")  # chosen on the page, not at creation

    sandbox.pay(created.id, presentment_currency="eur", country="DE")
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    assert paid.presentment_details.presentment_currency == "eur"
    assert paid.presentment_details.presentment_amount > 0
    assert (paid.currency, paid.amount_total) == ("usd", 3990)  # the order's own currency


# 6. Tax settings ------------------------------------------------------------------------------


async def test_default_tax_behavior_lets_automatic_tax_work_on_inline_prices(
    stub: Stub, sandbox: Sandbox
) -> None:
    # The package's service runs with DEFAULT_TAX_BEHAVIOR=exclusive (conftest.py); the
    # account has no default of its own, as a new Stripe account has none.
    settings = sandbox.control("GET", "/_sandbox/tax/settings")
    assert settings["defaults"]["tax_behavior"] is None
    customer = await sandbox.client.v1.customers.create_async(
        {"address": {"country": "US", "postal_code": "94103", "line1": "1 Main St"}}
    )

    with sandbox.registered_for_tax("US"):
        session = (
            await stub.CreateSession(
                cart_request(
                    new_order_id(),
                    customer_id=customer.id,
                    automatic_tax=Req.AutomaticTax(enabled=True),
                )
            )
        ).session

    assert session.total_details.amount_tax > 0
    # Exclusive: the tax is added to the prices.
    assert session.amount_total == session.amount_subtotal + session.total_details.amount_tax
    items = await sandbox.client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [i.price.tax_behavior for i in items.data if i.price] == ["exclusive", "exclusive"]


@pytest_asyncio.fixture
async def without_default_tax_behavior(environ: dict[str, str]) -> AsyncIterator[Stub]:
    """A server of the same service without DEFAULT_TAX_BEHAVIOR."""
    unset = {k: v for k, v in environ.items() if k != "DEFAULT_TAX_BEHAVIOR"}
    application: Application = await start(Settings.from_environ(unset))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{application.grpc_port}") as channel:
            yield api_grpc.CheckoutServiceStub(channel)
    finally:
        await application.stop()


async def test_without_a_default_tax_behavior_stripes_refusal_names_the_price(
    without_default_tax_behavior: Stub, sandbox: Sandbox
) -> None:
    stub = without_default_tax_behavior
    assert sandbox.control("GET", "/_sandbox/tax/settings")["defaults"]["tax_behavior"] is None
    request = cart_request(
        new_order_id(),
        line_items=[
            line(1500, "T-shirt", tax_behavior=Req.PriceData.EXCLUSIVE),
            line(990, "Mug"),
        ],
        automatic_tax=Req.AutomaticTax(enabled=True),
    )

    error = await refusal(stub, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "STRIPE_REFUSED"
    assert violated_fields(error) == ["line_items[1].price_data.tax_behavior"]


# 7. What the customer does on the page --------------------------------------------------------


async def test_what_the_customer_chose_on_the_page_is_what_the_ledger_shows(
    stub: Stub, sandbox: Sandbox
) -> None:
    five_off = await sandbox.client.v1.coupons.create_async(
        {"amount_off": 500, "currency": "usd", "duration": "once"}
    )
    code = f"WELCOME{uuid.uuid4().hex[:6].upper()}"
    promo = await sandbox.client.v1.promotion_codes.create_async(
        {"promotion": {"type": "coupon", "coupon": five_off.id}, "code": code}
    )
    order_id = new_order_id()
    created = (
        await stub.CreateSession(
            cart_request(
                order_id,
                line_items=[
                    Req.LineItem(
                        price_data=Req.PriceData(unit_amount=1500, product_name="T-shirt"),
                        quantity=1,
                        adjustable_quantity=Req.AdjustableQuantity(enabled=True, maximum=5),
                    ),
                    line(990, "Mug"),
                ],
                allow_promotion_codes=True,
                shipping_address_collection=Req.ShippingAddressCollection(allowed_countries=["US"]),
                shipping_options=[
                    Req.ShippingOption(
                        shipping_rate_data=Req.ShippingRateData(display_name="Standard", amount=500)
                    ),
                    Req.ShippingOption(
                        shipping_rate_data=Req.ShippingRateData(display_name="Express", amount=1500)
                    ),
                ],
            )
        )
    ).session
    assert created.amount_total == 1500 + 990 + 500
    at_stripe = await sandbox.client.v1.checkout.sessions.retrieve_async(created.id)
    express = at_stripe.shipping_options[1].shipping_rate
    assert isinstance(express, str)

    sandbox.pay(
        created.id,
        promotion_code=code.lower(),
        line_items=[{"quantity": 3}],
        shipping_rate=express,
        country="US",
    )
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    # 3 x 15.00 + 9.90 - 5.00 + 15.00 express shipping.
    assert paid.amount_subtotal == 5490
    assert paid.total_details.amount_discount == 500
    assert paid.total_details.amount_shipping == 1500
    assert paid.amount_total == 5490 - 500 + 1500
    assert (paid.shipping_cost.shipping_rate_id, paid.shipping_cost.amount_total) == (
        express,
        1500,
    )
    assert list(paid.discount_ids) == [promo.id]
    assert [(li.quantity, li.amount_subtotal) for li in paid.line_items] == [(3, 4500), (1, 990)]
    assert sum(li.amount_discount for li in paid.line_items) == 500


# 8. Every line item ---------------------------------------------------------------------------


async def test_every_line_item_is_kept(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    names = [f"Item {n:02}" for n in range(30)]
    created = (
        await stub.CreateSession(
            cart_request(order_id, line_items=[line(100 + n, name) for n, name in enumerate(names)])
        )
    ).session
    read = await stored(stub, order_id)
    sandbox.pay(created.id)
    paid = await until_stored(stub, order_id, status=pb.Session.COMPLETE)

    # Stripe's expanded session shows the first 10; the service pages through the rest, when
    # it creates the session and whenever it re-reads it (here after the webhook).
    for session in (created, read, paid):
        assert [li.description for li in session.line_items] == names
        assert sum(li.amount_total for li in session.line_items) == session.amount_total


# 9. Webhook secret rotation -------------------------------------------------------------------


async def new_endpoint(sandbox: Sandbox) -> stripe.WebhookEndpoint:
    events: list[Any] = sorted(HANDLED_EVENTS)  # stripe-python types them as literals
    return await sandbox.client.v1.webhook_endpoints.create_async(
        {"url": f"http://127.0.0.1:9{WEBHOOK_PATH}", "enabled_events": events}
    )


async def point_at(sandbox: Sandbox, endpoint_id: str, process: ServiceProcess) -> None:
    await sandbox.client.v1.webhook_endpoints.update_async(
        endpoint_id, {"url": f"http://127.0.0.1:{process.http_port}{WEBHOOK_PATH}"}
    )


async def deliveries_to(
    sandbox: Sandbox, endpoint_id: str, session_id: str
) -> list[dict[str, Any]]:
    """The delivery attempts to the endpoint of the events about the session (other tests'
    sessions have events of their own, which the endpoint also receives)."""
    events = await sandbox.client.v1.events.list_async({"limit": 100})
    about = {e.id for e in events.data if e.data.object.to_dict().get("id") == session_id}
    answer = sandbox.control("GET", "/_sandbox/webhook_deliveries")
    return [d for d in answer["deliveries"] if d["endpoint"] == endpoint_id and d["event"] in about]


async def test_during_a_secret_rotation_the_payment_is_applied_with_both_secrets_configured(
    environ: dict[str, str],
    sandbox: Sandbox,
    app: Application,
    webhook_endpoint: stripe.WebhookEndpoint,
) -> None:
    del app  # the package's server; its endpoint is switched off so that only ours delivers
    endpoint = await new_endpoint(sandbox)
    old = endpoint.secret
    rolled = sandbox.control(
        "POST", f"/_sandbox/webhook_endpoints/{endpoint.id}/roll_secret", {"expires_in": 3600}
    )
    new = rolled["secret"]
    assert new != old and rolled["previous_secret_expires_at"]
    rotating = {
        **environ,
        "STRIPE_WEBHOOK_SECRET": f"{new},{old}",
        "SWEEP_INTERVAL_SECONDS": "3600",  # the webhook, not the sweep, brings the payment
    }
    await sandbox.client.v1.webhook_endpoints.update_async(webhook_endpoint.id, {"disabled": True})
    try:
        async with service_process(rotating) as process:
            drain = asyncio.create_task(process.drain_output())
            await point_at(sandbox, endpoint.id, process)
            order_id = new_order_id()
            created = (await process.stub.CreateSession(cart_request(order_id))).session
            sandbox.pay(created.id)
            paid = await until_stored(process.stub, order_id, status=pb.Session.COMPLETE)

            # The payment's own event, which may come first, stores the session's completion
            # too: the service keeps serving until the session's event has been answered.
            async def answered() -> bool:
                delivered = await deliveries_to(sandbox, endpoint.id, created.id)
                return any(d["type"] == "checkout.session.completed" for d in delivered) and all(
                    d["status"] is not None for d in delivered
                )

            await eventually(answered)
            drain.cancel()
    finally:
        await sandbox.client.v1.webhook_endpoints.update_async(
            webhook_endpoint.id, {"disabled": False}
        )
        await sandbox.client.v1.webhook_endpoints.delete_async(endpoint.id)

    assert paid.payment_status == pb.Session.PAID
    delivered = await deliveries_to(sandbox, endpoint.id, created.id)
    assert "checkout.session.completed" in {d["type"] for d in delivered}
    assert {d["status"] for d in delivered} == {200}


async def test_deliveries_signed_with_either_configured_secret_are_accepted(
    environ: dict[str, str], sandbox: Sandbox, app: Application
) -> None:
    del app  # the package's server gets the events too; it shares the ledger
    first, second = await new_endpoint(sandbox), await new_endpoint(sandbox)
    both = {**environ, "STRIPE_WEBHOOK_SECRET": f"{first.secret}, {second.secret}"}
    try:
        async with service_process(both) as process:
            drain = asyncio.create_task(process.drain_output())
            for endpoint in (first, second):
                await point_at(sandbox, endpoint.id, process)
            order_id = new_order_id()
            created = (await process.stub.CreateSession(cart_request(order_id))).session
            sandbox.pay(created.id)

            async def both_delivered() -> bool:
                for endpoint in (first, second):
                    attempts = await deliveries_to(sandbox, endpoint.id, created.id)
                    if not any(d["type"] == "checkout.session.completed" for d in attempts):
                        return False
                return True

            await eventually(both_delivered)
            drain.cancel()
    finally:
        for endpoint in (first, second):
            await sandbox.client.v1.webhook_endpoints.delete_async(endpoint.id)

    # Each endpoint signs with its own secret only; the service verified both.
    for endpoint in (first, second):
        statuses = {d["status"] for d in await deliveries_to(sandbox, endpoint.id, created.id)}
        assert statuses == {200}, endpoint.id


# 10. Keys -------------------------------------------------------------------------------------


async def test_a_restricted_key_without_a_permission_is_a_configuration_error(
    environ: dict[str, str], sandbox: Sandbox
) -> None:
    key = f"rk_test_51{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    everything_but_creating_sessions = [
        "rak_checkout_session_read",
        "rak_event_read",
        "rak_customer_read",
        "rak_price_read",
    ]
    sandbox.control(
        "POST",
        "/_sandbox/restricted_keys",
        {"key": key, "permissions": everything_but_creating_sessions},
    )
    restricted = {**environ, "STRIPE_API_KEY": key, "SWEEP_INTERVAL_SECONDS": "3600"}

    async with service_process(restricted) as process:
        error = await refusal(process.stub, cart_request(new_order_id()))
        process.process.terminate()
        await process.drain_output()

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(error) == "STRIPE_MISCONFIGURED"
    assert "rak_checkout_session_write" in (error.details() or "")
    assert detail(error, error_details_pb2.RetryInfo).retry_delay.seconds >= 1
    # Neither the key nor Stripe's masked form of it reaches the caller or the log.
    assert key not in str(error) and "rk_test_" not in str(error)
    assert not [line for line in process.lines if key in str(line) or "rk_test_" in str(line)]
    refused = [line for line in process.lines if line.get("event") == "stripe refused the api key"]
    assert refused and str(refused[0]["request_log_url"]).startswith(
        "https://dashboard.stripe.com/"
    )
