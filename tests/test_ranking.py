"""Kendall tau-b and the rerank summary, checked against SciPy and hand-worked cases."""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Sequence

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
def test_order_and_merge_counts_agree(scores: list[float]) -> None:
    # A ranking's sort counts the descending order's inversions (a bitmask) and its ties;
    # the merge sort counts on the values: the same tau.
    values = [s for s in scores if not math.isnan(s)]
    if len(values) < 2:
        return
    assert _ranking.rank_floats(values)[2] == _tau_from_counts(
        _ranking._tied_and_discordant(values), len(values)
    )


@settings(max_examples=200, deadline=None)
@given(scores=_SCORES)
def test_insertion_and_merge_counts_agree(scores: list[float]) -> None:
    # Short lists count by binary insertion, long ones by the merge sort: the same count.
    values = [s for s in scores if not math.isnan(s)]
    discordant, tied, ascending, positions = _ranking._inserted(values) or (0, 0, [], [])
    assert (discordant, ascending) == _ranking._discordant_and_sorted_by_merging(values)
    assert tied == _ranking._tied_in_sorted(ascending)
    # read backwards, the positions are the stable descending order
    assert positions[::-1] == _ranking.reranked_order(values)


def _naive_ranking(scores: list[float]) -> list[int]:
    """Indices best first by their definition: i before j when scores[i] > scores[j], or
    equal and i < j (a stable descending sort, compared pair by pair)."""
    order: list[int] = []
    for i, score in enumerate(scores):
        place = len(order)
        while place > 0 and score > scores[order[place - 1]]:
            place -= 1
        order.insert(place, i)
    return order


# Named cases every path must get right, each against the O(n²) definitions.
_CASES = {
    "n=2 agree": [2.0, 1.0],
    "n=2 reversed": [1.0, 2.0],
    "n=2 tied": [1.0, 1.0],
    "already sorted": [float(x) for x in range(50, 0, -1)],
    "reversed": [float(x) for x in range(50)],
    "sorted with ties": [3.0, 3.0, 2.0, 2.0, 2.0, 1.0],
    "ties everywhere": [0.5, 0.1, 0.5, 0.9, 0.1, 0.5, 0.9, 0.9, 0.1],
    "all tied": [0.25] * 7,
    "signed zeros tie": [0.0, -0.0, 1.0, -0.0, 0.0],
    "infinities": [math.inf, -math.inf, 0.0, math.inf, -math.inf],
    "NaN": [0.3, math.nan, 0.1],
    "NaN first": [math.nan, 0.3, 0.1],
    "only NaN": [math.nan, math.nan],
    "one": [0.5],
}


@pytest.mark.parametrize("scores", list(_CASES.values()), ids=list(_CASES))
def test_every_path_matches_the_definitions(scores: list[float]) -> None:
    from otel_rerank import _rerank, semconv

    expected = _naive_tau_b(scores)
    values = list(scores)
    top, top1_changed, tau, order, ordered = _ranking.rank_floats(values)
    assert values == scores  # not reordered in place
    attributes, (ranked, ranked_scores) = _rerank.summary(values, 100) or ({}, ([], []))
    for found in (
        tau,
        kendall_tau_b(scores),
        kendall_tau_b(np.asarray(scores, dtype=np.float64)),
        attributes.get(semconv.RAG_RERANK_KENDALL_TAU),
        _rerank.summary_attributes(values).get(semconv.RAG_RERANK_KENDALL_TAU),
    ):
        if expected is None:
            assert found is None
        else:  # exactly: the same integer counts through the same formula
            assert found == expected or found == pytest.approx(expected, abs=1e-15)
    best = max(range(len(scores)), key=scores.__getitem__)
    assert top1_changed == (best != 0)
    assert top == scores[best] or (math.isnan(top) and math.isnan(scores[best]))
    assert list(order) == _ranking.reranked_order(scores)
    if not any(map(math.isnan, scores)):
        assert list(order) == _naive_ranking(scores)
    assert list(ranked) == list(order)
    assert _same_floats(ordered, [scores[i] for i in order])
    assert _same_floats(ranked_scores, ordered)
    # Given as a ranking (an API's response): counted on it, or refused where it cannot be.
    from_order = _ranking.summary_of_order(order, ordered)
    strictly = all(a > b for a, b in itertools.pairwise(ordered))
    if from_order is None:
        assert not strictly or len(scores) == 0
    else:
        assert strictly
        assert from_order == (top, top1_changed, tau)


def _same_floats(found: Sequence[float], expected: Sequence[float]) -> bool:
    """Equal lists, a NaN matching a NaN."""
    return len(found) == len(expected) and all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(found, expected, strict=True)
    )


@pytest.mark.parametrize(
    ("order", "ordered"),
    [
        ([1, 0, 1], [0.9, 0.5, 0.1]),  # a position twice
        ([0, 1, 3], [0.9, 0.5, 0.1]),  # a position past the count
        ([0, -1, 1], [0.9, 0.5, 0.1]),  # a negative position
        ([0, 1, 9999], [0.9, 0.5, 0.1]),  # past the bitmask's bits
        ([0, 1, 2], [0.9, 0.9, 0.1]),  # a tie: the API chose its order
        ([0, 1, 2], [0.9, math.nan, 0.1]),  # a NaN
        ([0, 1, 2], [0.1, 0.5, 0.9]),  # not best first
        ([0, 1], [0.9, 0.5, 0.1]),  # columns of different lengths
        ([], []),
    ],
)
def test_a_ranking_that_is_not_one_is_refused(order: list[int], ordered: list[float]) -> None:
    assert _ranking.summary_of_order(order, ordered) is None


@settings(max_examples=200, deadline=None)
@given(scores=_SCORES)
def test_a_ranking_counts_like_its_scores(scores: list[float]) -> None:
    # An API's ranking of every candidate, read as returned: the summary of the same scores
    # in input order, without a sort (ties and NaNs are refused, so drop them here).
    values = list(dict.fromkeys(s for s in scores if not math.isnan(s)))
    if not values:
        return
    order = _ranking.descending_order(values)
    found = _ranking.summary_of_order(order, [values[i] for i in order])
    assert found == _ranking.summary_of_floats(values)


def test_already_sorted_is_exactly_one_and_reversed_exactly_minus_one() -> None:
    for n in (2, 3, 50, 4096, 4097):
        best_first = [float(n - i) for i in range(n)]
        assert _ranking.rank_floats(best_first)[2] == 1.0
        assert kendall_tau_b(best_first) == 1.0
        assert kendall_tau_b(best_first[::-1]) == -1.0
        assert _ranking.rank_floats(best_first[::-1])[2] == -1.0


def test_the_bounds_count_like_the_merge_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    # Either side of the insertion's and the bitmask's bounds, with numpy loaded and
    # without: one tau and one order.
    rng = random.Random(5)
    insertion, bitmask = _ranking._RANK_BY_INSERTION_UNTIL, _ranking._BITMASK_UNTIL
    for n in (insertion, insertion + 1, bitmask, bitmask + 1):
        values = [rng.choice([0.1, 0.2, rng.random()]) for _ in range(n)]
        merged = _tau_from_counts(_ranking._tied_and_discordant(values), n)
        top, top1_changed, tau, order, ordered = _ranking.rank_floats(values)
        assert tau == merged
        assert list(order) == _ranking.reranked_order(values)
        assert ordered == [values[i] for i in order]
        assert (top, top1_changed) == (ordered[0], order[0] != 0)
        assert kendall_tau_b(values) == merged
        monkeypatch.delitem(sys.modules, "numpy")
        assert kendall_tau_b(values) == merged
        monkeypatch.undo()


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
    # already best first.
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
        indices, ranked_scores = summary[1]
        assert list(indices) == expected
        assert _same_floats(ranked_scores, [values[i] for i in expected])


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
    found: dict[str, object] = {"kept": 1}
    _rerank.add_output_documents(found, _rerank.ranking_of_pairs(ranking), limit)
    assert found == {"kept": 1, **expected}
