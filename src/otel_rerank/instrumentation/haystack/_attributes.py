"""Pure extraction for Haystack's retriever components: top_k, hits, top score, its kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_rerank import semconv
from otel_rerank._span import Attributes
from otel_rerank._values import is_int, is_number

PROVIDER = "haystack"
DATA_SOURCE = "in_memory"


def top_k(instance: Any, arguments: Mapping[str, Any]) -> int | None:
    """The call's ``top_k``, else the component's."""
    value = arguments.get("top_k")
    if value is None:
        value = getattr(instance, "top_k", None)
    return value if is_int(value) else None


def retrieve_request(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    """What the retriever is asked for."""
    yield semconv.GEN_AI_RETRIEVAL_TOP_K, top_k(instance, arguments)
    yield semconv.GEN_AI_DATA_SOURCE_ID, DATA_SOURCE
    # InMemoryDocumentStore scores by cosine or dot product (embedding retrieval) or BM25,
    # optionally scaled to (0, 1): higher is better in every case.
    yield semconv.RAG_RETRIEVAL_SCORE_KIND, semconv.SCORE_KIND_SIMILARITY


def retrieve_response(result: Any) -> Attributes:
    """Hits (``{"documents": [...]}``) and the best score among them."""
    documents = result.get("documents") if isinstance(result, Mapping) else None
    if not isinstance(documents, list):
        return
    yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, len(documents)
    scores = [getattr(d, "score", None) for d in documents]
    numbers = [s for s in scores if is_number(s)]
    if numbers:
        yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(max(numbers))
