"""The request → Stripe parameters plan: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.commands import CreateSessionCommand, LineItemRequest, Mode, PriceData, UiMode
from service.domain.create_plan import field_for_stripe_param, fingerprint, plan_create
from service.domain.errors import InvalidRequest

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def command(**overrides: object) -> CreateSessionCommand:
    fields: dict[str, object] = {
        "order_id": "order-1",
        "currency": "usd",
        "line_items": (
            LineItemRequest(quantity=2, price_data=PriceData(1500, "T-shirt")),
            LineItemRequest(quantity=1, price_id="price_123"),
        ),
        "success_url": "https://shop.example/done",
    }
    fields.update(overrides)
    return CreateSessionCommand(**fields)  # type: ignore[arg-type]


def refused_fields(cmd: CreateSessionCommand) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        plan_create(cmd, NOW)
    return [v.field for v in caught.value.violations]


def test_builds_stripe_parameters_with_the_order_everywhere_stripe_shows_it() -> None:
    plan = plan_create(command(metadata={"cart": "42"}), NOW)

    assert plan.stripe_params == {
        "mode": "payment",
        "ui_mode": "hosted_page",
        "client_reference_id": "order-1",
        "metadata": {"cart": "42", "order_id": "order-1"},
        "expires_at": int((NOW + timedelta(hours=24)).timestamp()),
        "expand": ["line_items"],
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1500,
                    "product_data": {"name": "T-shirt"},
                },
            },
            {"quantity": 1, "price": "price_123"},
        ],
        "currency": "usd",
        "success_url": "https://shop.example/done",
        "payment_intent_data": {"metadata": {"order_id": "order-1"}},
    }
    assert plan.expires_at == NOW + timedelta(hours=24)


@pytest.mark.parametrize(
    ("mode", "key"),
    [(Mode.SUBSCRIPTION, "subscription_data"), (Mode.SETUP, "setup_intent_data")],
)
def test_order_id_goes_on_the_object_each_mode_creates(mode: Mode, key: str) -> None:
    items = () if mode is Mode.SETUP else command().line_items
    plan = plan_create(command(mode=mode, line_items=items), NOW)
    assert plan.stripe_params[key] == {"metadata": {"order_id": "order-1"}}
    assert "payment_intent_data" not in plan.stripe_params


def test_fingerprint_ignores_request_id_and_time_but_not_the_cart() -> None:
    base = command()
    assert fingerprint(base) == fingerprint(command(request_id="r-1"))
    assert (
        plan_create(base, NOW).fingerprint
        == plan_create(base, NOW + timedelta(hours=1)).fingerprint
    )
    assert fingerprint(base) != fingerprint(command(currency="eur"))
    assert fingerprint(base) != fingerprint(command(metadata={"a": "b"}))
    assert fingerprint(base) != fingerprint(
        command(line_items=(LineItemRequest(quantity=3, price_id="price_123"),))
    )


def test_currency_is_normalized_to_lowercase() -> None:
    assert plan_create(command(currency="USD"), NOW).stripe_params["currency"] == "usd"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_id": " "}, "order_id"),
        ({"order_id": "x" * 201}, "order_id"),
        ({"request_id": "r" * 256}, "request_id"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"line_items": ()}, "line_items"),
        ({"line_items": (LineItemRequest(quantity=1),)}, "line_items[0].price_id"),
        ({"line_items": (LineItemRequest(quantity=0, price_id="p"),)}, "line_items[0].quantity"),
        (
            {"line_items": (LineItemRequest(quantity=1, price_data=PriceData(-1, "x")),)},
            "line_items[0].price_data.unit_amount",
        ),
        (
            {"line_items": (LineItemRequest(quantity=1, price_data=PriceData(1, " ")),)},
            "line_items[0].price_data.product_name",
        ),
        ({"line_items": (LineItemRequest(quantity=1, price_id="p"),) * 101}, "line_items"),
        ({"success_url": "/relative"}, "success_url"),
        ({"cancel_url": "ftp://shop.example"}, "cancel_url"),
        ({"return_url": "https://shop.example/r"}, "return_url"),
        ({"ui_mode": UiMode.EMBEDDED_PAGE}, "success_url"),
        ({"ui_mode": UiMode.EMBEDDED_PAGE, "success_url": ""}, "return_url"),
        ({"ui_mode": UiMode.ELEMENTS, "success_url": "", "return_url": "nope"}, "return_url"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"expire_time": NOW + timedelta(minutes=29)}, "expire_time"),
        ({"expire_time": NOW + timedelta(hours=24, seconds=1)}, "expire_time"),
        ({"metadata": {f"k{i}": "v" for i in range(50)}}, "metadata"),
        ({"metadata": {"order_id": "other"}}, "metadata[order_id]"),
        ({"metadata": {"a[b]": "v"}}, "metadata[a[b]]"),
        ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]"),
        ({"metadata": {"k": "v" * 501}}, "metadata[k]"),
        ({"mode": Mode.SETUP}, "line_items"),
        ({"mode": Mode.SETUP, "line_items": (), "currency": ""}, "currency"),
    ],
)
def test_refuses_what_stripe_would_refuse_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    assert field in refused_fields(command(**overrides))


def test_reports_every_bad_field_at_once() -> None:
    fields = refused_fields(command(order_id="", currency="x", success_url="nope"))
    assert fields == ["order_id", "currency", "success_url"]


def test_limits_at_their_edges_are_accepted() -> None:
    plan = plan_create(
        command(
            order_id="o" * 200,
            metadata={f"k{i}": "v" * 500 for i in range(49)},
            expire_time=NOW + timedelta(minutes=30),
        ),
        NOW,
    )
    assert len(plan.stripe_params["metadata"]) == 50
    plan_create(command(expire_time=NOW + timedelta(hours=24)), NOW)


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("line_items[1][price]", "line_items[1].price_id"),
        ("line_items[0][quantity]", "line_items[0].quantity"),
        ("line_items[2][price_data][unit_amount]", "line_items[2].price_data.unit_amount"),
        ("line_items[0][price_data][product_data][name]", "line_items[0].price_data.product_name"),
        ("expires_at", "expire_time"),
        ("client_reference_id", "order_id"),
        ("metadata[cart]", "metadata"),
        ("success_url", "success_url"),
        (None, ""),
    ],
)
def test_stripe_params_map_back_to_request_fields(param: str | None, field: str) -> None:
    assert field_for_stripe_param(param) == field
