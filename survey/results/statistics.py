"""Summary statistics computed from counts (never from individual responses).

The database groups and counts; these functions turn a question's value → count table into what an
analyst expects: mean and median of the substantive answers, the "top-two" share of a five-point
scale, the share ranked first and the mean rank, and Wilson 95% intervals for shares.
Non-substantive answers ("don't know") are left out of every mean, median and top-two share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


def mean(counts: Mapping[float, int]) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    return sum(value * count for value, count in counts.items()) / total


def median(counts: Mapping[float, int]) -> float | None:
    """The median of the values, each repeated ``count`` times (the mean of the two middle ones)."""
    total = sum(counts.values())
    if not total:
        return None
    ordered = sorted(counts.items())

    def nth(position: int) -> float:
        seen = 0
        for value, count in ordered:
            seen += count
            if position < seen:
                return value
        raise AssertionError("position beyond the total")  # pragma: no cover - guarded by total

    if total % 2:
        return nth(total // 2)
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


def top_share(counts: Mapping[float, int], top_values: Sequence[float]) -> float | None:
    """The share of substantive answers among ``top_values`` (e.g. the two highest scale points)."""
    total = sum(counts.values())
    if not total:
        return None
    return sum(counts.get(value, 0) for value in top_values) / total


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a share: sound at 0, 1 and small samples, unlike the Wald one."""
    if trials <= 0:
        return None
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_rank(rank_counts: Mapping[int, int]) -> float | None:
    """The mean position among those who ranked the option (1 = most important)."""
    return mean({float(rank): count for rank, count in rank_counts.items()})
