"""Kendall tau-b and the rerank summary, checked against SciPy and hand-worked cases."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from otel_rerank import _ranking
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


def _naive_tau_b(scores: list[float]) -> float | None:
    """Tau-b by its definition, every pair compared: the O(n²) reference."""
    n = len(scores)
    if n < 2 or any(math.isnan(s) for s in scores):
        return None
    concordant = discordant = tied = 0
    for i in range(n):
        for j in range(i + 1, n):
            if scores[i] > scores[j]:
                concordant += 1
            elif scores[i] < scores[j]:
                discordant += 1
            else:
                tied += 1
    n0 = n * (n - 1) // 2
    if tied == n0:
        return None
    return (concordant - discordant) / math.sqrt(n0 * (n0 - tied))


# Few distinct values make ties common; infinities and NaN are legal floats a model can emit.
_SCORES = st.lists(
    st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, -1.0, math.inf, -math.inf]),
        st.floats(allow_nan=False, width=32),
        st.just(math.nan),
    ),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(scores=_SCORES)
def test_kendall_tau_b_equals_the_quadratic_definition(scores: list[float]) -> None:
    expected = _naive_tau_b(scores)
    # The pure-Python merge sort, the numpy one, and whatever kendall_tau_b picks.
    for tau in (
        kendall_tau_b(scores),
        kendall_tau_b(np.asarray(scores, dtype=np.float64)),
        _tau_from_counts(_ranking._tied_and_discordant(scores), len(scores)),
        _tau_from_counts(_ranking._tied_and_discordant_numpy(np, scores), len(scores))
        if scores
        else None,
    ):
        if expected is None:
            assert tau is None
        else:
            assert tau is not None and tau == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(scores=_SCORES)
def test_insertion_and_merge_counts_agree(scores: list[float]) -> None:
    # Short lists count by binary insertion, long ones by the merge sort: the same count.
    values = [s for s in scores if not math.isnan(s)]
    by_merging = _ranking._discordant_and_sorted_by_merging(values)
    assert _ranking._discordant_and_sorted(values) == by_merging


def _tau_from_counts(counts: tuple[int, int] | None, n: int) -> float | None:
    if counts is None or n < 2:
        return None
    tied, discordant = counts
    n0 = n * (n - 1) // 2
    if tied == n0:
        return None
    return (n0 - tied - 2 * discordant) / math.sqrt(n0 * (n0 - tied))


def test_kendall_tau_b_of_long_lists_is_exact() -> None:
    """Large lists through both paths, against the closed forms and each other."""
    n = 5000
    assert kendall_tau_b(list(range(n, 0, -1))) == 1.0
    assert kendall_tau_b(np.arange(n, dtype=float)) == -1.0
    rng = random.Random(3)
    scores = [rng.choice([0.1, 0.2, rng.random()]) for _ in range(3000)]
    python = _ranking._tied_and_discordant(scores)
    vectorised = _ranking._tied_and_discordant_numpy(np, scores)
    assert python == vectorised


@settings(max_examples=300, deadline=None)
@given(scores=_SCORES, limit=st.integers(min_value=-3, max_value=60))
def test_summary_top_and_ranking_match_their_definitions(scores: list[float], limit: int) -> None:
    # The top score and top-1 change by their definition (the first index among ties), and
    # the ranking as a stable sort on descending score gives it, whether or not the list is
    # already best first (descending input skips the sort).
    from otel_rerank import _rerank

    for values in (scores, sorted(scores, reverse=True)):
        found = _ranking.summarize_scores(values)
        if not values:
            assert found is None
            continue
        best = max(range(len(values)), key=values.__getitem__)
        assert found is not None
        assert found.top1_changed == (best != 0)
        assert found.top_score == values[best] or math.isnan(found.top_score)
        summary = _rerank.summary(values, limit)
        assert summary is not None
        expected = _ranking.reranked_order(values)[:limit]
        assert [i for i, _ in summary[1]] == expected


@settings(max_examples=200, deadline=None)
@given(scores=_SCORES, limit=st.integers(min_value=0, max_value=80))
def test_output_documents_match_their_definition(scores: list[float], limit: int) -> None:
    # Every entry's id and (finite) score under its position's keys, whichever path builds
    # them (the bulk one for finite scores, the per-entry one otherwise).
    from otel_rerank import _rerank

    ranking = [(i * 7, s) for i, s in enumerate(scores)]
    expected: dict[str, object] = {}
    for position, (index, score) in enumerate(ranking[:limit]):
        expected[f"reranker.output_documents.{position}.document.id"] = str(index)
        if math.isfinite(score):
            expected[f"reranker.output_documents.{position}.document.score"] = score
    found = _rerank.output_documents(ranking, limit)
    assert list(found.items()) == list(expected.items())
