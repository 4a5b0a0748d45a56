"""The caller's deadline, carried with the call so that every wait fits inside it.

The edge sets it from gRPC's deadline for each RPC; the adapters bound each Stripe call and
each database call by what is left of it (`budget`). A call with too little time left is not
started: for a Stripe write that is the difference between "not done" and "done, but the
caller never heard" (https://grpc.io/docs/guides/deadlines/).
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from service.domain.errors import DeadlineExceeded

_DEADLINE: ContextVar[float | None] = ContextVar("deadline", default=None)


def set_deadline(seconds_from_now: float | None) -> None:
    """For the call being served (a task of its own): None means no deadline."""
    _DEADLINE.set(None if seconds_from_now is None else time.monotonic() + seconds_from_now)


def remaining() -> float | None:
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def budget(limit: float, *, margin: float = 0.0, at_least: float = 0.0, what: str) -> float:
    """How long the next wait may take: `limit`, or less if the caller's deadline (less a
    `margin` to answer in) is nearer. Raises DeadlineExceeded if under `at_least` is left."""
    left = remaining()
    if left is None:
        return limit
    allowed = min(limit, left - margin)
    if allowed <= 0 or allowed < at_least:
        raise DeadlineExceeded(
            f"too little of the caller's deadline is left to {what} safely; "
            "retry with a longer deadline"
        )
    return allowed
