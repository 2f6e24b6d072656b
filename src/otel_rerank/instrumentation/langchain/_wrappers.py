"""Wrappers for LangChain: request scopes at the entry points, the reranker's top_n."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_rerank.instrumentation import _entry

NAME = "langchain"

invoke = _entry.request(NAME)
ainvoke = _entry.arequest(NAME)
stream = _entry.request_stream(NAME)
astream = _entry.arequest_stream(NAME)


def _top_n(instance: Any, arguments: Mapping[str, Any]) -> Any:
    return getattr(instance, "top_n", None)


compress_documents = _entry.with_rerank_top_n(_top_n)
