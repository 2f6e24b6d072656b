"""LangChain: a RAG chain written the way LangChain's docs write it is one trace per query.

HuggingFaceEmbeddings over the real all-MiniLM-L6-v2, a FAISS vector store, a
ContextualCompressionRetriever with CrossEncoderReranker (the tiny cross-encoder) and
ChatOpenAI on the loopback OpenAI stand-in; invoke, ainvoke and stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_classic")
pytest.importorskip("langchain_community")
pytest.importorskip("langchain_openai")

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_community.cross_encoders import HuggingFaceCrossEncoder
from langchain_community.embeddings import HuggingFaceEmbeddings
from langchain_community.vectorstores import FAISS
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_openai import ChatOpenAI
from opentelemetry.instrumentation.utils import suppress_instrumentation

import otel_rerank
from otel_rerank.demo.llm_standin import LLMStandIn
from otel_rerank.models import embedding_model_path

from . import _framework_app as app
from ._framework_app import collect_framework_leftovers  # noqa: F401 (autouse)
from .conftest import Otel

pytestmark = [
    pytest.mark.slow,
    # HuggingFaceEmbeddings moved to langchain-huggingface, which pins huggingface-hub < 2.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:langchain_community.*"),
    pytest.mark.filterwarnings("ignore:.*HuggingFaceEmbeddings.*"),
    # ChatOpenAI caches its async HTTP client per base URL past the test's event loop.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMStandIn]:
    with LLMStandIn() as server:
        yield server


def _format(docs: list[Any]) -> str:
    return "\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, start=1))


def build_chain(model_path: Path, llm_url: str) -> tuple[Any, Any]:
    """The app: the chain, and the cross-encoder (for the independent check)."""
    embeddings = HuggingFaceEmbeddings(model_name=str(embedding_model_path()))
    store = FAISS.from_texts(app.PASSAGES, embeddings)  # indexing at start-up
    cross_encoder = HuggingFaceCrossEncoder(model_name=str(model_path))
    retriever = ContextualCompressionRetriever(
        base_compressor=CrossEncoderReranker(model=cross_encoder, top_n=app.TOP_N),
        base_retriever=store.as_retriever(search_kwargs={"k": app.TOP_K}),
    )
    prompt = ChatPromptTemplate.from_template(
        "Answer from the passages.\n{context}\n\nQuestion: {question}"
    )
    # stream_usage: LangChain's documented switch for token usage on streamed calls.
    llm = ChatOpenAI(
        model="gpt-4o-mini", base_url=llm_url, api_key="sk-test", max_retries=0, stream_usage=True
    )
    chain = (
        {"context": retriever | _format, "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    return chain, (store, cross_encoder)


def _independent_scores(parts: Any, query: str) -> list[float]:
    store, cross_encoder = parts
    with suppress_instrumentation():
        docs = store.similarity_search(query, k=app.TOP_K)
        return [float(s) for s in cross_encoder.score([(query, d.page_content) for d in docs])]


def _check(otel: Otel, parts: Any, model_path: Path) -> None:
    traces = app.request_traces(otel.spans())
    assert len(traces) == len(app.QUERIES)
    by_query: dict[str, Any] = {}
    for trace in traces.values():
        stages = app.check_query_trace(trace, "langchain")
        assert stages["retrieval"].attributes["gen_ai.provider.name"] == "faiss"
        by_query[str(len(by_query))] = stages
    ordered = sorted(traces.values(), key=lambda t: min(s.start_time for s in t))
    for query, trace in zip(app.QUERIES, ordered, strict=True):
        rerank = next(s for s in trace if s.attributes.get("gen_ai.operation.name") == "rerank")
        app.check_rerank(rerank, model_path.name, _independent_scores(parts, query), app.TOP_N)


@pytest.fixture(scope="module")
def baseline(tiny_cross_encoder_path: Path, llm_server: LLMStandIn) -> list[str]:
    """The app's answers with nothing instrumented."""
    chain, _ = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    return [chain.invoke(q) for q in app.QUERIES]


def test_invoke_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    chain, parts = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    answers = [chain.invoke(q) for q in app.QUERIES]
    assert answers == baseline
    _check(otel, parts, tiny_cross_encoder_path)


# One event loop for the async tests: ChatOpenAI caches its async HTTP client per base URL.
@pytest.mark.asyncio(loop_scope="module")
async def test_ainvoke_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    chain, parts = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    answers = [await chain.ainvoke(q) for q in app.QUERIES]
    assert answers == baseline
    _check(otel, parts, tiny_cross_encoder_path)


def test_stream_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    chain, parts = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    answers = ["".join(chain.stream(q)) for q in app.QUERIES]
    assert answers == baseline
    _check(otel, parts, tiny_cross_encoder_path)


@pytest.mark.asyncio(loop_scope="module")
async def test_astream_one_trace_per_query(
    otel: Otel, baseline: list[str], tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    chain, parts = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    answers = []
    for q in app.QUERIES:
        answers.append("".join([c async for c in chain.astream(q)]))
    assert answers == baseline
    _check(otel, parts, tiny_cross_encoder_path)


def test_a_server_span_stays_the_root(
    otel: Otel, tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    chain, _ = build_chain(tiny_cross_encoder_path, llm_server.base_url)
    otel.exporter.clear()
    tracer = otel.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /ask") as server_span:
        chain.invoke(app.QUERIES[0])
    spans = otel.spans()
    assert not [s for s in spans if s.name.startswith("invoke_workflow")]
    trace_ids = {s.context.trace_id for s in spans if s.name != "embeddings"}
    assert server_span.get_span_context().trace_id in trace_ids
    stage_spans = [s for s in spans if s.attributes.get("gen_ai.operation.name")]
    assert {s.context.trace_id for s in stage_spans} == {server_span.get_span_context().trace_id}
    assert otel_rerank.instrumented_libraries()
