"""Pure functions that describe what a reranker did to an ordering.

A reranker is given candidates in the retriever's order and returns a score per candidate.
These functions compare the two orders without touching any span, so they are tested on
their own and reused by the instrumentations, the shadow reranker and the benchmark.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass


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
    n = len(scores)
    if n == 0:
        return None
    values = [float(s) for s in scores]
    best = max(range(n), key=values.__getitem__)  # first index among ties
    return RerankSummary(
        top_score=values[best],
        top1_changed=best != 0,
        kendall_tau=kendall_tau_b(values),
    )


def kendall_tau_b(scores: Sequence[float]) -> float | None:
    """Tau-b between positions 0..n-1 (best first) and ``scores`` (higher is better).

    Positions never tie, so tau-b = (C - D) / sqrt(n0 * (n0 - ties)), where ``ties`` counts
    pairs with equal scores. Discordant pairs are counted with binary search over a sorted
    list (n log n comparisons), so even a 1,000-candidate API rerank costs well under a
    millisecond.
    """
    n = len(scores)
    if n < 2:
        return None
    n0 = n * (n - 1) // 2
    tied = 0
    counts: dict[float, int] = {}
    for s in scores:
        counts[s] = counts.get(s, 0) + 1
    for c in counts.values():
        tied += c * (c - 1) // 2
    if tied == n0:
        return None
    # Position i < j is concordant when scores[i] > scores[j] (retrieval's order agrees)
    # and discordant when scores[i] < scores[j]. Walking from the end with a sorted list of
    # the later scores counts, for each i, the later scores strictly greater than it.
    discordant = 0
    later: list[float] = []
    for score in reversed(scores):
        discordant += len(later) - bisect.bisect_right(later, score)
        bisect.insort(later, score)
    concordant = n0 - tied - discordant
    return (concordant - discordant) / math.sqrt(n0 * (n0 - tied))
