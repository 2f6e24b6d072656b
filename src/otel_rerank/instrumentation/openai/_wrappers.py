"""Wrappers for openai's chat completions and embeddings, sync and async.

One span per user call. Chat completions go through the wrappers the LLM clients share
(``otel_rerank.instrumentation._llm.Chat``; the subclass here only names the extractors
of ``_attributes``): ``create(stream=True)`` returns the SDK's
stream inside a proxy that ends the span when the stream is exhausted, closed, broken out
of or dropped. ``chat.completions.stream(...)`` calls ``create`` itself, so its span is the
one ``create`` starts; the helper's context manager is proxied only to end that span when
the ``with`` block is left early (the SDK closes the HTTP response there, which the stream
proxy cannot see). The span is current while the request is sent, so an HTTP client span
(httpx instrumentation) nests under it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from otel_rerank import _span, _telemetry, semconv
from otel_rerank._safe import guard, report_internal_error
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._llm import (
    ManagerProxy,
    Operation,
    Sending,
    StreamProxy,
    response_model,
)
from otel_rerank.instrumentation._raw_response import RawResponseChat
from otel_rerank.instrumentation.openai import _attributes as attrs

_Wrapped = Callable[..., Any]


class _ChatCompletions(RawResponseChat):
    """openai's chat completions, read by the pure extractors in ``_attributes`` (see ``Chat``)."""

    __slots__ = ()

    request = staticmethod(attrs.chat_request)
    response = staticmethod(attrs.chat_response)
    usage = staticmethod(attrs.usage)
    input_messages = staticmethod(attrs.input_messages)
    output_messages = staticmethod(attrs.output_messages)
    finish_reasons = staticmethod(attrs.finish_reasons)
    stream_state = staticmethod(attrs.ChatStreamState)


_CHAT = _ChatCompletions(attrs.PROVIDER)
chat_create = _CHAT.create
achat_create = _CHAT.acreate


class _StreamHelper(ManagerProxy):
    """``chat.completions.stream(...)``'s context manager, ending the span on exit."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_raw: StreamProxy | None = None

    def _self_remember(self, stream: Any) -> Any:
        raw = getattr(stream, "_raw_stream", None)  # the proxy our create() returned
        if isinstance(raw, StreamProxy):
            self._self_raw = raw
        return stream

    def _self_finish(self) -> None:
        raw, self._self_raw = self._self_raw, None
        if raw is not None:
            raw._self_finish()

    def __enter__(self) -> Any:
        return self._self_remember(self.__wrapped__.__enter__())

    async def __aenter__(self) -> Any:
        return self._self_remember(await self.__wrapped__.__aenter__())


def chat_stream_helper(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Completions.stream`` and ``AsyncCompletions.stream`` (both return a manager)."""
    return _StreamHelper(wrapped(*args, **kwargs))


_EMBEDDINGS = Operation(_span.EMBEDDINGS, attrs.PROVIDER, SpanKind.CLIENT)


def _begin_embeddings(
    telemetry: _telemetry.Telemetry, parent: Context, instance: Any, arguments: Mapping[str, Any]
) -> StageSpan | None:
    try:
        request = attrs.embeddings_request(arguments)
    except Exception:  # ours: the span starts without them
        report_internal_error("openai embeddings request")
        request = ()
    call = _EMBEDDINGS.start(telemetry, parent, instance, arguments, request)
    if call is not None:
        call.record_content(_write_embedding_texts, arguments)
    return call


def _write_embedding_texts(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    call.record_documents(
        semconv.EMBEDDING_EMBEDDINGS,
        attrs.embedding_texts(arguments),
        content_key=semconv.EMBEDDING_TEXT,
    )


@guard("openai embeddings response")
def _finish_embeddings(call: StageSpan, result: Any) -> None:
    input_tokens = attrs.embedding_input_tokens(result)
    call.record_response_model(response_model(result))  # before the token metric
    # One attribute write for the response and its usage; runs only if the span records.
    call.extract(attrs.embeddings_response, result, input_tokens)
    call.record_tokens(input_tokens, None, on_span=False)  # the metric: always


def embeddings_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    recording = _span.records()
    if recording is None:  # nothing records: read nothing of the call
        return wrapped(*args, **kwargs)
    telemetry, parent = recording
    arguments = _EMBEDDINGS.bind(wrapped, args, kwargs)
    call = _begin_embeddings(telemetry, parent, instance, arguments)
    if call is None:
        return wrapped(*args, **kwargs)
    with Sending(call):
        result = wrapped(*args, **kwargs)
    _finish_embeddings(call, result)
    call.end()
    return result


async def aembeddings_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    recording = _span.records()
    if recording is None:  # nothing records: read nothing of the call
        return await wrapped(*args, **kwargs)
    telemetry, parent = recording
    arguments = _EMBEDDINGS.bind(wrapped, args, kwargs)
    call = _begin_embeddings(telemetry, parent, instance, arguments)
    if call is None:
        return await wrapped(*args, **kwargs)
    with Sending(call):
        result = await wrapped(*args, **kwargs)
    _finish_embeddings(call, result)
    call.end()
    return result
