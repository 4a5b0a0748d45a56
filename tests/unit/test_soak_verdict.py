"""The soak's verdict (soak/verdict.py) on made-up samples: what counts as growing without
bound, and what is only a busy replica's noise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from soak.plan import Plan
from soak.verdict import Sample, judge, unbounded

PLAN = Plan(name="test", minutes=10, warmup_minutes=1, sample_seconds=30)
STEADY = Sample(
    at=0,
    rss_bytes=100 * 2**20,
    open_fds=40,
    asyncio_tasks=30,
    pool_connections=5,
    postgres_connections=7,
)


def series(**figures: Sequence[float]) -> list[Sample]:
    """Samples every 30 s from the start, the given figures changing, the others steady."""
    length = max(len(values) for values in figures.values())
    return [
        replace(STEADY, at=30.0 * i, **{name: values[i] for name, values in figures.items()})
        for i in range(length)
    ]


def test_a_steady_replica_that_only_fluctuates_passes() -> None:
    tasks = [30, 34, 28, 31, 36, 29, 30, 33, 28, 35, 31, 30, 29, 34, 30, 28, 33, 31, 30, 32]
    fds = [40, 41, 40, 42, 41, 40, 41, 42, 40, 41, 42, 41, 40, 41, 40, 42, 41, 40, 41, 41]
    assert judge({"r": series(asyncio_tasks=tasks, open_fds=fds)}, PLAN) == []


def test_a_count_rising_at_every_sample_grows_without_bound() -> None:
    fds = [40] * 12 + [41, 42, 43, 44, 45, 46]
    [finding] = judge({"r": series(open_fds=fds)}, PLAN)
    assert (finding.replica, finding.figure) == ("r", "open_fds")
    assert "rose at each of the last 6 samples" in finding.why


def test_a_rise_interrupted_once_is_not_a_climb() -> None:
    assert unbounded([40, 41, 42, 41, 43, 44, 45], PLAN) == ""


def test_a_level_that_only_moved_up_grows_without_bound_even_through_noise() -> None:
    tasks = [30, 32, 29, 31, 30, 33, 40, 38, 41, 39, 40, 42, 48, 47, 50, 46, 49, 48]
    assert "lowest in the last third" in unbounded(tasks, PLAN)


def test_a_small_step_up_is_noise_not_growth() -> None:
    # A pool that opened one more connection for a busier moment and kept it.
    assert unbounded([5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6], PLAN) == ""


def test_memory_may_grow_ten_percent_after_the_warm_up_and_no_more() -> None:
    mb = 2**20
    warm_up = [80 * mb, 90 * mb]  # at 0 and 30 s: not judged
    within = [*warm_up, 100 * mb] + [105 * mb] * 10 + [110 * mb]
    beyond = [*warm_up, 100 * mb] + [105 * mb] * 10 + [111 * mb]
    assert judge({"r": series(rss_bytes=within)}, PLAN) == []
    [finding] = judge({"r": series(rss_bytes=beyond)}, PLAN)
    assert finding.figure == "rss_bytes" and "11.0 %" in finding.why


def test_connections_above_their_bound_fail_however_they_got_there() -> None:
    pool = [5] * 10 + [11] + [5] * 5
    [finding] = judge({"r": series(pool_connections=pool)}, PLAN)
    assert (finding.figure, finding.why) == (
        "pool_connections",
        "reached 11, above its bound of 10",
    )


def test_a_replica_without_judged_samples_is_a_finding() -> None:
    [finding] = judge({"r": series(open_fds=[40, 40])}, PLAN)
    assert finding.figure == "samples"
