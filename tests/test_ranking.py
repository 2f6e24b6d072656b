"""Kendall tau-b and the rerank summary, checked against SciPy and hand-worked cases."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import kendalltau

from otel_rerank._ranking import kendall_tau_b, summarize_scores


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([3.0, 2.0, 1.0], 1.0),  # reranker agrees with retrieval
        ([1.0, 2.0, 3.0], -1.0),  # reranker reverses it
        ([0.1, 0.9, 0.5], -1 / 3),  # C=1 (0.9>0.5), D=2
        ([1.0, 1.0], None),  # every score tied: undefined
        ([1.0], None),  # a single candidate: undefined
    ],
)
def test_kendall_tau_b_hand_worked(scores: list[float], expected: float | None) -> None:
    result = kendall_tau_b(scores)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_kendall_tau_b_matches_scipy_with_ties() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(2, 60)
        scores = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)]
        ours = kendall_tau_b(scores)
        theirs = kendalltau([-i for i in range(n)], scores).statistic
        if ours is None:
            assert math.isnan(theirs)
        else:
            assert ours == pytest.approx(theirs, abs=1e-12)


def test_summary_top1_changed_keeps_the_first_of_tied_best() -> None:
    summary = summarize_scores([0.7, 0.7, 0.1])
    assert summary is not None
    assert summary.top_score == 0.7
    assert summary.top1_changed is False


def test_summary_of_nothing_is_none() -> None:
    assert summarize_scores([]) is None


def test_large_list_is_fast_enough_to_be_linearithmic() -> None:
    # 20,000 candidates would take ~200M comparisons in a quadratic loop; this is a smoke
    # check that the merge-sort path is used (it finishes in well under a second).
    scores = [random.random() for _ in range(20_000)]
    assert -1.0 <= (kendall_tau_b(scores) or 0.0) <= 1.0
