"""The search benchmark's own parts: the dataset's words at their shares, and the targets
judged from a results dict (bench/search.py)."""

from __future__ import annotations

import random

from bench import dataset, search


def test_the_searched_words_are_in_their_share_of_posts() -> None:
    rng = random.Random(7)
    posts = 40_000
    bodies = [dataset.text_of(rng, "fr" if n % 10 == 0 else "en", n).split() for n in range(posts)]
    common = sum(dataset.COMMON_WORD in words for words in bodies) / posts
    rare = sum(dataset.RARE_WORD in words for words in bodies)
    phrase = (
        sum(any(words[i : i + 2] == list(dataset.PHRASE) for i in range(len(words) - 1)) for words in bodies)
        / posts
    )
    assert 0.045 < common < 0.055
    assert rare == posts // dataset.RARE_EVERY
    assert 0.004 < phrase < 0.0065


def _figure(p99: float, rps: float = 100.0, errors: int = 0) -> dict[str, float]:
    return {"p99_ms": p99, "rps": rps, "errors": errors}


def test_the_targets_are_judged_from_the_largest_size_against_the_smallest() -> None:
    small = {kind: _figure(20.0) for kind in search.KINDS}
    large = {kind: _figure(30.0) for kind in search.KINDS}
    large["phrase"] = _figure(90.0)  # over 50 ms, and 4.5 times the smallest size's
    large["deep"] = _figure(61.0)  # over twice the first page's 30 ms
    large["rare"] = _figure(30.0, rps=2000.0)
    large["like"] = _figure(9000.0, rps=50.0)
    ratios, targets = search.judge({"sizes": {"10000": small, "1000000": large}})
    assert ratios["rare_vs_like_rps"] == 40.0
    assert targets["rare_vs_like_rps"]["met"]
    assert targets["p99_at_largest_ms.common"]["met"]
    assert not targets["p99_at_largest_ms.phrase"]["met"]
    assert not targets["p99_largest_vs_smallest.phrase"]["met"]
    assert targets["p99_largest_vs_smallest.people"]["met"]
    assert not targets["deep_vs_first_p99"]["met"]
    assert targets["no_failed_requests"]["met"]
    large["common"] = _figure(30.0, errors=1)
    assert not search.judge({"sizes": {"10000": small, "1000000": large}})[1]["no_failed_requests"]["met"]
