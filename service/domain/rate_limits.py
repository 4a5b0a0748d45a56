"""Each caller's share of Stripe's rate limit, which is the whole account's
(https://docs.stripe.com/rate-limits): one caller must not use it up for everyone.

Every caller has a token bucket (its rate and burst from CALLERS_FILE, or the defaults). The edge
binds the caller's bucket to each RPC, as it binds the deadline (deadlines.py), and every request
to Stripe made while serving that RPC takes a token first (`spend`, in the gateway): what is
answered from the ledger or the cache takes none, and nor does work no caller asked for (the
sweep, webhooks), which runs without a bucket. A create takes its token before it claims the
order (`reserve`), so that a caller out of tokens is refused before anything is written; the
first request to Stripe then uses that token, and one left unused (the claim found the order's
session open) goes back to the bucket when the RPC ends (`release`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

from service.domain.errors import QuotaExceeded


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; it starts full."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """Take a token: 0.0 if one was there, else how many seconds until one will be (and
        nothing is taken)."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def give_back(self) -> None:
        self._tokens = min(float(self.burst), self._tokens + 1.0)


class _Share:
    """One RPC's caller and bucket, and whether it holds a token taken ahead (`reserve`)."""

    __slots__ = ("bucket", "caller", "reserved")

    def __init__(self, caller: str, bucket: TokenBucket) -> None:
        self.caller = caller
        self.bucket = bucket
        self.reserved = False


_SHARE: ContextVar[_Share | None] = ContextVar("stripe_share", default=None)


def bind(caller: str, bucket: TokenBucket) -> None:
    """For the RPC being served (a task of its own): its Stripe calls are `caller`'s."""
    _SHARE.set(_Share(caller, bucket))


def bound_caller() -> str | None:
    """Whose share the Stripe calls made now are taken from; None: no caller's."""
    share = _SHARE.get()
    return None if share is None else share.caller


def reserve() -> None:
    """Take a token ahead of a write that a request to Stripe will follow; raises
    QuotaExceeded, before anything is written, if the caller has none left."""
    share = _SHARE.get()
    if share is not None and not share.reserved:
        _take(share)
        share.reserved = True


def spend() -> None:
    """Before a request to Stripe: the token taken ahead, or a new one; raises QuotaExceeded
    if the caller has none left. Work that no caller asked for takes none."""
    share = _SHARE.get()
    if share is None:
        return
    if share.reserved:
        share.reserved = False
        return
    _take(share)


def release() -> None:
    """At the end of the RPC: a token taken ahead and not used goes back."""
    share = _SHARE.get()
    if share is not None and share.reserved:
        share.reserved = False
        share.bucket.give_back()


def _take(share: _Share) -> None:
    wait = share.bucket.take()
    if wait > 0:
        raise QuotaExceeded(
            f"caller {share.caller} has used its share of calls to Stripe "
            f"({share.bucket.rate:g} a second, bursts of {share.bucket.burst}); "
            "retry after the delay",
            caller=share.caller,
            limit="stripe_calls",
            reason="STRIPE_CALLS_EXHAUSTED",
            retry_after_seconds=round(wait, 3),
        )
