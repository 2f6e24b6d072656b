"""Pure extraction for ``rerankers``' TransformerRanker: model name, inputs, scores in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_rerank import semconv
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import InstanceCache, model_name_from_path, sized_length

PROVIDER = "rerankers"


def model_name(instance: Any) -> str | None:
    """The cross-encoder's name as a user knows it (hub id, or local directory name)."""
    model = getattr(instance, "model", None)
    path = getattr(model, "name_or_path", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None
    )
    return model_name_from_path(path) if isinstance(path, str) and path else None


_starts = InstanceCache(lambda instance: Start(model=model_name(instance)))


def start(instance: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the ranker's model name (computed once per ranker)."""
    found: Start = _starts.of(instance)
    return found


def candidate_count(arguments: Mapping[str, Any]) -> int | None:
    """Documents given: a list's length (one string is one document)."""
    docs = arguments.get("docs")
    return 1 if isinstance(docs, str) else sized_length(docs)


def request(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    """Batch size and device."""
    batch = arguments.get("batch_size") or getattr(instance, "batch_size", None)
    yield semconv.RAG_BATCH_SIZE, batch if is_int(batch) else None
    device = getattr(instance, "device", None)
    yield semconv.RAG_DEVICE, str(device) if device is not None else None


def scores_in_given_order(arguments: Mapping[str, Any], result: Any) -> list[float] | None:
    """Each candidate's score in the order the candidates were given, or ``None``.

    ``rank`` returns results sorted by score, each with its document's id: the ids the
    caller gave, else the positions 0..n-1.
    """
    results = getattr(result, "results", None)
    count = candidate_count(arguments)
    if not isinstance(results, list) or count is None or len(results) != count:
        return None
    ids = arguments.get("doc_ids")
    order = list(ids) if isinstance(ids, (list, tuple)) else list(range(count))
    position = {doc_id: i for i, doc_id in enumerate(order)}
    if len(position) != count:
        return None
    scores: list[float | None] = [None] * count
    for item in results:
        doc_id = getattr(getattr(item, "document", None), "doc_id", None)
        score = getattr(item, "score", None)
        if doc_id not in position or not is_number(score):
            return None
        scores[position[doc_id]] = float(score)
    return [s for s in scores if s is not None] if None not in scores else None


def summary(
    call: StageSpan, arguments: Mapping[str, Any], result: Any, nested: Sequence[Any]
) -> None:
    """Top score, top-1 change and Kendall's tau from the scores in the given order."""
    call.record_scores(scores_in_given_order(arguments, result))
