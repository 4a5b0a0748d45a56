"""Hostile input never reaches INTERNAL: every request message of the contract, filled with NUL
and other control characters, huge strings and maps, thousands of repeated entries, extreme and
unknown numbers (tests/hostile.py), sent through the real gRPC server to the real Postgres and
Stripe sandbox. Each answer is OK or INVALID_ARGUMENT with a BadRequest naming a field (NOT_FOUND
for lookups of what does not exist, FAILED_PRECONDITION where the order's state forbids it),
never INTERNAL, UNKNOWN or a crash. tests/unit/test_limits.py checks the same rules field by
field without a server."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from checkout.v1 import checkout_service_pb2 as api
from service.domain.validation import ORDER_ID_MAX
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id, violated_fields
from tests.hostile import (
    FREE_TEXT,
    STRINGS,
    hostile_messages,
    huge_text,
    lookup_requests,
    small_text,
)

Code = grpc.StatusCode
CREATE_ANSWERS = {Code.OK, Code.INVALID_ARGUMENT}
LOOKUP_ANSWERS = {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.FAILED_PRECONDITION}
# Bounded in time: each example is one RPC (most are refused before Postgres or Stripe).
THROUGH_THE_SERVER = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def answer(call: Awaitable[Any]) -> tuple[grpc.StatusCode, list[str], str]:
    """The status code of the call, the fields its BadRequest names, and its message."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        code = error.code()
        fields = violated_fields(error) if code == Code.INVALID_ARGUMENT else []
        return code, fields, error.details() or ""
    return Code.OK, [], ""


def assert_answer(
    allowed: set[grpc.StatusCode], code: grpc.StatusCode, fields: list[str], message: str
) -> None:
    event(code.name)  # how the answers spread: --hypothesis-show-statistics
    assert code in allowed, f"{code.name}: {message[:300]}"
    if code == Code.INVALID_ARGUMENT:
        assert fields, "INVALID_ARGUMENT without a field"
        assert all(fields), fields


@pytest.fixture(scope="module", autouse=True)
def _terms_of_service_url(sandbox: Sandbox) -> Iterator[None]:
    """Consent to the terms of service (beside which `custom_text.terms_of_service_acceptance`
    stands) needs a terms of service URL in the Stripe account."""
    with sandbox.terms_of_service():
        yield


def with_fresh_order(request: api.CreateSessionRequest) -> api.CreateSessionRequest:
    """The same request for an order no other example used (its hostile part kept)."""
    request.order_id = new_order_id() + request.order_id
    return request


@THROUGH_THE_SERVER
@given(hostile_messages(api.CreateSessionRequest))
async def test_any_create_request_is_answered_ok_or_refused_by_field(
    stub: Stub, request: api.CreateSessionRequest
) -> None:
    assert_answer(CREATE_ANSWERS, *await answer(stub.CreateSession(with_fresh_order(request))))


hostile_or_unusual = st.one_of(small_text, huge_text, st.text(min_size=1, max_size=40))


@THROUGH_THE_SERVER
@given(st.sampled_from(sorted(STRINGS)), hostile_or_unusual)
async def test_one_hostile_string_in_a_valid_cart_is_taken_or_refused_naming_it(
    stub: Stub, path: str, value: str
) -> None:
    """Only the one string differs from a valid cart, so a refusal must name it (Stripe's too,
    mapped back onto the request's fields); whatever is taken went to Postgres and Stripe."""
    build, field, _ = STRINGS[path]
    request = build(value)
    if path == "order_id":
        request.order_id = new_order_id() + value
    else:
        request.order_id = new_order_id()
    code, fields, message = await answer(stub.CreateSession(request))
    assert_answer(CREATE_ANSWERS, code, fields, message)
    if code == Code.INVALID_ARGUMENT:
        # The field, or what holds it ("discounts[0]: one of coupon or promotion_code is
        # required"); a map entry by its key, or (by Stripe) as the whole map.
        named = field.removesuffix("[").split("[")[0] if "metadata" in field else field
        for f in fields:
            assert f.startswith(named) or named.startswith(f), (path, fields, message)


# Text that the rules allow, but that is far from ASCII: format characters (bidi controls,
# zero-width joiners), private use, noncharacters, astral planes, combining marks, line breaks.
unusual_text = st.text(
    st.one_of(st.characters(exclude_categories=["Cc", "Cs"]), st.sampled_from("\t\n\r")),
    min_size=1,
    max_size=60,
).filter(lambda text: text.strip())


@THROUGH_THE_SERVER
@given(st.sampled_from(sorted(FREE_TEXT)), unusual_text)
async def test_unusual_free_text_goes_through_postgres_and_stripe(
    stub: Stub, path: str, value: str
) -> None:
    build, _, _ = STRINGS[path]
    request = build(value)
    request.order_id = new_order_id()
    response = await stub.CreateSession(request)
    if path == "metadata{value}":
        assert response.session.metadata["cart"] == value
    if path == "line_items[].price_data.product_name":
        assert response.session.line_items[0].description == value


printable_text = st.text(
    st.characters(categories=["L", "M", "N", "P", "S"], exclude_characters="[]"),
    min_size=1,
    max_size=40,
)


@THROUGH_THE_SERVER
@given(printable_text, printable_text, printable_text)
async def test_unusual_printable_ids_and_keys_go_through_and_back(
    stub: Stub, order_suffix: str, request_suffix: str, key: str
) -> None:
    order_id = new_order_id() + order_suffix
    request_id = f"{uuid.uuid4()}{request_suffix}"  # a request id names one call: never reused
    request = cart_request(order_id, request_id=request_id, metadata={key: "v"})
    response = await stub.CreateSession(request)
    assert response.session.order_id == order_id
    assert response.session.metadata[key] == "v"
    got = await stub.GetSession(api.GetSessionRequest(order_id=order_id))
    assert got.session.id == response.session.id


@THROUGH_THE_SERVER
@given(lookup_requests(api.GetSessionRequest))
@example(api.GetSessionRequest(order_id="order-\x00"))
@example(api.GetSessionRequest(order_id="x" * 20_000))
async def test_any_get_request_is_answered_without_a_server_error(
    stub: Stub, request: api.GetSessionRequest
) -> None:
    assert_answer(LOOKUP_ANSWERS, *await answer(stub.GetSession(request)))


@THROUGH_THE_SERVER
@given(lookup_requests(api.ExpireSessionRequest))
@example(api.ExpireSessionRequest(order_id="order-\x00"))
@example(api.ExpireSessionRequest(order_id="x" * 20_000))
async def test_any_expire_request_is_answered_without_a_server_error(
    stub: Stub, request: api.ExpireSessionRequest
) -> None:
    assert_answer(LOOKUP_ANSWERS, *await answer(stub.ExpireSession(request)))


@THROUGH_THE_SERVER
@given(lookup_requests(api.ListSessionsRequest))
@example(api.ListSessionsRequest(order_id="order-\x00"))
@example(api.ListSessionsRequest(order_id="x" * 20_000))
async def test_any_list_request_is_answered_without_a_server_error(
    stub: Stub, request: api.ListSessionsRequest
) -> None:
    assert_answer(LOOKUP_ANSWERS, *await answer(stub.ListSessions(request)))


@THROUGH_THE_SERVER
@given(lookup_requests(api.WatchSessionRequest))
@example(api.WatchSessionRequest(order_id="order-\x00"))
@example(api.WatchSessionRequest(order_id="x" * 20_000))
async def test_any_watch_request_is_answered_without_a_server_error(
    stub: Stub, request: api.WatchSessionRequest
) -> None:
    call = stub.WatchSession(request, timeout=10)
    try:
        # The first answer tells: a session, or an error; the stream would go on until the
        # session is final.
        assert_answer(LOOKUP_ANSWERS, *await answer(call.read()))
    finally:
        call.cancel()


async def test_lookups_of_a_real_order_with_hostile_neighbours(stub: Stub) -> None:
    """An order id at the limit works everywhere; one character more is refused by name."""
    order_id = new_order_id()
    order_id += "\u00e9" * (ORDER_ID_MAX - len(order_id))
    created = await stub.CreateSession(cart_request(order_id))
    got = await stub.GetSession(api.GetSessionRequest(order_id=order_id))
    assert got.session.id == created.session.id
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id))
    assert [s.id for s in listed.sessions] == [created.session.id]
    code, fields, message = await answer(stub.CreateSession(cart_request(order_id + "x")))
    assert (code, fields) == (Code.INVALID_ARGUMENT, ["order_id"]), message


# Bytes that no protobuf client library would send: strings that are not UTF-8 (a lone
# surrogate, encoded the way Java and JavaScript do by mistake), and broken framing.
UNDECODABLE = {
    "lone surrogate": b"\x12\x03\xed\xa0\x80",
    "invalid UTF-8": b"\x12\x02\xff\xfe",
    "truncated field": b"\x12\x10abc",
    "garbage": b"\xff\xff\xff\xff",
}


@pytest.mark.parametrize("body", UNDECODABLE.values(), ids=UNDECODABLE.keys())
async def test_a_request_that_is_not_protobuf_is_invalid_argument(
    channel: grpc.aio.Channel, body: bytes
) -> None:
    raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/checkout.v1.CheckoutService/GetSession"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(body)
    assert caught.value.code() == Code.INVALID_ARGUMENT, caught.value.details()


async def test_the_server_still_serves_after_all_that(stub: Stub) -> None:
    created = await stub.CreateSession(cart_request(new_order_id()))
    assert created.session.url
