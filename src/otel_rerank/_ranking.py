"""Pure functions that describe what a reranker did to an ordering.

A reranker is given candidates in the retriever's order and returns a score per candidate.
These functions compare the two orders without touching any span, so they are tested on
their own and reused by the instrumentations, the shadow reranker and the benchmark.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from math import isnan
from operator import eq, gt, lshift, neg, or_, rshift
from typing import Any, Final


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


def rank_floats(values: list[float]) -> tuple[float, bool, float | None, Sequence[int]]:
    """Everything a summary says of a non-empty list of floats, from one sort.

    ``(top score, top-1 changed, tau-b, order)``: the fields of :class:`RerankSummary`, and
    the indices by descending score with ties in the order given (:func:`reranked_order`),
    whose inversions are the discordant pairs (see :func:`_tau_b_of_order`). A list already
    best first (strictly descending: no tie, no NaN) is neither sorted nor counted: its tau
    is exactly 1.
    """
    n = len(values)
    if all(map(gt, values, values[1:])):
        return values[0], False, 1.0 if n > 1 else None, range(n)
    # A NaN makes the sum NaN (so does inf - inf: then each value is checked).
    if isnan(sum(values)) and any(map(isnan, values)):  # no order, so no tau
        top = max(values)  # the first among ties, as in summary_of_floats
        return top, values.index(top) != 0, None, descending_order(values)
    # Without a NaN the values are totally ordered: this stable sort is descending_order's,
    # and its first index is the first among the best.
    order = sorted(range(n), key=values.__getitem__, reverse=True)
    best = order[0]
    return values[best], best != 0, _tau_b_of_order(values, order), order


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


def _tau_b_of_order(values: list[float], order: Sequence[int]) -> float | None:
    """Tau-b of two or more values without a NaN, given their order by descending value
    (ties in the order given): a ranking's sort, reused.

    A pair of candidates i < j is discordant when ``values[i] < values[j]``: exactly when j
    comes before i in the order (a tie keeps i first), so the discordant pairs are the
    order's inversions: for each index, the earlier ones above it. The order's running
    bitmask (bit k set once index k is placed) shifted right by an index keeps those and the
    index itself: one popcount each, every step in C through ``map`` and ``accumulate``.
    The ties are neighbours in the values taken in that order, reversed. Lists longer than the
    bitmask suits go to the merge count (their sort is not reused).
    """
    n = len(values)
    if n > _BITMASK_UNTIL:
        return tau_b_of_floats(values)
    discordant = (
        sum(map(int.bit_count, map(rshift, accumulate(map(lshift, repeat(1), order), or_), order)))
        - n
    )
    ascending = list(map(values.__getitem__, reversed(order)))
    return _tau_b(n, _tied_in_sorted(ascending), discordant)


#: Up to this many scores the bitmask count beats the merge sort (0.5 against 1.6 ms at 2048
#: scores, 1.9 against 4.3 at 5000, on the project's 2-core machine; its integers grow with
#: n, so it is quadratic past that).
_BITMASK_UNTIL: Final = 4096

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
    if isnan(sum(values)) and any(map(isnan, values)):  # no order, so no tau
        return None
    if len(values) <= _INSERTION_UNTIL:
        discordant, ascending = _discordant_and_sorted(values)
    else:
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


def _discordant_and_sorted(values: list[float]) -> tuple[int, list[float]]:
    """Pairs i < j with values[i] < values[j] (each value counts the earlier ones below it,
    by binary insertion), and the values sorted ascending (what the insertion built: the
    ties are neighbours there)."""
    earlier: list[float] = []  # sorted
    insert = earlier.insert
    discordant = 0
    for value in values:
        below = bisect_left(earlier, value)
        discordant += below
        insert(below, value)
    return discordant, earlier


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
