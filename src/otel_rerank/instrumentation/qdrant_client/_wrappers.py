"""wrapt wrappers for the query methods of ``QdrantClient`` and ``AsyncQdrantClient``.

Sync and async methods get separate wrappers: the async one is a coroutine function, so
its span covers the awaited query, not the creation of a coroutine object (a sync wrapper
on a coroutine function measures nothing). Older clients implement ``query`` and
``search`` on top of other wrapped methods; a context flag makes that one span per user
call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry.trace import SpanKind

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded, report_internal_error
from otel_rerank.instrumentation._common import bind_arguments, nothing_records
from otel_rerank.instrumentation.qdrant_client import _attributes as attrs

Wrapped = Callable[..., Any]
Extractor = Callable[..., attrs.Pairs]

# True while one of our qdrant spans is open in this context (threads and tasks apart).
_in_query: ContextVar[bool] = ContextVar("otel_rerank_qdrant_query", default=False)


@guarded
def _server(client: Any) -> dict[str, Any] | None:
    return attrs.server(client)


def _straight_through() -> bool:
    """Inside another of our qdrant spans, or nothing records: read nothing of the call."""
    return _in_query.get() or nothing_records()


@contextmanager
def _span_for(
    wrapped: Wrapped,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    request: Extractor,
) -> Iterator[_span.StageSpan | None]:
    """The call's span (current while it runs), or ``None`` to call straight through."""
    if _straight_through():
        yield None
        return
    arguments = bind_arguments(wrapped, args, kwargs)
    name = attrs.data_source(arguments)
    attributes: dict[str, Any] = {semconv.DB_SYSTEM_NAME: attrs.DB_SYSTEM}
    if name:
        attributes[semconv.GEN_AI_DATA_SOURCE_ID] = name
        attributes[semconv.DB_COLLECTION_NAME] = name
    server = _server(instance)
    if server:  # a Qdrant server (HTTP or gRPC): a client call, not in-process work
        attributes.update(server)
    call = _span.begin(
        _span.RETRIEVAL,
        provider=attrs.PROVIDER,
        detail=name,
        kind=SpanKind.CLIENT if server else None,
        attributes=attributes,
    )
    if call is None:
        yield None
        return
    token = _in_query.set(True)
    try:
        with call:
            call.extract(request, arguments)
            if call.capturing:
                call.record_retrieval_query(attrs.query_text(arguments))
            yield call
    finally:
        _in_query.reset(token)


def _record_hits(call: _span.StageSpan, result: Any) -> None:
    if not call.capturing:
        return
    try:
        found = attrs.hits(result)
    except Exception:
        report_internal_error("qdrant.hits")
        return
    if found is not None:
        texts, scores, ids = found
        call.record_retrieved(texts, scores, ids)


def query(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``query_points``, ``search`` and ``query`` (one query each)."""
    if _straight_through():
        return wrapped(*args, **kwargs)
    with _span_for(wrapped, instance, args, kwargs, attrs.query_request) as call:
        if call is None:
            return wrapped(*args, **kwargs)
        result = wrapped(*args, **kwargs)
        call.extract(attrs.query_response, result)
        _record_hits(call, result)
        return result


async def query_async(
    wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _straight_through():
        return await wrapped(*args, **kwargs)
    with _span_for(wrapped, instance, args, kwargs, attrs.query_request) as call:
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await wrapped(*args, **kwargs)
        call.extract(attrs.query_response, result)
        _record_hits(call, result)
        return result


def batch(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``query_batch_points``: one span for the batch."""
    if _straight_through():
        return wrapped(*args, **kwargs)
    with _span_for(wrapped, instance, args, kwargs, attrs.batch_request) as call:
        if call is None:
            return wrapped(*args, **kwargs)
        result = wrapped(*args, **kwargs)
        call.extract(attrs.batch_response, result)
        return result


async def batch_async(
    wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _straight_through():
        return await wrapped(*args, **kwargs)
    with _span_for(wrapped, instance, args, kwargs, attrs.batch_request) as call:
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await wrapped(*args, **kwargs)
        call.extract(attrs.batch_response, result)
        return result
