"""What the end-to-end tests share: building requests, and reading rich error details back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb

M = TypeVar("M", bound=Message)


async def eventually(check: Callable[[], Awaitable[bool]], within_seconds: float = 20) -> None:
    """Wait until `check()` holds: for effects that other processes apply on their own time."""
    async with asyncio.timeout(within_seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def new_order_id() -> str:
    return f"order-{uuid.uuid4().hex[:12]}"


def cart_request(order_id: str, **overrides: Any) -> api.CreateSessionRequest:
    """The issue's example: two inline-priced lines on a hosted page, paid in USD."""
    fields: dict[str, Any] = {
        "order_id": order_id,
        "mode": pb.Session.PAYMENT,
        "ui_mode": pb.Session.HOSTED_PAGE,
        "currency": "usd",
        "line_items": [
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(
                    unit_amount=1500, product_name="T-shirt"
                ),
                quantity=2,
            ),
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(unit_amount=990, product_name="Mug"),
                quantity=1,
            ),
        ],
        "success_url": "https://shop.example/done?cs={CHECKOUT_SESSION_ID}",
    }
    fields.update(overrides)
    return api.CreateSessionRequest(**fields)


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M:
    """The one detail of `kind` in the error's google.rpc.Status; fails if absent."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    for any_detail in status.details:
        if any_detail.Is(kind.DESCRIPTOR):
            message = kind()
            any_detail.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in {error.code()}: {error.details()}")


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in detail(error, error_details_pb2.BadRequest).field_violations]


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(detail(error, error_details_pb2.ErrorInfo).reason)
