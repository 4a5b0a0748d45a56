"""Every string and repeated field of every request is bounded, and hostile characters are
refused naming the field, before anything is stored or sent: proto → mapping → validation, with
no server. tests/e2e/test_hostile_input.py sends the same through the real gRPC server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout.v1 import checkout_service_pb2 as api
from service.domain import validation
from service.domain.create_plan import plan_create
from service.domain.errors import FieldViolation, InvalidRequest
from service.domain.page_tokens import Cursor, PageTokens
from service.edge import mapping
from tests.hostile import (
    FREE_TEXT,
    STRINGS,
    STRIPPED,
    Build,
    cart,
    hostile_messages,
    huge_text,
    line,
    priced,
    rate,
    small_text,
    string_field_paths,
    subscription,
)

Req = api.CreateSessionRequest
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# Longer than any limit of any string field.
OVER_EVERY_LIMIT = 50_001
PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


# Characters no string may hold: C0 and C1 controls but tab and line breaks.
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"]


def refused(request: Req) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        plan_create(mapping.create_command(request), NOW, caller="shop")
    return [v.field for v in caught.value.violations]


def names(fields: list[str], field: str) -> bool:
    """Whether an error naming `fields` names `field` (a map key's path begins with it)."""
    return any(f.startswith(field) if field.endswith("[") else f == field for f in fields)


def test_the_table_covers_every_string_of_create_session() -> None:
    assert set(STRINGS) == string_field_paths(Req.DESCRIPTOR)


@pytest.mark.parametrize("path", sorted(STRINGS))
def test_a_valid_value_in_each_string_is_accepted(path: str) -> None:
    build, _, valid = STRINGS[path]
    plan_create(mapping.create_command(build(valid)), NOW, caller="shop")


def placements(path: str, valid: str, inserted: str) -> list[str]:
    """`inserted` inside `valid`, and at either end unless the field drops surrounding blanks
    (Python's blanks include some controls, such as \x1c to \x1f and \x85)."""
    inside = [valid[:2] + inserted + valid[2:]]
    if path in STRIPPED and inserted.isspace():
        return inside
    return [*inside, valid + inserted, inserted + valid]


@pytest.mark.parametrize("path", sorted(STRINGS))
def test_control_characters_are_refused_naming_the_field(path: str) -> None:
    build, field, valid = STRINGS[path]
    for control in CONTROLS:
        for value in placements(path, valid, control):
            assert names(refused(build(value)), field), value


@pytest.mark.parametrize("path", sorted(STRINGS))
def test_over_long_values_are_refused_naming_the_field(path: str) -> None:
    build, field, valid = STRINGS[path]
    assert names(refused(build(valid + "a" * OVER_EVERY_LIMIT)), field)


@pytest.mark.parametrize("path", sorted(STRINGS))
def test_line_breaks_are_free_text_only(path: str) -> None:
    build, field, valid = STRINGS[path]
    for value in [*placements(path, valid, "\n"), *placements(path, valid, "\t")]:
        if path in FREE_TEXT:
            plan_create(mapping.create_command(build(value)), NOW, caller="shop")
        else:
            assert names(refused(build(value)), field), value


@pytest.mark.parametrize("path", sorted(STRINGS.keys() - FREE_TEXT - STRIPPED))
def test_ids_and_keys_are_printable(path: str) -> None:
    build, field, valid = STRINGS[path]
    for invisible in ("\u200b", "\u202e", "\ufeff", "\u2028", "\ue000", "\xa0"):
        assert names(refused(build(valid + invisible)), field), invisible


@pytest.mark.parametrize(
    ("limit", "build", "field"),
    [
        (validation.ORDER_ID_MAX, lambda v: cart(order_id=v), "order_id"),
        (validation.REQUEST_ID_MAX, lambda v: cart(request_id=v), "request_id"),
        (validation.STRIPE_ID_MAX, lambda v: cart(customer_id=v), "customer_id"),
        (
            validation.STRIPE_ID_MAX,
            lambda v: cart(line_items=line(price_id=v)),
            "line_items[0].price_id",
        ),
        (
            validation.TEXT_MAX,
            lambda v: cart(line_items=priced(product_name=v)),
            "line_items[0].price_data.product_name",
        ),
        (
            validation.PRODUCT_DESCRIPTION_MAX,
            lambda v: cart(line_items=priced(product_name="Mug", product_description=v)),
            "line_items[0].price_data.product_description",
        ),
        (
            validation.SHIPPING_DISPLAY_NAME_MAX,
            lambda v: cart(shipping_options=rate(display_name=v)),
            "shipping_options[0].shipping_rate_data.display_name",
        ),
        (
            validation.SUBSCRIPTION_DESCRIPTION_MAX,
            lambda v: subscription(subscription_data=Req.SubscriptionData(description=v)),
            "subscription_data.description",
        ),
        (validation.METADATA_VALUE_MAX, lambda v: cart(metadata={"k": v}), "metadata[k]"),
    ],
)
def test_each_limit_is_exact(limit: int, build: Build, field: str) -> None:
    plan_create(mapping.create_command(build("\u00e9" * limit)), NOW, caller="shop")
    assert field in refused(build("\u00e9" * (limit + 1)))


def test_urls_are_bounded_and_well_formed() -> None:
    base = "https://shop.example/"
    longest = base + "a" * (validation.URL_MAX - len(base))
    plan_create(mapping.create_command(cart(success_url=longest)), NOW, caller="shop")
    for bad in (longest + "a", "http://[::1/done", "https://shop.example/\u200b", "https://"):
        assert refused(cart(success_url=bad)) == ["success_url"], bad


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (cart(line_items=line(price_id="price_1") * 101), "line_items"),
        (subscription(line_items=line(price_id="price_1") * 41), "line_items"),
        (cart(line_items=line(price_id="price_1", tax_rate_ids=["txr_1"] * 6)), None),
        (cart(discounts=[Req.Discount(coupon="A")] * 2), "discounts"),
        (cart(shipping_options=[Req.ShippingOption(shipping_rate_id="shr_1")] * 6), None),
        (
            cart(allowed_payment_method_types=[f"type_{chr(97 + i % 26)}" * 2 for i in range(101)]),
            "allowed_payment_method_types",
        ),
        (
            cart(
                shipping_address_collection=Req.ShippingAddressCollection(
                    allowed_countries=["US"] * 251
                )
            ),
            "shipping_address_collection.allowed_countries",
        ),
        (cart(metadata={f"k{i}": "v" for i in range(49)}), "metadata"),
    ],
)
def test_repeated_fields_are_bounded(request_: Req, field: str | None) -> None:
    fields = refused(request_)
    if field is not None:
        assert field in fields
    else:
        assert fields  # the field's path is checked by test_create_plan


@pytest.mark.parametrize(
    "stamp",
    [
        Timestamp(seconds=2**62),
        Timestamp(seconds=-(2**62)),
        Timestamp(seconds=253_402_300_800),
        Timestamp(seconds=10, nanos=-1),
        Timestamp(seconds=10, nanos=1_000_000_000),
    ],
    ids=str,
)
def test_an_invalid_timestamp_is_refused_not_raised(stamp: Timestamp) -> None:
    assert refused(cart(expire_time=stamp)) == ["expire_time"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (cart(line_items=line(price_id="p", quantity=2**63 - 1)), "line_items[0].quantity"),
        (cart(line_items=line(price_id="p", quantity=-(2**63))), "line_items[0].quantity"),
        (
            cart(line_items=[Req.LineItem(price_data=Req.PriceData(unit_amount=2**63 - 1))]),
            "line_items[0].price_data.unit_amount",
        ),
        (
            cart(shipping_options=rate(display_name="G", amount=-(2**63))),
            "shipping_options[0].shipping_rate_data.amount",
        ),
        (
            cart(
                shipping_options=rate(
                    display_name="G",
                    delivery_estimate=Req.DeliveryEstimate(
                        minimum=Req.DeliveryBound(unit=Req.DeliveryBound.DAY, value=2**63 - 1)
                    ),
                )
            ),
            "shipping_options[0].shipping_rate_data.delivery_estimate.minimum.value",
        ),
        (
            subscription(subscription_data=Req.SubscriptionData(trial_period_days=-(2**63))),
            "subscription_data.trial_period_days",
        ),
    ],
)
def test_extreme_numbers_are_refused_naming_the_field(request_: Req, field: str) -> None:
    assert field in refused(request_)


def test_an_error_names_a_bounded_number_of_fields() -> None:
    """Thousands of bad entries give one error that fits in gRPC's trailers."""
    hostile = "\U0001f600" * 40 + "["
    request = cart(
        line_items=line(price_id="p\x00", quantity=0) * 3000,
        metadata={f"{hostile}{i}": "\x00" for i in range(3000)},
    )
    with pytest.raises(InvalidRequest) as caught:
        plan_create(mapping.create_command(request), NOW, caller="shop")
    violations = caught.value.violations
    assert 1 <= len(violations) <= validation.VIOLATIONS_MAX
    assert sum(len(v.field.encode()) + len(v.description.encode()) for v in violations) <= (
        validation.VIOLATIONS_MAX_BYTES
    )
    assert len(caught.value.message.encode()) <= 2 * validation.VIOLATIONS_MAX_BYTES


def test_a_hostile_map_key_is_named_escaped_and_shortened() -> None:
    fields = refused(cart(metadata={"\x00" + "k" * 10_000: "v"}))
    assert fields == [f"metadata[\\x00{'k' * 60}...]"]


# The lookups: GetSession, ExpireSession, WatchSession and ListSessions.
LOOKUPS = (api.GetSessionRequest, api.ExpireSessionRequest, api.WatchSessionRequest)
LOOKUP_VALID = {
    "session_id": "cs_test_a1B2c3",
    "order_id": "order-1001",
    "caller": "orders",
    "page_token": "eyJhIjoxfQ==",
}
LOOKUP_LIMITS = {
    "session_id": validation.SESSION_ID_MAX,
    "order_id": validation.ORDER_ID_MAX,
    "caller": validation.CALLER_MAX,
    "page_token": validation.PAGE_TOKEN_MAX,
}


def lookup_refused(**fields: str) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        validation.validate_lookup(**fields)
    return [v.field for v in caught.value.violations]


@pytest.mark.parametrize("kind", [*LOOKUPS, api.ListSessionsRequest], ids=lambda k: k.__name__)
def test_validate_lookup_covers_every_string_of_every_lookup(kind: type[Any]) -> None:
    assert string_field_paths(kind.DESCRIPTOR) <= set(LOOKUP_VALID)


@pytest.mark.parametrize("field", sorted(LOOKUP_VALID))
def test_lookup_strings_are_bounded_and_printable(field: str) -> None:
    valid, limit = LOOKUP_VALID[field], LOOKUP_LIMITS[field]
    validation.validate_lookup(**{field: valid})
    validation.validate_lookup(**{field: "a" * limit})
    for bad in ("a" * (limit + 1), valid + "\x00", valid + "\x07", valid + "\u202e"):
        assert lookup_refused(**{field: bad}) == [field], bad


@pytest.mark.parametrize("char", ["a", "\u00e9", "\U0001f600"])
def test_every_page_token_the_service_issues_is_within_bounds(char: str) -> None:
    tokens = PageTokens(b"k" * 32)
    cursor = Cursor(datetime.max.replace(tzinfo=UTC), 2**63 - 1)
    token = tokens.issue(char * validation.CALLER_MAX, char * validation.ORDER_ID_MAX, cursor)
    validation.validate_lookup(page_token=token)


def test_a_page_token_is_url_safe_base64() -> None:
    for bad in ("a b", "a+b/", "a\nb", "\u0661"):
        assert lookup_refused(page_token=bad) == ["page_token"]


# Properties over any message at all.
Violations = list[FieldViolation]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _well_formed(violations: Violations) -> bool:
    size = sum(len(v.field.encode()) + len(v.description.encode()) for v in violations)
    return (
        1 <= len(violations) <= validation.VIOLATIONS_MAX
        and size <= validation.VIOLATIONS_MAX_BYTES
        and all(v.field and v.description for v in violations)
    )


def _plan_or_refusal(request: Req) -> None:
    """Either a refusal that names fields, or Stripe parameters that Postgres can store and that
    hold no control characters but tabs and line breaks."""
    command = mapping.create_command(request)  # never raises
    try:
        plan = plan_create(command, datetime.now(UTC), caller="shop")
    except InvalidRequest as refusal:
        assert _well_formed(refusal.violations), refusal.violations
        return
    json.dumps(plan.stripe_params)
    for text in _strings(plan.stripe_params):
        assert not any(c in text for c in "\x00\x07\x1b\x7f\x85"), repr(text[:80])
        assert len(text) <= validation.PRODUCT_DESCRIPTION_MAX


@PROPERTY
@given(hostile_messages(Req))
def test_any_create_request_is_refused_by_field_or_planned_cleanly(request: Req) -> None:
    _plan_or_refusal(request)


@PROPERTY
@given(hostile_messages(Req, presence=0.08))
def test_a_valid_cart_with_hostile_parts_is_refused_by_field_or_planned_cleanly(
    hostile: Req,
) -> None:
    request = cart(
        expire_time=Timestamp(seconds=int((datetime.now(UTC) + timedelta(hours=2)).timestamp()))
    )
    request.MergeFrom(hostile)
    _plan_or_refusal(request)


lookup_text = st.one_of(small_text, huge_text, st.sampled_from(sorted(LOOKUP_VALID.values())))


@PROPERTY
@given(st.fixed_dictionaries({}, optional={name: lookup_text for name in LOOKUP_VALID}))
def test_any_lookup_is_refused_by_field_or_storable(fields: dict[str, str]) -> None:
    try:
        validation.validate_lookup(**fields)
    except InvalidRequest as refusal:
        assert _well_formed(refusal.violations)
        assert {v.field for v in refusal.violations} <= fields.keys()
        return
    for name, value in fields.items():
        assert len(value) <= LOOKUP_LIMITS[name] and value.isprintable()
