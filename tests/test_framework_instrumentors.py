"""The framework instrumentors as instrumentors: exact undo, suppression, their own spans.

No models: Haystack's and LlamaIndex's in-memory stores get hand-made vectors, so these run
in seconds. The full apps are in ``test_framework_<name>.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import otel_rerank
from otel_rerank import instrumentation
from otel_rerank._span import rerank_top_n
from otel_rerank.instrumentation import _entry
from otel_rerank.instrumentation._base import is_replacement

from .conftest import Otel

FRAMEWORKS = ["langchain", "llama_index", "haystack", "rerankers"]


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_uninstrument_restores_every_original(name: str) -> None:
    cls = instrumentation.load(name)
    if not cls.is_installed():
        pytest.skip(f"{name} not installed")
    instrumentor = cls()
    originals: dict[tuple[type, str], Any] = {}
    for target in instrumentor.targets():
        try:
            owner = importlib.import_module(target.module)
            for part in target.owner.split("."):
                owner = getattr(owner, part)
        except (ImportError, AttributeError):
            continue  # another release's module: skipped, as the patcher does
        originals[(owner, target.method)] = owner.__dict__.get(target.method)
    assert originals, "no target of this release found"
    otel_rerank.instrument(libraries=[name])
    otel_rerank.instrument(libraries=[name])  # twice is harmless
    try:
        for (owner, method), original in originals.items():
            if original is not None:
                assert is_replacement(owner.__dict__[method]), (owner, method)
    finally:
        otel_rerank.uninstrument()
        otel_rerank.uninstrument()
    for (owner, method), original in originals.items():
        assert owner.__dict__.get(method) is original


# -- Haystack's in-memory retrievers ----------------------------------------------------------
def _haystack_store() -> Any:
    pytest.importorskip("haystack")
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents(
        [
            Document(content=f"doc {i} about copying", embedding=[1.0, float(i), 0.0])
            for i in range(8)
        ]
    )
    return store


def test_haystack_embedding_retriever_span(otel: Otel) -> None:
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever

    retriever = InMemoryEmbeddingRetriever(_haystack_store(), top_k=5)
    result = retriever.run(query_embedding=[1.0, 0.0, 0.0], top_k=3)
    (span,) = otel.spans()
    a = span.attributes
    assert span.name == "retrieval in_memory"
    assert a["gen_ai.operation.name"] == "retrieval"
    assert a["gen_ai.provider.name"] == "haystack"
    assert a["openinference.span.kind"] == "RETRIEVER"
    assert a["rag.retrieval.returned_count"] == len(result["documents"]) == 3
    assert a["rag.retrieval.top_score"] == pytest.approx(max(d.score for d in result["documents"]))
    assert a["rag.retrieval.score_kind"] == "similarity"  # cosine/dot product: best hit first
    assert result["documents"][0].score == max(d.score for d in result["documents"])


async def test_haystack_bm25_retriever_async_span(otel: Otel) -> None:
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever

    retriever = InMemoryBM25Retriever(_haystack_store(), top_k=4)
    result = await retriever.run_async(query="copying")
    (span,) = otel.spans()
    a = span.attributes
    assert a["rag.retrieval.returned_count"] == len(result["documents"]) == 4
    assert a["rag.retrieval.score_kind"] == "similarity"  # BM25: higher is more relevant
    scores = [d.score for d in result["documents"]]
    assert a["rag.retrieval.top_score"] == pytest.approx(scores[0]) == pytest.approx(max(scores))


def test_haystack_retriever_suppressed_and_failing(otel: Otel) -> None:
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever

    retriever = InMemoryEmbeddingRetriever(_haystack_store())
    with suppress_instrumentation():
        retriever.run(query_embedding=[1.0, 0.0, 0.0])
    assert otel.spans() == []
    with pytest.raises(ValueError, match="top_k"):
        retriever.run(query_embedding=[1.0, 0.0, 0.0], top_k=-1)
    (span,) = otel.spans()
    assert span.attributes["error.type"] == "ValueError"


# -- LlamaIndex's SimpleVectorStore -----------------------------------------------------------
def test_llama_index_simple_vector_store_span(otel: Otel) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores import SimpleVectorStore, VectorStoreQuery

    store = SimpleVectorStore()
    store.add(
        [TextNode(text=f"node {i}", id_=f"n{i}", embedding=[1.0, float(i), 0.0]) for i in range(6)]
    )
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=4))
    (span,) = otel.spans()
    a = span.attributes
    assert span.name == "retrieval simple_vector_store"
    assert a["gen_ai.provider.name"] == "llama_index"
    assert a["rag.retrieval.returned_count"] == len(result.ids) == 4
    assert a["rag.retrieval.top_score"] == pytest.approx(max(result.similarities))
    assert a["rag.retrieval.score_kind"] == "similarity"  # cosine: best hit first
    assert result.similarities[0] == max(result.similarities)


# -- a framework's top_n on the library's rerank span -----------------------------------------
def test_top_n_lands_on_the_rerank_span_inside(otel: Otel) -> None:
    class Step:
        top_n = 2

        def run(self, query: str) -> list[int]:
            with otel_rerank.rerank(model="m"):
                return [1, 2]

    wrapper = _entry.with_rerank_top_n(lambda instance, arguments: instance.top_n)
    step = Step()
    assert wrapper(step.run, step, ("q",), {}) == [1, 2]
    (span,) = otel.spans()
    assert span.attributes["gen_ai.rerank.top_n"] == 2
    assert span.attributes["reranker.top_k"] == 2


def test_a_top_n_that_cannot_be_read_records_none(otel: Otel) -> None:
    def broken(instance: Any, arguments: Any) -> Any:
        raise AttributeError("renamed in another release")

    def call() -> str:
        with otel_rerank.rerank(model="m"):
            return "ok"

    assert _entry.with_rerank_top_n(broken)(call, None, (), {}) == "ok"
    with rerank_top_n(True), otel_rerank.rerank(model="m"):  # not a count: ignored
        pass
    assert all("gen_ai.rerank.top_n" not in s.attributes for s in otel.spans())
