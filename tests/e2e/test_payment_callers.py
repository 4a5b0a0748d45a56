"""Who may move money (CALLERS_FILE): a caller captures and releases its own orders' payments,
refunds them only with `may_refund`, never another caller's; operators stay read-only. Every
capture, cancel and refund is logged with the caller, the order and the amount, and counted by
caller and outcome."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import payments_pb2 as pay
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import callers_document, new_token
from tests.e2e.helpers import Sandbox, Stub, cart_request, new_order_id, reason
from tests.e2e.payments import capture, refund
from tests.e2e.processes import service_process
from tests.support import eventually

SHOP, WAREHOUSE, ONCALL = new_token("shop"), new_token("warehouse"), new_token("oncall")
CALLERS: list[dict[str, Any]] = [
    {"name": "shop", "token": SHOP, "role": "caller", "may_refund": True},
    {"name": "warehouse", "token": WAREHOUSE, "role": "caller"},
    {"name": "oncall", "token": ONCALL, "role": "operator"},
]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest_asyncio.fixture
async def guarded(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Stub, int]]:
    """A server with the callers above; its stub and its HTTP port."""
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(CALLERS))
    app = await start(Settings.from_environ({**environ, "CALLERS_FILE": str(callers_file)}))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield api_grpc.CheckoutServiceStub(channel), app.http_port
    await app.stop()


async def paid(stub: Stub, sandbox: Sandbox, token: str) -> str:
    """A new order of the token's caller, its card authorised for a manual capture."""
    order_id = new_order_id()
    created = await stub.CreateSession(
        cart_request(order_id, capture_method=pay.Payment.MANUAL), metadata=bearer(token)
    )
    sandbox.pay(created.session.id, payment_status="paid")
    return order_id


async def test_refunds_need_may_refund_while_captures_need_only_the_caller_role(
    guarded: tuple[Stub, int], sandbox: Sandbox
) -> None:
    stub, _ = guarded
    order_id = await paid(stub, sandbox, WAREHOUSE)

    captured = await stub.CapturePayment(capture(order_id), metadata=bearer(WAREHOUSE))
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.RefundPayment(refund(order_id, 100), metadata=bearer(WAREHOUSE))

    assert captured.session.payment.status == pay.Payment.SUCCEEDED
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may_refund" in (denied.value.details() or "")
    shop_order = await paid(stub, sandbox, SHOP)
    await stub.CapturePayment(capture(shop_order), metadata=bearer(SHOP))
    made = await stub.RefundPayment(refund(shop_order, 100), metadata=bearer(SHOP))
    assert made.refund.amount == 100


async def test_another_callers_payment_is_not_found_and_operators_only_read(
    app: Application, guarded: tuple[Stub, int], sandbox: Sandbox
) -> None:
    """`app` receives the sandbox's webhooks for the shared ledger."""
    stub, _ = guarded
    order_id = await paid(stub, sandbox, SHOP)
    session = (
        await stub.GetSession(api.GetSessionRequest(order_id=order_id), metadata=bearer(SHOP))
    ).session

    # Without may_refund, a refund is refused for that before the session is looked up.
    for token, codes in (
        (WAREHOUSE, [grpc.StatusCode.NOT_FOUND] * 2 + [grpc.StatusCode.PERMISSION_DENIED]),
        (ONCALL, [grpc.StatusCode.PERMISSION_DENIED] * 3),
    ):
        calls: tuple[Awaitable[object], ...] = (
            stub.CapturePayment(capture("", session_id=session.id), metadata=bearer(token)),
            stub.CancelPayment(
                api.CancelPaymentRequest(session_id=session.id, request_id="r-1"),
                metadata=bearer(token),
            ),
            stub.RefundPayment(refund("", session_id=session.id), metadata=bearer(token)),
        )
        for call, code in zip(calls, codes, strict=True):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == code

    async def authorised() -> bool:
        read = await stub.GetSession(
            api.GetSessionRequest(session_id=session.id), metadata=bearer(ONCALL)
        )
        return read.session.payment.status == pay.Payment.REQUIRES_CAPTURE

    await eventually(authorised)


async def test_every_money_call_is_logged_with_caller_order_and_amount_and_counted(
    environ: dict[str, str], pg_dsn: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document(CALLERS))
    env = {**environ, "DATABASE_URL": pg_dsn, "CALLERS_FILE": str(callers_file)}
    async with service_process(env) as replica:
        order_id = await paid(replica.stub, sandbox, SHOP)
        await replica.stub.CapturePayment(capture(order_id, 3000), metadata=bearer(SHOP))
        await replica.stub.RefundPayment(refund(order_id, 500), metadata=bearer(SHOP))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await replica.stub.RefundPayment(refund(order_id, 2501), metadata=bearer(SHOP))
        read = await replica.stub.GetSession(
            api.GetSessionRequest(order_id=order_id), metadata=bearer(SHOP)
        )
        async with aiohttp.ClientSession() as http:
            metrics = await (await http.get(f"http://127.0.0.1:{replica.http_port}/metrics")).text()
        replica.process.terminate()
        await replica.drain_output()

    assert reason(refused.value) == "REFUND_EXCEEDS_CAPTURED"
    lines = [line for line in replica.lines if line.get("event") == "payment operation"]
    shown = [
        (line["operation"], line["caller"], line["order_id"], line["amount"], line["code"])
        for line in lines
    ]
    assert shown == [
        ("capture", "shop", order_id, 3000, "OK"),
        ("refund", "shop", order_id, 500, "OK"),
        ("refund", "shop", order_id, 2501, "FAILED_PRECONDITION"),
    ]
    assert all(SHOP not in json.dumps(line) for line in replica.lines)
    counted = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in metrics.splitlines()
        if line.startswith("checkout_payment_operations_total{")
    }
    assert counted == {
        'checkout_payment_operations_total{caller="shop",code="OK",operation="capture"}': 1.0,
        'checkout_payment_operations_total{caller="shop",code="OK",operation="refund"}': 1.0,
        'checkout_payment_operations_total{caller="shop",code="FAILED_PRECONDITION",'
        'operation="refund"}': 1.0,
    }
    assert (read.session.payment.amount_captured, read.session.payment.amount_refunded) == (
        3000,
        500,
    )
