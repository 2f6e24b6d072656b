"""Pure functions that describe what a reranker did to an ordering.

A reranker is given candidates in the retriever's order and returns a score per candidate.
These functions compare the two orders without touching any span, so they are tested on
their own and reused by the instrumentations, the shadow reranker and the benchmark. The
one every reranker call runs, :func:`ranked_prefix`, has a compiled twin in
``otel_rerank._speedups`` (built where the install had a C compiler); the Python here is
the reference it is tested against and the fallback for everything it declines.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from math import isnan
from operator import eq, gt, neg, or_, rshift
from typing import Any, Final

try:  # the compiled ranking, built when the build had a C compiler (hatch_build.py)
    from otel_rerank._speedups import rank_summary as _compiled_rank_summary
except ImportError:  # pure Python: the same values, only slower
    _compiled_rank_summary = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class RerankSummary:
    """How a list of scores re-orders candidates given in retrieval order.

    Attributes:
        top_score: the highest score.
        top1_changed: the best-scored candidate is not the first one given (ties keep the
            earlier candidate, as a stable sort does).
        kendall_tau: Kendall's tau-b between the given order and the order by descending
            score; +1 means the reranker agrees with retrieval, -1 that it reverses it.
            ``None`` when undefined (fewer than two candidates, or every score tied).
    """

    top_score: float
    top1_changed: bool
    kendall_tau: float | None


def summarize_scores(scores: Sequence[float]) -> RerankSummary | None:
    """Summarize scores listed in the order the candidates were given; ``None`` if empty."""
    return summarize_floats(list(map(float, scores)))


def summarize_floats(values: list[float]) -> RerankSummary | None:
    """:func:`summarize_scores` of scores already converted to a list of floats."""
    if not values:
        return None
    return RerankSummary(*summary_of_floats(values))


def summary_of_floats(values: list[float]) -> tuple[float, bool, float | None]:
    """:class:`RerankSummary`'s fields for a non-empty list of floats, as a plain tuple (for
    a caller that writes them elsewhere: no object per call).

    Tau is counted without the order: no sort (:func:`rank_floats` is for a caller that
    needs the order too).
    """
    top = max(values)
    # The first index among ties, as ``max(range(n), key=values.__getitem__)`` finds it: max
    # keeps the first of equal values, and index() matches that object first (a NaN too).
    return top, values.index(top) != 0, tau_b_of_floats(values)


def rank_floats(
    values: list[float],
) -> tuple[float, bool, float | None, Sequence[int], list[float]]:
    """Everything a summary says of a non-empty list of floats, in one pass or one sort.

    ``(top score, top-1 change, tau-b, order, ordered)``: the fields of
    :class:`RerankSummary`, the indices by descending score with ties in the order given
    (:func:`reranked_order`), and the values in that order. A usual candidate list is
    ranked by binary insertion (:func:`_inserted`), which counts tau-b's discordant pairs
    as it places each value: one Python loop over a binary search and two list inserts.
    That is the cheapest way found right after a model's forward pass has evicted the CPU
    caches (~25 µs less per 50 scores, in place, than one sort plus a count of its
    inversions: a loop runs the interpreter's warm code where each C pass brings its own
    cold code), and warm too (50 scores: 9–12 against 12–17 µs in two runs). A longer list
    is sorted once and its inversions counted on the sort (faster warm from ~200 scores).
    """
    n = len(values)
    if n <= _RANK_BY_INSERTION_UNTIL:
        inserted = _inserted(values)
        if inserted is not None:
            discordant, tied, ascending, positions = inserted
            ordered, order = ascending[::-1], positions[::-1]
            tau = _tau_b(n, tied, discordant) if n > 1 else None
            return ordered[0], order[0] != 0, tau, order, ordered
    elif not (isnan(sum(values)) and any(map(isnan, values))):
        # A long list: one stable sort, whose inversions are the discordant pairs
        # (i < j with values[i] < values[j]: j placed before i) and whose neighbours
        # show the ties; past the bitmask's length, the merge count.
        order = sorted(range(n), key=values.__getitem__, reverse=True)
        ordered = list(map(values.__getitem__, order))
        if n > _BITMASK_UNTIL:
            tau = tau_b_of_floats(values)
        else:
            discordant = _inversions(order, accumulate(map(_BITS.__getitem__, order), or_))
            tied = _tied_in_sorted(ordered[::-1])  # no tie: one pass over the neighbours
            tau = _tau_b(n, tied, discordant)
        return ordered[0], order[0] != 0, tau, order, ordered
    top = max(values)  # a NaN: no order, so no tau; the first among ties, as max keeps it
    order = descending_order(values)
    return top, values.index(top) != 0, None, order, list(map(values.__getitem__, order))


def ranked_prefix(
    values: list[float], limit: int
) -> tuple[float, bool, float | None, Sequence[int], Sequence[float]]:
    """:func:`rank_floats` with its order and ordered values cut to ``[:limit]``: what a
    rerank span writes after every reranker call.

    Compiled (``otel_rerank._speedups.rank_summary``, when the build had a C compiler) for
    a list of floats without a NaN (up to ~13,000, where tau-b's arithmetic in doubles is
    exact): a merge sort that counts the discordant pairs as it sorts, and tau-b from the
    counts, with no interpreter between the steps (after a forward pass each step through
    the interpreter brings its own cold code: tau-b's few integer operations alone cost
    ~9 µs there). It returns the same values as :func:`rank_floats`, which answers
    everything else and is the reference the tests hold it to; it also reads a float numpy
    array in place (``otel_rerank._rerank.summary``).
    """
    if _compiled_rank_summary is not None:
        found = _compiled_rank_summary(values, limit)
        if found is not None:
            return found  # type: ignore[no-any-return]
    top, top1_changed, tau, full_order, full_ordered = rank_floats(values)
    return top, top1_changed, tau, full_order[:limit], full_ordered[:limit]


def descending_order(values: list[float]) -> list[int]:
    """:func:`reranked_order` of a list of floats, in C: sorted on the negated values,
    ascending (stable, so ties keep the order given; the same comparisons, NaNs included)."""
    negated = list(map(neg, values))
    return sorted(range(len(values)), key=negated.__getitem__)


def kendall_tau_b(scores: Sequence[float]) -> float | None:
    """Tau-b between positions 0..n-1 (best first) and ``scores`` (higher is better).

    Positions never tie, so tau-b = (C - D) / sqrt(n0 * (n0 - ties)), where ``ties`` counts
    pairs with equal scores. ``None`` when undefined: fewer than two scores, every score
    tied, or a NaN among them. Exact: the discordant pairs are counted by binary insertion
    into a sorted list (a few microseconds for a usual candidate list of 50) or, for long
    lists, by a merge sort in O(n log n) (vectorised with numpy when the application has
    numpy loaded), so even 300,000 scores cost a fraction of a second, not minutes. (A
    caller that sorts the scores anyway counts on its sort instead: :func:`rank_floats`.)
    """
    return tau_b_of_floats(list(map(float, scores)))


def tau_b_of_floats(values: list[float]) -> float | None:
    """:func:`kendall_tau_b` of a list of floats (converted once by the caller)."""
    n = len(values)
    if n < 2:
        return None
    numpy = sys.modules.get("numpy") if n >= _NUMPY_FROM else None
    if numpy is not None:
        counted = _tied_and_discordant_numpy(numpy, values)
    else:
        counted = _tied_and_discordant(values)
    if counted is None:  # a NaN: no order, so no tau
        return None
    tied, discordant = counted
    return _tau_b(n, tied, discordant)


def summary_of_order(
    order: Sequence[int], ordered: Sequence[float]
) -> tuple[float, bool, float | None] | None:
    """:func:`summary_of_floats` of scores given as their ranking (an API's response): the
    input positions best first and their scores, strictly descending, so no sort.

    ``None`` unless it is such a ranking of every candidate: positions ``0..n-1`` each once,
    scores strictly descending (a tie, whose order the API chose, or a NaN is not; nor is
    a list past the bitmask's length). The caller then puts the scores in input order.
    """
    n = len(order)
    if not 0 < n == len(ordered) or n > _BITMASK_UNTIL:
        return None
    if not all(map(gt, ordered, ordered[1:])):  # False on a tie or a NaN
        return None
    try:  # the running mask of the inversion count
        placed = list(accumulate(map(_BITS.__getitem__, order), or_))
    except (IndexError, TypeError):  # a position past the bits, or not an integer
        return None
    if placed[-1] != (1 << n) - 1:  # n positions setting n bits: each of 0..n-1 once
        return None
    return ordered[0], order[0] != 0, _tau_b(n, 0, _inversions(order, placed)) if n > 1 else None


def _inversions(order: Sequence[int], placed: Iterable[int]) -> int:
    """Pairs placed out of index order in a permutation of ``range(len(order))``, at most
    :data:`_BITMASK_UNTIL` long, given its running mask ``placed`` (bit k set once index k
    is placed, ``_BITS`` or-accumulated along ``order``).

    The mask just after placing an index, shifted right by it, keeps that index and the
    earlier-placed ones above it: one popcount each, all in C.
    """
    return sum(map(int.bit_count, map(rshift, placed, order))) - len(order)


#: Up to this many scores :func:`rank_floats` ranks by binary insertion: every realistic
#: candidate list. Warm, one sort and the bitmask count catch up near 200 scores (256: 93
#: against 85 µs; 1000: 682 against 434); right after a forward pass the loop's lead is
#: larger, so the bound is set below that.
_RANK_BY_INSERTION_UNTIL: Final = 128

#: Up to this many scores the bitmask count beats the merge sort (0.5 against 1.6 ms at 2048
#: scores, 1.9 against 4.3 at 5000, on the project's 2-core machine; its integers grow with
#: n, so it is quadratic past that).
_BITMASK_UNTIL: Final = 4096

#: ``1 << k`` for every index the bitmask count takes: looked up, not shifted, per index.
_BITS: Final = tuple(1 << k for k in range(_BITMASK_UNTIL))

#: From this many scores on, numpy (when already imported) counts faster than Python: its
#: per-call cost is about 0.3 ms, which the insertion count reaches near 800 scores
#: (measured on the project's 2-core machine: 310 against 327 µs at 768, 465 against 348
#: at 1024; at 256, 70 against 174).
_NUMPY_FROM: Final = 800


def _tau_b(n: int, tied: int, discordant: int) -> float | None:
    """Tau-b of n > 1 values from its counts; ``None`` when every pair is tied."""
    n0 = n * (n - 1) // 2
    if tied == n0:  # every score tied
        return None
    # concordant - discordant, with concordant = n0 - tied - discordant
    return (n0 - tied - 2 * discordant) / math.sqrt(n0 * (n0 - tied))


def _tied_and_discordant(values: list[float]) -> tuple[int, int] | None:
    """(pairs with equal values, pairs i < j with values[i] < values[j]); None on NaN."""
    if len(values) <= _INSERTION_UNTIL:
        inserted = _inserted(values)
        if inserted is None:  # a NaN: no order, so no tau
            return None
        discordant, tied, _, _ = inserted
        return tied, discordant
    if isnan(sum(values)) and any(map(isnan, values)):  # no order, so no tau
        return None
    discordant, ascending = _discordant_and_sorted_by_merging(values)
    return _tied_in_sorted(ascending), discordant


def _tied_in_sorted(ascending: list[float]) -> int:
    """Pairs with equal values, counted in a sorted list.

    Each value is tied with the equal values before it, ``i - bisect_left(ascending, v)``
    of them at index ``i``: summed over the list, all in C.
    """
    if not any(map(eq, ascending, ascending[1:])):  # the usual list: no tie (neighbours)
        return 0
    n = len(ascending)
    return n * (n - 1) // 2 - sum(map(bisect_left, repeat(ascending), ascending))


#: Up to this many scores, insertion into a sorted list (a binary search and a C-level
#: list insert per score) beats the merge sort: every realistic candidate list.
_INSERTION_UNTIL: Final = 2048


def _inserted(values: list[float]) -> tuple[int, int, list[float], list[int]] | None:
    """Binary insertion of ``values`` in the order given: ``(discordant, tied, ascending,
    positions)``, or ``None`` at a NaN (no order).

    ``discordant`` counts the pairs i < j with ``values[i] < values[j]`` (each value counts
    the earlier ones below it, where it is inserted) and ``tied`` those with equal values
    (each value counts the equal ones already placed: a second binary search, only on a
    tie); ``ascending`` is the values sorted and ``positions`` their indices alongside: a
    value goes before the equal ones already placed, so read backwards they are in
    descending order with ties in the order given (a stable descending sort).
    """
    ascending: list[float] = []
    positions: list[int] = []
    insert_value, insert_position = ascending.insert, positions.insert
    discordant = tied = 0
    for position, value in enumerate(values):
        # A NaN is the one float unequal to itself (a compare, where isnan is a call).
        if value != value:  # noqa: PLR0124
            return None
        below = bisect_left(ascending, value)
        if below < position and ascending[below] == value:
            tied += bisect_right(ascending, value, below) - below
        discordant += below
        insert_value(below, value)
        insert_position(below, position)
    return discordant, tied, ascending, positions


def _discordant_and_sorted_by_merging(values: list[float]) -> tuple[int, list[float]]:
    """The same count and sorted values in O(n log n) for long lists: a bottom-up merge
    sort (the sorted values are what it merged)."""
    # Bottom-up merge sort, ascending. Merging a block of earlier positions (left) with the
    # block of later ones after it (right), each later value r is discordant with the
    # earlier values strictly below it: the left values passed before r's place.
    discordant = 0
    n = len(values)
    width = 1
    while width < n:
        merged: list[float] = []
        for lo in range(0, n, 2 * width):
            left = values[lo : lo + width]
            right = values[lo + width : lo + 2 * width]
            if not right:
                merged.extend(left)
                continue
            below = 0
            size = len(left)
            for r in right:
                while below < size and left[below] < r:
                    below += 1
                discordant += below
            left.extend(right)
            left.sort()  # two sorted runs: timsort merges them in linear time
            merged.extend(left)
        values = merged
        width *= 2
    return discordant, values


def _tied_and_discordant_numpy(np: Any, scores: Sequence[float]) -> tuple[int, int] | None:
    """The same count, one merge level per numpy call instead of one element per step."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if np.isnan(values).any():
        return None
    _, ranks, counts = np.unique(values, return_inverse=True, return_counts=True)
    tied = int((counts * (counts - 1) // 2).sum())
    n = values.size
    # Ranks from 1; padded to a power of two with 0s at the end: a later value below every
    # earlier one is never discordant, so the padding counts for nothing.
    size = 1 << (n - 1).bit_length()
    current = np.zeros(size, dtype=np.int64)
    current[:n] = ranks.ravel() + 1
    discordant = 0
    width = 1
    while width < size:
        rows = current.reshape(-1, 2 * width)  # one row per pair of blocks: left | right
        # Key 2v+1 for the left (earlier) block, 2v for the right one: merged, each right
        # value comes after exactly the left values strictly below it.
        keys = rows * 2
        keys[:, :width] += 1
        keys.sort(axis=1, kind="stable")  # two sorted runs per row: a linear merge
        from_left = keys & 1
        discordant += int((np.cumsum(from_left, axis=1) * (1 - from_left)).sum())
        current = (keys >> 1).ravel()
        width *= 2
    return tied, discordant


def reranked_order(scores: Sequence[float]) -> list[int]:
    """Indices by descending score; a stable sort, so ties keep the order given."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])
