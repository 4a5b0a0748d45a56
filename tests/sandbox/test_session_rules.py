"""Every refusal of `POST /v1/checkout/sessions` that Stripe makes and the sandbox models,
asserted on the `param` and `code` stripe-python exposes
(https://docs.stripe.com/api/checkout/sessions/create, https://docs.stripe.com/error-codes)."""

import time
from typing import Any

import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from sandbox.launcher import SandboxProcess

from .support import line_item, session_params

RETURN_URL = "https://shop.example/return"
# Taken when the module is collected, which may be minutes before a case runs: the cases below
# stay on their side of Stripe's bounds for an hour.
NOW = int(time.time())


def recurring_item() -> dict[str, Any]:
    item = line_item()
    item["price_data"]["recurring"] = {"interval": "month"}
    return item


def many(count: int, item: dict[str, Any]) -> list[dict[str, Any]]:
    return [item] * count


CASES: list[tuple[str, SessionCreateParams, str, str | None]] = [
    ("mode is required", session_params(mode=None), "mode", "parameter_missing"),
    ("unknown mode", session_params(mode="donation"), "mode", None),
    (
        "payment_method_types is gone since endive",
        session_params(payment_method_types=["card"]),
        "payment_method_types",
        "parameter_unknown",
    ),
    (
        "unknown nested parameter",
        session_params({**line_item(), "colour": "red"}),
        "line_items[0][colour]",
        "parameter_unknown",
    ),
    ("old ui_mode hosted", session_params(ui_mode="hosted"), "ui_mode", None),
    ("old ui_mode embedded", session_params(ui_mode="embedded"), "ui_mode", None),
    ("old ui_mode custom", session_params(ui_mode="custom"), "ui_mode", None),
    (
        "line_items required in payment mode",
        session_params(line_items=[]),
        "line_items",
        "parameter_missing",
    ),
    (
        "at most 100 line items in payment mode",
        session_params(*many(101, line_item())),
        "line_items",
        None,
    ),
    (
        "at most 20 recurring line items in subscription mode",
        session_params(*many(21, recurring_item()), mode="subscription"),
        "line_items",
        None,
    ),
    (
        "at most 20 one-time line items in subscription mode",
        session_params(recurring_item(), *many(21, line_item()), mode="subscription"),
        "line_items",
        None,
    ),
    (
        "price or price_data",
        session_params({"quantity": 1}),
        "line_items[0]",
        "parameter_missing",
    ),
    (
        "not both price and price_data",
        session_params({**line_item(), "price": "price_x"}),
        "line_items[0]",
        "parameters_exclusive",
    ),
    (
        "quantity is required",
        session_params({"price_data": line_item()["price_data"]}),
        "line_items[0][quantity]",
        "parameter_missing",
    ),
    (
        "quantity at least 1",
        session_params(line_item(quantity=0)),
        "line_items[0][quantity]",
        "parameter_invalid_integer",
    ),
    (
        "quantity is an integer",
        session_params({**line_item(), "quantity": "two"}),
        "line_items[0][quantity]",
        "parameter_invalid_integer",
    ),
    (
        "unknown price",
        session_params({"price": "price_nope", "quantity": 1}),
        "line_items[0][price]",
        "resource_missing",
    ),
    (
        "price_data needs a product",
        session_params({"price_data": {"currency": "usd", "unit_amount": 1}, "quantity": 1}),
        "line_items[0][price_data][product_data]",
        "parameter_missing",
    ),
    (
        "price_data needs an amount",
        session_params(
            {"price_data": {"currency": "usd", "product_data": {"name": "x"}}, "quantity": 1}
        ),
        "line_items[0][price_data][unit_amount]",
        "parameter_missing",
    ),
    (
        "product names are required",
        session_params(
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1,
                    "product_data": {"description": "x"},
                },
                "quantity": 1,
            }
        ),
        "line_items[0][price_data][product_data][name]",
        "parameter_missing",
    ),
    (
        "currencies must agree",
        session_params(line_item(), line_item(currency="eur")),
        "line_items[1]",
        None,
    ),
    (
        "unsupported currency",
        session_params(line_item(currency="xyz")),
        "line_items[0][price_data][currency]",
        None,
    ),
    (
        "recurring price_data in payment mode",
        session_params(recurring_item()),
        "line_items[0]",
        None,
    ),
    (
        "subscription mode needs a recurring price",
        session_params(mode="subscription"),
        "line_items",
        None,
    ),
    (
        "setup mode takes no line items",
        session_params(mode="setup", currency="usd"),
        "line_items",
        None,
    ),
    (
        "setup mode needs a currency",
        session_params(mode="setup", line_items=None),
        "currency",
        "parameter_missing",
    ),
    (
        "no success_url with embedded_page",
        session_params(ui_mode="embedded_page", return_url=RETURN_URL),
        "success_url",
        None,
    ),
    (
        "no cancel_url with elements",
        session_params(success_url=None, cancel_url="https://shop.example/c", ui_mode="elements"),
        "cancel_url",
        None,
    ),
    (
        "no return_url with hosted_page",
        session_params(return_url=RETURN_URL),
        "return_url",
        None,
    ),
    (
        "embedded_page needs a return_url",
        session_params(success_url=None, ui_mode="embedded_page"),
        "return_url",
        "parameter_missing",
    ),
    (
        "success_url must be a URL",
        session_params(success_url="not a url"),
        "success_url",
        "url_invalid",
    ),
    (
        "cancel_url must be http(s)",
        session_params(cancel_url="ftp://shop.example/c"),
        "cancel_url",
        "url_invalid",
    ),
    (
        "return_url must be absolute",
        session_params(success_url=None, ui_mode="elements", return_url="/relative"),
        "return_url",
        "url_invalid",
    ),
    (
        "expires_at at least 30 minutes out",
        session_params(expires_at=NOW + 29 * 60),
        "expires_at",
        None,
    ),
    (
        "expires_at at most 24 hours out",
        session_params(expires_at=NOW + 25 * 60 * 60),
        "expires_at",
        None,
    ),
    (
        "at most 50 metadata keys",
        session_params(metadata={f"k{n}": "v" for n in range(51)}),
        "metadata",
        None,
    ),
    (
        "metadata keys at most 40 characters",
        session_params(metadata={"k" * 41: "v"}),
        f"metadata[{'k' * 41}]",
        None,
    ),
    (
        "metadata values at most 500 characters",
        session_params(metadata={"k": "v" * 501}),
        "metadata[k]",
        None,
    ),
    (
        "client_reference_id at most 200 characters",
        session_params(client_reference_id="x" * 201),
        "client_reference_id",
        None,
    ),
    (
        "customer and customer_email are exclusive",
        session_params(customer="cus_x", customer_email="a@example.com"),
        "customer",
        "parameters_exclusive",
    ),
    (
        "customer_email must be an email address",
        session_params(customer_email="ada at example"),
        "customer_email",
        "email_invalid",
    ),
    (
        "customer_update only with customer",
        session_params(customer_update={"address": "auto"}),
        "customer_update",
        None,
    ),
    (
        "customer_creation not in subscription mode",
        session_params(recurring_item(), mode="subscription", customer_creation="always"),
        "customer_creation",
        None,
    ),
    (
        "subscription_data only in subscription mode",
        session_params(subscription_data={"trial_period_days": 3}),
        "subscription_data",
        None,
    ),
    (
        "payment_method_collection only in subscription mode",
        session_params(payment_method_collection="if_required"),
        "payment_method_collection",
        None,
    ),
    (
        "payment_intent_data only in payment mode",
        session_params(
            recurring_item(), mode="subscription", payment_intent_data={"description": "x"}
        ),
        "payment_intent_data",
        None,
    ),
    (
        "discounts and allow_promotion_codes are exclusive",
        session_params(discounts=[{"coupon": "SAVE10"}], allow_promotion_codes=True),
        "discounts",
        "parameters_exclusive",
    ),
    (
        "at most one discount",
        session_params(discounts=[{"coupon": "A"}, {"coupon": "B"}]),
        "discounts",
        None,
    ),
    (
        "unknown coupon",
        session_params(discounts=[{"coupon": "NOPE"}]),
        "discounts[0][coupon]",
        "resource_missing",
    ),
    (
        "unknown promotion code",
        session_params(discounts=[{"promotion_code": "promo_nope"}]),
        "discounts[0][promotion_code]",
        "resource_missing",
    ),
    (
        "unknown customer",
        session_params(customer="cus_nope"),
        "customer",
        "resource_missing",
    ),
    (
        "unknown tax rate",
        session_params({**line_item(), "tax_rates": ["txr_nope"]}),
        "line_items[0][tax_rates][0]",
        "resource_missing",
    ),
    (
        "at most 5 shipping options",
        session_params(shipping_options=[{"shipping_rate": "shr_x"}] * 6),
        "shipping_options",
        None,
    ),
    (
        "shipping_rate or shipping_rate_data",
        session_params(
            shipping_options=[
                {
                    "shipping_rate": "shr_x",
                    "shipping_rate_data": {
                        "display_name": "Post",
                        "fixed_amount": {"amount": 500, "currency": "usd"},
                    },
                }
            ]
        ),
        "shipping_options[0]",
        "parameters_exclusive",
    ),
    (
        "unknown shipping rate",
        session_params(shipping_options=[{"shipping_rate": "shr_nope"}]),
        "shipping_options[0][shipping_rate]",
        "resource_missing",
    ),
    (
        "adjustable quantity bounds the quantity",
        session_params(
            {**line_item(quantity=5), "adjustable_quantity": {"enabled": True, "maximum": 3}}
        ),
        "line_items[0][adjustable_quantity]",
        None,
    ),
    (
        "empty strings cannot unset a required value",
        session_params(client_reference_id=""),
        "client_reference_id",
        "parameter_invalid_empty",
    ),
    (
        "booleans are true or false",
        session_params(phone_number_collection={"enabled": "yes"}),
        "phone_number_collection[enabled]",
        None,
    ),
    (
        "parameters Stripe has but the sandbox does not model",
        session_params(optional_items=[{"price": "price_x", "quantity": 1}]),
        "optional_items",
        "parameter_unknown",
    ),
]


@pytest.mark.parametrize(
    ("params", "param", "code"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
async def test_refusal(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    params: SessionCreateParams,
    param: str,
    code: str | None,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)
    error = caught.value
    assert (error.param, error.code, error.http_status) == (param, code, 400), error.user_message
    assert error.request_id is not None and error.request_id.startswith("req_")


async def test_the_documented_messages(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as recurring:
        await client.v1.checkout.sessions.create_async(session_params(recurring_item()))
    assert recurring.value.user_message == (
        "You specified `payment` mode but passed a recurring price. Either switch to "
        "`subscription` mode or use only one-time prices."
    )
    with pytest.raises(stripe.InvalidRequestError) as exclusive:
        await client.v1.checkout.sessions.create_async(
            session_params(discounts=[{"coupon": "X"}], allow_promotion_codes=True)
        )
    assert exclusive.value.user_message == (
        "You may only specify one of these parameters: allow_promotion_codes, discounts."
    )


async def test_a_recurring_price_by_id_in_payment_mode(
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
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(
            session_params({"price": price.id, "quantity": 1})
        )
    assert caught.value.param == "line_items[0]"
    assert "passed a recurring price" in caught.value.user_message


async def test_limits_that_are_allowed(
    sandbox: SandboxProcess, client: stripe.StripeClient
) -> None:
    now = int(time.time())
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            *many(100, line_item(1)),
            expires_at=now + 31 * 60,
            metadata={f"key{n:02}": "v" * 500 for n in range(50)},
            client_reference_id="x" * 200,
        )
    )
    assert session.expires_at == now + 31 * 60
    assert session.amount_total == 100
    metadata = session.metadata
    assert metadata is not None and len(metadata.to_dict()) == 50
