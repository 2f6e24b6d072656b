"""LlamaIndex: query and chat engines written the way its docs write them: one trace per query.

HuggingFaceEmbedding over the real all-MiniLM-L6-v2, a VectorStoreIndex on the default
SimpleVectorStore, SentenceTransformerRerank (the tiny cross-encoder) as node postprocessor
and OpenAILike on the loopback OpenAI stand-in; query and aquery of its query engine, chat
and achat of its chat engine (``as_chat_engine``, context and condense-plus-context modes)
over one multi-turn conversation. Runs in the
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
from llama_index.core.memory import ChatMemoryBuffer
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


def build_engine(model_path: Path, llm_url: str, chat_mode: str | None = None) -> tuple[Any, Any]:
    """The app: the query engine (or chat engine in ``chat_mode``), and its retriever and
    reranker (for the independent check)."""
    embed_model = HuggingFaceEmbedding(model_name=str(embedding_model_path()))
    index = VectorStoreIndex.from_documents(  # indexing at start-up
        [Document(text=p) for p in app.PASSAGES], embed_model=embed_model
    )
    rerank = SentenceTransformerRerank(model=str(model_path), top_n=app.TOP_N)
    llm = OpenAILike(
        model="gpt-4o-mini", api_base=llm_url, api_key="sk-test", is_chat_model=True, max_retries=0
    )
    if chat_mode is None:
        engine = index.as_query_engine(
            llm=llm, similarity_top_k=app.TOP_K, node_postprocessors=[rerank]
        )
    else:
        # As LlamaIndex's chat engine docs do: a token-limited buffer as the memory (the
        # default Memory would also leave an event loop of its own behind, never closed).
        engine = index.as_chat_engine(
            chat_mode=chat_mode,
            memory=ChatMemoryBuffer.from_defaults(token_limit=3900),
            llm=llm,
            similarity_top_k=app.TOP_K,
            node_postprocessors=[rerank],
        )
    return engine, (index.as_retriever(similarity_top_k=app.TOP_K), rerank)


def _independent_scores(parts: Any, query: str) -> list[float]:
    retriever, rerank = parts
    with suppress_instrumentation():
        nodes = retriever.retrieve(query)
        pairs = [(query, n.node.get_content()) for n in nodes]
        return [float(s) for s in rerank._model.predict(pairs)]


def _check(
    otel: Otel,
    parts: Any,
    model_path: Path,
    queries: list[str] = app.QUERIES,
    chats: list[int] | None = None,
    streamed_usage: bool = True,
) -> None:
    """One request trace per turn; ``queries`` are what each turn retrieved with."""
    traces = app.request_traces(otel.spans())
    assert len(traces) == len(queries)
    ordered = sorted(traces.values(), key=lambda t: min(s.start_time for s in t))
    for query, trace, n_chats in zip(queries, ordered, chats or [1] * len(queries), strict=True):
        stages = app.check_query_trace(
            trace, "llama_index", chats=n_chats, streamed_usage=streamed_usage
        )
        retrieval = stages["retrieval"].attributes
        assert stages["retrieval"].name == "retrieval simple_vector_store"
        assert retrieval["rag.retrieval.returned_count"] == app.TOP_K
        assert retrieval["rag.retrieval.score_kind"] == "similarity"
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


# The chat engines of ``index.as_chat_engine``: "context" retrieves with the user's message
# and makes one LLM call per turn; "condense_plus_context" first condenses the conversation
# into a standalone question (an LLM call from the second turn on) and retrieves with that.
CHAT_MODES = ["context", "condense_plus_context"]


def _retrieval_query(engine: Any, message: str) -> str:
    """What this turn will retrieve with, computed by the engine's own condense step."""
    condense = getattr(engine, "_condense_question", None)
    if condense is None:
        return message
    with suppress_instrumentation():
        return str(condense(engine._memory.get(input=message), message))


def _chat_calls(chat_mode: str) -> list[int]:
    return [1 if chat_mode == "context" or i == 0 else 2 for i in range(len(app.QUERIES))]


def _turn(response: Any) -> tuple[str, int]:
    return str(response), len(response.source_nodes)


@pytest.fixture(scope="module")
def chat_baseline(tiny_cross_encoder_path: Path, llm_server: LLMStandIn) -> dict[str, list[Any]]:
    out = {}
    for chat_mode in CHAT_MODES:
        engine, _ = build_engine(tiny_cross_encoder_path, llm_server.base_url, chat_mode)
        out[chat_mode] = [_turn(engine.chat(q)) for q in app.QUERIES]
    return out


@pytest.mark.parametrize("chat_mode", CHAT_MODES)
def test_chat_one_trace_per_turn(
    otel: Otel,
    chat_baseline: dict[str, list[Any]],
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
    chat_mode: str,
) -> None:
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url, chat_mode)
    otel.exporter.clear()
    turns, queries = [], []
    for message in app.QUERIES:
        queries.append(_retrieval_query(engine, message))
        turns.append(_turn(engine.chat(message)))
    assert turns == chat_baseline[chat_mode]
    if chat_mode == "condense_plus_context":
        assert (
            queries[1:] != app.QUERIES[1:]
        )  # the later turns did retrieve with a condensed question
    _check(otel, parts, tiny_cross_encoder_path, queries, _chat_calls(chat_mode))


@pytest.mark.asyncio(loop_scope="module")
async def test_achat_one_trace_per_turn(
    otel: Otel,
    chat_baseline: dict[str, list[Any]],
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
) -> None:
    chat_mode = "condense_plus_context"
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url, chat_mode)
    otel.exporter.clear()
    turns, queries = [], []
    for message in app.QUERIES:
        queries.append(_retrieval_query(engine, message))
        turns.append(_turn(await engine.achat(message)))
    assert turns == chat_baseline[chat_mode]
    _check(otel, parts, tiny_cross_encoder_path, queries, _chat_calls(chat_mode))


@pytest.mark.parametrize("chat_mode", CHAT_MODES)
def test_stream_chat_one_trace_per_turn(
    otel: Otel,
    chat_baseline: dict[str, list[Any]],
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
    chat_mode: str,
) -> None:
    """The engine reads the LLM stream in a thread of its own; the chat span is still the turn's."""
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url, chat_mode)
    otel.exporter.clear()
    turns, queries = [], []
    for message in app.QUERIES:
        queries.append(_retrieval_query(engine, message))
        response = engine.stream_chat(message)
        text = "".join(response.response_gen)  # read to the end, as the docs do
        turns.append((text.strip(), len(response.source_nodes)))
    assert turns == chat_baseline[chat_mode]
    # LlamaIndex's OpenAI LLMs stream without stream_options.include_usage: no usage to record.
    _check(otel, parts, tiny_cross_encoder_path, queries, _chat_calls(chat_mode), False)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("chat_mode", CHAT_MODES)
async def test_astream_chat_one_trace_per_turn(
    otel: Otel,
    chat_baseline: dict[str, list[Any]],
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
    chat_mode: str,
) -> None:
    """The engine reads the LLM stream in a task of its own; the chat span is still the turn's."""
    engine, parts = build_engine(tiny_cross_encoder_path, llm_server.base_url, chat_mode)
    otel.exporter.clear()
    turns, queries = [], []
    for message in app.QUERIES:
        queries.append(_retrieval_query(engine, message))
        response = await engine.astream_chat(message)
        text = "".join([token async for token in response.async_response_gen()])
        turns.append((text.strip(), len(response.source_nodes)))
    assert turns == chat_baseline[chat_mode]
    _check(otel, parts, tiny_cross_encoder_path, queries, _chat_calls(chat_mode), False)
