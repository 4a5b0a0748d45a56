"""checkout.v1.CheckoutService: parse, call one use case, translate."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import grpc
import structlog

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.domain.checkout import Checkout, Lookup
from service.domain.errors import CheckoutError, TooManyWatchers, Unavailable
from service.domain.model import Caller, LedgerEntry
from service.edge import mapping
from service.edge.auth import current_caller
from service.edge.status import internal_status, status_for
from service.observability.metrics import Metrics

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WatchLimits:
    max_streams: int
    """WatchSession streams one process serves at once; more get RESOURCE_EXHAUSTED."""
    max_seconds: float
    """How long one stream lives before it ends with OK for the caller to watch again."""


class CheckoutServicer(api_grpc.CheckoutServiceServicer):
    def __init__(
        self, checkout: Checkout, stopping: asyncio.Event, limits: WatchLimits, metrics: Metrics
    ) -> None:
        self._checkout = checkout
        self._limits = limits
        self._metrics = metrics
        self._rendered = _RenderedSessions()
        self._watchers = 0
        # Set at SIGTERM: streams end at once, so that the drain waits only for unary calls.
        self._stopping = stopping

    async def CreateSession(
        self, request: api.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.CreateSessionResponse:
        caller = current_caller()
        result = await _answer(
            context,
            self._checkout.create_session(
                caller, mapping.request_bytes(request), mapping.read_create
            ),
        )
        return api.CreateSessionResponse(
            session=self._rendered.session(result.entry, caller),
            reused=result.reused,
        )

    async def GetSession(
        self, request: api.GetSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.GetSessionResponse:
        caller = current_caller()
        lookup = Lookup(request.session_id, request.order_id, request.caller)
        entry = await _answer(
            context, self._checkout.get_session(caller, lookup, refresh=request.refresh)
        )
        return api.GetSessionResponse(session=self._rendered.session(entry, caller))

    async def ExpireSession(
        self, request: api.ExpireSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.ExpireSessionResponse:
        caller = current_caller()
        lookup = Lookup(request.session_id, request.order_id)
        entry = await _answer(context, self._checkout.expire_session(caller, lookup))
        return api.ExpireSessionResponse(session=self._rendered.session(entry, caller))

    async def ListSessions(
        self, request: api.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.ListSessionsResponse:
        caller = current_caller()
        lookup = Lookup(order_id=request.order_id, caller=request.caller)
        page = await _answer(
            context,
            self._checkout.list_sessions(caller, lookup, request.page_size, request.page_token),
        )
        return api.ListSessionsResponse(
            sessions=[self._rendered.session(e, caller) for e in page.entries],
            next_page_token=page.next_page_token,
        )

    async def WatchSession(
        self, request: api.WatchSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[api.WatchSessionResponse]:
        caller = current_caller()
        if self._watchers >= self._limits.max_streams:
            await _abort(
                context,
                TooManyWatchers(
                    f"this replica already serves {self._limits.max_streams} WatchSession "
                    "streams, its limit; retry later, another replica may answer"
                ),
            )
        self._watchers += 1
        self._metrics.watch_streams.inc()
        updates = self._checkout.watch_session(
            caller, Lookup(request.session_id, request.order_id, request.caller)
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        update: asyncio.Future[LedgerEntry] | None = None
        try:
            # A stream lives at most this long, then ends with OK: the caller watches again,
            # perhaps on another replica, so that long watches do not pin one forever.
            async with asyncio.timeout(self._limits.max_seconds):
                while True:
                    update = asyncio.ensure_future(anext(updates))
                    # Whatever ends the wait (a change, shutdown, the caller leaving), the
                    # step's outcome is always collected, never left for asyncio to report.
                    update.add_done_callback(_collect)
                    await asyncio.wait((update, stopping), return_when=asyncio.FIRST_COMPLETED)
                    if not update.done():
                        raise Unavailable(
                            "the server is shutting down; watch again, another replica will answer",
                            reason="SERVER_SHUTTING_DOWN",
                            retry_after_seconds=0.0,
                        )
                    try:
                        entry = update.result()
                    except StopAsyncIteration:
                        return
                    yield api.WatchSessionResponse(session=self._rendered.session(entry, caller))
        except TimeoutError:
            return
        except Exception as exc:
            await _abort(context, exc)
        finally:
            self._watchers -= 1
            self._metrics.watch_streams.dec()
            # Whether the server stops or the caller goes (deadline, disconnect), the generator
            # must not be mid-step when it is closed.
            stopping.cancel()
            if update is not None and not update.done():
                update.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await update
            await updates.aclose()


class _RenderedSessions:
    """Session messages already built, by row, version and role: building one is a good part of
    a read's cost, and a row's message changes only with its version (`updated_at`, in the key),
    so no change needs to reach this memo; the servicer is its only user."""

    _MAX = 10_000

    def __init__(self) -> None:
        self._built: OrderedDict[tuple[int, datetime, bool], pb.Session] = OrderedDict()

    def session(self, entry: LedgerEntry, caller: Caller) -> pb.Session:
        key = (entry.row_id, entry.updated_at, caller.sees_client_secrets)
        message = self._built.get(key)
        if message is None:
            message = mapping.session_message(entry, client_secret=caller.sees_client_secrets)
            self._built[key] = message
            if len(self._built) > self._MAX:
                self._built.popitem(last=False)
        return message


def _collect(step: asyncio.Future[LedgerEntry]) -> None:
    if not step.cancelled():
        step.exception()


async def _answer(context: grpc.aio.ServicerContext[Any, Any], work: Awaitable[T]) -> T:
    try:
        return await work
    except Exception as exc:
        await _abort(context, exc)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> NoReturn:
    """A domain error becomes the status the table says; anything else is a bug: a generic
    INTERNAL for the caller, the stack trace in the log."""
    if isinstance(exc, CheckoutError):
        await context.abort_with_status(status_for(exc))
    log.error("unexpected error", exc_info=exc)
    await context.abort_with_status(internal_status())
