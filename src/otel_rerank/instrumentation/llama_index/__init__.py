"""OpenTelemetry instrumentation for LlamaIndex: one trace per query, its default vector store.

Usage::

    import otel_rerank.auto                    # or LlamaIndexInstrumentor().instrument()

    index = VectorStoreIndex.from_documents(documents)
    engine = index.as_query_engine(node_postprocessors=[SentenceTransformerRerank(top_n=3)])
    engine.query("How do I ...?")              # one trace: invoke_workflow llama_index

What it records:

* ``query`` / ``aquery`` of any query engine (``BaseQueryEngine``) and ``chat`` / ``achat``
  of LlamaIndex's chat engines (simple, context, condense-question, condense-plus-context
  and their multi-modal variants: ``BaseChatEngine.chat`` is abstract, so each engine's
  own method is wrapped) is the request: its root span ``invoke_workflow llama_index``
  (OpenInference kind ``CHAIN``) when no span is current. A web server's span stays the
  root; nested engines (a condense-question engine's query engine) add no second root.
  ``stream_chat`` and ``astream_chat`` are requests too, until their LLM stream is read to
  the end or closed: the engine reads that stream in a ``Thread`` it starts without the
  caller's context (or in an ``asyncio`` task), so the stream it builds
  (``StreamingAgentChatResponse(chat_stream=...)`` / ``achat_stream=...``) carries the
  request over to that thread or task.
* ``SimpleVectorStore.query`` (the default in-memory store, which no other instrumentation
  sees) → ``retrieval simple_vector_store`` with top_k, returned count, top score and
  ``rag.retrieval.score_kind=similarity`` (every query mode ranks by a higher-is-better
  score: cosine similarity, a learner's probability or the MMR score).
  Other stores are the libraries' own spans (faiss, chroma, qdrant).
* ``SentenceTransformerRerank``: its ``top_n`` lands on the rerank span that the
  cross-encoder's ``predict`` makes — one rerank span, not two.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.llama_index import _wrappers

_QUERY_ENGINE = "llama_index.core.base.base_query_engine"
_CHAT_ENGINES = "llama_index.core.chat_engine"
_CHAT_ENGINE_TYPES = "llama_index.core.chat_engine.types"
# (module under _CHAT_ENGINES, class): the chat engines LlamaIndex ships.
_CHAT_ENGINE_CLASSES = (
    ("simple", "SimpleChatEngine"),
    ("context", "ContextChatEngine"),
    ("condense_question", "CondenseQuestionChatEngine"),
    ("condense_plus_context", "CondensePlusContextChatEngine"),
    ("multi_modal_context", "MultiModalContextChatEngine"),
    ("multi_modal_condense_plus_context", "MultiModalCondensePlusContextChatEngine"),
)
_SIMPLE_STORE = "llama_index.core.vector_stores.simple"
_SBERT_RERANK = "llama_index.core.postprocessor.sbert_rerank"


class LlamaIndexInstrumentor(RagInstrumentor):
    """Request spans at LlamaIndex's engines, SimpleVectorStore retrieval, the reranker's top_n."""

    package = "llama_index.core"
    supported = "llama-index-core >= 0.12, < 0.15"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_QUERY_ENGINE, "BaseQueryEngine", "query", _wrappers.query),
            Target(_QUERY_ENGINE, "BaseQueryEngine", "aquery", _wrappers.aquery),
            *(
                Target(f"{_CHAT_ENGINES}.{module}", owner, method, wrapper)
                for module, owner in _CHAT_ENGINE_CLASSES
                for method, wrapper in (
                    ("chat", _wrappers.query),
                    ("achat", _wrappers.aquery),
                    ("stream_chat", _wrappers.stream_chat),
                    ("astream_chat", _wrappers.astream_chat),
                )
            ),
            Target(
                _CHAT_ENGINE_TYPES,
                "StreamingAgentChatResponse",
                "__init__",
                _wrappers.streaming_response_init,
            ),
            Target(_SIMPLE_STORE, "SimpleVectorStore", "query", _wrappers.simple_store_query),
            Target(
                _SBERT_RERANK,
                "SentenceTransformerRerank",
                "_postprocess_nodes",
                _wrappers.postprocess_nodes,
            ),
        )
