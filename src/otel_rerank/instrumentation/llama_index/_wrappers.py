"""wrapt wrappers for LlamaIndex: request scopes, SimpleVectorStore retrieval, reranker top_n."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_rerank import _span
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
