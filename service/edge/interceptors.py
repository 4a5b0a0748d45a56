"""What every RPC gets around its handler, in one wrapper (each extra wrapper costs every call):
a request id, the caller's deadline for the waits below, a span (when tracing is on), the
RPC metrics, and one access-log line. Authentication is the next interceptor in the list in
service/edge/server.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeAlias

import grpc
import structlog
from google.protobuf.message import DecodeError

from service.domain import deadlines
from service.domain.errors import FieldViolation, InvalidRequest
from service.edge.status import status_for
from service.observability import tracing
from service.observability.metrics import Metrics

log = structlog.get_logger("rpc")

REQUEST_ID_HEADER = "x-request-id"

# A string: grpc's classes are generic only in the type stubs, not at run time.
Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]]"
)


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class PerMethodInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor whose wrapper depends on the method alone (a call's own details are read
    from its context), so it is built once per method rather than on every call."""

    def __init__(self) -> None:
        self._wrapped: dict[str, Handler | None] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        method = handler_call_details.method
        if method not in self._wrapped:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            self._wrapped[method] = self._wrap(method, handler)
        return self._wrapped[method]

    def _wrap(self, method: str, handler: Handler) -> Handler | None:
        raise NotImplementedError


def around_calls(
    handler: Handler,
    before: Callable[[Any, Context], Awaitable[None]],
    scope: Callable[[str, Context], contextlib.AbstractContextManager[None]] | None = None,
    *,
    request_deserializer: Callable[[bytes], Any] | None,
) -> Handler | None:
    """`handler`, each call of which runs inside `scope(kind, context)` (if given) and first
    awaits `before(request, context)`. None for a client-streaming method: none of ours is,
    and one should not be served unwrapped."""

    def within(kind: str, context: Context) -> contextlib.AbstractContextManager[None]:
        return scope(kind, context) if scope is not None else contextlib.nullcontext()

    if handler.unary_unary is not None:
        unary: Any = handler.unary_unary

        async def call_unary(request: Any, context: Context) -> Any:
            with within("unary", context):
                await before(request, context)
                return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            call_unary,
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        server_stream: Any = handler.unary_stream

        async def call_server_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            with within("server_stream", context):
                await before(request, context)
                async for response in server_stream(request, context):
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            call_server_stream,
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:
        bidi: Any = handler.stream_stream

        async def call_bidi(requests: Any, context: Context) -> AsyncIterator[Any]:
            with within("bidi_stream", context):
                await before(None, context)
                async for response in bidi(requests, context):
                    yield response

        return grpc.stream_stream_rpc_method_handler(
            call_bidi,
            request_deserializer=request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return None


class ObservingInterceptor(PerMethodInterceptor):
    """One access-log line per RPC with its method, caller, final code and duration; a request
    id (from `x-request-id`, or made up) bound to every line logged while it runs; the gRPC
    server metrics; and, with `traced`, a span continuing the caller's trace."""

    def __init__(self, metrics: Metrics, *, traced: bool) -> None:
        super().__init__()
        self._metrics = metrics
        self._traced = traced
        # Each method's metric series, looked up once: `labels()` is a dict lookup behind a
        # lock, on every call otherwise.
        self._series: dict[tuple[str, str], _Series] = {}

    def _wrap(self, method: str, handler: Handler) -> Handler | None:
        if handler.stream_stream is not None:
            return handler  # reflection: not one of the service's calls

        def observed(kind: str, context: Context) -> contextlib.AbstractContextManager[None]:
            return self._observe(method, kind, context)

        return around_calls(
            handler,
            _refuse_undecodable,
            observed,
            request_deserializer=_tolerant(handler.request_deserializer),
        )

    @contextlib.contextmanager
    def _observe(
        self,
        method: str,
        kind: str,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Iterator[None]:
        metadata = context.invocation_metadata() or ()
        incoming = {key: value for key, value in metadata if isinstance(value, str)}
        request_id = incoming.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        series = self._series.get((method, kind))
        if series is None:
            series = self._series[(method, kind)] = _Series(self._metrics, method, kind)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # Every wait below (Stripe, Postgres) fits in what is left of the caller's deadline.
        deadlines.set_deadline(context.time_remaining())
        series.started.inc()
        started = time.perf_counter()
        outcome: type[BaseException] | None = None
        # The access-log line is written inside the span, so that it carries the trace id.
        with tracing.server_span(method, incoming) if self._traced else contextlib.nullcontext():
            try:
                yield
            except BaseException as exc:
                outcome = type(exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                code = _final_code(context, outcome)
                series.handled(code).inc()
                series.seconds.observe(elapsed)
                # A line per failed call; successful ones only at debug, since the metrics
                # above count and time every call and a line each is most of an RPC's cost.
                (log.debug if code == "OK" else log.info)(
                    "rpc", method=method, code=code, duration_ms=round(elapsed * 1000, 1)
                )
                structlog.contextvars.unbind_contextvars("request_id", "caller")


class _Series:
    """One method's RPC metrics."""

    def __init__(self, metrics: Metrics, method: str, kind: str) -> None:
        service, _, name = method.lstrip("/").partition("/")
        self._labels = (kind, service, name)
        self._metrics = metrics
        self.started = metrics.rpc_started.labels(*self._labels)
        self.seconds = metrics.rpc_seconds.labels(*self._labels)
        self._handled: dict[str, Any] = {}

    def handled(self, code: str) -> Any:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = self._metrics.rpc_handled.labels(*self._labels, code)
        return child


class _Undecodable:
    """What a request that is not a valid message of its type parses to."""


_UNDECODABLE = _Undecodable()


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """grpc answers a request its deserializer cannot parse with UNKNOWN; keep the failure
    for the handler to refuse as INVALID_ARGUMENT instead."""
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _UNDECODABLE

    return parse


async def _refuse_undecodable(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    if request is _UNDECODABLE:
        await context.abort_with_status(
            status_for(
                InvalidRequest(
                    [FieldViolation("request", "not a valid protobuf message of its type")]
                )
            )
        )


def _final_code(
    context: grpc.aio.ServicerContext[Any, Any], raised: type[BaseException] | None
) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if code is not None:
        # grpc.aio reports an abort's code as the bare integer of grpc's C core.
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if raised is None:
        return "OK"
    if issubclass(raised, asyncio.CancelledError):
        # The caller's deadline passed or it went away; gRPC cancelled the handler.
        return "CANCELLED"
    return "UNKNOWN"
