"""The soak's callers: each kind of operation started at a fixed rate whatever became of the
earlier ones (an open loop, so that a replica that slows down meets the same load, not a
lighter one), on whichever replica the balancer picks. What each operation needs (an open
session to pay, a paid order to refund) comes from what the others made; when there is none
yet, or too many of its kind are still under way, the operation is skipped and counted."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from chaos.callers import RunCaller
from chaos.cluster import Cluster, Stub
from chaos.load import new_cart
from chaos.sandbox import SandboxControl
from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import event_pb2 as events
from checkout.v1 import session_pb2 as pb
from soak.plan import Plan

# Orders the load remembers for later operations, the most recent of each kind.
_REMEMBERED = 500
# A changed cart follows this share of the new orders, this long after.
_CHANGED_SHARE = 0.2
_CHANGE_AFTER_SECONDS = 0.5
# How long a watcher keeps its stream open, unless its session ends first; and a feed reader.
_WATCH_SECONDS = (2.0, 10.0)
_FEED_SECONDS = (3.0, 15.0)
# Each caller's order services that read its feed, each from a cursor of its own.
_FEED_READERS_PER_CALLER = 2


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    session_id: str
    amount: int
    caller: RunCaller


@dataclass
class FeedReader:
    caller: RunCaller
    cursor: str = ""
    events: int = 0


class SoakLoad:
    def __init__(
        self,
        plan: Plan,
        cluster: Cluster,
        sandbox: SandboxControl,
        callers: tuple[RunCaller, ...],
        prefix: str,
        seed: int,
    ) -> None:
        self._plan = plan
        self._callers = callers
        self._readers = deque(
            FeedReader(caller) for caller in callers for _ in range(_FEED_READERS_PER_CALLER)
        )
        self._cluster = cluster
        self._sandbox = sandbox
        self._prefix = prefix
        self._rng = random.Random(seed)
        self._next_order = 0
        self._open: deque[Order] = deque(maxlen=_REMEMBERED)
        self._paid: deque[Order] = deque(maxlen=_REMEMBERED)
        self._recent: deque[Order] = deque(maxlen=_REMEMBERED)
        self._in_flight: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(kind, outcome): a gRPC code's name, or what the sandbox said of a payment."""
        self.skipped: Counter[str] = Counter()

    async def run(self, until: float) -> None:
        rates = self._plan.rates
        kinds: dict[str, tuple[float, Callable[[], Awaitable[str]]]] = {
            "create": (rates.creates, self._create),
            "read": (rates.reads, self._read),
            "pay": (rates.payments, self._pay),
            "refund": (rates.refunds, self._refund),
            "expire": (rates.expiries, self._expire),
            "watch": (rates.watchers, self._watch),
            "feed": (rates.feed_readers, self._read_feed),
        }
        async with asyncio.TaskGroup() as group:
            for kind, (rate, operation) in kinds.items():
                group.create_task(self._every(kind, rate, operation, until))

    async def _every(
        self, kind: str, rate: float, operation: Callable[[], Awaitable[str]], until: float
    ) -> None:
        interval = 1.0 / rate
        due = time.monotonic()
        started: set[asyncio.Task[None]] = set()
        while due < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
            if self._in_flight[kind] >= self._plan.max_in_flight:
                self.skipped[kind] += 1
                continue
            task = asyncio.create_task(self._one(kind, operation))
            started.add(task)
            task.add_done_callback(started.discard)
        await asyncio.gather(*started)

    async def _one(self, kind: str, operation: Callable[[], Awaitable[str]]) -> None:
        self._in_flight[kind] += 1
        try:
            outcome = await operation()
        except grpc.aio.AioRpcError as error:
            outcome = error.code().name
        finally:
            self._in_flight[kind] -= 1
        self.outcomes[(kind, outcome)] += 1

    def _stub(self) -> Stub:
        target = self._cluster.pick(self._rng)
        assert target is not None, "no replica is serving"
        return target.stub

    async def _create(self) -> str:
        self._next_order += 1
        order_id = f"{self._prefix}{self._next_order:06d}"
        caller = self._callers[self._next_order % len(self._callers)]
        cart = new_cart(self._rng)
        created = await self._stub().CreateSession(
            cart.request(order_id, request_id=str(uuid.uuid4())),
            timeout=self._plan.deadline_seconds,
            metadata=caller.metadata,
        )
        order = Order(order_id, created.session.id, created.session.amount_total, caller)
        if self._rng.random() < _CHANGED_SHARE:
            await asyncio.sleep(_CHANGE_AFTER_SECONDS)
            changed = await self._stub().CreateSession(
                cart.changed(self._rng).request(order_id, request_id=str(uuid.uuid4())),
                timeout=self._plan.deadline_seconds,
                metadata=caller.metadata,
            )
            order = Order(order_id, changed.session.id, changed.session.amount_total, caller)
        self._open.append(order)
        self._recent.append(order)
        return "OK"

    async def _read(self) -> str:
        if not self._recent:
            return "nothing yet"
        order = self._rng.choice(self._recent)
        stub, timeout = self._stub(), self._plan.deadline_seconds
        metadata = order.caller.metadata
        which = self._rng.randrange(3)
        if which == 0:
            await stub.GetSession(
                api.GetSessionRequest(order_id=order.order_id), timeout=timeout, metadata=metadata
            )
        elif which == 1:
            await stub.GetSession(
                api.GetSessionRequest(session_id=order.session_id),
                timeout=timeout,
                metadata=metadata,
            )
        else:
            await stub.ListSessions(
                api.ListSessionsRequest(order_id=order.order_id),
                timeout=timeout,
                metadata=metadata,
            )
        return "OK"

    async def _pay(self) -> str:
        if not self._open:
            return "nothing yet"
        order = self._open.popleft()
        if not await self._sandbox.pay(order.session_id):
            return "refused"  # expired meanwhile
        self._paid.append(order)
        return "paid"

    async def _refund(self) -> str:
        if not self._paid:
            return "nothing yet"
        order = self._paid.popleft()
        await self._stub().RefundPayment(
            api.RefundPaymentRequest(
                order_id=order.order_id,
                request_id=str(uuid.uuid4()),
                amount=max(1, order.amount // 4),
            ),
            timeout=self._plan.deadline_seconds,
            metadata=order.caller.metadata,
        )
        return "OK"

    async def _expire(self) -> str:
        if not self._open:
            return "nothing yet"
        order = self._open.pop()
        await self._stub().ExpireSession(
            api.ExpireSessionRequest(order_id=order.order_id),
            timeout=self._plan.deadline_seconds,
            metadata=order.caller.metadata,
        )
        return "OK"

    async def _watch(self) -> str:
        """A watcher opens a stream on a recent session and hangs up after a while; a stream
        whose session is paid or expired meanwhile ends by itself."""
        if not self._recent:
            return "nothing yet"
        order = self._rng.choice(self._recent)
        hold = self._rng.uniform(*_WATCH_SECONDS)
        stream = self._stub().WatchSession(
            api.WatchSessionRequest(session_id=order.session_id),
            timeout=hold + 5.0,
            metadata=order.caller.metadata,
        )
        try:
            async with asyncio.timeout(hold):
                async for message in stream:
                    if message.session.status != pb.Session.OPEN:
                        return "ended"
        except TimeoutError:
            return "hung up"
        finally:
            stream.cancel()
        return "ended"

    async def _read_feed(self) -> str:
        """An order service reads its caller's feed from where it stopped, on whichever
        replica it lands, and hangs up after a while."""
        if not self._readers:
            return "busy"  # every reader is reading already
        reader = self._readers.popleft()
        hold = self._rng.uniform(*_FEED_SECONDS)
        stream = self._stub().StreamEvents(
            events.StreamEventsRequest(after=reader.cursor), metadata=reader.caller.metadata
        )
        try:
            async with asyncio.timeout(hold):
                async for response in stream:
                    reader.cursor = response.event.cursor
                    reader.events += 1
        except TimeoutError:
            return "hung up"
        finally:
            stream.cancel()
            self._readers.append(reader)
        return "ended"
