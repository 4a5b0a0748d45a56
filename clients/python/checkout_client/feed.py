"""Following a caller's event feed (StreamEvents) without losing one: an async iterator that,
when the stream breaks with UNAVAILABLE (a replica draining or restarting, a network blip),
waits with backoff and goes on from the cursor of the last event it handed out.

It does not remember anything across restarts of your process: store each event's cursor with
the effect of handling it, in one transaction of your own database, and start from it (the
README's recipe, "Fulfil every paid order exactly once").
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable, Sequence

import grpc

from checkout.v1 import event_pb2 as events

Metadata = Sequence[tuple[str, str]]


async def follow_events(
    stub: object,
    *,
    after: str = "",
    types: Iterable[events.Event.Type.ValueType] = (),
    caller: str = "",
    metadata: Metadata | None = None,
    first_backoff: float = 0.25,
    max_backoff: float = 30.0,
) -> AsyncIterator[events.Event]:
    """The caller's events after `after` (empty: from the oldest retained), then each as it
    commits, without end. UNAVAILABLE is retried after a random wait (full jitter,
    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/) of up to
    `first_backoff`, doubling to `max_backoff` while it keeps failing; any other error (an
    OUT_OF_RANGE cursor, revoked credentials) ends the iteration, raised. Skip the event types
    you do not know: more will come."""
    cursor = after
    wanted = list(types)
    backoff = first_backoff
    while True:
        request = events.StreamEventsRequest(after=cursor, types=wanted, caller=caller)
        call = stub.StreamEvents(request, metadata=metadata)  # type: ignore[attr-defined]
        try:
            async for response in call:
                backoff = first_backoff
                yield response.event
                cursor = response.event.cursor
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        finally:
            call.cancel()
        await asyncio.sleep(random.uniform(0, backoff))
        backoff = min(2 * backoff, max_backoff)
