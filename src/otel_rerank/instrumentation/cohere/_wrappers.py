"""wrapt wrappers for cohere's ``rerank`` on the v1 and v2 clients, sync and async.

The generated clients delegate to a raw client that is not wrapped, so each user call is
one span. The async wrapper is a coroutine function: its span covers the awaited HTTP
round trip. An HTTP instrumentation (``opentelemetry-instrumentation-httpx``) active on
the same call adds its request span as a child of the rerank span.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import SpanKind

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded, report_internal_error
from otel_rerank.instrumentation._common import bind_arguments, nothing_records
from otel_rerank.instrumentation.cohere import _attributes as attrs

Wrapped = Callable[..., Any]


@guarded
def _server(instance: Any) -> dict[str, Any] | None:
    return attrs.server(instance)


def _begin(
    wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[_span.StageSpan | None, dict[str, Any]]:
    if nothing_records():  # before reading anything of the call
        return None, {}
    arguments = bind_arguments(wrapped, args, kwargs)
    call = _span.begin(
        _span.RERANK,
        provider=attrs.PROVIDER,
        model=attrs.model(arguments),
        kind=SpanKind.CLIENT,
        attributes=_server(instance),
    )
    return call, arguments


def _before(call: _span.StageSpan, arguments: dict[str, Any]) -> int | None:
    count = attrs.candidate_count(arguments)
    call.record_candidates(count)
    call.extract(attrs.request, arguments)
    if call.capturing:
        call.record_text(semconv.RERANKER_QUERY, arguments.get("query"))
    return count


def _after(
    call: _span.StageSpan, arguments: dict[str, Any], count: int | None, result: Any
) -> None:
    if not call.recording:
        return
    call.extract(attrs.response, result)
    try:
        ranked = attrs.results(result)
        scores = attrs.scores_in_document_order(ranked, count)
    except Exception:
        report_internal_error("cohere.results")
        return
    if call.capturing:
        _record_documents(call, arguments)
    if scores is not None:
        call.record_scores(scores)  # top score, top-1 change and Kendall's tau
    else:
        call.extract(attrs.partial_summary, ranked)  # top_n cut the list: no tau
    # The reranked list as the API returned it (top_n of the candidates when given).
    call.record_ranked(ranked)


def _record_documents(call: _span.StageSpan, arguments: dict[str, Any]) -> None:
    try:
        texts = attrs.document_texts(arguments)
    except Exception:
        report_internal_error("cohere.document_texts")
        return
    call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, texts)


def rerank(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call, arguments = _begin(wrapped, instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        count = _before(call, arguments)
        result = wrapped(*args, **kwargs)
        _after(call, arguments, count, result)
        return result


async def rerank_async(
    wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call, arguments = _begin(wrapped, instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    with call:
        count = _before(call, arguments)
        result = await wrapped(*args, **kwargs)
        _after(call, arguments, count, result)
        return result
