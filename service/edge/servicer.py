"""checkout.v1.CheckoutService: parse, call one use case, translate."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import grpc
import structlog
from prometheus_client import Gauge

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import event_pb2 as events
from checkout.v1 import session_pb2 as pb
from service.domain.checkout import Checkout, Lookup
from service.domain.errors import (
    CheckoutError,
    NotFound,
    QuotaExceeded,
    TooManyWatchers,
    Unauthenticated,
    Unavailable,
)
from service.domain.feed import EventFeed, FeedItem
from service.domain.model import Caller, LedgerEntry
from service.edge import feed_mapping, mapping, payment_mapping
from service.edge.auth import current_caller
from service.edge.payment_calls import PaymentCalls
from service.edge.quotas import CallerQuotas
from service.edge.status import internal_status, status_for
from service.observability.metrics import Metrics

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WatchLimits:
    max_streams: int
    """Streams (WatchSession and StreamEvents) one process serves at once; more get
    RESOURCE_EXHAUSTED."""
    max_seconds: float
    """How long one WatchSession stream lives before it ends with OK for the caller to watch
    again."""


class CheckoutServicer(api_grpc.CheckoutServiceServicer):
    def __init__(
        self,
        checkout: Checkout,
        stopping: asyncio.Event,
        limits: WatchLimits,
        quotas: CallerQuotas,
        metrics: Metrics,
        feed: EventFeed,
        payments: PaymentCalls,
        hold_writes: Callable[[], None] | None = None,
    ) -> None:
        """`hold_writes()` raises while the calls that act on an order must wait (the
        interceptor asks it before each; `_acting` once more when one finds nothing)."""
        self._checkout = checkout
        self._hold_writes = hold_writes
        self._feed = feed
        self._payments = payments
        self._limits = limits
        self._quotas = quotas
        self._metrics = metrics
        self._rendered = _RenderedSessions()
        self._rendered_events = _RenderedEvents(self._rendered)
        self._watchers = 0
        """Open streams, of both kinds."""
        # Set at SIGTERM: streams end at once, so that the drain waits only for unary calls.
        self._stopping = stopping

    async def CreateSession(
        self, request: api.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.CreateSessionResponse:
        caller = current_caller()
        result = await self._answer(
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
        entry = await self._answer(
            context, self._checkout.get_session(caller, lookup, refresh=request.refresh)
        )
        return api.GetSessionResponse(session=self._rendered.session(entry, caller))

    async def ExpireSession(
        self, request: api.ExpireSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.ExpireSessionResponse:
        caller = current_caller()
        lookup = Lookup(request.session_id, request.order_id)
        entry = await self._acting(context, self._checkout.expire_session(caller, lookup))
        return api.ExpireSessionResponse(session=self._rendered.session(entry, caller))

    async def ListSessions(
        self, request: api.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.ListSessionsResponse:
        caller = current_caller()
        lookup = Lookup(order_id=request.order_id, caller=request.caller)
        page = await self._answer(
            context,
            self._checkout.list_sessions(caller, lookup, request.page_size, request.page_token),
        )
        return api.ListSessionsResponse(
            sessions=[self._rendered.session(e, caller) for e in page.entries],
            next_page_token=page.next_page_token,
        )

    async def CapturePayment(
        self, request: api.CapturePaymentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.CapturePaymentResponse:
        caller = current_caller()
        command = payment_mapping.capture_command(request)
        result = await self._acting(context, self._payments.move(caller, command))
        return api.CapturePaymentResponse(session=self._rendered.session(result.entry, caller))

    async def CancelPayment(
        self, request: api.CancelPaymentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.CancelPaymentResponse:
        caller = current_caller()
        command = payment_mapping.cancel_command(request)
        result = await self._acting(context, self._payments.move(caller, command))
        return api.CancelPaymentResponse(session=self._rendered.session(result.entry, caller))

    async def RefundPayment(
        self, request: api.RefundPaymentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.RefundPaymentResponse:
        caller = current_caller()
        command = payment_mapping.refund_command(request)
        result = await self._acting(context, self._payments.move(caller, command))
        response = api.RefundPaymentResponse(session=self._rendered.session(result.entry, caller))
        if result.refund is not None:
            response.refund.CopyFrom(payment_mapping.refund_message(result.refund))
        return response

    async def WatchSession(
        self, request: api.WatchSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[api.WatchSessionResponse]:
        caller = current_caller()
        try:
            with self._stream(caller, self._metrics.watch_streams) as revoked:
                # Closed here, not whenever the collector gets to it: its clean-up
                # (unsubscribing, the step in flight) must run when the stream ends.
                async with aclosing(self._watch(request, caller, revoked)) as messages:
                    async for response in messages:
                        yield response
        except Exception as exc:
            await self._abort(context, exc)

    async def StreamEvents(
        self, request: events.StreamEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[events.StreamEventsResponse]:
        caller = current_caller()
        query = feed_mapping.feed_query(request)
        try:
            with self._stream(caller, self._metrics.feed_streams) as revoked:
                batches = self._interruptible(self._feed.stream_events(caller, query), revoked)
                async with aclosing(batches) as followed:
                    async for batch in followed:
                        for item in batch:
                            yield self._rendered_events.streamed(item, caller)
                            if item.live:
                                delivered = time.time() - item.event.created_at.timestamp()
                                self._metrics.feed_delivery.observe(max(0.0, delivered))
        except Exception as exc:
            await self._abort(context, exc)

    async def ListEvents(
        self, request: events.ListEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> events.ListEventsResponse:
        caller = current_caller()
        page = await self._answer(
            context,
            self._feed.list_events(caller, feed_mapping.feed_query(request), request.page_size),
        )
        return events.ListEventsResponse(
            events=[self._rendered_events.event(item, caller) for item in page.items],
            next_cursor=page.next_cursor,
        )

    @contextmanager
    def _stream(self, caller: Caller, gauge: Gauge) -> Iterator[asyncio.Future[None]]:
        """One of this replica's streams (TooManyWatchers beyond WATCH_MAX_STREAMS) and of the
        caller's (QuotaExceeded beyond its limit); the future is done when the caller is
        revoked: the stream must then end."""
        if self._watchers >= self._limits.max_streams:
            raise TooManyWatchers(
                f"this replica already serves {self._limits.max_streams} WatchSession and "
                "StreamEvents streams, its limit; retry later, another replica may answer"
            )
        with self._quotas.stream(caller) as revoked:
            self._watchers += 1
            gauge.inc()
            try:
                yield revoked
            finally:
                self._watchers -= 1
                gauge.dec()

    async def _watch(
        self, request: api.WatchSessionRequest, caller: Caller, revoked: asyncio.Future[None]
    ) -> AsyncGenerator[api.WatchSessionResponse, None]:
        """The stream's messages until the session is final or the stream's time is up; raises
        when the server stops or the caller is revoked."""
        updates = self._checkout.watch_session(
            caller, Lookup(request.session_id, request.order_id, request.caller)
        )
        try:
            # A stream lives at most this long, then ends with OK: the caller watches again,
            # perhaps on another replica, so that long watches do not pin one forever.
            async with (
                asyncio.timeout(self._limits.max_seconds),
                aclosing(self._interruptible(updates, revoked)) as entries,
            ):
                async for entry in entries:
                    yield api.WatchSessionResponse(session=self._rendered.session(entry, caller))
        except TimeoutError:
            return

    async def _interruptible(
        self, steps: AsyncGenerator[T, None], revoked: asyncio.Future[None]
    ) -> AsyncGenerator[T, None]:
        """What `steps` yields, until it ends; raises when the server stops or the caller is
        revoked."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        step: asyncio.Future[T] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(steps))
                # Whatever ends the wait (a step, shutdown, revocation, the caller leaving),
                # the step's outcome is always collected, never left for asyncio to report.
                step.add_done_callback(_collect)
                await asyncio.wait((step, stopping, revoked), return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    raise _interrupted(revoked)
                try:
                    item = step.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Whether the server stops or the caller goes (deadline, disconnect), the generator
            # must not be mid-step when it is closed.
            stopping.cancel()
            if step is not None and not step.done():
                step.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
            await steps.aclose()

    async def _answer(self, context: grpc.aio.ServicerContext[Any, Any], work: Awaitable[T]) -> T:
        try:
            return await work
        except Exception as exc:
            await self._abort(context, exc)

    async def _acting(self, context: grpc.aio.ServicerContext[Any, Any], work: Awaitable[T]) -> T:
        """`_answer` for a call that acts on an order. One that finds no such order or
        session asks `hold_writes` again: the database may have changed during the call (a
        failover, noticed by this call's own first connection to the new server, after the
        interceptor asked), and the row may be one the failover lost, which the
        reconciliation is about to adopt. Its caller is told to retry, not that the order
        does not exist (found by make chaos's failover run: a refund answered NOT_FOUND)."""
        try:
            return await work
        except NotFound as exc:
            if self._hold_writes is not None:
                try:
                    self._hold_writes()
                except CheckoutError as held:
                    await self._abort(context, held)
            await self._abort(context, exc)
        except Exception as exc:
            await self._abort(context, exc)

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> NoReturn:
        """A domain error becomes the status the table says; anything else is a bug: a generic
        INTERNAL for the caller, the stack trace in the log."""
        if isinstance(exc, CheckoutError):
            if isinstance(exc, QuotaExceeded):
                self._metrics.caller_refusals.labels(exc.caller, exc.limit).inc()
            await context.abort_with_status(status_for(exc))
        log.error("unexpected error", exc_info=exc)
        await context.abort_with_status(internal_status())


def _interrupted(revoked: asyncio.Future[None]) -> CheckoutError:
    """Why a stream ends before its session is final, or (StreamEvents) at all."""
    if revoked.done():
        return Unauthenticated(
            "the caller's entry in CALLERS_FILE was removed or changed; call again with "
            "credentials it names"
        )
    return Unavailable(
        "the server is shutting down; call again (from the last cursor, for events), another "
        "replica will answer",
        reason="SERVER_SHUTTING_DOWN",
        retry_after_seconds=0.0,
    )


class _RenderedSessions:
    """Session messages already built, by row, version and role: building one is a good part of
    a read's cost, and a row's message changes only with its version (`updated_at`, in the key),
    so no change needs to reach this memo; the servicer is its only user. It keeps as many as
    the read cache keeps rows (MAX_ENTRIES in service/store/read_cache.py, which says why): a
    message is worth keeping as long as its row is."""

    _MAX = 1_000

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


class _RenderedEvents:
    """Event messages already built, by event and role: the streams of one caller (and its
    operators) send the same events, and a message is built once for all of them, as the
    StreamEvents message that wraps it (a message given to another is copied into it). Any of an
    event's cursors will do for any stream of its feed: each resumes right after the event.
    Streams that keep up are all sent the latest events, which is what the memo needs to hold;
    a stream replaying from an old cursor reads events no other stream asks for at that time."""

    _MAX = 1_000

    def __init__(self, sessions: _RenderedSessions) -> None:
        self._sessions = sessions
        self._built: OrderedDict[tuple[UUID, bool], events.StreamEventsResponse] = OrderedDict()

    def streamed(self, item: FeedItem, caller: Caller) -> events.StreamEventsResponse:
        key = (item.event.id, caller.sees_client_secrets)
        message = self._built.get(key)
        if message is None:
            session = self._sessions.session(item.event.session, caller)
            message = events.StreamEventsResponse(event=feed_mapping.event_message(item, session))
            self._built[key] = message
            if len(self._built) > self._MAX:
                self._built.popitem(last=False)
        return message

    def event(self, item: FeedItem, caller: Caller) -> events.Event:
        return self.streamed(item, caller).event


def _collect(step: asyncio.Future[Any]) -> None:
    if not step.cancelled():
        step.exception()
