"""The bench's arithmetic (bench/stats.py): pure, no I/O."""

from __future__ import annotations

import pytest

from bench.stats import paired_difference, paired_ratio, percentile


def test_a_paired_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # The third round's service window fell in a busy second: pooled, the four rounds would
    # say 0.72; paired, that round is an outlier and the figure stays with the other three.
    service = [900.0, 1_000.0, 100.0, 950.0]
    bare = [1_000.0, 1_100.0, 1_000.0, 1_000.0]

    assert paired_ratio(service, bare) == pytest.approx((900 / 1_000 + 1_000 / 1_100) / 2)


def test_a_paired_ratio_needs_rounds_on_both_sides() -> None:
    assert paired_ratio([], []) == 0.0
    assert paired_ratio([500.0], [0.0]) == 0.0
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]

    assert percentile(ordered, 0.50) == 50.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([], 0.99) == 0.0


def test_a_paired_difference_is_the_median_of_each_rounds_difference() -> None:
    # p99 latencies of three rounds: the direct client's second window met a busy moment.
    service = [214.0, 215.0, 290.0]
    direct = [209.0, 260.0, 211.0]

    assert paired_difference(service, direct) == pytest.approx(5.0)
    assert paired_difference([], []) == 0.0
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])
