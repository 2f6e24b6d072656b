"""The wrapt wrapper for ``search`` on faiss index classes, and the search for those classes.

faiss does not have one ``Index.search`` to patch: at import it gives each SWIG class that
declares ``search`` its own Python replacement (``faiss.class_wrappers.handle_Index``), so
``IndexFlatIP.search`` and ``IndexIVFFlat.search`` are different functions. Every one of
them is patched. A search that reaches another patched search (a user subclass calling
``super().search``) makes one span, not two.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from otel_rerank import _span, semconv
from otel_rerank._safe import report_internal_error
from otel_rerank.instrumentation._common import bind_arguments, nothing_records
from otel_rerank.instrumentation.faiss import _attributes as attrs

# True while one of our search spans is open in this context.
_in_search: ContextVar[bool] = ContextVar("otel_rerank_faiss_search", default=False)


def index_classes(module: Any) -> Iterator[type]:
    """Every index class in ``module`` (float and binary) whose own ``__dict__`` has ``search``.

    Other faiss classes with a ``search`` method (``HNSW``, ``ProductQuantizer``, ...) are
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


def search(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _in_search.get() or nothing_records():  # before reading anything of the call
        return wrapped(*args, **kwargs)
    name = attrs.data_source(instance)
    call = _span.begin(
        _span.RETRIEVAL,
        provider=attrs.PROVIDER,
        detail=name,
        attributes={
            semconv.GEN_AI_DATA_SOURCE_ID: name,
            semconv.DB_SYSTEM_NAME: attrs.DB_SYSTEM,
            semconv.RAG_RETRIEVAL_SCORE_KIND: attrs.score_kind(instance),
        },
    )
    if call is None:
        return wrapped(*args, **kwargs)
    token = _in_search.set(True)
    try:
        with call:
            if call.recording:
                call.extract(attrs.search_request, bind_arguments(wrapped, args, kwargs))
            result = wrapped(*args, **kwargs)
            call.extract(attrs.search_response, result)
            if call.capturing:
                _record_hits(call, result)
            return result
    finally:
        _in_search.reset(token)


def _record_hits(call: _span.StageSpan, result: Any) -> None:
    """Ids and scores of a single query's hits as retrieval documents (capture on only)."""
    try:
        hits = attrs.single_query_hits(result)
    except Exception:
        report_internal_error("faiss.single_query_hits")
        return
    if hits is not None:
        call.record_retrieved(None, hits[1], hits[0])
