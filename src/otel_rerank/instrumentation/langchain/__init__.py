"""OpenTelemetry instrumentation for LangChain: one trace per query, and the reranker's top_n.

Usage::

    import otel_rerank.auto                    # or LangChainInstrumentor().instrument()

    chain = {"context": retriever, "question": RunnablePassthrough()} | prompt | llm
    chain.invoke("How do I ...?")              # one trace: invoke_workflow langchain

What it records:

* The outermost ``invoke`` / ``ainvoke`` / ``stream`` / ``astream`` of a chain
  (``RunnableSequence``) or a retriever (``BaseRetriever``) is the request: its root span
  ``invoke_workflow langchain`` (OpenInference kind ``CHAIN``) when no span is current. A
  web server's span, when present, stays the root; nested runnables add no second root. A
  stream's request ends when the stream is exhausted, closed or dropped.
* ``CrossEncoderReranker.compress_documents``: its ``top_n`` lands on the rerank span that
  the cross-encoder's ``predict`` makes (sentence-transformers instrumentation) — one
  rerank span, not two.

The stages themselves are the libraries' spans: embeddings from sentence-transformers or
openai, retrieval from faiss / chroma / qdrant, chat from openai (``ChatOpenAI``'s
``with_raw_response`` calls included). LangChain's own wrappers add no second span of a
stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.langchain import _wrappers

_RUNNABLES = "langchain_core.runnables.base"
_RETRIEVERS = "langchain_core.retrievers"
_CROSS_ENCODER_RERANK = "langchain_classic.retrievers.document_compressors.cross_encoder_rerank"
_CROSS_ENCODER_RERANK_OLD = "langchain.retrievers.document_compressors.cross_encoder_rerank"


class LangChainInstrumentor(RagInstrumentor):
    """Request spans at LangChain's chain and retriever entry points; the reranker's top_n."""

    package = "langchain_core"
    supported = "langchain-core >= 1.0, < 2"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_RUNNABLES, "RunnableSequence", "invoke", _wrappers.invoke),
            Target(_RUNNABLES, "RunnableSequence", "ainvoke", _wrappers.ainvoke),
            Target(_RUNNABLES, "RunnableSequence", "stream", _wrappers.stream),
            Target(_RUNNABLES, "RunnableSequence", "astream", _wrappers.astream),
            Target(_RETRIEVERS, "BaseRetriever", "invoke", _wrappers.invoke),
            Target(_RETRIEVERS, "BaseRetriever", "ainvoke", _wrappers.ainvoke),
            Target(
                _CROSS_ENCODER_RERANK,
                "CrossEncoderReranker",
                "compress_documents",
                _wrappers.compress_documents,
            ),
            Target(
                _CROSS_ENCODER_RERANK_OLD,
                "CrossEncoderReranker",
                "compress_documents",
                _wrappers.compress_documents,
            ),
        )
