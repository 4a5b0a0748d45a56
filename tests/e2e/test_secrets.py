"""Secrets stay secret: a whole scenario (create, read, watch, pay through the signed webhook,
expire, and every error path) at LOG_LEVEL=debug, with distinctive secrets; none of them, no
client_secret and no database password appears in any log line, status message or detail."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path

import grpc
import httpx
import pytest

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb
from service.app import Application
from tests.e2e.credentials import callers_document, new_token
from tests.e2e.helpers import Sandbox, cart_request, new_order_id
from tests.e2e.processes import service_process


def with_password(dsn: str, password: str) -> str:
    """The test Postgres trusts local connections, so a password is carried but not needed."""
    scheme, rest = dsn.split("://", 1)
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] or "postgres"
    return f"{scheme}://{user}:{password}@{host}"


async def test_no_secret_reaches_a_log_line_a_status_or_a_detail(
    environ: dict[str, str], sandbox: Sandbox, app: Application, tmp_path: Path
) -> None:
    # The suite's in-process server (`app`) receives the sandbox's webhooks and writes the
    # shared ledger; the process under test learns of the payment through Postgres.
    del app
    stripe_key = f"sk_test_LEAK{secrets.token_hex(12)}"
    db_password = f"pw{secrets.token_hex(12)}"
    token, operator_token = new_token("orders"), new_token("oncall")
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(
        callers_document(
            [
                {"name": "orders", "token": token, "role": "caller"},
                {"name": "oncall", "token": operator_token, "role": "operator"},
            ]
        )
    )
    env = {
        **environ,
        "STRIPE_API_KEY": stripe_key,
        "CALLERS_FILE": str(callers_file),
        "DATABASE_URL": with_password(environ["DATABASE_URL"], db_password),
    }
    answers: list[str] = []
    caller = (("authorization", f"Bearer {token}"),)
    operator = (("authorization", f"Bearer {operator_token}"),)
    order_id = new_order_id()

    async def refused(call: object) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call  # type: ignore[misc]
        error = caught.value
        answers.append(f"{error.code()} {error.details()} {error.debug_error_string()}")
        answers.extend(repr(value) for _, value in error.trailing_metadata() or ())

    async with service_process(env, log_level="debug") as running:
        stub = running.stub
        created = (
            await stub.CreateSession(
                cart_request(
                    order_id,
                    ui_mode=pb.Session.EMBEDDED_PAGE,
                    success_url="",
                    return_url="https://shop.example/return?session={CHECKOUT_SESSION_ID}",
                ),
                metadata=caller,
            )
        ).session
        assert created.client_secret
        watch = stub.WatchSession(api.WatchSessionRequest(order_id=order_id), metadata=caller)
        first = await watch.read()
        assert isinstance(first, api.WatchSessionResponse)
        assert first.session.status == pb.Session.OPEN
        sandbox.pay(created.id, payment_status="paid")
        paid = await asyncio.wait_for(watch.read(), timeout=20)
        assert isinstance(paid, api.WatchSessionResponse)
        assert paid.session.payment_status == pb.Session.PAID
        await stub.GetSession(api.GetSessionRequest(session_id=created.id), metadata=operator)

        await refused(
            stub.ExpireSession(api.ExpireSessionRequest(order_id=order_id), metadata=caller)
        )
        await refused(stub.CreateSession(cart_request(order_id), metadata=caller))
        await refused(stub.CreateSession(cart_request(new_order_id())))
        await refused(
            stub.CreateSession(
                cart_request(new_order_id()), metadata=(("authorization", f"Bearer {token}x"),)
            )
        )
        await refused(stub.CreateSession(cart_request(new_order_id()), metadata=operator))
        await refused(
            stub.GetSession(api.GetSessionRequest(session_id="cs_test_nope"), metadata=caller)
        )
        await refused(
            stub.CreateSession(cart_request(new_order_id(), currency="usdx"), metadata=caller)
        )
        await refused(
            stub.ListSessions(
                api.ListSessionsRequest(order_id=order_id, page_token="bm90LWEtdG9rZW4"),
                metadata=caller,
            )
        )
        async with httpx.AsyncClient() as http:
            forged = await http.post(
                f"http://127.0.0.1:{running.http_port}/stripe/webhook",
                content=b'{"id": "evt_1"}',
                headers={"Stripe-Signature": f"t=1,v1={secrets.token_hex(32)}"},
            )
            answers.append(forged.text)
        running.process.send_signal(signal.SIGTERM)
        await running.next_event("stopped")
        assert running.process.stdout is not None
        rest = (await running.process.stdout.read()).decode()

    logged = json.dumps(running.lines) + rest
    webhook_secret = environ["STRIPE_WEBHOOK_SECRET"]
    everything = logged + "\n".join(answers)
    for secret in (
        stripe_key,
        webhook_secret,
        token,
        operator_token,
        created.client_secret,
        db_password,
    ):
        assert secret not in everything
    assert forged.status_code == 400
    assert len(answers) >= 9
    rpc_lines = [line for line in running.lines if line.get("event") == "rpc"]
    assert {"orders", "oncall"} <= {line.get("caller") for line in rpc_lines}
