"""Callers and secrets: bearer tokens and client certificates named in CALLERS_FILE, each
caller's orders its own, operators read-only and never shown a client_secret, the file and the
certificates re-read when they change, page tokens bound to their order."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import Authority, callers_document, new_token
from tests.e2e.helpers import Stub, cart_request, detail, new_order_id, reason
from tests.support import eventually

ORDERS, BILLING, ONCALL = new_token("orders"), new_token("billing"), new_token("oncall")
CALLERS = [
    {"name": "orders", "token": ORDERS, "role": "caller"},
    {"name": "billing", "token": BILLING, "role": "caller"},
    {"name": "oncall", "token": ONCALL, "role": "operator"},
]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Served:
    app: Application
    channel: grpc.aio.Channel
    callers_file: Path

    @property
    def stub(self) -> Stub:
        return api_grpc.CheckoutServiceStub(self.channel)


@pytest_asyncio.fixture
async def served(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Served]:
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(CALLERS))
    settings = Settings.from_environ(
        {**environ, "CALLERS_FILE": str(callers_file), "CALLERS_RELOAD_SECONDS": "0.1"}
    )
    app = await start(settings)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield Served(app, channel, callers_file)
    await app.stop()


async def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code()


async def test_no_token_or_a_wrong_token_is_unauthenticated(served: Served) -> None:
    stub, order_id = served.stub, new_order_id()
    for metadata in ((), bearer("not-a-token"), (("authorization", ORDERS),)):
        calls = (
            stub.CreateSession(cart_request(order_id), metadata=metadata),
            stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=metadata),
            stub.ListSessions(api.ListSessionsRequest(order_id=order_id), metadata=metadata),
            stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id), metadata=metadata),
        )
        for call in calls:
            assert await code_of(call) == grpc.StatusCode.UNAUTHENTICATED
        stream = stub.WatchSession(api.WatchSessionRequest(order_id=order_id), metadata=metadata)
        assert await code_of(stream.read()) == grpc.StatusCode.UNAUTHENTICATED


async def test_health_is_open_to_all(served: Served) -> None:
    answer = await health_pb2_grpc.HealthStub(served.channel).Check(  # type: ignore[attr-defined]
        health_pb2.HealthCheckRequest(service="checkout.v1.CheckoutService")
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_another_callers_order_looks_like_no_order_and_the_id_stays_free(
    served: Served,
) -> None:
    stub, order_id = served.stub, new_order_id()
    mine = (await stub.CreateSession(cart_request(order_id), metadata=bearer(ORDERS))).session
    assert mine.caller == "orders"

    theirs = bearer(BILLING)
    lookups = (
        stub.GetSession(api.GetSessionRequest(session_id=mine.id), metadata=theirs),
        stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=theirs),
        stub.ExpireSession(api.ExpireSessionRequest(session_id=mine.id), metadata=theirs),
        stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id), metadata=theirs),
    )
    for call in lookups:
        assert await code_of(call) == grpc.StatusCode.NOT_FOUND
    watch = stub.WatchSession(api.WatchSessionRequest(session_id=mine.id), metadata=theirs)
    assert await code_of(watch.read()) == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id), metadata=theirs)
    assert list(listed.sessions) == []

    own = await stub.CreateSession(cart_request(order_id), metadata=theirs)
    assert own.reused is False
    assert own.session.id != mine.id
    assert own.session.caller == "billing"
    still = await stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=bearer(ORDERS))
    assert (still.session.id, still.session.status) == (mine.id, pb.Session.OPEN)


async def test_a_request_id_belongs_to_its_caller(served: Served) -> None:
    stub, request_id = served.stub, f"req-{new_order_id()}"
    first = await stub.CreateSession(
        cart_request(new_order_id(), request_id=request_id), metadata=bearer(ORDERS)
    )
    # The same id from another caller, for another payload, is that caller's own request.
    second = await stub.CreateSession(
        cart_request(new_order_id(), request_id=request_id), metadata=bearer(BILLING)
    )
    assert first.session.id != second.session.id


async def test_an_operator_reads_across_callers_without_client_secrets(served: Served) -> None:
    stub, order_id = served.stub, new_order_id()
    embedded = cart_request(
        order_id,
        ui_mode=pb.Session.EMBEDDED_PAGE,
        success_url="",
        return_url="https://shop.example/return?session={CHECKOUT_SESSION_ID}",
    )
    created = (await stub.CreateSession(embedded, metadata=bearer(ORDERS))).session
    assert created.client_secret
    operator = bearer(ONCALL)

    by_id = await stub.GetSession(api.GetSessionRequest(session_id=created.id), metadata=operator)
    by_order = await stub.GetSession(
        api.GetSessionRequest(order_id=order_id, caller="orders"), metadata=operator
    )
    listed = await stub.ListSessions(
        api.ListSessionsRequest(order_id=order_id, caller="orders"), metadata=operator
    )
    watched = await stub.WatchSession(
        api.WatchSessionRequest(order_id=order_id, caller="orders"), metadata=operator
    ).read()
    assert isinstance(watched, api.WatchSessionResponse)
    for session in (by_id.session, by_order.session, listed.sessions[0], watched.session):
        assert (session.id, session.caller) == (created.id, "orders")
        assert session.client_secret == ""

    with pytest.raises(grpc.aio.AioRpcError) as unnamed:
        await stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=operator)
    assert unnamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [
        v.field for v in detail(unnamed.value, error_details_pb2.BadRequest).field_violations
    ] == ["caller"]
    for write in (
        stub.CreateSession(cart_request(new_order_id()), metadata=operator),
        stub.ExpireSession(api.ExpireSessionRequest(session_id=created.id), metadata=operator),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await write
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason(denied.value) == "PERMISSION_DENIED"
    after = await stub.GetSession(api.GetSessionRequest(session_id=created.id), metadata=operator)
    assert after.session.status == pb.Session.OPEN


async def test_a_caller_cannot_name_another_callers_orders(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListSessions(
            api.ListSessionsRequest(order_id=new_order_id(), caller="orders"),
            metadata=bearer(BILLING),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_changed_callers_file_takes_effect_and_a_broken_one_is_ignored(
    served: Served,
) -> None:
    stub, newcomer = served.stub, new_token("shipping")
    request = api.ListSessionsRequest(order_id=new_order_id())
    assert await code_of(stub.ListSessions(request, metadata=bearer(newcomer))) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    served.callers_file.write_text(
        callers_document([*CALLERS, {"name": "shipping", "token": newcomer, "role": "caller"}])
    )

    async def newcomer_admitted() -> bool:
        try:
            await stub.ListSessions(request, metadata=bearer(newcomer))
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(newcomer_admitted, within_seconds=10)

    served.callers_file.write_text('{"callers": [{"name": "BROKEN"')
    await asyncio.sleep(0.5)  # several reload intervals
    await stub.ListSessions(request, metadata=bearer(newcomer))
    await stub.ListSessions(request, metadata=bearer(ORDERS))


async def test_a_page_token_is_good_only_for_its_own_order(served: Served) -> None:
    stub, order_id = served.stub, new_order_id()
    for carts in range(3):
        await stub.CreateSession(
            cart_request(order_id, customer_email=f"c{carts}@example.com"), metadata=bearer(ORDERS)
        )
    page = await stub.ListSessions(
        api.ListSessionsRequest(order_id=order_id, page_size=1), metadata=bearer(ORDERS)
    )
    token = page.next_page_token
    assert token
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[-3] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for request, metadata in (
        (api.ListSessionsRequest(order_id=order_id, page_token=tampered), bearer(ORDERS)),
        (api.ListSessionsRequest(order_id=new_order_id(), page_token=token), bearer(ORDERS)),
        (api.ListSessionsRequest(order_id=order_id, page_token=token), bearer(BILLING)),
        (api.ListSessionsRequest(order_id=order_id, page_token="x" * 40), bearer(ORDERS)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListSessions(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [
            v.field for v in detail(caught.value, error_details_pb2.BadRequest).field_violations
        ] == ["page_token"]
    second = await stub.ListSessions(
        api.ListSessionsRequest(order_id=order_id, page_size=1, page_token=token),
        metadata=bearer(ORDERS),
    )
    assert second.sessions[0].id != page.sessions[0].id


SPIFFE = "spiffe://cluster.local/ns/billing/sa/billing"


@dataclass
class Tls:
    app: Application
    folder: Path
    ca: Authority
    address: str


@pytest_asyncio.fixture
async def mutual_tls(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Tls]:
    ca = Authority("checkout test CA")
    cert, key = ca.server().write(tmp_path, "tls")
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(
        callers_document(
            [
                {"name": "billing", "certificate_name": SPIFFE, "role": "caller"},
                {"name": "orders", "token": ORDERS, "role": "caller"},
            ]
        )
    )
    settings = Settings.from_environ(
        {
            **environ,
            "CALLERS_FILE": str(callers_file),
            "TLS_CERT_FILE": str(cert),
            "TLS_KEY_FILE": str(key),
            "TLS_CLIENT_CA_FILE": str(tmp_path / "ca.crt"),
            "HEALTH_ADDR": "127.0.0.1:0",
        }
    )
    app = await start(settings)
    yield Tls(app, tmp_path, ca, f"localhost:{app.grpc_port}")
    await app.stop()


def tls_channel(tls: Tls, *, trust: bytes, client: tuple[bytes, bytes] | None) -> grpc.aio.Channel:
    key, cert = (client[1], client[0]) if client else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust, private_key=key, certificate_chain=cert
    )
    return grpc.aio.secure_channel(tls.address, credentials)


async def test_a_client_certificate_named_in_the_callers_file_is_a_caller(mutual_tls: Tls) -> None:
    named = mutual_tls.ca.client("billing-7f9c", uri=SPIFFE)
    async with tls_channel(
        mutual_tls, trust=mutual_tls.ca.pem, client=(named.cert, named.key)
    ) as ch:
        stub: Stub = api_grpc.CheckoutServiceStub(ch)
        created = await stub.CreateSession(cart_request(new_order_id()))
    assert created.session.caller == "billing"


async def test_a_certificate_not_named_needs_a_token(mutual_tls: Tls) -> None:
    stranger = mutual_tls.ca.client("stranger")
    async with tls_channel(
        mutual_tls, trust=mutual_tls.ca.pem, client=(stranger.cert, stranger.key)
    ) as ch:
        stub: Stub = api_grpc.CheckoutServiceStub(ch)
        request = api.ListSessionsRequest(order_id=new_order_id())
        assert await code_of(stub.ListSessions(request)) == grpc.StatusCode.UNAUTHENTICATED
        await stub.ListSessions(request, metadata=bearer(ORDERS))


async def test_without_a_client_certificate_the_handshake_fails(mutual_tls: Tls) -> None:
    async with tls_channel(mutual_tls, trust=mutual_tls.ca.pem, client=None) as ch:
        call = health_pb2_grpc.HealthStub(ch).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert await code_of(call) == grpc.StatusCode.UNAVAILABLE


async def test_kubelet_probes_health_in_plaintext_on_its_own_port(mutual_tls: Tls) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mutual_tls.app.health_port}") as ch:
        answer = await health_pb2_grpc.HealthStub(ch).Check(  # type: ignore[attr-defined]
            health_pb2.HealthCheckRequest()
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        plain: Stub = api_grpc.CheckoutServiceStub(ch)
        checkout = plain.ListSessions(api.ListSessionsRequest(order_id="x"))
        assert await code_of(checkout) == grpc.StatusCode.UNIMPLEMENTED


async def test_a_rotated_server_certificate_is_served_without_a_restart(mutual_tls: Tls) -> None:
    renewed_ca = Authority("checkout test CA, renewed")
    client = mutual_tls.ca.client("billing", uri=SPIFFE)

    async def handshake_trusting(ca: Authority) -> bool:
        async with tls_channel(mutual_tls, trust=ca.pem, client=(client.cert, client.key)) as ch:
            try:
                await health_pb2_grpc.HealthStub(ch).Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(), timeout=3
                )
            except grpc.aio.AioRpcError:
                return False
            return True

    assert not await handshake_trusting(renewed_ca)
    renewed_ca.server().write(mutual_tls.folder, "tls")

    async def renewed() -> bool:
        return await handshake_trusting(renewed_ca)

    await eventually(renewed, within_seconds=10)
