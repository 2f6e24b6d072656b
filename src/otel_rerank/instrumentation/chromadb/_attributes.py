"""Pure extraction of span attributes from chromadb ``Collection.query`` calls.

``query`` takes one or several queries (embeddings, texts, images or URIs) and returns a
``QueryResult`` dict whose ``ids``, ``documents`` and ``distances`` hold one list per query,
best hit first. Chroma scores are *distances*: smaller is better
(``rag.retrieval.score_kind`` says so). A collection of an ``HttpClient`` talks to a Chroma
server: its spans are CLIENT spans with ``server.address``/``server.port``; in-process
clients make INTERNAL ones. The functions here turn the call's bound arguments and that
result into ``(key, value)`` pairs without touching a span (the content writers at the
end only call the span's ``record_*``); embeddings are never read beyond their count.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from otel_rerank import semconv
from otel_rerank._safe import guard
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import InstanceCache, server_from_url

PROVIDER = "chroma"
DB_SYSTEM = "chroma"

_QUERY_INPUTS = ("query_embeddings", "query_texts", "query_images", "query_uris")
# The keys every call writes, bound once (a module global, not ``semconv.`` per use).
_TOP_K = semconv.GEN_AI_RETRIEVAL_TOP_K
_QUERY_COUNT = semconv.RAG_RETRIEVAL_QUERY_COUNT
_RETURNED_COUNT = semconv.RAG_RETRIEVAL_RETURNED_COUNT
_TOP_SCORE = semconv.RAG_RETRIEVAL_TOP_SCORE


def collection_attributes(collection: Any) -> dict[str, Any]:
    """``db.namespace`` (the collection's database), and the server of a remote client."""
    found: dict[str, Any] = {}
    database = getattr(collection, "database", None)
    if isinstance(database, str) and database:
        found[semconv.DB_NAMESPACE] = database
    url = getattr(getattr(collection, "_client", None), "_api_url", None)  # HttpClient only
    if isinstance(url, str):
        found.update(server_from_url(url))
    return found


class _CollectionStarts:
    """A collection's database and server (they do not change: read once) and its starts
    under each name (``modify(name=...)`` renames a collection): current and leaf.

    ``last`` is the last name read and its starts, in one tuple (threads replace it
    whole): chroma returns the same ``str`` object from ``collection.name`` until the
    collection is renamed, so a call compares identities and skips the lookup by name.
    """

    __slots__ = ("by_name", "facts", "last", "local")

    def __init__(self, collection: Any) -> None:
        self.facts: dict[str, Any] | None = guard("chromadb collection")(collection_attributes)(
            collection
        )
        #: an in-process client: no HTTP request an instrumentation could trace (a
        #: collection that could not be read counts as remote: its span stays current)
        self.local = self.facts is not None and semconv.SERVER_ADDRESS not in self.facts
        self.by_name: dict[str | None, tuple[Start, Start]] = {}
        self.last: tuple[object, tuple[Start, Start]] = (_NOT_READ, _NO_STARTS)

    def under(self, name: object) -> tuple[Start, Start]:
        """The starts under ``name`` (what ``collection.name`` returned), remembered as the
        last name read."""
        key = name if isinstance(name, str) and name else None
        found = self.by_name.get(key)
        if found is None:
            found = _starts(key, self.facts)
            if len(self.by_name) < 16:  # bounded: renames are rare
                self.by_name[key] = found
        self.last = (name, found)
        return found


_NOT_READ = object()
_NO_STARTS = (Start(), Start())
_collections = InstanceCache(_CollectionStarts)
# Where chroma keeps its own tracer: ``None`` unless chroma's OpenTelemetry is configured
# (``chroma_otel_granularity``), and then its ``trace_method`` spans nest in the current one.
_CHROMA_OTEL = "chromadb.telemetry.opentelemetry"


def start(collection: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the collection, its database, and the server of a remote client.

    A collection of an ``HttpClient`` makes a CLIENT span, an in-process one an INTERNAL one.
    The span is a leaf (made when the call ends, never current: see ``Start.leaf``) when
    nothing the call runs can start a span: an in-process client, given the query's
    embeddings (the collection's embedding function, which may be instrumented, does not
    run), with chroma's own tracing off (read on every call: it can be turned on later).
    """
    known: _CollectionStarts = _collections.of(collection)
    try:
        name = collection.name
    except Exception:  # a collection model in an unexpected shape must not break the call
        name = None
    last = known.last
    found = last[1] if last[0] is name else known.under(name)
    if known.local and arguments.get("query_embeddings") is not None and not chroma_traces():
        return found[1]
    return found[0]


def chroma_traces() -> bool:
    """Whether chroma's own OpenTelemetry is on (its tracer is set, chroma's own test): its
    ``trace_method`` spans then nest in the current span."""
    chroma_otel = _chroma_otel[0] or _chroma_otel_module()
    return chroma_otel is not None and getattr(chroma_otel, "tracer", None) is not None


def _chroma_otel_module() -> Any:
    """Chroma's OpenTelemetry module (imported with chromadb), looked up once."""
    found = _chroma_otel[0] = sys.modules.get(_CHROMA_OTEL)
    return found


_chroma_otel: list[Any] = [None]


def _starts(name: str | None, facts: dict[str, Any] | None) -> tuple[Start, Start]:
    """The start of a call whose span is current, and of a leaf call (see :func:`start`)."""
    attributes: dict[str, Any] = {
        semconv.DB_SYSTEM_NAME: DB_SYSTEM,
        semconv.RAG_RETRIEVAL_SCORE_KIND: semconv.SCORE_KIND_DISTANCE,
    }
    if name:
        attributes[semconv.GEN_AI_DATA_SOURCE_ID] = name
        attributes[semconv.DB_COLLECTION_NAME] = name
    if facts:
        attributes.update(facts)
    remote = semconv.SERVER_ADDRESS in attributes
    current = Start(detail=name, kind=SpanKind.CLIENT if remote else None, attributes=attributes)
    return current, current if remote else current._replace(leaf=True)


def query_count(arguments: Mapping[str, Any]) -> int | None:
    """How many queries one ``query`` call asks: chroma accepts one or a list of each kind."""
    embeddings = arguments.get("query_embeddings")
    if type(embeddings) is list and embeddings and type(embeddings[0]) is list:
        return len(embeddings)  # the usual argument: a list of embeddings
    for key in _QUERY_INPUTS:
        value = arguments.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            return 1
        if type(value) is list:  # the usual argument: no shape, no abc lookup
            first = value[0] if value else None
            if key == "query_embeddings" and type(first) is not list and _is_scalar(first):
                return 1  # one embedding given as a flat list of numbers
            return len(value)
        shape = getattr(value, "shape", None)
        if shape is not None:
            # One embedding is 1-D; a batch of embeddings (or of images) adds a leading axis.
            single_ndim = 3 if key == "query_images" else 1
            return 1 if len(shape) <= single_ndim else int(shape[0])
        if isinstance(value, Sequence):
            if key == "query_embeddings" and value and _is_scalar(value[0]):
                return 1  # one embedding given as a flat list of numbers
            return len(value)
        return None
    return None


def query_request(collection: Any, arguments: Mapping[str, Any]) -> Attributes:
    """``n_results`` and the number of queries (pairs in a tuple: cheaper than a generator)."""
    n_results = arguments.get("n_results")
    embeddings = arguments.get("query_embeddings")
    if type(embeddings) is list and embeddings and type(embeddings[0]) is list:
        count: int | None = len(embeddings)  # the usual argument, without a call
    else:
        count = query_count(arguments)
    if type(n_results) is int or is_int(n_results):
        return ((_TOP_K, n_results), (_QUERY_COUNT, count))
    return ((_QUERY_COUNT, count),)


def query_response(result: Any) -> Attributes:
    """Hits returned over every query; for a single query, its best (smallest) distance."""
    # Chroma's own result for one query first: a dict of one list per query, checked
    # without abc lookups; anything else takes the general path.
    if type(result) is dict:
        ids = result.get("ids")
        if type(ids) is list and len(ids) == 1 and type(ids[0]) is list:
            distances = result.get("distances")
            if distances is None:
                return ((_RETURNED_COUNT, len(ids[0])),)
            if type(distances) is list and len(distances) == 1:
                best = distances[0]
                if type(best) is list:
                    if best:
                        return ((_RETURNED_COUNT, len(ids[0])), (_TOP_SCORE, float(best[0])))
                    return ((_RETURNED_COUNT, len(ids[0])),)
    return _query_response(result)


def _query_response(result: Any) -> Attributes:
    ids = _per_query(result, "ids")
    if ids is None:
        return
    yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, sum(map(len, ids))
    distances = _per_query(result, "distances")
    if len(ids) == 1 and distances and distances[0]:
        yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(distances[0][0])


def single_query_hits(result: Any) -> tuple[list[Any], list[float] | None, list[str]] | None:
    """Documents, distances and ids of a single query's hits; ``None`` for a batch."""
    ids = _per_query(result, "ids")
    if ids is None or len(ids) != 1:
        return None
    documents = _per_query(result, "documents")
    distances = _per_query(result, "distances")
    return (
        list(documents[0]) if documents else [],
        [float(d) for d in distances[0]] if distances else None,
        [str(i) for i in ids[0]],
    )


def single_query_text(arguments: Mapping[str, Any]) -> str | None:
    """The query text of a single text query (content; written only when capture is on)."""
    texts = arguments.get("query_texts")
    if isinstance(texts, str):
        return texts
    if isinstance(texts, Sequence) and len(texts) == 1 and isinstance(texts[0], str):
        return texts[0]
    return None


def _per_query(result: Any, key: str) -> list[Sequence[Any]] | None:
    if type(result) is not dict and not isinstance(result, Mapping):
        return None
    rows = result.get(key)
    if type(rows) is list and set(map(type, rows)) <= _LISTS:
        return rows  # chroma's own shape: a list of lists, checked without abc lookups
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        return None
    if not all(isinstance(row, Sequence) and not isinstance(row, str) for row in rows):
        return None
    return list(rows)


_LISTS = frozenset({list})


def _is_scalar(value: Any) -> bool:
    """A number, or a numpy / torch scalar (an embedding's first component)."""
    return is_number(value) or (
        not isinstance(value, bool) and hasattr(value, "item") and getattr(value, "ndim", 1) == 0
    )


# -- content writers (handed to the span's privacy gate) -----------------------------------
def write_query(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    """A single text query's text."""
    call.record_retrieval_query(single_query_text(arguments))


def write_hits(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """A single query's hits: documents, distances (as scores) and ids."""
    hits = single_query_hits(result)
    if hits is not None:
        documents, distances, ids = hits
        call.record_retrieved(documents, distances, ids)
