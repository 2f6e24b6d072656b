"""wrapt wrappers for openai's chat completions and embeddings, sync and async.

One span per user call. ``create(stream=True)`` returns the SDK's stream inside a proxy
(see ``otel_rerank.instrumentation._llm``) that ends the span when the stream is exhausted,
closed, broken out of or dropped. ``chat.completions.stream(...)`` calls ``create`` itself,
so its span is the one ``create`` starts; the helper's context manager is proxied only to
end that span when the ``with`` block is left early (the SDK closes the HTTP response
there, which the stream proxy cannot see). The span is current while the request is sent,
so an HTTP client span (httpx instrumentation) nests under it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt
from opentelemetry import context
from opentelemetry.trace import SpanKind

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._common import bind_arguments
from otel_rerank.instrumentation._llm import AsyncStreamProxy, SyncStreamProxy
from otel_rerank.instrumentation.openai import _attributes as attrs

_Wrapped = Callable[..., Any]


def _arguments(wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # The SDK's methods are keyword-only, so kwargs *are* the bound arguments; binding
    # through the signature (40-odd parameters) is kept for a positional call.
    return bind_arguments(wrapped, args, kwargs) if args else kwargs


def _begin_chat(instance: Any, arguments: Any) -> StageSpan | None:
    call = _span.begin(
        _span.CHAT,
        provider=attrs.PROVIDER,
        model=attrs.model(arguments),
        attributes=attrs.server(instance),
    )
    if call is not None and call.recording:
        call.extract(attrs.chat_request, arguments)
        if call.capturing:
            _record_input(call, arguments)
    return call


@guarded
def _record_input(call: StageSpan, arguments: Any) -> None:
    call.record_messages(semconv.LLM_INPUT_MESSAGES, attrs.input_messages(arguments))


@guarded
def _record_chat_result(call: StageSpan, result: Any) -> None:
    call.extract(attrs.chat_response, result)
    call.record_tokens(*attrs.usage(result))
    if call.capturing:
        call.record_messages(semconv.LLM_OUTPUT_MESSAGES, attrs.output_messages(result))


def _finish_chat(call: StageSpan, result: Any) -> None:
    _record_chat_result(call, result)  # token usage is a metric: recorded even if sampled out
    call.end()


def _call_in_span(
    call: StageSpan, wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Send the request with the span current (HTTP spans nest under it); end it on error.

    On success the span is left open: a stream outlives this call, and metrics recorded
    after it are not tied to the span as exemplars of every histogram point.
    """
    token = context.attach(call.context)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error)
        raise
    finally:
        context.detach(token)


async def _acall_in_span(
    call: StageSpan, wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The async twin of :func:`_call_in_span` (the span covers the await)."""
    token = context.attach(call.context)
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error)
        raise
    finally:
        context.detach(token)


def chat_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    call = _begin_chat(instance, arguments)
    if call is None:
        return wrapped(*args, **kwargs)
    started = time.perf_counter()
    result = _call_in_span(call, wrapped, args, kwargs)
    if attrs.streaming(arguments) and isinstance(result, Iterator):
        state = attrs.ChatStreamState(call.capturing)
        return SyncStreamProxy(result, call, state, started)
    _finish_chat(call, result)
    return result


async def achat_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    call = _begin_chat(instance, arguments)
    if call is None:
        return await wrapped(*args, **kwargs)
    started = time.perf_counter()
    result = await _acall_in_span(call, wrapped, args, kwargs)
    if attrs.streaming(arguments) and isinstance(result, AsyncIterator):
        state = attrs.ChatStreamState(call.capturing)
        return AsyncStreamProxy(result, call, state, started)
    _finish_chat(call, result)
    return result


class _StreamHelper(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """``chat.completions.stream(...)``'s context manager, ending the span on exit."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_raw: Any = None

    def _self_remember(self, stream: Any) -> Any:
        raw = getattr(stream, "_raw_stream", None)  # the proxy our create() returned
        if isinstance(raw, (SyncStreamProxy, AsyncStreamProxy)):
            self._self_raw = raw
        return stream

    def _self_finish(self) -> None:
        raw, self._self_raw = self._self_raw, None
        if raw is not None:
            raw._self_finish()

    def __enter__(self) -> Any:
        return self._self_remember(self.__wrapped__.__enter__())

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_finish()

    async def __aenter__(self) -> Any:
        return self._self_remember(await self.__wrapped__.__aenter__())

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_finish()


def chat_stream_helper(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Completions.stream`` and ``AsyncCompletions.stream`` (both return a manager)."""
    return _StreamHelper(wrapped(*args, **kwargs))


def _begin_embeddings(instance: Any, arguments: Any) -> StageSpan | None:
    call = _span.begin(
        _span.EMBEDDINGS,
        provider=attrs.PROVIDER,
        model=attrs.model(arguments),
        kind=SpanKind.CLIENT,
        attributes=attrs.server(instance),
    )
    if call is not None and call.recording:
        call.extract(attrs.embeddings_request, arguments)
        if call.capturing:
            _record_embedding_texts(call, arguments)
    return call


@guarded
def _record_embedding_texts(call: StageSpan, arguments: Any) -> None:
    call.record_documents(
        semconv.EMBEDDING_EMBEDDINGS,
        attrs.embedding_texts(arguments),
        content_key=semconv.EMBEDDING_TEXT,
    )


@guarded
def _finish_embeddings(call: StageSpan, result: Any) -> None:
    call.extract(attrs.embeddings_response, result)  # runs only if the span records
    call.record_tokens(attrs.embedding_input_tokens(result), None)  # metric: always


def embeddings_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    call = _begin_embeddings(instance, arguments)
    if call is None:
        return wrapped(*args, **kwargs)
    result = _call_in_span(call, wrapped, args, kwargs)
    _finish_embeddings(call, result)
    call.end()
    return result


async def aembeddings_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    call = _begin_embeddings(instance, arguments)
    if call is None:
        return await wrapped(*args, **kwargs)
    result = await _acall_in_span(call, wrapped, args, kwargs)
    _finish_embeddings(call, result)
    call.end()
    return result
