"""Products and Prices through stripe-python: typed objects, lists, and Stripe's refusals."""

import pytest
import stripe

from sandbox.launcher import SandboxProcess


async def test_products_and_prices_come_back_typed(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    product = await client.v1.products.create_async(
        {
            "name": "T-shirt",
            "description": "Cotton",
            "images": ["https://shop.example/tee.png"],
            "metadata": {"sku": "TEE-1"},
            "tax_code": "txcd_99999999",
        }
    )
    assert isinstance(product, stripe.Product)
    assert product.id.startswith("prod_") and product.active and not product.livemode
    assert (product.name, product.description, product.images) == (
        "T-shirt",
        "Cotton",
        ["https://shop.example/tee.png"],
    )
    assert product.metadata["sku"] == "TEE-1"

    price = await client.v1.prices.create_async(
        {
            "currency": "USD",
            "unit_amount": 1500,
            "product": product.id,
            "nickname": "standard",
            "lookup_key": "tee-standard",
            "tax_behavior": "exclusive",
        }
    )
    assert isinstance(price, stripe.Price)
    assert price.id.startswith("price_")
    assert (price.type, price.currency, price.unit_amount, price.product) == (
        "one_time",
        "usd",
        1500,
        product.id,
    )
    assert price.recurring is None and price.tax_behavior == "exclusive"

    fetched = await client.v1.prices.retrieve_async(price.id, {"expand": ["product"]})
    assert isinstance(fetched.product, stripe.Product) and fetched.product.name == "T-shirt"
    assert (await client.v1.products.retrieve_async(product.id)).name == "T-shirt"


async def test_recurring_prices_with_inline_products(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    price = await client.v1.prices.create_async(
        {
            "currency": "eur",
            "unit_amount": 900,
            "product_data": {"name": "Plan"},
            "recurring": {"interval": "month", "interval_count": 3},
        }
    )
    assert price.type == "recurring"
    assert price.recurring is not None
    assert (price.recurring.interval, price.recurring.interval_count) == ("month", 3)
    assert price.recurring.usage_type == "licensed"
    product = await client.v1.products.retrieve_async(str(price.product))
    assert product.name == "Plan"


async def test_lists_are_newest_first_and_filter(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    product = await client.v1.products.create_async({"name": "A"})
    one = await client.v1.prices.create_async(
        {"currency": "usd", "unit_amount": 100, "product": product.id}
    )
    two = await client.v1.prices.create_async(
        {
            "currency": "usd",
            "unit_amount": 200,
            "product": product.id,
            "recurring": {"interval": "year"},
        }
    )
    listed = await client.v1.prices.list_async()
    assert [p.id for p in listed.data] == [two.id, one.id]
    recurring = await client.v1.prices.list_async({"type": "recurring"})
    assert [p.id for p in recurring.data] == [two.id]
    products = await client.v1.products.list_async({"limit": 1})
    assert [p.id for p in products.data] == [product.id] and not products.has_more


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"currency": "usd", "unit_amount": 1}, "product", "parameter_missing"),
        ({"currency": "usd", "product_data": {"name": "x"}}, "unit_amount", "parameter_missing"),
        ({"unit_amount": 1, "product_data": {"name": "x"}}, "currency", "parameter_missing"),
        (
            {"currency": "usd", "unit_amount": 1, "product": "prod_nope"},
            "product",
            "resource_missing",
        ),
        (
            {"currency": "usd", "unit_amount": 1, "product": "p", "product_data": {"name": "x"}},
            "product",
            "parameters_exclusive",
        ),
        (
            {"currency": "usd", "unit_amount": -1, "product_data": {"name": "x"}},
            "unit_amount",
            "parameter_invalid_integer",
        ),
        (
            {
                "currency": "usd",
                "unit_amount": 1,
                "product_data": {"name": "x"},
                "recurring": {"interval": "fortnight"},
            },
            "recurring[interval]",
            None,
        ),
        (
            {
                "currency": "usd",
                "unit_amount": 1,
                "product_data": {"name": "x"},
                "recurring": {"interval": "month", "interval_count": 37},
            },
            "recurring[interval_count]",
            None,
        ),
        (
            {"currency": "usd", "unit_amount": 1, "product_data": {"name": "x"}, "x": 1},
            "x",
            "parameter_unknown",
        ),
    ],
)
async def test_price_refusals(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    params: dict[str, object],
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.prices.create_async(params)  # type: ignore[arg-type]
    assert (caught.value.param, caught.value.code, caught.value.http_status) == (param, code, 400)


async def test_unknown_ids_are_404_on_the_path(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.prices.retrieve_async("price_nope")
    assert (caught.value.http_status, caught.value.code, caught.value.param) == (
        404,
        "resource_missing",
        "price",
    )
    with pytest.raises(stripe.InvalidRequestError) as missing_product:
        await client.v1.products.retrieve_async("prod_nope")
    assert missing_product.value.http_status == 404


async def test_a_product_name_is_required(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.products.create_async({"description": "no name"})  # type: ignore[typeddict-item]
    assert (caught.value.param, caught.value.code) == ("name", "parameter_missing")
