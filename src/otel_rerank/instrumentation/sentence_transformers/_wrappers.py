"""wrapt wrappers for SentenceTransformer.encode, CrossEncoder.predict and CrossEncoder.rank.

One span per user call. ``encode_query``/``encode_document`` are not wrapped: they call
``encode``, whose wrapper makes the single span. ``rank`` calls ``predict``; the rank
wrapper sets a context-local sink, and a ``predict`` that finds it records nothing of its
own but hands its scores to the rank span (which needs every score, even with ``top_k``,
to compute Kendall's tau).

Each wrapper is the same shape: start the span, run our "before" recorder safely, call the
original, run our "after" recorder safely. Only the original call can raise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from otel_rerank import _span, semconv
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._common import bind_arguments, sized_length
from otel_rerank.instrumentation.sentence_transformers import _attributes as attrs

# Set while our rank() wrapper runs: the inner predict() appends its raw result here.
_rank_sink: ContextVar[list[Any] | None] = ContextVar("otel_rerank_st_rank_sink", default=None)

Wrapped = Callable[..., Any]


def encode(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _span.begin(_span.EMBEDDINGS, provider=attrs.PROVIDER, model=attrs.model_name(instance))
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        call.safely(_before_encode, call, wrapped, instance, args, kwargs)
        result = wrapped(*args, **kwargs)
        call.extract(attrs.encode_response, result)
        return result


def _before_encode(
    call: StageSpan, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if not call.recording:
        return
    arguments = bind_arguments(wrapped, args, kwargs)
    call.extract(attrs.encode_request, instance, arguments)
    if call.capturing:
        call.record_documents(
            semconv.EMBEDDING_EMBEDDINGS,
            attrs.encode_texts(arguments),
            content_key=semconv.EMBEDDING_TEXT,
        )


def predict(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    sink = _rank_sink.get()
    if sink is not None:  # inside our rank(): its span covers this call
        result = wrapped(*args, **kwargs)
        sink.append(result)
        return result
    call = _span.begin(_span.RERANK, provider=attrs.PROVIDER, model=attrs.model_name(instance))
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        pairs = call.safely(_before_predict, call, wrapped, instance, args, kwargs)
        result = wrapped(*args, **kwargs)
        if pairs is not None and call.recording:
            call.safely(_after_predict, call, pairs, result)
        return result


def _before_predict(
    call: StageSpan, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Any] | None:
    arguments = bind_arguments(wrapped, args, kwargs)
    pairs = attrs.predict_pairs(arguments)
    call.record_candidates(len(pairs) if pairs is not None else None)
    call.extract(attrs.rerank_model_attributes, instance, arguments)
    return pairs


def _after_predict(call: StageSpan, pairs: Sequence[Any], result: Any) -> None:
    one_query, query = attrs.single_query(pairs)
    if call.capturing:
        call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, [p[1] for p in pairs])
    if one_query:  # per-query attributes (and a reranked order) mean nothing across queries
        call.record_scores(attrs.predict_scores(result))
        call.record_text(semconv.RERANKER_QUERY, query)


def rank(wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _span.begin(_span.RERANK, provider=attrs.PROVIDER, model=attrs.model_name(instance))
    if call is None:
        return wrapped(*args, **kwargs)
    sink: list[Any] = []
    token = _rank_sink.set(sink)
    try:
        with call:
            arguments = call.safely(_before_rank, call, wrapped, instance, args, kwargs)
            result = wrapped(*args, **kwargs)
            if arguments is not None and call.recording:
                call.safely(_after_rank, call, arguments, sink, result)
            return result
    finally:
        _rank_sink.reset(token)


def _before_rank(
    call: StageSpan, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    arguments = bind_arguments(wrapped, args, kwargs)
    call.record_candidates(sized_length(arguments.get("documents")))
    top_n = attrs.top_n(arguments)
    call.set(semconv.GEN_AI_RERANK_TOP_N, top_n)
    call.set(semconv.RERANKER_TOP_K, top_n)
    call.extract(attrs.rerank_model_attributes, instance, arguments)
    return arguments


def _after_rank(call: StageSpan, arguments: dict[str, Any], sink: list[Any], result: Any) -> None:
    documents = arguments.get("documents")
    scores = attrs.predict_scores(sink[0]) if len(sink) == 1 else None
    if scores is None:
        scores = attrs.rank_scores(result, sized_length(documents))
    if call.capturing and isinstance(documents, (list, tuple)):
        call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, documents)
    call.record_scores(scores, top_n=attrs.top_n(arguments))  # rank returns top_k of them
    call.record_text(semconv.RERANKER_QUERY, arguments.get("query"))
