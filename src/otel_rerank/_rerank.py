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
from itertools import chain
from math import isfinite
from typing import Final, TypeGuard

from opentelemetry.util.types import AttributeValue

from otel_rerank import semconv
from otel_rerank._ranking import rank_floats, summary_of_floats

Ranking = list[tuple[int, float]]


def summary_attributes(values: list[float]) -> dict[str, AttributeValue]:
    """Top score, top-1 change and Kendall's tau-b of floats in the order given (empty if
    there are none): :func:`otel_rerank._ranking.summarize_floats`' fields, written straight
    into the dict (no summary object between them).

    For a caller that has its ranking (cohere's API returns one): tau is counted without a
    sort, where :func:`summary` counts it on the sort its ranking needs.
    """
    if not values:
        return {}
    return _summary_pairs(*summary_of_floats(values))


def summary(
    scores: Sequence[float], limit: int
) -> tuple[dict[str, AttributeValue], Ranking] | None:
    """The summary attributes and the first ``limit`` of the ranking; ``None`` if empty.

    :func:`otel_rerank._ranking.rank_floats`'s values, written straight into the dict (no
    summary object between them: this runs after every reranker call); the ranking is the
    order its tau was counted on (one sort for both).
    """
    values = scores if _all_floats(scores) else list(map(float, scores))
    if not values:
        return None
    top, top1_changed, tau, order = rank_floats(values)
    order = order[:limit]
    ranking = list(zip(order, map(values.__getitem__, order), strict=True))
    return _summary_pairs(top, top1_changed, tau), ranking


def _summary_pairs(top: float, top1_changed: bool, tau: float | None) -> dict[str, AttributeValue]:
    """The summary attributes of its three values (no tau attribute when it is undefined)."""
    attributes: dict[str, AttributeValue] = {
        semconv.RAG_RERANK_TOP_SCORE: top,
        semconv.RAG_RERANK_TOP1_CHANGED: top1_changed,
    }
    if tau is not None:
        attributes[semconv.RAG_RERANK_KENDALL_TAU] = tau
    return attributes


_FLOATS: Final = frozenset({float})


def _all_floats(scores: Sequence[float]) -> TypeGuard[list[float]]:
    """A list of floats (not a subclass's instances): used as is, no copy."""
    return type(scores) is list and set(map(type, scores)) <= _FLOATS


def output_documents(ranking: Sequence[tuple[int, float]], limit: int) -> dict[str, AttributeValue]:
    """``reranker.output_documents.{i}.document.id|score`` for the first ``limit`` entries."""
    entries = ranking[:limit]
    if not entries:
        return {}
    if len(entries) > len(_ID_KEYS):
        id_keys, score_keys = zip(*map(_keys, range(len(entries))), strict=True)
    else:
        id_keys, score_keys = _ID_KEYS, _SCORE_KEYS
    indices, scores = zip(*entries, strict=True)
    ids = map(str, indices)
    if all(map(isfinite, scores)):  # the usual ranking: built by zip and map, in C
        by_id = zip(id_keys, ids, strict=False)
        by_score = zip(score_keys, scores, strict=False)
        return dict(chain.from_iterable(zip(by_id, by_score, strict=False)))
    found: dict[str, AttributeValue] = {}
    for id_key, score_key, index, score in zip(id_keys, score_keys, ids, scores, strict=False):
        found[id_key] = index
        if isfinite(score):  # a non-finite score is not written
            found[score_key] = score
    return found


def _keys(position: int) -> tuple[str, str]:
    """``reranker.output_documents.{position}.document.id|score``."""
    base = f"{semconv.RERANKER_OUTPUT_DOCUMENTS}.{position}."
    return base + semconv.DOCUMENT_ID, base + semconv.DOCUMENT_SCORE


# Built once for the positions a span usually holds (``max_documents`` defaults to 10).
_ID_KEYS, _SCORE_KEYS = (tuple(keys) for keys in zip(*map(_keys, range(64)), strict=True))
