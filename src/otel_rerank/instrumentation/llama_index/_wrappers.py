"""wrapt wrappers for LlamaIndex: request scopes (streams too), SimpleVectorStore retrieval."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
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


# A stream_chat request in flight in this context, until the engine builds the
# StreamingAgentChatResponse that carries its LLM stream.
_STREAM_CHAT: ContextVar[_request._RequestCall | None] = ContextVar(
    "otel_rerank_llama_index_stream_chat", default=None
)


def stream_chat(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``stream_chat`` is one request, until the LLM stream it returns is read to the end.

    The engine reads that stream in a ``Thread`` it starts without the caller's context:
    :func:`streaming_response_init` hands the request over to the stream, which resumes
    it in whichever thread reads it and ends it when exhausted, failed or closed.
    """
    call = _request.begin_call(NAME)
    token = _STREAM_CHAT.set(call)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        _STREAM_CHAT.reset(token)
        _request.finish_call(call, error)
        raise
    handed_over = _STREAM_CHAT.get() is not call
    _STREAM_CHAT.reset(token)
    if not handed_over:  # no LLM stream built (or our code failed): the call was the request
        _request.finish_call(call, None)
    return result


def streaming_response_init(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``StreamingAgentChatResponse(chat_stream=...)`` inside a ``stream_chat`` request.

    LlamaIndex's engines always read that stream (``write_response_to_history``, in their
    thread); a response whose stream nobody ever reads leaves the request span unended.
    """
    call = _STREAM_CHAT.get()
    stream = kwargs.get("chat_stream")
    if call is None or stream is None:
        return wrapped(*args, **kwargs)
    with guard("llama_index.stream_chat"):
        call.suspend()  # the rest is read where the stream is read
        kwargs = {**kwargs, "chat_stream": _request.iterate_in_call(call, lambda: stream)}
        _STREAM_CHAT.set(None)
    return wrapped(*args, **kwargs)
