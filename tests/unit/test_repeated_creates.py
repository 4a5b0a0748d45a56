"""A repeated create is read and checked once: the use case keeps, by the request's bytes, the
command of each request it has seen and its check (seen_requests.SeenRequests), and the edge
makes equal requests equal bytes (mapping.request_bytes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkout.v1 import checkout_service_pb2 as api
from service.domain import create_plan, seen_requests
from service.domain.commands import CreateSessionCommand
from service.domain.create_plan import CheckedCreate, check_create
from service.domain.errors import InvalidRequest
from service.domain.seen_requests import SeenRequests
from service.edge import mapping

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
Req = api.CreateSessionRequest


def request(metadata: dict[str, str], quantity: int = 2, order_id: str = "order-1") -> Req:
    cart = Req(
        order_id=order_id,
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


def seen(memo: SeenRequests, cart: Req, now: datetime = NOW) -> CreateSessionCommand:
    cmd, _ = memo.check(mapping.request_bytes(cart), mapping.read_create, now)
    return cmd


def test_the_same_request_maps_to_the_same_command_whatever_its_maps_order() -> None:
    memo = SeenRequests()

    first = seen(memo, request({"cart": "c-77", "aisle": "4"}))
    again = seen(memo, request({"aisle": "4", "cart": "c-77"}))

    assert again is first
    assert first == mapping.create_command(request({"cart": "c-77"} | {"aisle": "4"}))


def test_a_different_request_gets_its_own_command() -> None:
    memo = SeenRequests()
    two = seen(memo, request({"cart": "c-77"}))

    three = seen(memo, request({"cart": "c-77"}, quantity=3))
    other_cart = seen(memo, request({"cart": "c-78"}))

    assert [li.quantity for li in three.line_items] == [3]
    assert other_cart.metadata == {"cart": "c-78"}
    assert seen(memo, request({"cart": "c-77"})) is two


def test_a_request_larger_than_a_cart_is_mapped_each_time() -> None:
    memo = SeenRequests()
    large = request({f"key{n}": "v" * 400 for n in range(12)})
    assert large.ByteSize() > 4096

    first = seen(memo, large)

    assert seen(memo, large) is not first
    assert seen(memo, large) == first


def test_a_request_is_read_and_checked_once_until_it_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keyed by the request's bytes: an equal request, however it was built, is the same
    request (the memo this replaced was keyed by the command object's identity)."""
    read: list[bytes] = []
    checked: list[CreateSessionCommand] = []

    def counted_read(data: bytes) -> CreateSessionCommand:
        read.append(data)
        return mapping.read_create(data)

    def counted_check(cmd: CreateSessionCommand, now: datetime) -> CheckedCreate:
        checked.append(cmd)
        return check_create(cmd, now)

    monkeypatch.setattr(seen_requests, "check_create", counted_check)
    memo = SeenRequests(2)
    a, equal_to_a, b, c = (
        mapping.request_bytes(request({}, order_id=order))
        for order in ("order-a", "order-a", "order-b", "order-c")
    )

    first = memo.check(a, counted_read, NOW)
    assert memo.check(a, counted_read, NOW) is first
    assert memo.check(equal_to_a, counted_read, NOW) == first
    memo.check(b, counted_read, NOW)
    memo.check(c, counted_read, NOW)  # three held at most two: `a`, the least recently asked
    memo.check(a, counted_read, NOW)

    assert read == [a, b, c, a]
    assert [cmd.order_id for cmd in checked] == ["order-a", "order-b", "order-c", "order-a"]
    assert first[1] == CheckedCreate("order-a", create_plan.fingerprint(first[0]))


def test_an_invalid_request_is_refused_every_time() -> None:
    memo = SeenRequests(2)
    invalid = mapping.request_bytes(request({}, order_id="   "))

    for _ in range(2):
        with pytest.raises(InvalidRequest) as refused:
            memo.check(invalid, mapping.read_create, NOW)
        assert [v.field for v in refused.value.violations] == ["order_id"]


def test_a_request_with_an_expire_time_is_checked_each_time_it_comes() -> None:
    memo = SeenRequests()
    cart = request({})
    cart.expire_time.FromDatetime(NOW + timedelta(hours=1))
    data = mapping.request_bytes(cart)
    cmd, checked = memo.check(data, mapping.read_create, NOW)

    # Seen before, and still valid while the expiry is at least 30 minutes away.
    assert memo.check(data, mapping.read_create, NOW + timedelta(minutes=30)) == (cmd, checked)
    with pytest.raises(InvalidRequest) as refused:
        memo.check(data, mapping.read_create, NOW + timedelta(minutes=31))
    assert [v.field for v in refused.value.violations] == ["expire_time"]
