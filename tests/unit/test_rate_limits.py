"""Each caller's share of Stripe's rate limit: a token bucket per caller, bound to the RPC; a
token taken ahead of a claim is the first request's, and goes back if none is made."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TypeVar

import pytest

from service.domain import rate_limits
from service.domain.errors import QuotaExceeded
from service.domain.rate_limits import TokenBucket

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def in_an_rpc(work: Callable[[], T]) -> T:
    """As the edge runs each RPC: in a context of its own."""
    return contextvars.copy_context().run(work)


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.take() == 0.0
    clock.now += 60
    assert [bucket.take() for _ in range(4)][-1] > 0  # saved up to its burst, no more


def test_a_caller_out_of_tokens_is_refused_with_when_to_come_back() -> None:
    clock = Clock()
    bucket = TokenBucket(0.5, 2, clock=clock)

    def three_calls() -> None:
        rate_limits.bind("orders", bucket)
        rate_limits.spend()
        rate_limits.spend()
        rate_limits.spend()

    with pytest.raises(QuotaExceeded) as caught:
        in_an_rpc(three_calls)
    assert (caught.value.caller, caught.value.limit) == ("orders", "stripe_calls")
    assert caught.value.retry_after_seconds == pytest.approx(2.0)


def test_work_no_caller_asked_for_takes_no_token() -> None:
    bucket = TokenBucket(1.0, 1, clock=Clock())

    def sweep() -> None:
        for _ in range(10):
            rate_limits.spend()

    in_an_rpc(sweep)
    assert bucket.take() == 0.0


def test_a_token_taken_ahead_is_the_first_requests_and_goes_back_if_unused() -> None:
    bucket = TokenBucket(1.0, 2, clock=Clock())

    def create_that_reaches_stripe() -> None:
        rate_limits.bind("orders", bucket)
        rate_limits.reserve()
        rate_limits.reserve()  # another round of the same create: still one token
        rate_limits.spend()
        rate_limits.release()

    def create_that_reuses_the_open_session() -> None:
        rate_limits.bind("orders", bucket)
        rate_limits.reserve()
        rate_limits.release()

    in_an_rpc(create_that_reuses_the_open_session)
    in_an_rpc(create_that_reaches_stripe)
    # Two tokens to start with: the reused create gave its back, the other spent one.
    assert bucket.take() == 0.0
    assert bucket.take() > 0


def test_a_reservation_refused_leaves_nothing_held() -> None:
    bucket = TokenBucket(1.0, 1, clock=Clock())

    def two_creates() -> None:
        rate_limits.bind("orders", bucket)
        rate_limits.reserve()
        rate_limits.spend()
        with pytest.raises(QuotaExceeded):
            rate_limits.reserve()
        with pytest.raises(QuotaExceeded):
            rate_limits.spend()
        rate_limits.release()

    in_an_rpc(two_creates)
    assert bucket.take() > 0
