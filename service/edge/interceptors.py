"""Cross-cutting concerns of every RPC. Each interceptor wraps the handler's behaviour; later
ones (authentication, metrics, tracing) go in the same list in service/edge/server.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import structlog

from service.domain import deadlines

log = structlog.get_logger("rpc")

REQUEST_ID_HEADER = "x-request-id"

# A string: grpc's classes are generic only in the type stubs, not at run time.
Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]]"
)


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """One log line per RPC with its method, final code and duration, and a request id bound
    to every line logged while it runs (taken from `x-request-id` or made up)."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        incoming = dict(handler_call_details.invocation_metadata or ())
        request_id = str(incoming.get(REQUEST_ID_HEADER) or uuid.uuid4())

        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                with _AccessLogScope(method, request_id, context):
                    return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                with _AccessLogScope(method, request_id, context):
                    async for response in inner_stream(request, context):
                        yield response

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


class _AccessLogScope:
    """One RPC's access-log line, written when the handler ends, with its request id bound."""

    def __init__(
        self, method: str, request_id: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        self._method = method
        self._request_id = request_id
        self._context = context
        self._started = 0.0

    def __enter__(self) -> None:
        structlog.contextvars.bind_contextvars(request_id=self._request_id)
        # Every wait below (Stripe, Postgres) fits in what is left of the caller's deadline.
        deadlines.set_deadline(self._context.time_remaining())
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        code = self._context.code()
        if code is None and kind is None:
            code = grpc.StatusCode.OK
        elif code is None and issubclass(kind, asyncio.CancelledError):
            # The caller's deadline passed or it went away; gRPC cancelled the handler.
            code = grpc.StatusCode.CANCELLED
        elif code is None:
            code = grpc.StatusCode.UNKNOWN
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        log.info(
            "rpc",
            method=self._method,
            code=name,
            duration_ms=round((time.perf_counter() - self._started) * 1000, 1),
        )
        structlog.contextvars.unbind_contextvars("request_id", "caller")
