"""Pure extraction of span attributes from qdrant-client query calls.

``query_points`` returns a ``QueryResponse`` whose ``points`` are ``ScoredPoint`` s, best
first; the older ``search`` returns the list of points itself, the older fastembed
``query`` a list of ``QueryResponse`` items with ``document`` and ``metadata``, and
``query_batch_points`` one ``QueryResponse`` per request. The functions here read any of
these shapes into ``(key, value)`` pairs without touching a span. Qdrant's score is the
collection's own measure: a similarity for Cosine and Dot (higher is better), a distance
for Euclid and Manhattan (lower is better); hits come best first, so the order of the
scores tells which (``rag.retrieval.score_kind``) whenever two of them differ. A client
talking to a server (HTTP or gRPC) makes CLIENT spans with ``server.address`` and
``server.port``; the in-process local mode makes INTERNAL ones. Vectors are never read.
The content writers at the end only call the span's ``record_*``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from otel_rerank import semconv
from otel_rerank._safe import guard
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import InstanceCache

PROVIDER = "qdrant"
DB_SYSTEM = "qdrant"

# The keys every query writes, bound once (a module global, not ``semconv.`` per use).
_RETURNED_COUNT = semconv.RAG_RETRIEVAL_RETURNED_COUNT
_TOP_SCORE = semconv.RAG_RETRIEVAL_TOP_SCORE
_SCORE_KIND = semconv.RAG_RETRIEVAL_SCORE_KIND
_SIMILARITY = semconv.SCORE_KIND_SIMILARITY
_DISTANCE = semconv.SCORE_KIND_DISTANCE

# Payload keys that commonly hold a point's text (LangChain, LlamaIndex, fastembed, ours).
_TEXT_KEYS = ("document", "text", "page_content", "content", "chunk")


def data_source(arguments: Mapping[str, Any]) -> str | None:
    name = arguments.get("collection_name")
    return name if isinstance(name, str) and name else None


def server(client: Any) -> dict[str, Any] | None:
    """``server.address``/``server.port`` of a remote client; ``None`` for local mode.

    The port is the one the client sends queries to: the gRPC port when it prefers gRPC.
    """
    remote = getattr(client, "_client", None)
    host = getattr(remote, "_host", None)
    if not isinstance(host, str) or not host:
        return None  # QdrantLocal (":memory:" or a path): in-process
    found: dict[str, Any] = {semconv.SERVER_ADDRESS: host}
    port = getattr(
        remote, "_grpc_port" if getattr(remote, "_prefer_grpc", False) else "_port", None
    )
    if is_int(port):
        found[semconv.SERVER_PORT] = port
    return found


class _ClientStarts:
    """A client's server (it does not change: read once) and the start of each collection."""

    __slots__ = ("by_collection", "server")

    def __init__(self, client: Any) -> None:
        self.server: dict[str, Any] | None = guard("qdrant server")(server)(client)
        self.by_collection: dict[str | None, Start] = {}


_clients = InstanceCache(_ClientStarts)


def start(client: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the collection (an argument), and the server of a remote client.

    A client talking to a Qdrant server (HTTP or gRPC) makes a CLIENT span. Computed once
    per client and collection.
    """
    name = data_source(arguments)
    known: _ClientStarts = _clients.of(client)
    found = known.by_collection.get(name)
    if found is None:
        found = _start(name, known.server)
        if len(known.by_collection) < 64:  # bounded: collection names are the caller's
            known.by_collection[name] = found
    return found


def _start(name: str | None, remote: dict[str, Any] | None) -> Start:
    attributes: dict[str, Any] = {semconv.DB_SYSTEM_NAME: DB_SYSTEM}
    if name:
        attributes[semconv.GEN_AI_DATA_SOURCE_ID] = name
        attributes[semconv.DB_COLLECTION_NAME] = name
    if remote:
        attributes.update(remote)
    # Local mode runs in process and starts no span; a remote client's HTTP or gRPC
    # instrumentation makes spans under this one, so it is current while the call runs.
    return Start(
        detail=name,
        kind=SpanKind.CLIENT if remote else None,
        attributes=attributes,
        leaf=not remote,
    )


def query_request(client: Any, arguments: Mapping[str, Any]) -> Attributes:
    """``limit`` of a single query (``query_points``, ``search``, ``query``)."""
    limit = arguments.get("limit")
    if type(limit) is not int:
        limit = _int(limit)
    return ((semconv.GEN_AI_RETRIEVAL_TOP_K, limit), (semconv.RAG_RETRIEVAL_QUERY_COUNT, 1))


def batch_request(client: Any, arguments: Mapping[str, Any]) -> Attributes:
    """``query_batch_points``: the number of requests, and their ``limit`` if they share one."""
    requests = arguments.get("requests")
    if not isinstance(requests, Sequence):
        return
    yield semconv.RAG_RETRIEVAL_QUERY_COUNT, len(requests)
    limits = {_int(getattr(r, "limit", None)) for r in requests}
    if len(limits) == 1:
        yield semconv.GEN_AI_RETRIEVAL_TOP_K, limits.pop()


def points(result: Any) -> list[Any] | None:
    """The scored points of one query's result, best first, whatever the method returned."""
    inner = getattr(result, "points", None)
    if isinstance(inner, list):
        return inner
    if isinstance(result, list):
        return result
    return None


def query_response(result: Any) -> Attributes:
    """Points returned, the best one's score, and what the scores are (pairs in a tuple:
    cheaper than a generator)."""
    hits = points(result)
    if hits is None:
        return ()
    returned = (_RETURNED_COUNT, len(hits))
    if not hits:
        return (returned,)
    top = getattr(hits[0], "score", None)
    kind = None  # one point: no order to read
    if len(hits) > 1:
        second = getattr(hits[1], "score", None)
        if type(top) is float and type(second) is float and second != top:
            # The usual points: the first two scores differ, which is score_kind's answer
            # without its loop.
            kind = _SIMILARITY if second < top else _DISTANCE
        else:
            kind = score_kind(hits)
    return (
        returned,
        (_TOP_SCORE, top if type(top) is float else _float(top)),
        (_SCORE_KIND, kind),
    )


def score_kind(hits: Sequence[Any]) -> str | None:
    """``similarity`` if scores fall down the (best-first) list, ``distance`` if they rise.

    ``None`` when no two scores differ: the order then says nothing.
    """
    previous: float | None = None
    for point in hits:
        score = getattr(point, "score", None)
        # compared as it is: a float is needed only to write it
        if type(score) is not float and not is_number(score):
            continue
        if previous is not None and score != previous:
            return (
                semconv.SCORE_KIND_SIMILARITY if score < previous else semconv.SCORE_KIND_DISTANCE
            )
        previous = score
    return None


def batch_response(result: Any) -> Attributes:
    if not isinstance(result, list):
        return
    counts = [points(item) for item in result]
    if all(c is not None for c in counts):
        yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, sum(len(c or ()) for c in counts)


def hits(result: Any) -> tuple[list[str | None], list[float], list[str]] | None:
    """Text, score and id of each hit of one query (content; written only when capture is on).

    When a hit has no numeric score the scores list is empty: none is written, rather
    than some at the wrong index (or a NaN).
    """
    found = points(result)
    if found is None:
        return None
    texts: list[str | None] = []
    scores: list[float] = []
    ids: list[str] = []
    for point in found:
        texts.append(_text(point))
        score = _float(getattr(point, "score", None))
        if score is not None:
            scores.append(score)
        ids.append(str(getattr(point, "id", "")))
    if len(scores) != len(found):
        scores = []
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
    return value if is_int(value) else None


def _float(value: Any) -> float | None:
    return float(value) if is_number(value) else None


# -- content writers (handed to the span's privacy gate) -----------------------------------
def write_query(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    """A text query's text."""
    call.record_retrieval_query(query_text(arguments))


def write_hits(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """One query's points: text, score and id."""
    found = hits(result)
    if found is not None:
        texts, scores, ids = found
        call.record_retrieved(texts, scores, ids)
