"""Percentiles and ratios, as the report states them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median, over the rounds, of each round's ratio: the two loads of a round ran
    seconds apart, so a round this machine spent busier with something else weighs on both, and
    one such round does not move the median (0.0 without rounds)."""
    ratios = [ratio(n, d) for n, d in zip(numerators, denominators, strict=True)]
    return statistics.median(ratios) if ratios else 0.0


def paired_difference(minuends: Sequence[float], subtrahends: Sequence[float]) -> float:
    """The median, over the rounds, of each round's difference (as `paired_ratio`; 0.0 without
    rounds)."""
    differences = [m - s for m, s in zip(minuends, subtrahends, strict=True)]
    return statistics.median(differences) if differences else 0.0
