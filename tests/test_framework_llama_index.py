"""LlamaIndex: a query engine written the way LlamaIndex's docs write it is one trace per query.

HuggingFaceEmbedding over the real all-MiniLM-L6-v2, a VectorStoreIndex on the default
SimpleVectorStore, SentenceTransformerRerank (the tiny cross-encoder) as node postprocessor
and OpenAILike on the loopback OpenAI stand-in; query and aquery. Runs in the
``.venv-llamaindex`` overlay (``make test-llamaindex``): LlamaIndex's OpenAI LLMs pin
openai < 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai_like")
pytest.importorskip("llama_index.embeddings.huggingface")

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.postprocessor import SentenceTransformerRerank
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.llms.openai_like import OpenAILike
from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_rerank.demo.llm_standin import LLMStandIn
from otel_rerank.models import embedding_model_path

from . import _framework_app as app
from ._framework_app import collect_framework_leftovers  # noqa: F401 (autouse)
from .conftest import Otel

pytestmark = [
    pytest.mark.slow,
    # OpenAILike's async OpenAI client and the event loop LlamaIndex makes for its sync
    # paths are never closed by LlamaIndex; they are collected at the module's end.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMStandIn]:
    with LLMStandIn() as server:
        yield server


def build_engine(model_path: Path, llm_url: str) -> tuple[Any, Any]:
    """The app: the query engine, and its retriever and reranker (for the independent check)."""
    embed_model = HuggingFaceEmbedding(model_name=str(embedding_model_path()))
    index = VectorStoreIndex.from_documents(  # indexing at start-up
        [Document(text=p) for p in app.PASSAGES], embed_model=embed_model
    )
    rerank = SentenceTransformerRerank(model=str(model_path), top_n=app.TOP_N)
    llm = OpenAILike(
        model="gpt-4o-mini", api_base=llm_url, api_key="sk-test", is_chat_model=True, max_retries=0
    )
    engine = index.as_query_engine(
        llm=llm, similarity_top_k=app.TOP_K, node_postprocessors=[rerank]
    )
    return engine, (index.as_retriever(similarity_top_k=app.TOP_K), rerank)


def _independent_scores(parts: Any, query: str) -> list[float]:
    retriever, rerank = parts
    with suppress_instrumentation():
        nodes = retriever.retrieve(query)
        pairs = [(query, n.node.get_content()) for n in nodes]
        return [float(s) for s in rerank._model.predict(pairs)]


def _check(otel: Otel, parts: Any, model_path: Path) -> None:
    traces = app.request_traces(otel.spans())
    assert len(traces) == len(app.QUERIES)
    ordered = sorted(traces.values(), key=lambda t: min(s.start_time for s in t))
    for query, trace in zip(app.QUERIES, ordered, strict=True):
        stages = app.check_query_trace(trace, "llama_index")
        retrieval = stages["retrieval"].attributes
        assert stages["retrieval"].name == "retrieval simple_vector_store"
        assert retrieval["rag.retrieval.returned_count"] == app.TOP_K
        app.check_rerank(
            stages["rerank"], model_path.name, _independent_scores(parts, query), app.TOP_N
        )


@pytest.fixture(scope="module")
def baseline(tiny_cross_encoder_path: Path, llm_server: LLMStandIn) -> list[Any]:
    engine, _ = build_engine(tiny_cross_encoder_path, llm_server.base_url)
    return [(str(r), len(r.source_nodes)) for r in (engine.query(q) for q in app.QUERIES)]


def test_query_one_trace_per_query(
    otel: Otel, baseline: list[Any], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    responses = [engine.query(q) for q in app.QUERIES]
    assert [(str(r), len(r.source_nodes)) for r in responses] == baseline
    _check(otel, parts, tiny_cross_encoder_path)


@pytest.mark.asyncio(loop_scope="module")
async def test_aquery_one_trace_per_query(
    otel: Otel, baseline: list[Any], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    responses = [await engine.aquery(q) for q in app.QUERIES]
    assert [(str(r), len(r.source_nodes)) for r in responses] == baseline
    _check(otel, parts, tiny_cross_encoder_path)
