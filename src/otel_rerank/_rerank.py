"""What a rerank span records about the ordering: the summary and the reranked list.

Built on the pure maths of :mod:`otel_rerank._ranking`: scores in the order the candidates
were given become the summary attributes (top score, top-1 change, Kendall's tau-b) and a
ranking, best first, as two columns (input positions, scores); a ranking becomes OpenInference's
``reranker.output_documents.{i}.document.id|score``. Ids and scores are not content (the
documents' texts are, and go through :mod:`otel_rerank._content`). Pure: nothing here
touches a span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import isfinite
from operator import itemgetter
from typing import Final

from opentelemetry.util.types import AttributeValue

from otel_rerank import semconv
from otel_rerank._ranking import ranked_prefix, summary_of_floats, summary_of_order
from otel_rerank._values import ARRAY_TYPES, float_list

try:  # the compiled ranking and writer, built when the build had a C compiler (hatch_build.py)
    from otel_rerank._speedups import output_documents as _compiled_output_documents
    from otel_rerank._speedups import rank_summary as _compiled_rank_summary
    from otel_rerank._speedups import summarize as _compiled_summarize
except ImportError:  # pure Python: the same attributes, only slower
    _compiled_output_documents = None  # type: ignore[assignment]
    _compiled_rank_summary = None  # type: ignore[assignment]
    _compiled_summarize = None  # type: ignore[assignment]

#: A reranked list, best first: the candidates' input positions and their scores.
Ranking = tuple[Sequence[int], Sequence[float]]


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


def ranking_summary_attributes(
    indices: Sequence[int], scores: Sequence[float]
) -> dict[str, AttributeValue] | None:
    """:func:`summary_attributes` of a ranking of every candidate given best first (an
    API's response), counted on its order without a sort; ``None`` when it is not one
    (:func:`otel_rerank._ranking.summary_of_order`: then put the scores in input order)."""
    found = summary_of_order(indices, scores)
    return None if found is None else _summary_pairs(*found)


def summary(scores: object, limit: int) -> tuple[dict[str, AttributeValue], Ranking] | None:
    """The summary attributes and the first ``limit`` of the ranking; ``None`` unless the
    scores are one or more numbers (:func:`otel_rerank._values.float_list`: a list, a
    numpy array or a torch tensor, read once).

    :func:`otel_rerank._ranking.ranked_prefix`'s values, written straight into the dict (no
    summary object between them: this runs after every reranker call); the ranking is the
    order its tau was counted on (one sort for both). The usual scores, a float numpy array
    as a cross-encoder returns them (or a list of floats), are ranked by the compiled
    ``ranked_prefix`` where they are, read in place: no list of floats is made first
    (``tolist()`` and its checks cost ~11 µs after a forward pass, the buffer read ~4). A
    torch tensor, which has no buffer to read, is ranked from its ``tolist()``.
    """
    found: tuple[float, bool, float | None, Sequence[int], Sequence[float]] | None = None
    if _compiled_rank_summary is not None:
        found = _compiled_rank_summary(scores, limit)
        if found is None and type(scores) in ARRAY_TYPES:  # a tensor (rank's predict's)
            # Its list, ranked when it is flat floats: float_list's answer for a float
            # tensor of one dimension, without its checks (2-3 µs less after a forward
            # pass: ``benchmarks/cold_call.py --readers``). Not its ``numpy()`` view, read in
            # place: alone that reads 2-3 µs less, but in place, right after the ``predict``
            # that made the tensor, it costs 7 µs more (numpy's code is cold there, the
            # tensor's data and torch's code are not).
            found = _compiled_rank_summary(scores.tolist(), limit)  # type: ignore[attr-defined]
    if found is None:
        values = float_list(scores)
        if not values:
            return None
        found = ranked_prefix(values, limit)
    top, top1_changed, tau, order, ordered = found
    return _summary_pairs(top, top1_changed, tau), (order, ordered)


def write_summary(attributes: dict[str, AttributeValue], scores: object, limit: int) -> int | None:
    """:func:`summary` written into ``attributes``: its attributes, then its ranking as
    output documents (:func:`add_output_documents`); the number of positions written, or
    ``None`` (nothing written) unless the scores are one or more numbers.

    For a caller that writes no text beside the ranking (content capture off): every
    reranker call's path. Compiled (``otel_rerank._speedups.summarize``, when the build had
    a C compiler) for a list of floats or a float numpy array (a tensor: its ``tolist()``,
    as :func:`summary` reads it), in one call; else through :func:`summary`, the reference.
    """
    if _compiled_summarize is not None:
        written = _compiled_summarize(scores, limit, attributes, _WRITTEN_KEYS)
        if written is None and type(scores) in ARRAY_TYPES:  # a tensor (rank's predict's)
            written = _compiled_summarize(scores.tolist(), limit, attributes, _WRITTEN_KEYS)  # type: ignore[attr-defined]
        if written is not None:
            return written
    found = summary(scores, limit)
    if found is None:
        return None
    pairs, ranking = found
    attributes.update(pairs)
    count = len(ranking[0])
    add_output_documents(attributes, ranking, count)
    return count


def drop_output_documents(attributes: dict[str, AttributeValue], count: int) -> None:
    """Remove the output documents of the first ``count`` positions (written by
    :func:`write_summary`) from ``attributes``: a later ranking replaces them whole."""
    id_keys, score_keys = _keys(count)
    for key in (*id_keys[:count], *score_keys[:count]):
        attributes.pop(key, None)


def _summary_pairs(top: float, top1_changed: bool, tau: float | None) -> dict[str, AttributeValue]:
    """The summary attributes of its three values (no tau attribute when it is undefined)."""
    attributes: dict[str, AttributeValue] = {
        semconv.RAG_RERANK_TOP_SCORE: top,
        semconv.RAG_RERANK_TOP1_CHANGED: top1_changed,
    }
    if tau is not None:
        attributes[semconv.RAG_RERANK_KENDALL_TAU] = tau
    return attributes


def ranking_of_pairs(ranked: Iterable[tuple[int, float]]) -> Ranking:
    """A ranking given as ``(input position, score)`` pairs, best first, as its two columns."""
    pairs = list(ranked)
    return list(map(_FIRST, pairs)), list(map(_SECOND, pairs))


_FIRST: Final = itemgetter(0)
_SECOND: Final = itemgetter(1)


def add_output_documents(
    attributes: dict[str, AttributeValue], ranking: Ranking, limit: int
) -> None:
    """Add ``reranker.output_documents.{i}.document.id|score`` for the first ``limit``
    entries of ``ranking`` (whose columns are the same length) to ``attributes``, the ids
    first (a score that is not finite is not written): this runs as every rerank span ends.

    Compiled (``otel_rerank._speedups.output_documents``, when the build had a C compiler)
    for int positions and float scores in lists or tuples, the usual ranking; else two
    C-level updates, no dict between, the reference the tests hold the compiled one to.
    """
    indices, scores = ranking
    if _compiled_output_documents is not None and _compiled_output_documents(
        attributes, indices, scores, limit, _ID_KEYS, _SCORE_KEYS
    ):
        return
    indices, scores = indices[:limit], scores[:limit]
    id_keys, score_keys = _keys(len(indices))
    attributes.update(zip(id_keys, map(str, indices), strict=False))  # the keys run longer
    if all(map(isfinite, scores)):  # the usual ranking
        attributes.update(zip(score_keys, scores, strict=False))
    else:  # a non-finite score is not written
        finite = (pair for pair in zip(score_keys, scores, strict=False) if isfinite(pair[1]))
        attributes.update(finite)


def _keys(count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The id keys and the score keys, ``reranker.output_documents.{i}.document.id|score``,
    of at least ``count`` positions (those built once when they are enough)."""
    if count <= len(_ID_KEYS):
        return _ID_KEYS, _SCORE_KEYS
    return _build_keys(count)


def _build_keys(count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    bases = [f"{semconv.RERANKER_OUTPUT_DOCUMENTS}.{i}." for i in range(count)]
    return (
        tuple(base + semconv.DOCUMENT_ID for base in bases),
        tuple(base + semconv.DOCUMENT_SCORE for base in bases),
    )


# Built once for the positions a span usually holds (``max_documents`` defaults to 10).
_ID_KEYS, _SCORE_KEYS = _build_keys(64)
#: What the compiled ``write_summary`` writes under (see ``_speedups.summarize``).
_WRITTEN_KEYS: Final = (
    semconv.RAG_RERANK_TOP_SCORE,
    semconv.RAG_RERANK_TOP1_CHANGED,
    semconv.RAG_RERANK_KENDALL_TAU,
    _ID_KEYS,
    _SCORE_KEYS,
)
