"""Pure extraction for LlamaIndex's SimpleVectorStore: top_k, hits, top similarity, its kind."""

from __future__ import annotations

from typing import Any

from otel_rerank import semconv
from otel_rerank._span import Attributes
from otel_rerank._values import is_int, is_number

PROVIDER = "llama_index"
DATA_SOURCE = "simple_vector_store"


def query_request(query: Any) -> Attributes:
    """``similarity_top_k`` of a ``VectorStoreQuery``."""
    top_k = getattr(query, "similarity_top_k", None)
    yield semconv.GEN_AI_RETRIEVAL_TOP_K, top_k if is_int(top_k) else None
    yield semconv.GEN_AI_DATA_SOURCE_ID, DATA_SOURCE
    # DEFAULT mode ranks by cosine similarity, the learner modes by a probability, MMR by
    # its score: higher is better in every mode SimpleVectorStore has.
    yield semconv.RAG_RETRIEVAL_SCORE_KIND, semconv.SCORE_KIND_SIMILARITY


def query_response(result: Any) -> Attributes:
    """Hits and the best similarity of a ``VectorStoreQueryResult``."""
    ids = getattr(result, "ids", None)
    if isinstance(ids, list):
        yield semconv.RAG_RETRIEVAL_RETURNED_COUNT, len(ids)
    similarities = getattr(result, "similarities", None)
    if isinstance(similarities, list) and similarities:
        numbers = [s for s in similarities if is_number(s)]
        if numbers:
            yield semconv.RAG_RETRIEVAL_TOP_SCORE, float(max(numbers))
