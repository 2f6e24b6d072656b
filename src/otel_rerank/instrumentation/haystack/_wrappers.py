"""Wrappers for Haystack: request scopes, in-memory retrieval spans, rankers' top_k."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_rerank import _span
from otel_rerank.instrumentation import _entry
from otel_rerank.instrumentation._common import bind_arguments
from otel_rerank.instrumentation.haystack import _attributes as attrs

NAME = "haystack"

run = _entry.request(NAME)
run_async = _entry.arequest(NAME)

_Wrapped = Callable[..., Any]


def retrieve(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _span.begin(_span.RETRIEVAL, provider=attrs.PROVIDER, detail=attrs.DATA_SOURCE)
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        if call.recording:
            call.extract(attrs.retrieve_request, instance, bind_arguments(wrapped, args, kwargs))
        result = wrapped(*args, **kwargs)
        call.extract(attrs.retrieve_response, result)
        return result


async def aretrieve(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _span.begin(_span.RETRIEVAL, provider=attrs.PROVIDER, detail=attrs.DATA_SOURCE)
    if call is None:
        return await wrapped(*args, **kwargs)
    with call:
        if call.recording:
            call.extract(attrs.retrieve_request, instance, bind_arguments(wrapped, args, kwargs))
        result = await wrapped(*args, **kwargs)
        call.extract(attrs.retrieve_response, result)
        return result


def _ranker_top_k(instance: Any, arguments: Mapping[str, Any]) -> Any:
    return attrs.top_k(instance, arguments)


rank = _entry.with_rerank_top_n(_ranker_top_k)
