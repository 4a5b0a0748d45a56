"""The event feed's consumers: for each caller of the run, a few order services following its
feed (StreamEvents) while the load and the faults go on. Each hangs up at random moments and
goes on from its last cursor on another replica, as a consumer behind a load balancer does, and
a stream the service ends (a killed replica, Postgres away, a drain) is resumed the same way
after a backoff. At the end each catches up with ListEvents. What each saw, in the order it saw
it, is kept for the audit (feed_audit.py)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import grpc

from chaos.callers import RunCaller
from chaos.cluster import Cluster, Target
from chaos.load import error_info
from chaos.scenario import Scenario
from checkout.v1 import event_pb2 as events

# A stream the service ended is resumed after a random wait of up to this, doubling to the
# most while it keeps ending (full jitter).
_FIRST_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 2.0
# What ends a stream without anything being wrong: the replica went (killed, drained, its
# channel retired) or the database did; the consumer goes on from its cursor.
_RESUMABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}
)
_PAGE = 1000
_CALL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Seen:
    """One event as a consumer received it."""

    event_id: str
    order_id: str
    type: int
    caller: str
    """Whose the event's session is (`Session.caller`)."""
    update_time: int
    """The session's `update_time`, in nanoseconds: when the change was stored."""
    refund_id: str = ""
    """A refund's events: which refund."""


@dataclass
class Consumer:
    name: str
    caller: RunCaller
    seen: list[Seen] = field(default_factory=list)
    """Every event received, in the order received, redeliveries included."""
    cursor: str = ""
    streams: int = 0
    hung_up: int = 0
    """Streams the consumer ended itself, at a random moment."""
    ended: Counter[str] = field(default_factory=Counter)
    """Streams the service ended, by code."""
    refused: Counter[str] = field(default_factory=Counter)
    """Answers a consumer never expects (OUT_OF_RANGE, INVALID_ARGUMENT, a bug), by code."""
    rewound: int = 0
    """After a failover: cursors refused as naming an event the database lost
    (`CURSOR_UNKNOWN`), from which the consumer went on from `latest_cursor`, as the runbook's
    "Replay a caller's feed" says."""

    def take(self, event: events.Event) -> None:
        self.seen.append(
            Seen(
                event.id,
                event.order_id,
                event.type,
                event.session.caller,
                event.session.update_time.ToNanoseconds(),
                event.refund_id,
            )
        )
        self.cursor = event.cursor


class FeedConsumers:
    def __init__(
        self,
        scenario: Scenario,
        cluster: Cluster,
        callers: tuple[RunCaller, ...],
        seed: int,
        *,
        rewind_unknown: bool = False,
    ) -> None:
        """`rewind_unknown`: a cursor the database lost (a failover) is expected, and the
        consumer goes on from the cursor the refusal names; otherwise it is refused, counted."""
        self._rewind_unknown = rewind_unknown
        self._scenario = scenario
        self._cluster = cluster
        self._seed = seed
        self.consumers = [
            Consumer(f"{caller.name}-{n + 1}", caller)
            for caller in callers
            for n in range(scenario.feed_consumers)
        ]

    async def follow(self, stop: asyncio.Event) -> None:
        """Every consumer follows its caller's feed until `stop` is set."""
        async with asyncio.TaskGroup() as group:
            for index, consumer in enumerate(self.consumers):
                rng = random.Random(self._seed * 7919 + index)
                group.create_task(self._follow(consumer, rng, stop))

    async def catch_up(self, expected: Mapping[str, Collection[str]], within: float) -> None:
        """Each consumer reads on from its cursor with ListEvents until it has seen every event
        id `expected` lists for its caller (what the database holds), or `within` seconds pass:
        an event committed behind a transaction still running comes a moment later."""
        rng = random.Random(self._seed)
        async with asyncio.timeout(within):
            for consumer in self.consumers:
                wanted = set(expected.get(consumer.caller.name, ()))
                while not wanted <= {seen.event_id for seen in consumer.seen}:
                    if not await self._page(consumer, rng):
                        await asyncio.sleep(0.2)

    async def _follow(self, consumer: Consumer, rng: random.Random, stop: asyncio.Event) -> None:
        last, backoff = "", _FIRST_BACKOFF_SECONDS
        while not stop.is_set():
            target = self._cluster.pick(rng, avoid=last)
            if target is None:  # every replica down at once
                await asyncio.sleep(_FIRST_BACKOFF_SECONDS)
                continue
            last = target.name
            if await self._stream(consumer, target, rng, stop):
                backoff = _FIRST_BACKOFF_SECONDS
                continue
            await asyncio.sleep(rng.uniform(0, backoff))
            backoff = min(2 * backoff, _MAX_BACKOFF_SECONDS)

    async def _stream(
        self, consumer: Consumer, target: Target, rng: random.Random, stop: asyncio.Event
    ) -> bool:
        """One stream from the consumer's cursor, until it hangs up at a random moment (True)
        or the service ends it (False)."""
        request = events.StreamEventsRequest(after=consumer.cursor)
        call = target.stub.StreamEvents(request, metadata=consumer.caller.metadata)
        consumer.streams += 1
        try:
            async with asyncio.timeout(rng.uniform(*self._scenario.feed_hangup_seconds)):
                async for response in call:
                    consumer.take(response.event)
                    if stop.is_set():
                        return True
        except TimeoutError:
            consumer.hung_up += 1
            return True
        except grpc.aio.AioRpcError as error:
            self._ended(consumer, error)
            return False
        finally:
            call.cancel()
        return True

    def _ended(self, consumer: Consumer, error: grpc.aio.AioRpcError) -> None:
        code = error.code()
        info = error_info(error)
        if (
            self._rewind_unknown
            and code == grpc.StatusCode.OUT_OF_RANGE
            and info is not None
            and info.reason == "CURSOR_UNKNOWN"
        ):
            consumer.cursor = info.metadata["latest_cursor"]
            consumer.rewound += 1
            return
        (consumer.ended if code in _RESUMABLE else consumer.refused)[code.name] += 1

    async def _page(self, consumer: Consumer, rng: random.Random) -> bool:
        """One page of ListEvents from the consumer's cursor; whether it was full."""
        target = self._cluster.pick(rng)
        if target is None:
            return False
        request = events.ListEventsRequest(after=consumer.cursor, page_size=_PAGE)
        try:
            page = await target.stub.ListEvents(
                request, timeout=_CALL_SECONDS, metadata=consumer.caller.metadata
            )
        except grpc.aio.AioRpcError as error:
            self._ended(consumer, error)
            return False
        for event in page.events:
            consumer.take(event)
        consumer.cursor = page.next_cursor or consumer.cursor
        return len(page.events) == _PAGE
