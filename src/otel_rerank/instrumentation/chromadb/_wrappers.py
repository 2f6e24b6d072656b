"""wrapt wrappers for chromadb ``Collection.query`` and ``AsyncCollection.query``.

The async wrapper is a coroutine function of its own, so the span covers the awaited
query rather than the creation of a coroutine object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded, report_internal_error
from otel_rerank.instrumentation._common import bind_arguments, nothing_records
from otel_rerank.instrumentation.chromadb import _attributes as attrs


@guarded
def _collection_attributes(instance: Any) -> dict[str, Any] | None:
    return attrs.collection_attributes(instance)


def _begin(instance: Any) -> _span.StageSpan | None:
    if nothing_records():  # before reading anything of the collection
        return None
    name = attrs.data_source(instance)
    attributes: dict[str, Any] = {
        semconv.DB_SYSTEM_NAME: attrs.DB_SYSTEM,
        semconv.RAG_RETRIEVAL_SCORE_KIND: semconv.SCORE_KIND_DISTANCE,
    }
    if name:
        attributes[semconv.GEN_AI_DATA_SOURCE_ID] = name
        attributes[semconv.DB_COLLECTION_NAME] = name
    attributes.update(_collection_attributes(instance) or {})
    remote = semconv.SERVER_ADDRESS in attributes  # an HttpClient's collection
    return _span.begin(
        _span.RETRIEVAL,
        provider=attrs.PROVIDER,
        detail=name,
        kind=SpanKind.CLIENT if remote else None,
        attributes=attributes,
    )


def _before(call: _span.StageSpan, wrapped: Callable[..., Any], args: Any, kwargs: Any) -> None:
    if not call.recording:
        return
    arguments = bind_arguments(wrapped, args, kwargs)
    call.extract(attrs.query_request, arguments)
    if call.capturing:
        call.record_retrieval_query(attrs.single_query_text(arguments))


def _after(call: _span.StageSpan, result: Any) -> None:
    call.extract(attrs.query_response, result)
    if not call.capturing:
        return
    try:
        hits = attrs.single_query_hits(result)
    except Exception:
        report_internal_error("chromadb.single_query_hits")
        return
    if hits is not None:
        documents, distances, ids = hits
        call.record_retrieved(documents, distances, ids)


def query(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _begin(instance)
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        _before(call, wrapped, args, kwargs)
        result = wrapped(*args, **kwargs)
        _after(call, result)
        return result


async def query_async(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _begin(instance)
    if call is None:
        return await wrapped(*args, **kwargs)
    with call:
        _before(call, wrapped, args, kwargs)
        result = await wrapped(*args, **kwargs)
        _after(call, result)
        return result
