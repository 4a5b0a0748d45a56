"""Stripe's webhooks: verified on the raw bytes, applied once, re-read from Stripe, and seen by
watchers on every replica (docs/architecture.md, "Webhooks and the sweep")."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
import stripe

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id
from tests.e2e.processes import service_process
from tests.support import eventually


@pytest.fixture(autouse=True)
def sandbox_deliveries_paused(sandbox: Sandbox) -> Iterator[None]:
    """These tests play Stripe's part themselves; the sandbox's own deliveries would race them."""
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    yield
    sandbox.control("POST", "/_sandbox/webhooks/resume")


async def stripe_event(sandbox: Sandbox, session_id: str, kind: str) -> bytes:
    session = await sandbox.client.v1.checkout.sessions.retrieve_async(session_id)
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": session.to_dict()},
    }
    return json.dumps(event).encode()


def signature(payload: bytes, secret: str, at: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, at))


async def deliver(port: int, payload: bytes, header: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/stripe/webhook", data=payload, headers=headers) as r,
    ):
        return r.status, await r.json()


async def expired_behind_our_back(stub: Stub, sandbox: Sandbox) -> tuple[str, bytes]:
    created = await stub.CreateSession(cart_request(new_order_id()))
    await sandbox.client.v1.checkout.sessions.expire_async(created.session.id)
    return created.session.id, await stripe_event(
        sandbox, created.session.id, "checkout.session.expired"
    )


async def status_of(stub: Stub, session_id: str) -> int:
    got = await stub.GetSession(api.GetSessionRequest(session_id=session_id))
    return int(got.session.status)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "t=1,v1=deadbeef",
        "garbage",
        "wrong secret",
        "stale",
    ],
)
async def test_a_bad_signature_is_refused_and_changes_nothing(
    app: Application,
    stub: Stub,
    sandbox: Sandbox,
    db: asyncpg.Pool,
    header: str | None,
    webhook_secret: str,
) -> None:
    session_id, payload = await expired_behind_our_back(stub, sandbox)
    if header == "wrong secret":
        header = signature(payload, "whsec_forged")
    elif header == "stale":
        header = signature(payload, webhook_secret, at=int(time.time()) - 301)

    status, body = await deliver(app.http_port, payload, header)

    assert status == 400
    assert "bad signature" in body["error"]
    assert webhook_secret not in json.dumps(body)
    assert await status_of(stub, session_id) == pb.Session.OPEN
    event_id = json.loads(payload)["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM stripe_events WHERE event_id = $1", event_id) == 0
    )


async def test_a_signed_event_is_applied_once(
    app: Application,
    stub: Stub,
    sandbox: Sandbox,
    db: asyncpg.Pool,
    webhook_secret: str,
) -> None:
    session_id, payload = await expired_behind_our_back(stub, sandbox)

    first = await deliver(app.http_port, payload, signature(payload, webhook_secret))
    again = await deliver(app.http_port, payload, signature(payload, webhook_secret))

    assert first == (200, {"received": True, "outcome": "applied"})
    assert again == (200, {"received": True, "outcome": "duplicate"})
    assert await status_of(stub, session_id) == pb.Session.EXPIRED
    event_id = json.loads(payload)["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM stripe_events WHERE event_id = $1", event_id) == 1
    )


async def test_a_stale_event_cannot_move_a_session_back(
    app: Application, stub: Stub, sandbox: Sandbox, webhook_secret: str
) -> None:
    created = await stub.CreateSession(cart_request(new_order_id()))
    # An event captured while the session was open, delivered after it expired.
    old_payload = await stripe_event(sandbox, created.session.id, "checkout.session.completed")
    await stub.ExpireSession(api.ExpireSessionRequest(session_id=created.session.id))

    status, body = await deliver(app.http_port, old_payload, signature(old_payload, webhook_secret))

    # The service re-reads Stripe instead of trusting the payload: still expired.
    assert (status, body["outcome"]) == (200, "applied")
    assert await status_of(stub, created.session.id) == pb.Session.EXPIRED


async def test_events_about_other_integrations_sessions_are_acknowledged_and_ignored(
    app: Application, sandbox: Sandbox, webhook_secret: str
) -> None:
    foreign = await sandbox.client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 100,
                        "product_data": {"name": "Not ours"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://elsewhere.example/done",
        }
    )
    payload = await stripe_event(sandbox, foreign.id, "checkout.session.expired")

    assert await deliver(app.http_port, payload, signature(payload, webhook_secret)) == (
        200,
        {"received": True, "outcome": "ignored"},
    )


async def test_an_event_for_a_session_not_stored_yet_is_deferred_for_stripe_to_retry(
    app: Application, sandbox: Sandbox, db: asyncpg.Pool, webhook_secret: str
) -> None:
    order_id = new_order_id()
    # The order's creation is under way: Stripe has the session, the ledger only a pending row.
    await db.execute(
        """INSERT INTO checkout_sessions
               (caller, order_id, state, fingerprint, idempotency_key, stripe_params,
                expires_at)
           VALUES ('local', $1, 'pending', 'fp', $2, '{}'::jsonb, now() + interval '1 day')""",
        order_id,
        str(uuid.uuid4()),
    )
    at_stripe = await sandbox.client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 100,
                        "product_data": {"name": "Mug"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://shop.example/done",
            "client_reference_id": order_id,
            "metadata": {"order_id": order_id},
        }
    )
    payload = await stripe_event(sandbox, at_stripe.id, "checkout.session.expired")

    status, _ = await deliver(app.http_port, payload, signature(payload, webhook_secret))

    assert status == 503
    event_id = json.loads(payload)["id"]
    assert (
        await db.fetchval("SELECT count(*) FROM stripe_events WHERE event_id = $1", event_id) == 0
    )


async def test_a_watcher_on_one_replica_sees_a_webhook_received_by_another(
    environ: dict[str, str],
    pg_dsn: str,
    stub: Stub,
    sandbox: Sandbox,
    webhook_secret: str,
) -> None:
    session_id, payload = await expired_behind_our_back(stub, sandbox)
    async with service_process({**environ, "DATABASE_URL": pg_dsn}) as other_replica:
        seen: list[api.WatchSessionResponse] = []

        async def watch() -> None:
            async for update in stub.WatchSession(
                api.WatchSessionRequest(session_id=session_id), timeout=30
            ):
                seen.append(update)

        async def watching() -> bool:
            return bool(seen)

        watcher = asyncio.create_task(watch())
        await eventually(watching)
        status, _ = await deliver(
            other_replica.http_port, payload, signature(payload, webhook_secret)
        )
        await asyncio.wait_for(watcher, timeout=10)

    assert status == 200
    assert [u.session.status for u in seen] == [pb.Session.OPEN, pb.Session.EXPIRED]
    assert {u.session.id for u in seen} == {session_id}


async def test_watch_ends_at_the_deadline_when_nothing_happens(
    stub: Stub,
) -> None:
    created = await stub.CreateSession(cart_request(new_order_id()))
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for update in stub.WatchSession(
            api.WatchSessionRequest(order_id=created.session.order_id), timeout=1
        ):
            seen.append(update.session.status)
    assert seen == [pb.Session.OPEN]
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
