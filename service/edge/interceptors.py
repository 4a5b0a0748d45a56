"""What every RPC gets around its handler, in one wrapper built once per method (each extra
wrapper, and each extra interceptor, costs every call): a request id, the caller's deadline for
the waits below, a span (when tracing is on), the RPC metrics, one access-log line, the caller
(auth.py), and, for the calls that act on an order, the refusal while the ledger may lack
sessions Stripe has (after a database failover: service/store/failover.py)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import structlog
from google.protobuf.message import DecodeError

from service.domain import deadlines, rate_limits
from service.domain.errors import CheckoutError, FieldViolation, InvalidRequest, Unauthenticated
from service.domain.model import Caller
from service.edge.auth import Authenticator, Context, Metadata, header_value
from service.edge.auth import refuse as auth_refuse
from service.edge.quotas import CallerQuotas
from service.edge.status import status_for
from service.observability import tracing
from service.observability.metrics import Metrics

log = structlog.get_logger("rpc")

REQUEST_ID_HEADER = "x-request-id"
# The calls that act on an order: after a database failover they wait until the ledger is
# reconciled with Stripe, lest they act on an order whose latest session the failover lost
# (a new session beside a payable one, an expiry that leaves it payable, a refund refused).
WRITES = frozenset(
    f"/checkout.v1.CheckoutService/{name}"
    for name in (
        "CreateSession",
        "ExpireSession",
        "CapturePayment",
        "CancelPayment",
        "RefundPayment",
    )
)

# Strings: grpc's classes are generic only in the type stubs, not at run time.
Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]]"
)
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """One access-log line per RPC with its method, caller, final code and duration; a request
    id (from `x-request-id`, or made up) bound to every line logged while it runs; the gRPC
    server metrics; with `traced`, a span continuing the caller's trace; the caller, for
    every method the authenticator says needs one; and that caller's share of Stripe's rate
    limit, bound to the RPC (quotas.py); for the WRITES, `hold_writes()`, which raises while
    they must wait."""

    def __init__(
        self,
        metrics: Metrics,
        authenticator: Authenticator,
        quotas: CallerQuotas,
        *,
        traced: bool,
        hold_writes: Callable[[], None] | None = None,
    ) -> None:
        self._metrics = metrics
        self._auth = authenticator
        self._quotas = quotas
        self._traced = traced
        self._hold_writes = hold_writes
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
        """`handler` with everything above; None for a client-streaming method: none of ours
        is, and one should not be served unwrapped."""
        calls = _Calls(
            method,
            _tolerant(handler.request_deserializer),
            self._auth,
            self._quotas,
            self._metrics,
            traced=self._traced,
            hold=self._hold_writes if method in WRITES else None,
        )
        if handler.unary_unary is not None:
            return calls.unary(handler.unary_unary, handler.response_serializer)
        if handler.unary_stream is not None:
            return calls.server_stream(handler.unary_stream, handler.response_serializer)
        if handler.stream_stream is not None:
            # Reflection: not one of the service's calls, so not observed; authenticated
            # unless REFLECTION=open.
            if not calls.authenticated:
                return handler
            bidi: Any = handler.stream_stream
            enter = self._auth.enter

            async def call_bidi(requests: Any, context: Context) -> AsyncIterator[Any]:
                await enter(context.invocation_metadata() or (), context)
                async for response in bidi(requests, context):
                    yield response

            return grpc.stream_stream_rpc_method_handler(
                call_bidi,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return None


class _Calls:
    """The wrappers of one method's handler, and what they share, looked up once."""

    def __init__(
        self,
        method: str,
        deserialize: Callable[[bytes], Any] | None,
        authenticator: Authenticator,
        quotas: CallerQuotas,
        metrics: Metrics,
        *,
        traced: bool,
        hold: Callable[[], None] | None,
    ) -> None:
        self.method = method
        self._hold = hold
        self.authenticated = authenticator.required(method)
        self.deserialize = deserialize
        self._identify = authenticator.identify
        self._bind = quotas.bind
        self._metrics = metrics
        self._traced = traced
        # Loggers are configured once, before the first call: a successful call's line is
        # skipped outright unless it would be written.
        self._log_ok = log.is_enabled_for(logging.DEBUG)

    def begin(self, series: _Series, request: Any, context: Context) -> tuple[_Call, Any]:
        """The call started, its request id and caller bound; and None if it may go on, or
        what refuses it: not a message of its type (first), why it has no caller, or why it
        must wait."""
        metadata = context.invocation_metadata() or ()
        caller = None
        refusal: CheckoutError | _Undecodable | None = None
        if self.authenticated:
            found = self._identify(metadata, context)
            if isinstance(found, Unauthenticated):
                refusal = found
            else:
                caller = found
                self._bind(found)
        if self._hold is not None and refusal is None:
            try:
                self._hold()
            except CheckoutError as exc:
                refusal = exc
        if request is _UNDECODABLE:
            refusal = _UNDECODABLE
        call = _Call(series, self.method, context, metadata, caller, self._traced, self._log_ok)
        return call, refusal

    def unary(self, unary: Any, serialize: Any) -> Handler:
        series = _Series(self._metrics, self.method, "unary")
        begin = self.begin

        # Written out rather than as a context manager: this runs on every call.
        async def call_unary(request: Any, context: Context) -> Any:
            call, refusal = begin(series, request, context)
            try:
                if refusal is not None:
                    await _refuse(refusal, context)
                response = await unary(request, context)
            except BaseException as exc:
                call.end(context, exc)
                raise
            call.end(context, None)
            return response

        return grpc.unary_unary_rpc_method_handler(
            call_unary, request_deserializer=self.deserialize, response_serializer=serialize
        )

    def server_stream(self, stream: Any, serialize: Any) -> Handler:
        series = _Series(self._metrics, self.method, "server_stream")
        begin = self.begin
        if not inspect.isasyncgenfunction(stream):
            # A stream written with `context.write` from a coroutine, as grpc's health
            # servicer writes Health/Watch: grpc serves a coroutine handler that way and an
            # async generator by iterating it, so the wrapper must be the same kind.
            async def call_writer(request: Any, context: Context) -> None:
                call, refusal = begin(series, request, context)
                try:
                    if refusal is not None:
                        await _refuse(refusal, context)
                    await stream(request, context)
                except BaseException as exc:
                    call.end(context, exc)
                    raise
                call.end(context, None)

            return grpc.unary_stream_rpc_method_handler(
                call_writer, request_deserializer=self.deserialize, response_serializer=serialize
            )

        async def call_server_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            call, refusal = begin(series, request, context)
            try:
                if refusal is not None:
                    await _refuse(refusal, context)
                async for response in stream(request, context):
                    yield response
            except BaseException as exc:
                call.end(context, exc)
                raise
            call.end(context, None)

        return grpc.unary_stream_rpc_method_handler(
            call_server_stream, request_deserializer=self.deserialize, response_serializer=serialize
        )


async def _refuse(refusal: Any, context: Context) -> None:
    if refusal is _UNDECODABLE:
        await _refuse_undecodable(context)
    if isinstance(refusal, Unauthenticated):
        await auth_refuse(context, refusal)
    await context.abort_with_status(status_for(refusal))


class _Series:
    """One method's RPC metrics, each series looked up once: `labels()` is a dict lookup
    behind a lock, on every call otherwise."""

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


class _Call:
    """One RPC from its start to `end`: its request id, caller and deadline bound, counted,
    timed, traced, and logged when it ends."""

    __slots__ = ("_log_ok", "_method", "_series", "_span", "_started")

    def __init__(
        self,
        series: _Series,
        method: str,
        context: Context,
        metadata: Metadata,
        caller: Caller | None,
        traced: bool,
        log_ok: bool,
    ) -> None:
        self._series = series
        self._method = method
        self._log_ok = log_ok
        request_id = header_value(metadata, REQUEST_ID_HEADER) or os.urandom(16).hex()
        # Each RPC runs in a task of its own, with a copy of the server's context: what is
        # bound here ends with the RPC, and needs no unbinding.
        if caller is None:
            structlog.contextvars.bind_contextvars(request_id=request_id)
        else:
            structlog.contextvars.bind_contextvars(request_id=request_id, caller=caller.name)
        # Every wait below (Stripe, Postgres) fits in what is left of the caller's deadline.
        deadlines.set_deadline(context.time_remaining())
        series.started.inc()
        # The access-log line is written inside the span, so that it carries the trace id.
        self._span = tracing.server_span(method, _text(metadata)) if traced else None
        if self._span is not None:
            self._span.__enter__()
        self._started = time.perf_counter()

    def end(self, context: Context, raised: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._started
        rate_limits.release()
        code = _final_code(context, raised)
        self._series.handled(code).inc()
        self._series.seconds.observe(elapsed)
        # A line per failed call; successful ones only at debug, since the metrics above count
        # and time every call and a line each is most of an RPC's cost.
        if code != "OK":
            log.info("rpc", method=self._method, code=code, duration_ms=round(elapsed * 1000, 1))
        elif self._log_ok:
            log.debug("rpc", method=self._method, code=code, duration_ms=round(elapsed * 1000, 1))
        if self._span is not None:
            self._span.__exit__(
                type(raised) if raised is not None else None,
                raised,
                raised.__traceback__ if raised is not None else None,
            )


def _text(metadata: Metadata) -> dict[str, str]:
    """The call's text metadata (binary `-bin` values are not needed here)."""
    return {key: value for key, value in metadata if isinstance(value, str)}


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


async def _refuse_undecodable(context: Context) -> None:
    await context.abort_with_status(
        status_for(
            InvalidRequest([FieldViolation("request", "not a valid protobuf message of its type")])
        )
    )


def _final_code(context: Context, raised: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if code is not None:
        # grpc.aio reports an abort's code as the bare integer of grpc's C core.
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if raised is None:
        return "OK"
    if isinstance(raised, asyncio.CancelledError | GeneratorExit):
        # The caller's deadline passed or it went away; gRPC cancelled the handler, or, when a
        # stream's caller left while a message was on its way, closed the stream's generator.
        return "CANCELLED"
    return "UNKNOWN"
