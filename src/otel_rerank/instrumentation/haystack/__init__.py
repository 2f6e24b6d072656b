"""OpenTelemetry instrumentation for Haystack: one trace per pipeline run, in-memory retrieval.

Usage::

    import otel_rerank.auto                    # or HaystackInstrumentor().instrument()

    pipeline = Pipeline()
    pipeline.add_component("embedder", SentenceTransformersTextEmbedder(...))
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(document_store))
    ...
    pipeline.run({"embedder": {"text": question}, ...})   # one trace: invoke_workflow haystack

What it records:

* ``Pipeline.run`` and ``Pipeline.run_async`` are the request: the root span
  ``invoke_workflow haystack`` (OpenInference kind ``CHAIN``) when no span is current. A
  web server's span stays the root; a pipeline run inside another adds no second root.
* ``InMemoryEmbeddingRetriever`` and ``InMemoryBM25Retriever`` (``run`` and ``run_async``),
  which no other instrumentation sees → ``retrieval in_memory`` with top_k, returned count,
  top score and ``rag.retrieval.score_kind=similarity`` (cosine, dot product or BM25).
* ``SentenceTransformersSimilarityRanker.run``: its ``top_k`` lands on the rerank span that
  the cross-encoder's ``rank`` makes — one rerank span, not two.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.haystack import _wrappers

_PIPELINE = "haystack.core.pipeline.pipeline"
_EMBEDDING_RETRIEVER = "haystack.components.retrievers.in_memory.embedding_retriever"
_BM25_RETRIEVER = "haystack.components.retrievers.in_memory.bm25_retriever"
_ST_RANKER = (
    "haystack_integrations.components.rankers.sentence_transformers."
    "sentence_transformers_similarity"
)


class HaystackInstrumentor(RagInstrumentor):
    """Request spans at Haystack pipeline runs, in-memory retrieval spans, rankers' top_k."""

    package = "haystack"
    supported = "haystack-ai >= 2.18, < 4"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_PIPELINE, "Pipeline", "run", _wrappers.run),
            Target(_PIPELINE, "Pipeline", "run_async", _wrappers.run_async),
            Target(_EMBEDDING_RETRIEVER, "InMemoryEmbeddingRetriever", "run", _wrappers.retrieve),
            Target(
                _EMBEDDING_RETRIEVER,
                "InMemoryEmbeddingRetriever",
                "run_async",
                _wrappers.aretrieve,
            ),
            Target(_BM25_RETRIEVER, "InMemoryBM25Retriever", "run", _wrappers.retrieve),
            Target(_BM25_RETRIEVER, "InMemoryBM25Retriever", "run_async", _wrappers.aretrieve),
            Target(_ST_RANKER, "SentenceTransformersSimilarityRanker", "run", _wrappers.rank),
        )
