"""Callers and secrets: bearer tokens and client certificates named in CALLERS_FILE, each
caller's orders its own, operators read-only and never shown a client_secret, the file and the
certificates re-read when they change, page tokens bound to their order."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from structlog.testing import capture_logs

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import Authority, Pem, callers_document, new_token
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


async def test_a_callers_file_too_deep_to_parse_is_ignored_and_later_changes_still_apply(
    served: Served,
) -> None:
    """Nesting past the parser's stack raised RecursionError, which ended the task that
    re-reads the file, silently: every later change, a revocation included, went unheard."""
    stub, request = served.stub, api.ListSessionsRequest(order_id=new_order_id())
    with capture_logs() as logs:
        served.callers_file.write_text("[" * 5_000 + "]" * 5_000)

        async def ignored() -> bool:
            return any(
                line["event"] == "callers file change ignored; the last good one stays"
                and "RecursionError" in line["error"]
                for line in logs
            )

        await eventually(ignored, within_seconds=10)
    await stub.ListSessions(request, metadata=bearer(BILLING))

    served.callers_file.write_text(callers_document([c for c in CALLERS if c["name"] != "billing"]))

    async def billing_revoked() -> bool:
        try:
            await stub.ListSessions(request, metadata=bearer(BILLING))
        except grpc.aio.AioRpcError as error:
            return error.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(billing_revoked, within_seconds=10)
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


@asynccontextmanager
async def serving_mutual_tls(
    environ: dict[str, str], folder: Path, callers: list[dict[str, str]]
) -> AsyncIterator[Tls]:
    ca = Authority("checkout test CA")
    cert, key = ca.server().write(folder, "tls")
    (folder / "ca.crt").write_bytes(ca.pem)
    callers_file = folder / "callers.json"
    callers_file.write_text(callers_document(callers))
    settings = Settings.from_environ(
        {
            **environ,
            "CALLERS_FILE": str(callers_file),
            "TLS_CERT_FILE": str(cert),
            "TLS_KEY_FILE": str(key),
            "TLS_CLIENT_CA_FILE": str(folder / "ca.crt"),
            "HEALTH_ADDR": "127.0.0.1:0",
        }
    )
    app = await start(settings)
    try:
        yield Tls(app, folder, ca, f"localhost:{app.grpc_port}")
    finally:
        await app.stop()


@pytest_asyncio.fixture
async def mutual_tls(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Tls]:
    callers = [
        {"name": "billing", "certificate_name": SPIFFE, "role": "caller"},
        {"name": "orders", "token": ORDERS, "role": "caller"},
    ]
    async with serving_mutual_tls(environ, tmp_path, callers) as tls:
        yield tls


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


INVENTORY_DNS = "inventory.shop.internal"
LEGACY_CN = "legacy-batch"
OTHER_SPIFFE = "spiffe://cluster.local/ns/attacker/sa/default"


@pytest_asyncio.fixture
async def identities(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Tls]:
    """Callers named each way a certificate can name one."""
    callers = [
        {"name": "billing", "certificate_name": SPIFFE, "role": "caller"},
        {"name": "inventory", "certificate_name": INVENTORY_DNS, "role": "caller"},
        {
            "name": "legacy",
            "certificate_name": LEGACY_CN,
            "certificate_match": "common_name",
            "role": "caller",
        },
        {"name": "orders", "token": ORDERS, "role": "caller"},
    ]
    async with serving_mutual_tls(environ, tmp_path, callers) as tls:
        yield tls


async def caller_of(tls: Tls, client: Pem, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    """Whose orders a call with this certificate (and metadata) reaches; raises if refused."""
    async with tls_channel(tls, trust=tls.ca.pem, client=(client.cert, client.key)) as ch:
        stub: Stub = api_grpc.CheckoutServiceStub(ch)
        created = await stub.CreateSession(cart_request(new_order_id()), metadata=metadata)
    return created.session.caller


async def refusal_of(
    tls: Tls, client: Pem, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await caller_of(tls, client, metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return caught.value


async def test_a_certificate_with_a_uri_san_is_named_by_it_alone(mutual_tls: Tls) -> None:
    """The CN, which a requester may choose at the issuer, cannot claim another workload's
    URI, and neither can a DNS SAN: a URI names a caller only as a URI SAN."""
    ca = mutual_tls.ca
    assert await caller_of(mutual_tls, ca.client("billing-7f9c", uri=SPIFFE)) == "billing"
    await refusal_of(mutual_tls, ca.client(SPIFFE, uri=OTHER_SPIFFE))
    await refusal_of(mutual_tls, ca.client(SPIFFE))
    await refusal_of(mutual_tls, ca.client("billing-7f9c", dns=(SPIFFE,)))


async def test_without_uri_sans_a_dns_san_names_it_and_a_cn_only_when_asked(
    identities: Tls,
) -> None:
    ca = identities.ca
    assert await caller_of(identities, ca.client("pod-1", dns=(INVENTORY_DNS,))) == "inventory"
    # Beside a URI SAN, a DNS SAN names no one.
    await refusal_of(identities, ca.client("pod-1", uri=OTHER_SPIFFE, dns=(INVENTORY_DNS,)))
    # A CN names a caller only for a certificate without SANs, and an entry that asks for it.
    assert await caller_of(identities, ca.client(LEGACY_CN)) == "legacy"
    await refusal_of(identities, ca.client(INVENTORY_DNS))
    await refusal_of(identities, ca.client(LEGACY_CN, dns=("batch.shop.internal",)))
    await refusal_of(identities, ca.client(LEGACY_CN, uri=OTHER_SPIFFE))


async def test_a_certificate_and_a_token_must_name_the_same_caller(mutual_tls: Tls) -> None:
    """A certificate used to win over the token sent with it."""
    billing = mutual_tls.ca.client("billing-7f9c", uri=SPIFFE)
    disagree = await refusal_of(mutual_tls, billing, bearer(ORDERS))
    assert "name different callers" in (disagree.details() or "")
    unknown_token = new_token("stranger")
    no_one = await refusal_of(mutual_tls, billing, bearer(unknown_token))
    assert "token names no caller" in (no_one.details() or "")
    for refused in (disagree, no_one):
        said = f"{refused.details()} {refused.debug_error_string()}"
        assert ORDERS not in said and unknown_token not in said and SPIFFE not in said
    # A certificate that names no one leaves the token to decide, as before.
    assert await caller_of(mutual_tls, mutual_tls.ca.client("grpcurl"), bearer(ORDERS)) == "orders"
