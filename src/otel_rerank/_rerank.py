"""What a rerank span records about the ordering: the summary and the reranked list.

Built on the pure maths of :mod:`otel_rerank._ranking`: scores in the order the candidates
were given become the summary attributes (top score, top-1 change, Kendall's tau-b) and a
ranking, best first, as ``(input position, score)`` pairs; a ranking becomes OpenInference's
``reranker.output_documents.{i}.document.id|score``. Ids and scores are not content (the
documents' texts are, and go through :mod:`otel_rerank._content`). Pure: nothing here
touches a span.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import isfinite
from operator import gt
from typing import Final, TypeGuard

from opentelemetry.util.types import AttributeValue

from otel_rerank import semconv
from otel_rerank._ranking import summarize_floats

Ranking = list[tuple[int, float]]


def summary_attributes(values: list[float]) -> dict[str, AttributeValue]:
    """Top score, top-1 change and Kendall's tau-b of floats in the order given (empty if
    there are none)."""
    found = summarize_floats(values)
    if found is None:
        return {}
    attributes: dict[str, AttributeValue] = {
        semconv.RAG_RERANK_TOP_SCORE: found.top_score,
        semconv.RAG_RERANK_TOP1_CHANGED: found.top1_changed,
    }
    if found.kendall_tau is not None:
        attributes[semconv.RAG_RERANK_KENDALL_TAU] = found.kendall_tau
    return attributes


def summary(
    scores: Sequence[float], limit: int
) -> tuple[dict[str, AttributeValue], Ranking] | None:
    """The summary attributes and the first ``limit`` of the ranking; ``None`` if empty."""
    values = scores if _all_floats(scores) else list(map(float, scores))
    if not values:
        return None
    attributes = summary_attributes(values)
    if all(map(gt, values, values[1:])):
        order: Sequence[int] = range(len(values))[:limit]  # already best first
    else:
        # Sorted on the negated scores, ascending: stable, so ties keep the order given,
        # and the same comparisons as ``_ranking.reranked_order`` (NaNs included) in C.
        negated = [-v for v in values]
        order = sorted(range(len(values)), key=negated.__getitem__)[:limit]
    return attributes, [(i, values[i]) for i in order]


_FLOATS: Final = frozenset({float})


def _all_floats(scores: Sequence[float]) -> TypeGuard[list[float]]:
    """A list of floats (not a subclass's instances): used as is, no copy."""
    return type(scores) is list and set(map(type, scores)) <= _FLOATS


def output_documents(ranking: Sequence[tuple[int, float]], limit: int) -> dict[str, AttributeValue]:
    """``reranker.output_documents.{i}.document.id|score`` for the first ``limit`` entries."""
    found: dict[str, AttributeValue] = {}
    entries = ranking[:limit]
    keys = _OUTPUT_DOCUMENT_KEYS if len(entries) <= len(_OUTPUT_DOCUMENT_KEYS) else None
    for position, (index, score) in enumerate(entries):
        id_key, score_key = keys[position] if keys is not None else _keys(position)
        found[id_key] = str(index)
        if isfinite(score):
            found[score_key] = score
    return found


def _keys(position: int) -> tuple[str, str]:
    """``reranker.output_documents.{position}.document.id|score``."""
    base = f"{semconv.RERANKER_OUTPUT_DOCUMENTS}.{position}."
    return base + semconv.DOCUMENT_ID, base + semconv.DOCUMENT_SCORE


# Built once for the positions a span usually holds (``max_documents`` defaults to 10).
_OUTPUT_DOCUMENT_KEYS: Final = tuple(_keys(position) for position in range(64))
