"""The timing comparison the boundary's timing tests rely on (bench.timing)."""

from __future__ import annotations

import random

from bench.timing import Comparison, mann_whitney_p


def _sample(median: float, spread: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median + rng.uniform(-spread, spread) for _ in range(300)]


def test_a_large_difference_is_told_apart():
    slow, fast = _sample(0.0048, 0.0005, 1), _sample(0.0029, 0.0005, 2)
    assert Comparison(slow, fast).distinguishable()
    assert mann_whitney_p(slow, fast) < 1e-10


def test_the_same_cost_is_not_told_apart():
    assert not Comparison(_sample(0.0035, 0.0005, 3), _sample(0.0035, 0.0005, 4)).distinguishable()


def test_a_significant_difference_within_the_tolerance_is_the_same_cost():
    a, b = _sample(0.00350, 0.00001, 5), _sample(0.00353, 0.00001, 6)
    comparison = Comparison(a, b)
    assert comparison.p < 1e-10  # the test resolves it...
    assert comparison.relative_difference < 0.02
    assert not comparison.distinguishable()  # ...but it is far below what the guard is for


def test_a_difference_past_the_tolerance_counts_once_it_is_significant():
    a, b = _sample(0.00350, 0.00001, 7), _sample(0.00365, 0.00001, 8)
    assert Comparison(a, b).distinguishable()
