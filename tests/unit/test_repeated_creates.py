"""A repeated create is mapped and checked once: the edge keeps the command of each request it
has seen, by the request's bytes (mapping.CreateCommands), and the domain the check of each
such command (create_plan.CheckedCreates)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from checkout.v1 import checkout_service_pb2 as api
from service.domain import create_plan
from service.domain.commands import CreateSessionCommand
from service.domain.create_plan import CheckedCreate, CheckedCreates, check_create
from service.domain.errors import InvalidRequest
from service.edge import mapping
from tests.unit.builders import command

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
Req = api.CreateSessionRequest


def request(metadata: dict[str, str], quantity: int = 2) -> Req:
    cart = Req(
        order_id="order-1",
        currency="usd",
        line_items=[
            Req.LineItem(
                price_data=Req.PriceData(unit_amount=1500, product_name="T-shirt"),
                quantity=quantity,
            )
        ],
        success_url="https://shop.example/done",
    )
    for key, value in metadata.items():
        cart.metadata[key] = value
    return cart


def test_the_same_request_maps_to_the_same_command_whatever_its_maps_order() -> None:
    commands = mapping.CreateCommands()

    first = commands.command(request({"cart": "c-77", "aisle": "4"}))
    again = commands.command(request({"aisle": "4", "cart": "c-77"}))

    assert again is first
    assert first == mapping.create_command(request({"cart": "c-77"} | {"aisle": "4"}))


def test_a_different_request_gets_its_own_command() -> None:
    commands = mapping.CreateCommands()
    two = commands.command(request({"cart": "c-77"}))

    three = commands.command(request({"cart": "c-77"}, quantity=3))
    other_cart = commands.command(request({"cart": "c-78"}))

    assert [li.quantity for li in three.line_items] == [3]
    assert other_cart.metadata == {"cart": "c-78"}
    assert commands.command(request({"cart": "c-77"})) is two


def test_a_request_larger_than_a_cart_is_mapped_each_time() -> None:
    commands = mapping.CreateCommands()
    large = request({f"key{n}": "v" * 400 for n in range(12)})
    assert large.ByteSize() > 4096

    first = commands.command(large)

    assert commands.command(large) is not first
    assert commands.command(large) == first


def test_a_command_is_checked_once_until_it_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[CreateSessionCommand] = []

    def counted(cmd: CreateSessionCommand, now: datetime) -> CheckedCreate:
        checked.append(cmd)
        return check_create(cmd, now)

    monkeypatch.setattr(create_plan, "check_create", counted)
    memo = CheckedCreates(2)
    a, equal_to_a, b = command("order-a"), command("order-a"), command("order-b")

    first = memo.check(a, NOW)
    assert memo.check(a, NOW) is first
    assert memo.check(equal_to_a, NOW) == first
    memo.check(b, NOW)  # three held at most two: `a`, the least recently asked, goes
    memo.check(a, NOW)

    assert checked == [a, equal_to_a, b, a]
    assert first == CheckedCreate("order-a", create_plan.fingerprint(a))


def test_an_invalid_command_is_refused_every_time() -> None:
    memo = CheckedCreates(2)
    invalid = command("   ")

    for _ in range(2):
        with pytest.raises(InvalidRequest) as refused:
            memo.check(invalid, NOW)
        assert [v.field for v in refused.value.violations] == ["order_id"]
