"""The demo catalog (`--demo-catalog`): fixed ids the README names, real objects behind them."""

from __future__ import annotations

import httpx
import stripe

from sandbox import demo_catalog
from sandbox.launcher import SandboxProcess
from sandbox.store import Store
from tests.support import run_sandbox, stop_sandbox

from .support import stats, stripe_client


async def test_the_demo_objects_exist_and_survive_a_reset(http_client: stripe.HTTPXClient) -> None:
    running = await run_sandbox("--port", "0", "--demo-catalog")
    try:
        client = stripe_client(running.url, http_client)
        for _ in range(2):
            summer = await client.v1.coupons.retrieve_async("SUMMER10")
            welcome = await client.v1.promotion_codes.retrieve_async("promo_demo_welcome5")
            sales = await client.v1.tax_rates.retrieve_async("txr_demo_us_sales_tax")
            vat = await client.v1.tax_rates.retrieve_async("txr_demo_de_vat")
            ground = await client.v1.shipping_rates.retrieve_async("shr_demo_ground")
            club = await client.v1.prices.retrieve_async("price_demo_coffee_club")
            ada = await client.v1.customers.retrieve_async("cus_demo_ada")

            assert summer.percent_off == 10
            assert (welcome.code, welcome.promotion.coupon) == ("WELCOME5", "FIVEOFF")
            assert (sales.percentage, sales.inclusive) == (8.25, False)
            assert (vat.percentage, vat.inclusive) == (19, True)
            assert ground.fixed_amount is not None
            assert (ground.fixed_amount.amount, ground.fixed_amount.currency) == (500, "usd")
            assert club.recurring is not None
            assert (club.unit_amount, club.recurring.interval) == (900, "month")
            assert ada.address is not None and ada.address.country == "US"
            await http_client.request_async("post", f"{running.url}/_sandbox/reset", {}, None)
    finally:
        await stop_sandbox(running)


async def test_without_the_option_there_is_no_demo_catalog(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    try:
        await client.v1.coupons.retrieve_async("SUMMER10")
    except stripe.InvalidRequestError as exc:
        assert exc.http_status == 404
    else:
        raise AssertionError("SUMMER10 exists without --demo-catalog")


async def test_the_control_api_adds_it_to_a_running_sandbox_until_the_next_reset(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    (await raw.post("/_sandbox/demo_catalog")).raise_for_status()
    seeded = (await stats(raw))["objects"]
    summer = await client.v1.coupons.retrieve_async("SUMMER10")
    ada = await client.v1.customers.retrieve_async("cus_demo_ada")
    assert (summer.percent_off, ada.name) == (10, "Ada Lovelace")

    (await raw.post("/_sandbox/demo_catalog")).raise_for_status()
    assert (await stats(raw))["objects"] == seeded

    (await raw.post("/_sandbox/reset")).raise_for_status()
    assert (await stats(raw))["objects"] == {}


def test_seeding_again_changes_nothing() -> None:
    store = Store(None)
    demo_catalog.seed(store, 1_790_000_000)
    first = {kind: dict(objects) for kind, objects in store.collections.items()}

    demo_catalog.seed(store, 1_790_000_999)

    assert {kind: dict(objects) for kind, objects in store.collections.items()} == first
