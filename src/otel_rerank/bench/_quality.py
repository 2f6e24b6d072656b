"""Ranking quality with binary labels, and the lift a reranker gives over the first stage.

All functions take labels listed in the order being judged (best first). The reranked
order is the candidates sorted by descending score with a *stable* sort, so tied scores
keep the retriever's order (and never make the comparison fail).

* top-1 accuracy — as the seed article computes it: the share of queries whose top result
  is relevant.
* NDCG@5 — binary gains, log2 discount, ideal DCG from the same candidate list; 0 for a
  query with no relevant candidate.
* MRR@10 — reciprocal rank of the first relevant candidate in the top 10, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from otel_rerank._ranking import reranked_order


def top1(labels: Sequence[int]) -> float:
    """1.0 when the first item is relevant."""
    return float(bool(labels) and labels[0] > 0)


def ndcg_at(labels: Sequence[int], n: int = 5) -> float:
    """NDCG@n with binary gains; 0.0 when nothing is relevant."""
    dcg = sum(1.0 / math.log2(i + 2) for i, rel in enumerate(labels[:n]) if rel > 0)
    ideal_count = min(sum(1 for rel in labels if rel > 0), n)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(ideal_count))
    return dcg / ideal if ideal > 0 else 0.0


def mrr_at(labels: Sequence[int], n: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the top ``n``; else 0.0."""
    for i, rel in enumerate(labels[:n]):
        if rel > 0:
            return 1.0 / (i + 1)
    return 0.0


@dataclass(frozen=True, slots=True)
class Quality:
    """Mean quality of the original and reranked orders over labelled queries, at one k.

    Attributes:
        k: candidates per query given to the reranker.
        queries: labelled queries judged.
        with_relevant: queries with at least one relevant candidate in their top k.
        top1_original, top1_reranked, top1_lift: share of queries whose top result is
            relevant, and reranked minus original.
        ndcg5_original, ndcg5_reranked, ndcg5_lift: mean NDCG@5, and the difference.
        mrr10_original, mrr10_reranked, mrr10_lift: mean MRR@10, and the difference.
    """

    k: int
    queries: int
    with_relevant: int
    top1_original: float
    top1_reranked: float
    top1_lift: float
    ndcg5_original: float
    ndcg5_reranked: float
    ndcg5_lift: float
    mrr10_original: float
    mrr10_reranked: float
    mrr10_lift: float


def quality(k: int, labels: Sequence[Sequence[int]], scores: Sequence[Sequence[float]]) -> Quality:
    """Quality of the given order and of the order by ``scores``, per query, averaged.

    Raises:
        ValueError: no queries, or a query's scores and labels differ in length.
    """
    if not labels or len(labels) != len(scores):
        raise ValueError("need one score list per labelled query")
    sums = [0.0] * 6
    for query_labels, query_scores in zip(labels, scores, strict=True):
        if len(query_labels) != len(query_scores):
            raise ValueError("a query has a different number of scores and labels")
        reranked = [query_labels[i] for i in reranked_order(query_scores)]
        for j, value in enumerate(
            (
                top1(query_labels),
                top1(reranked),
                ndcg_at(query_labels, 5),
                ndcg_at(reranked, 5),
                mrr_at(query_labels, 10),
                mrr_at(reranked, 10),
            )
        ):
            sums[j] += value
    n = len(labels)
    m = [s / n for s in sums]
    return Quality(
        k=k,
        queries=n,
        with_relevant=sum(1 for q in labels if any(rel > 0 for rel in q)),
        top1_original=m[0],
        top1_reranked=m[1],
        top1_lift=m[1] - m[0],
        ndcg5_original=m[2],
        ndcg5_reranked=m[3],
        ndcg5_lift=m[3] - m[2],
        mrr10_original=m[4],
        mrr10_reranked=m[5],
        mrr10_lift=m[5] - m[4],
    )
