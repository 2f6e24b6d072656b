"""Haystack: a RAG pipeline written the way Haystack's docs write it is one trace per run.

SentenceTransformers embedders over the real all-MiniLM-L6-v2, an InMemoryDocumentStore
with InMemoryEmbeddingRetriever, SentenceTransformersSimilarityRanker (the tiny
cross-encoder), ChatPromptBuilder and OpenAIChatGenerator on the loopback OpenAI stand-in;
``run`` and ``run_async``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("haystack")
pytest.importorskip("haystack_integrations.components.rankers.sentence_transformers")

from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.rankers.sentence_transformers import (
    SentenceTransformersSimilarityRanker,
)
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sentence_transformers import CrossEncoder

from otel_rerank.demo.llm_standin import LLMStandIn
from otel_rerank.models import embedding_model_path

from . import _framework_app as app
from ._framework_app import collect_framework_leftovers  # noqa: F401 (autouse)
from .conftest import Otel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:haystack.*"),
    # OpenAIChatGenerator builds an async OpenAI client that Haystack never closes; its
    # socket is collected whenever the garbage collector gets to it.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TEMPLATE = [
    ChatMessage.from_user(
        "Answer from the passages.\n"
        "{% for d in documents %}[{{ loop.index }}] {{ d.content }}\n{% endfor %}\n"
        "Question: {{ question }}"
    )
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMStandIn]:
    with LLMStandIn() as server:
        yield server


def build_pipeline(model_path: Path, llm_url: str) -> tuple[Pipeline, Any]:
    """The app: the query pipeline, and its store and retriever (for the independent check)."""
    model = str(embedding_model_path())
    store = InMemoryDocumentStore()
    doc_embedder = SentenceTransformersDocumentEmbedder(model=model)
    doc_embedder.warm_up()
    store.write_documents(  # indexing at start-up
        doc_embedder.run([Document(content=p) for p in app.PASSAGES])["documents"]
    )
    pipeline = Pipeline()
    pipeline.add_component("embedder", SentenceTransformersTextEmbedder(model=model))
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=app.TOP_K))
    pipeline.add_component(
        "ranker", SentenceTransformersSimilarityRanker(model=str(model_path), top_k=app.TOP_N)
    )
    pipeline.add_component(
        "prompt", ChatPromptBuilder(template=TEMPLATE, required_variables=["documents"])
    )
    pipeline.add_component(
        "llm",
        OpenAIChatGenerator(
            model="gpt-4o-mini",
            api_key=Secret.from_token("sk-test"),
            api_base_url=llm_url,
            max_retries=0,
        ),
    )
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "ranker.documents")
    pipeline.connect("ranker.documents", "prompt.documents")
    pipeline.connect("prompt.prompt", "llm.messages")
    return pipeline, store


def _inputs(question: str) -> dict[str, Any]:
    return {
        "embedder": {"text": question},
        "ranker": {"query": question},
        "prompt": {"question": question},
    }


def _answer(result: dict[str, Any]) -> str:
    return str(result["llm"]["replies"][0].text)


def _independent_scores(
    pipeline: Pipeline, store: Any, model_path: Path, question: str
) -> list[float]:
    with suppress_instrumentation():
        embedding = pipeline.get_component("embedder").run(text=question)["embedding"]
        docs = store.embedding_retrieval(query_embedding=embedding, top_k=app.TOP_K)
        encoder = CrossEncoder(str(model_path))
        return [float(s) for s in encoder.predict([(question, d.content) for d in docs])]


def _check(otel: Otel, pipeline: Pipeline, store: Any, model_path: Path) -> None:
    traces = app.request_traces(otel.spans())
    assert len(traces) == len(app.QUERIES)
    ordered = sorted(traces.values(), key=lambda t: min(s.start_time for s in t))
    for question, trace in zip(app.QUERIES, ordered, strict=True):
        stages = app.check_query_trace(trace, "haystack")
        assert stages["retrieval"].name == "retrieval in_memory"
        assert stages["retrieval"].attributes["rag.retrieval.returned_count"] == app.TOP_K
        assert stages["retrieval"].attributes["rag.retrieval.score_kind"] == "similarity"
        scores = _independent_scores(pipeline, store, model_path, question)
        app.check_rerank(stages["rerank"], model_path.name, scores, app.TOP_N)


@pytest.fixture(scope="module")
def baseline(tiny_cross_encoder_path: Path, llm_server: LLMStandIn) -> list[str]:
    pipeline, _ = build_pipeline(tiny_cross_encoder_path, llm_server.base_url)
    return [_answer(pipeline.run(_inputs(q))) for q in app.QUERIES]


def test_run_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    pipeline, store = build_pipeline(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    assert [_answer(pipeline.run(_inputs(q))) for q in app.QUERIES] == baseline
    _check(otel, pipeline, store, tiny_cross_encoder_path)


@pytest.mark.asyncio(loop_scope="module")
async def test_run_async_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    pipeline, store = build_pipeline(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    answers = [_answer(await pipeline.run_async(_inputs(q))) for q in app.QUERIES]
    assert answers == baseline
    _check(otel, pipeline, store, tiny_cross_encoder_path)
