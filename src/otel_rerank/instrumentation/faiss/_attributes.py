"""Pure extraction of span attributes from faiss ``search`` calls.

faiss returns two ``(nq, k)`` arrays, distances ``D`` and labels ``I``, best hit first in
each row; a row with fewer than ``k`` hits is padded with label ``-1``. The functions here
turn the call's bound arguments and that result into ``(key, value)`` pairs without
touching a span (the content writer at the end only calls the span's ``record_*``).
Query vectors and stored vectors are never read beyond their shape.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from otel_rerank import semconv
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import InstanceCache

PROVIDER = "faiss"
DB_SYSTEM = "faiss"

# Names the user gave to index objects (``set_data_source``); weakly keyed so that naming
# an index never keeps it alive.
_names: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def index_classes(module: Any) -> Iterator[type]:
    """Every index class in ``module`` (float and binary) whose own ``__dict__`` has ``search``.

    faiss does not have one ``Index.search`` to patch: at import it gives each SWIG class
    that declares ``search`` its own Python replacement (``faiss.class_wrappers``), so
    ``IndexFlatIP.search`` and ``IndexIVFFlat.search`` are different functions. Other
    faiss classes with a ``search`` method (``HNSW``, ``ProductQuantizer``, ...) are
    building blocks with other signatures, not indexes, and are left alone.
    """
    bases = tuple(
        base
        for base in (getattr(module, "Index", None), getattr(module, "IndexBinary", None))
        if isinstance(base, type)
    )
    if not bases:
        return
    seen: set[type] = set()
    for value in list(vars(module).values()):
        if (
            inspect.isclass(value)
            and value not in seen
            and issubclass(value, bases)
            and "search" in value.__dict__
        ):
            seen.add(value)
            yield value


def set_data_source(index: Any, name: str) -> None:
    """Name ``index`` for ``gen_ai.data_source.id`` and the span name (default: its class)."""
    _names[index] = str(name)
    _starts.discard(index)


def data_source(index: Any) -> str:
    """The name given with :func:`set_data_source`, else the index's class name."""
    try:
        name = _names.get(index)
    except TypeError:  # not weak-referenceable
        name = None
    return name if name is not None else type(index).__name__


# faiss.METRIC_INNER_PRODUCT: the one metric whose scores grow with relevance.
_METRIC_INNER_PRODUCT = 0


def score_kind(index: Any) -> str:
    """``rag.retrieval.score_kind``: a similarity for inner-product indexes, else a distance.

    L2 (squared), L1 and the other metrics are distances; binary indexes report Hamming
    distances and have no ``metric_type``.
    """
    metric = getattr(index, "metric_type", None)
    if metric == _METRIC_INNER_PRODUCT:
        return semconv.SCORE_KIND_SIMILARITY
    return semconv.SCORE_KIND_DISTANCE


def _start(index: Any) -> Start:
    name = data_source(index)
    return Start(
        detail=name,
        leaf=True,  # a C++ search: nothing in it starts a span
        attributes={
            semconv.GEN_AI_DATA_SOURCE_ID: name,
            semconv.DB_SYSTEM_NAME: DB_SYSTEM,
            semconv.RAG_RETRIEVAL_SCORE_KIND: score_kind(index),
        },
    )


_starts = InstanceCache(_start)


def start(index: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the data source, once per index (again after a rename)."""
    found: Start = _starts.of(index)
    return found


def search_request(index: Any, arguments: Mapping[str, Any]) -> Attributes:
    """``k`` and the number of query vectors (rows of ``x``)."""
    k = arguments.get("k")
    if is_int(k):
        yield semconv.GEN_AI_RETRIEVAL_TOP_K, k
    shape = getattr(arguments.get("x"), "shape", None)
    if shape is not None and len(shape) == 2:
        yield semconv.RAG_RETRIEVAL_QUERY_COUNT, int(shape[0])


def search_response(result: Any) -> Attributes:
    """Valid hits (labels other than ``-1``) over every query; the best score of one query.

    ``rag.retrieval.top_score`` is the raw value of the best hit: a similarity for inner
    product indexes (higher is better), a squared distance for L2 ones (lower is better).
    It is written only for a single query, where "the best hit" is one number.
    """
    arrays = _arrays(result)
    if arrays is None:
        return
    distances, labels = arrays
    if labels.shape[0] == 1 and getattr(labels.dtype, "kind", None) in ("i", "u"):
        # One query, faiss's int64 labels: a k-long row in plain Python costs a third of
        # numpy's per-call overhead.
        row = labels[0].tolist()
        if row and min(row) >= 0:  # every hit real (the usual row): counted in C
            yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, len(row)
            yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(distances[0, 0])
            return
        hits = [i for i, label in enumerate(row) if label >= 0]
        yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, len(hits)
        if hits:
            yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(distances[0, hits[0]])
        return
    valid = labels >= 0
    yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, int(valid.sum())
    if labels.shape[0] == 1 and bool(valid[0].any()):
        first = int(valid[0].argmax())  # padding only ever follows the real hits
        yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(distances[0, first])


def single_query_hits(result: Any) -> tuple[list[int], list[float]] | None:
    """Ids and scores of a single query's valid hits, best first; ``None`` for a batch."""
    arrays = _arrays(result)
    if arrays is None or arrays[1].shape[0] != 1:
        return None
    distances, labels = arrays
    ids: list[int] = []
    scores: list[float] = []
    for label, score in zip(labels[0].tolist(), distances[0].tolist(), strict=False):
        if label >= 0:
            ids.append(int(label))
            scores.append(float(score))
    return ids, scores


def _arrays(result: Any) -> tuple[Any, Any] | None:
    """``(D, I)`` when ``result`` is search's pair of equally shaped 2-D arrays."""
    if not isinstance(result, tuple) or len(result) != 2:
        return None
    distances, labels = result
    shape = getattr(labels, "shape", None)
    if shape is None or len(shape) != 2 or getattr(distances, "shape", None) != shape:
        return None
    return distances, labels


def write_hits(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """Content writer: a single query's hits as retrieval documents (ids and scores)."""
    hits = single_query_hits(result)
    if hits is not None:
        call.record_retrieved(None, hits[1], hits[0])
