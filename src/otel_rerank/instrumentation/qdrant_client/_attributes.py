"""Pure extraction of span attributes from qdrant-client query calls.

``query_points`` returns a ``QueryResponse`` whose ``points`` are ``ScoredPoint`` s, best
first; the older ``search`` returns the list of points itself, the older fastembed
``query`` a list of ``QueryResponse`` items with ``document`` and ``metadata``, and
``query_batch_points`` one ``QueryResponse`` per request. The functions here read any of
these shapes into ``(key, value)`` pairs without touching a span. Qdrant's score is the
collection's own measure: a similarity for Cosine and Dot (higher is better), a distance
for Euclid and Manhattan (lower is better). Vectors are never read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from otel_rerank import semconv

PROVIDER = "qdrant"
DB_SYSTEM = "qdrant"

Pairs = Iterator[tuple[str, Any]]

# Payload keys that commonly hold a point's text (LangChain, LlamaIndex, fastembed, ours).
_TEXT_KEYS = ("document", "text", "page_content", "content", "chunk")


def data_source(arguments: Mapping[str, Any]) -> str | None:
    name = arguments.get("collection_name")
    return name if isinstance(name, str) and name else None


def query_request(arguments: Mapping[str, Any]) -> Pairs:
    """``limit`` of a single query (``query_points``, ``search``, ``query``)."""
    yield semconv.GEN_AI_REQUEST_TOP_K, _int(arguments.get("limit"))
    yield semconv.RAG_RETRIEVAL_QUERY_COUNT, 1


def batch_request(arguments: Mapping[str, Any]) -> Pairs:
    """``query_batch_points``: the number of requests, and their ``limit`` if they share one."""
    requests = arguments.get("requests")
    if not isinstance(requests, Sequence):
        return
    yield semconv.RAG_RETRIEVAL_QUERY_COUNT, len(requests)
    limits = {_int(getattr(r, "limit", None)) for r in requests}
    if len(limits) == 1:
        yield semconv.GEN_AI_REQUEST_TOP_K, limits.pop()


def points(result: Any) -> list[Any] | None:
    """The scored points of one query's result, best first, whatever the method returned."""
    inner = getattr(result, "points", None)
    if isinstance(inner, list):
        return inner
    if isinstance(result, list):
        return result
    return None


def query_response(result: Any) -> Pairs:
    hits = points(result)
    if hits is None:
        return
    yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, len(hits)
    if hits:
        yield semconv.RAG_RETRIEVAL_TOP_SCORE, _float(getattr(hits[0], "score", None))


def batch_response(result: Any) -> Pairs:
    if not isinstance(result, list):
        return
    counts = [points(item) for item in result]
    if all(c is not None for c in counts):
        yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, sum(len(c or ()) for c in counts)


def hits(result: Any) -> tuple[list[str | None], list[float], list[str]] | None:
    """Text, score and id of each hit of one query (content; written only when capture is on)."""
    found = points(result)
    if found is None:
        return None
    texts: list[str | None] = []
    scores: list[float] = []
    ids: list[str] = []
    for point in found:
        texts.append(_text(point))
        score = _float(getattr(point, "score", None))
        scores.append(score if score is not None else float("nan"))
        ids.append(str(getattr(point, "id", "")))
    return texts, scores, ids


def query_text(arguments: Mapping[str, Any]) -> str | None:
    """The query's text when the query is text (a ``Document`` or fastembed ``query_text``)."""
    text = arguments.get("query_text")
    if isinstance(text, str):
        return text
    text = getattr(arguments.get("query"), "text", None)
    return text if isinstance(text, str) else None


def _text(point: Any) -> str | None:
    document = getattr(point, "document", None)  # fastembed ``query`` results
    if isinstance(document, str):
        return document
    payload = getattr(point, "payload", None)
    if not isinstance(payload, Mapping) or not payload:
        return None
    for key in _TEXT_KEYS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
