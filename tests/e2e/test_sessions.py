"""CreateSession, GetSession, ListSessions and ExpireSession through a real gRPC server, the
real Postgres ledger and the sandbox over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from tests.e2e.helpers import (
    Sandbox,
    Stub,
    cart_request,
    detail,
    new_order_id,
    reason,
    violated_fields,
)


async def ledger_rows(db: asyncpg.Pool, order_id: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM checkout_sessions WHERE order_id = $1", order_id)
    )


def session_posts(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0))


async def test_create_returns_an_open_hosted_session_priced_like_the_cart(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    response = await stub.CreateSession(cart_request(order_id))

    session = response.session
    assert response.reused is False
    assert session.id.startswith("cs_test_")
    assert session.order_id == order_id
    assert session.status == pb.Session.OPEN
    assert session.payment_status == pb.Session.UNPAID
    assert session.mode == pb.Session.PAYMENT
    assert session.ui_mode == pb.Session.HOSTED_PAGE
    assert session.url.startswith("http")
    assert session.client_secret == ""
    assert session.currency == "usd"
    assert session.amount_subtotal == 2 * 1500 + 990
    assert session.amount_total == 2 * 1500 + 990
    assert [(li.description, li.quantity, li.amount_total) for li in session.line_items] == [
        ("T-shirt", 2, 3000),
        ("Mug", 1, 990),
    ]
    assert session.metadata["order_id"] == order_id
    lifetime = session.expire_time.ToDatetime() - session.create_time.ToDatetime()
    assert timedelta(hours=23, minutes=59) <= lifetime <= timedelta(hours=24)

    at_stripe = await sandbox.sessions_for(order_id)
    assert [s.id for s in at_stripe] == [session.id]
    assert at_stripe[0].metadata is not None
    assert at_stripe[0].metadata["order_id"] == order_id
    assert at_stripe[0].client_reference_id == order_id


async def test_same_request_again_reuses_the_session_without_calling_stripe(
    stub: Stub, sandbox: Sandbox
) -> None:
    request = cart_request(new_order_id())
    first = await stub.CreateSession(request)
    posts_before = session_posts(sandbox)

    again = await stub.CreateSession(request)

    assert again.reused is True
    assert again.session.id == first.session.id
    assert again.session.url == first.session.url
    assert session_posts(sandbox) == posts_before


async def test_get_by_order_and_by_id_and_list(stub: Stub) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session

    by_order = await stub.GetSession(api.GetSessionRequest(order_id=order_id))
    by_id = await stub.GetSession(api.GetSessionRequest(session_id=created.id, refresh=True))
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id))

    assert by_order.session.id == created.id
    assert by_id.session.id == created.id
    assert by_id.session.amount_total == created.amount_total
    assert [s.id for s in listed.sessions] == [created.id]
    assert listed.next_page_token == ""


async def test_expire_then_expire_again_changes_nothing(stub: Stub, sandbox: Sandbox) -> None:
    order_id = new_order_id()
    created = (await stub.CreateSession(cart_request(order_id))).session

    expired = (await stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id))).session
    again = (await stub.ExpireSession(api.ExpireSessionRequest(session_id=created.id))).session

    assert expired.id == created.id
    assert expired.status == pb.Session.EXPIRED
    assert expired.url == ""
    assert again == expired
    [at_stripe] = await sandbox.sessions_for(order_id)
    assert at_stripe.status == "expired"


async def test_a_changed_cart_expires_the_old_session_before_creating_the_new(
    stub: Stub, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    old = (await stub.CreateSession(cart_request(order_id))).session
    changed = cart_request(order_id)
    changed.line_items[1].quantity = 3

    new = await stub.CreateSession(changed)

    assert new.reused is False
    assert new.session.id != old.id
    assert new.session.amount_total == 3000 + 3 * 990
    statuses = {s.id: s.status for s in await sandbox.sessions_for(order_id)}
    assert statuses == {old.id: "expired", new.session.id: "open"}


async def test_list_pages_newest_first(stub: Stub) -> None:
    order_id = new_order_id()
    ids = []
    for quantity in (1, 2, 3):
        request = cart_request(order_id)
        request.line_items[0].quantity = quantity
        ids.append((await stub.CreateSession(request)).session.id)

    first = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id, page_size=2))
    second = await stub.ListSessions(
        api.ListSessionsRequest(order_id=order_id, page_size=2, page_token=first.next_page_token)
    )

    assert [s.id for s in first.sessions] == ids[::-1][:2]
    assert [s.id for s in second.sessions] == ids[::-1][2:]
    assert second.next_page_token == ""
    assert [s.status for s in [*first.sessions, *second.sessions]] == [
        pb.Session.OPEN,
        pb.Session.EXPIRED,
        pb.Session.EXPIRED,
    ]


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _with_quantity_zero(order_id: str) -> api.CreateSessionRequest:
    request = cart_request(order_id)
    request.line_items[1].quantity = 0
    return request


@pytest.mark.parametrize(
    ("case", "build", "field"),
    [
        ("missing order_id", lambda o: cart_request(""), "order_id"),
        ("quantity 0", _with_quantity_zero, "line_items[1].quantity"),
        (
            "success_url with an embedded page",
            lambda o: cart_request(o, ui_mode=pb.Session.EMBEDDED_PAGE),
            "success_url",
        ),
        (
            "expire_time 5 minutes ahead",
            lambda o: cart_request(
                o, expire_time=_timestamp(datetime.now(UTC) + timedelta(minutes=5))
            ),
            "expire_time",
        ),
        (
            "51 metadata keys",
            lambda o: cart_request(o, metadata={f"k{i}": "v" for i in range(51)}),
            "metadata",
        ),
        (
            "unknown price_id",
            lambda o: cart_request(
                o,
                line_items=[
                    api.CreateSessionRequest.LineItem(price_id="price_doesnotexist", quantity=1)
                ],
            ),
            "line_items[0].price_id",
        ),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_leaves_nothing_behind(
    stub: Stub, db: asyncpg.Pool, sandbox: Sandbox, case: str, build: object, field: str
) -> None:
    order_id = new_order_id()
    request = build(order_id)  # type: ignore[operator]
    rows_before = int(await db.fetchval("SELECT count(*) FROM checkout_sessions"))
    created_before = sandbox.stats()["sessions"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(request)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert field in violated_fields(caught.value), case
    assert int(await db.fetchval("SELECT count(*) FROM checkout_sessions")) == rows_before
    assert sandbox.stats()["sessions"] == created_before


async def test_unknown_price_carries_what_stripe_said(stub: Stub) -> None:
    request = cart_request(
        new_order_id(),
        line_items=[api.CreateSessionRequest.LineItem(price_id="price_nope", quantity=1)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(request)

    assert reason(caught.value) == "STRIPE_REFUSED"
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info.domain == "checkout.v1"
    assert info.metadata["stripe_request_id"].startswith("req_")
    assert "price_nope" in str(caught.value.details())


async def test_request_id_replays_and_refuses_a_different_payload(stub: Stub) -> None:
    order_id = new_order_id()
    request = cart_request(order_id, request_id="3f1c0a9e-request-1")
    first = await stub.CreateSession(request)
    replay = await stub.CreateSession(request)
    changed = cart_request(order_id, request_id="3f1c0a9e-request-1", customer_email="a@b.example")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateSession(changed)

    assert replay.session.id == first.session.id
    assert replay.reused == first.reused
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["request_id"]


async def test_stripe_failure_is_unavailable_with_retry_info_and_a_retry_converges(
    stub: Stub, db: asyncpg.Pool, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        # POST: the create's. Without a method the sweep's list or retrieve, which runs every
        # 30 s, could take the one fault first.
        {"path_prefix": "/v1/checkout/sessions", "method": "POST", "status": 500, "count": 1},
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateSession(cart_request(order_id))
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    retry = detail(caught.value, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds + retry.retry_delay.nanos > 0
    # The pending row and its idempotency key stay, so the retry resumes the same attempt.
    assert (
        await db.fetchval("SELECT state FROM checkout_sessions WHERE order_id = $1", order_id)
        == "pending"
    )

    retried = await stub.CreateSession(cart_request(order_id))

    assert retried.session.status == pb.Session.OPEN
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [retried.session.id]
    assert await ledger_rows(db, order_id) == 1


async def test_unknown_session_and_order_are_not_found(stub: Stub) -> None:
    order_id = new_order_id()
    for request, name in (
        (api.GetSessionRequest(session_id="cs_test_nope"), "sessions/cs_test_nope"),
        (api.GetSessionRequest(order_id=order_id), f"orders/{order_id}"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetSession(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert detail(caught.value, error_details_pb2.ResourceInfo).resource_name == name


async def test_get_without_a_lookup_names_the_field(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSession(api.GetSessionRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(caught.value) == ["session_id"]


async def test_a_new_cart_is_not_blamed_for_an_old_attempt_stripe_refuses(
    stub: Stub, db: asyncpg.Pool, sandbox: Sandbox
) -> None:
    order_id = new_order_id()
    # A crashed attempt with another cart, whose parameters Stripe refuses when resumed.
    await db.execute(
        """INSERT INTO checkout_sessions
               (caller, order_id, state, fingerprint, idempotency_key, stripe_params,
                expires_at)
           VALUES ('local', $1, 'pending', 'an-older-cart', $2, '{"mode": "payment"}'::jsonb,
                   now() + interval '1 day')""",
        order_id,
        f"key-{order_id}",
    )

    created = await stub.CreateSession(cart_request(order_id))

    assert created.session.status == pb.Session.OPEN
    assert [s.id for s in await sandbox.sessions_for(order_id)] == [created.session.id]
    assert await ledger_rows(db, order_id) == 1


async def test_refreshing_a_session_stripe_no_longer_knows_is_a_precondition_not_a_bug(
    stub: Stub, db: asyncpg.Pool
) -> None:
    order_id = new_order_id()
    await stub.CreateSession(cart_request(order_id))
    # As if the session had been made with another Stripe account's key.
    gone = f"cs_test_gone_{order_id}"
    await db.execute(
        "UPDATE checkout_sessions SET session_id = $2 WHERE order_id = $1", order_id, gone
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSession(api.GetSessionRequest(session_id=gone, refresh=True))

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "STRIPE_RESOURCE_MISSING"
    assert detail(caught.value, error_details_pb2.ErrorInfo).metadata["stripe_request_id"]
