"""Wrappers for LlamaIndex: request scopes (streams too), SimpleVectorStore retrieval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any

from otel_rerank import _request, _span
from otel_rerank._safe import guard
from otel_rerank.instrumentation import _entry
from otel_rerank.instrumentation._common import bind_arguments
from otel_rerank.instrumentation.llama_index import _attributes as attrs

NAME = "llama_index"

query = _entry.request(NAME)
aquery = _entry.arequest(NAME)


def simple_store_query(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _span.begin(_span.RETRIEVAL, provider=attrs.PROVIDER, detail=attrs.DATA_SOURCE)
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        if call.recording:
            vector_query = bind_arguments(wrapped, args, kwargs).get("query")
            call.extract(attrs.query_request, vector_query)
        result = wrapped(*args, **kwargs)
        call.extract(attrs.query_response, result)
        return result


def _top_n(instance: Any, arguments: Mapping[str, Any]) -> Any:
    return getattr(instance, "top_n", None)


postprocess_nodes = _entry.with_rerank_top_n(_top_n)


# A stream_chat / astream_chat request in flight in this context, until the engine builds
# the StreamingAgentChatResponse that carries its LLM stream.
_Call = _request._RequestCall | None
_STREAM_CHAT: ContextVar[_Call] = ContextVar("otel_rerank_llama_index_stream_chat", default=None)


def stream_chat(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``stream_chat`` is one request, until the LLM stream it returns is read to the end.

    The engine reads that stream in a ``Thread`` it starts without the caller's context:
    :func:`streaming_response_init` hands the request over to the stream, which resumes
    it in whichever thread reads it and ends it when exhausted, failed or closed.
    """
    call, token = _begin_stream_chat()
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _end_stream_chat(call, token, error)
        raise
    _end_stream_chat(call, token, None)
    return result


async def astream_chat(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The async twin of :func:`stream_chat`: the engine reads the stream in a task."""
    call, token = _begin_stream_chat()
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        _end_stream_chat(call, token, error)
        raise
    _end_stream_chat(call, token, None)
    return result


def _begin_stream_chat() -> tuple[_Call, Token[_Call]]:
    call = _request.begin_call(NAME)
    return call, _STREAM_CHAT.set(call)


def _end_stream_chat(call: _Call, token: Token[_Call], error: BaseException | None) -> None:
    """Leave the call; the request ends here unless a stream took it over."""
    handed_over = error is None and _STREAM_CHAT.get() is not call
    _STREAM_CHAT.reset(token)
    if not handed_over:  # no LLM stream built (or our code failed): the call was the request
        _request.finish_call(call, error)


def streaming_response_init(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``StreamingAgentChatResponse(chat_stream=...)`` (or ``achat_stream=``) in a request.

    LlamaIndex's engines always read that stream (``write_response_to_history`` in their
    thread, ``awrite_response_to_history`` in their task); a response whose stream nobody
    ever reads leaves the request span unended.
    """
    call = _STREAM_CHAT.get()
    if call is None:
        return wrapped(*args, **kwargs)
    stream: Any = kwargs.get("chat_stream")
    astream: Any = kwargs.get("achat_stream")
    if stream is None and astream is None:
        return wrapped(*args, **kwargs)
    with guard("llama_index.stream_chat"):
        call.suspend()  # the rest is read where the stream is read
        if stream is not None:
            kwargs = {**kwargs, "chat_stream": _request.iterate_in_call(call, lambda: stream)}
        else:
            kwargs = {**kwargs, "achat_stream": _request.aiterate_in_call(call, lambda: astream)}
        _STREAM_CHAT.set(None)
    return wrapped(*args, **kwargs)
