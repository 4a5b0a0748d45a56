"""Each caller's share of what every caller needs, so that one cannot starve the others: its open
streams, and its calls to Stripe per second (a token bucket, service/domain/rate_limits.py). The
limits are the settings' defaults, or the caller's own in CALLERS_FILE.

Streams are counted here for every streaming RPC (WatchSession today), and a caller's streams
end when a reload of CALLERS_FILE removes or changes its entry: revocation reaches open streams
too, not only new calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.domain import rate_limits
from service.domain.errors import QuotaExceeded
from service.domain.model import Caller
from service.observability.metrics import Metrics

# A refused stream is told to come back after this long: streams end at their own pace.
_STREAM_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_streams: int
    """Streams the caller may hold open at once, on one replica."""
    stripe_calls_per_second: float
    """Requests to Stripe a second on the caller's behalf, on one replica."""
    stripe_burst: int
    """How many of those may come at once after a quiet spell."""


class CallerQuotas:
    """`limits_of(name)` is the caller's limits as CALLERS_FILE says now (or the defaults)."""

    def __init__(self, limits_of: Callable[[str], Limits], metrics: Metrics) -> None:
        self._limits_of = limits_of
        self._metrics = metrics
        self._buckets: dict[str, rate_limits.TokenBucket] = {}
        self._open: dict[str, int] = {}
        # One future per caller, shared by its open streams, set when the caller is revoked:
        # a stream waits on it beside its other events, without a task of its own.
        self._revoked: dict[str, asyncio.Future[None]] = {}

    def bind(self, caller: Caller) -> None:
        """The RPC being served spends `caller`'s share of Stripe's rate limit."""
        bucket = self._buckets.get(caller.name)
        if bucket is None:
            limits = self._limits_of(caller.name)
            bucket = rate_limits.TokenBucket(limits.stripe_calls_per_second, limits.stripe_burst)
            self._buckets[caller.name] = bucket
        rate_limits.bind(caller.name, bucket)

    @contextmanager
    def stream(self, caller: Caller) -> Iterator[asyncio.Future[None]]:
        """One more open stream of `caller`'s, or QuotaExceeded if it holds its limit. The
        future yielded is done once the caller's entry is removed or changed: the stream must
        then end."""
        name = caller.name
        limit = self._limits_of(name).max_streams
        held = self._open.get(name, 0)
        if held >= limit:
            raise QuotaExceeded(
                f"caller {name} already holds {held} open streams, its limit on this replica; "
                "retry once one has ended",
                caller=name,
                limit="streams",
                reason="TOO_MANY_STREAMS",
                retry_after_seconds=_STREAM_RETRY_SECONDS,
            )
        revoked = self._revoked.get(name)
        if revoked is None:
            revoked = self._revoked[name] = asyncio.get_running_loop().create_future()
        self._open[name] = held + 1
        gauge = self._metrics.caller_streams.labels(name)
        gauge.inc()
        try:
            yield revoked
        finally:
            gauge.dec()
            left = self._open[name] - 1
            if left:
                self._open[name] = left
            else:
                del self._open[name]

    def revoke(self, names: Collection[str]) -> None:
        """These callers were removed from CALLERS_FILE or their entries changed: their open
        streams end, and their share of Stripe starts again under their new limits."""
        for name in names:
            self._buckets.pop(name, None)
            revoked = self._revoked.pop(name, None)
            if revoked is not None and not revoked.done():
                revoked.set_result(None)
