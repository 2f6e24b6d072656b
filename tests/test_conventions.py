"""The conventions backends render, per stage and library, asserted with literal key strings.

Keys are spelled out here as the GenAI semantic conventions and OpenInference spell them,
never taken from ``otel_rerank.semconv``: a typo in the constants module must fail. Each
table row is one stage of one library (a real instrumentation against a local model, an
in-memory store, or an in-process mock transport); with content capture on, the GenAI JSON
attributes are validated against the conventions' JSON schemas (a minimal copy in
``tests/schemas``, its source named inside) and shown to obey the same truncation and
count limits as the OpenInference keys.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from opentelemetry.trace import SpanKind

import otel_rerank
from otel_rerank import semconv
from otel_rerank._config import ContentPolicy
from tests._collectors import free_port

from .conftest import Otel

jsonschema = pytest.importorskip("jsonschema")

QUERY = "what causes boundary layer transition"
DOCS = [
    "shock waves form on transonic wings",
    "boundary layer transition is caused by growing instabilities",
    "heat transfer in laminar flow",
]
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gen-ai-messages.schema.json").read_text())
ANY = object()  # "present, whatever the value"


def validate(value: str, definition: str) -> Any:
    """Parse a GenAI JSON attribute and validate it against the conventions' schema."""
    parsed = json.loads(value)
    jsonschema.validate(parsed, {**SCHEMA, "$ref": f"#/$defs/{definition}"})
    return parsed


def check(attributes: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if value is None:
            assert key not in attributes, key
        elif value is ANY:
            assert key in attributes, (key, sorted(attributes))
        else:
            assert attributes.get(key) == value, (key, attributes.get(key), value)


# -- buckets and content modes --------------------------------------------------------------
def test_duration_buckets_are_the_advised_ones_merged_with_the_budgets() -> None:
    advised = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)
    advised += (40.96, 81.92)
    assert semconv.DURATION_BUCKETS_S == (
        0.01, 0.02, 0.04, 0.08, 0.1, 0.16, 0.25, 0.32, 0.5, 0.64, 1.0, 1.28, 1.5, 2.0, 2.56,
        3.0, 5.12, 10.24, 20.48, 40.96, 81.92,
    )  # fmt: skip
    assert advised == semconv.GENAI_ADVISED_DURATION_BUCKETS_S
    merged = sorted(set(advised) | set(semconv.DOCUMENTED_BUDGETS_S))
    assert list(semconv.DURATION_BUCKETS_S) == merged


@pytest.mark.parametrize(
    ("value", "capture"),
    [
        ("true", True),
        ("span_only", True),
        ("SPAN_AND_EVENT", True),
        (" span_only ", True),
        ("event_only", False),  # content only in events, and otel-rerank writes none
        ("no_content", False),
        ("false", False),
        ("", False),
    ],
)
def test_genai_capture_modes(monkeypatch: pytest.MonkeyPatch, value: str, capture: bool) -> None:
    monkeypatch.delenv("OTEL_RERANK_CAPTURE_CONTENT", raising=False)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert ContentPolicy.from_env().capture is capture


# -- one table: stage x library --------------------------------------------------------------
def _st_rank(otel: Otel, fixtures: dict[str, Any]) -> None:
    fixtures["cross_encoder"].rank(QUERY, DOCS, top_k=2)


def _st_predict(otel: Otel, fixtures: dict[str, Any]) -> None:
    fixtures["cross_encoder"].predict([(QUERY, d) for d in DOCS])


def _st_encode(otel: Otel, fixtures: dict[str, Any]) -> None:
    fixtures["minilm"].encode([QUERY])


def _decorated_retrieval(otel: Otel, fixtures: dict[str, Any]) -> None:
    @otel_rerank.retrieval(data_source="wiki", top_k=5)
    def search(q: str) -> list[str]:
        return DOCS

    search(QUERY)


def _decorated_rerank(otel: Otel, fixtures: dict[str, Any]) -> None:
    @otel_rerank.rerank(model="my-reranker", top_n=2)
    def score(query: str, documents: list[str]) -> list[float]:
        return [0.1, 0.9, 0.5]

    score(QUERY, DOCS)


def _decorated_llm(otel: Otel, fixtures: dict[str, Any]) -> None:
    @otel_rerank.llm(model="local-llm", provider="ollama")
    def answer(prompt: str) -> str:
        return "ok"

    answer(QUERY)


def _faiss(metric: str) -> Callable[[Otel, dict[str, Any]], None]:
    def run(otel: Otel, fixtures: dict[str, Any]) -> None:
        import faiss

        index = faiss.IndexFlatIP(4) if metric == "ip" else faiss.IndexFlatL2(4)
        index.add(np.eye(4, dtype="float32"))
        index.search(np.array([[1.0, 0.5, 0.0, 0.0]], dtype="float32"), 2)

    return run


def _chroma(otel: Otel, fixtures: dict[str, Any]) -> None:

    client = _chroma_ephemeral()
    collection = client.get_or_create_collection("conventions")
    otel.exporter.clear()  # collection set-up is not ours to check
    collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=DOCS[:2])
    collection.query(query_embeddings=[[1.0, 0.1]], n_results=2)
    client.delete_collection("conventions")


def _chroma_ephemeral() -> Any:
    """The in-process Chroma, with the settings every test file uses (one per process)."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


def _qdrant_local(otel: Otel, fixtures: dict[str, Any]) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(
        "conventions", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID)
    )
    client.upsert(
        "conventions",
        points=[
            models.PointStruct(id=1, vector=[0.0, 0.0]),
            models.PointStruct(id=2, vector=[3.0, 4.0]),
        ],
    )
    client.query_points("conventions", query=[0.0, 0.1], limit=2)


def _qdrant_remote(prefer_grpc: bool) -> Callable[[Otel, dict[str, Any]], None]:
    def run(otel: Otel, fixtures: dict[str, Any]) -> None:
        from qdrant_client import QdrantClient

        port = fixtures["port"]
        client = QdrantClient(
            host="127.0.0.1",
            port=port if not prefer_grpc else free_port(),
            grpc_port=port,
            prefer_grpc=prefer_grpc,
            check_compatibility=False,
            timeout=2,
        )
        with pytest.raises(Exception) as raised:  # nothing listens there
            client.query_points("remote-wiki", query=[0.0, 1.0], limit=3)
        fixtures["error"] = type(raised.value).__name__
        client.close()

    return run


def _model_name(fixtures: dict[str, Any], key: str) -> Any:
    from otel_rerank.instrumentation.sentence_transformers import _attributes as st

    return st.model_name(fixtures[key])


ROWS: list[tuple[str, Callable[[Otel, dict[str, Any]], None], dict[str, Any]]] = [
    (
        "sentence_transformers rank",
        _st_rank,
        {
            "gen_ai.operation.name": "rerank",
            "openinference.span.kind": "RERANKER",
            "gen_ai.provider.name": "sentence_transformers",
            "reranker.model_name": lambda f: _model_name(f, "cross_encoder"),
            "gen_ai.rerank.candidate.count": 3,
            "gen_ai.rerank.top_n": 2,
            "reranker.top_k": 2,
            "reranker.output_documents.0.document.id": ANY,
            "reranker.output_documents.0.document.score": ANY,
            "reranker.output_documents.1.document.id": ANY,
            "reranker.output_documents.2.document.id": None,  # top_k=2 returned two
            "reranker.output_documents.0.document.content": None,  # content: off
            "reranker.input_documents.0.document.id": None,
            "llm.model_name": None,  # Phoenix's conversion put it on rerank spans
        },
    ),
    (
        "sentence_transformers predict",
        _st_predict,
        {
            "reranker.model_name": lambda f: _model_name(f, "cross_encoder"),
            "reranker.top_k": None,
            "reranker.output_documents.2.document.id": ANY,
            "reranker.output_documents.2.document.score": ANY,
        },
    ),
    (
        "sentence_transformers encode",
        _st_encode,
        {
            "gen_ai.operation.name": "embeddings",
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": lambda f: _model_name(f, "minilm"),
            "gen_ai.embeddings.dimension.count": 384,
            "llm.model_name": None,
        },
    ),
    (
        "decorated retrieval",
        _decorated_retrieval,
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.top_k": 5,
            "gen_ai.request.top_k": None,  # kept for token sampling by the conventions
            "gen_ai.data_source.id": "wiki",
            "llm.system": None,
        },
    ),
    (
        "decorated rerank",
        _decorated_rerank,
        {
            "reranker.model_name": "my-reranker",
            "gen_ai.rerank.top_n": 2,
            "reranker.top_k": 2,
            "reranker.output_documents.0.document.id": "1",
            "reranker.output_documents.0.document.score": 0.9,
            "reranker.output_documents.1.document.id": "2",
            "reranker.output_documents.2.document.id": "0",
        },
    ),
    (
        "decorated llm",
        _decorated_llm,
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "local-llm",
            "llm.provider": "ollama",
            "llm.system": None,  # not one of OpenInference's llm.system values
        },
    ),
    (
        "faiss inner product",
        _faiss("ip"),
        {
            "gen_ai.operation.name": "retrieval",
            "db.system.name": "faiss",
            "gen_ai.retrieval.top_k": 2,
            "gen_ai.request.top_k": None,
            "rag.retrieval.score_kind": "similarity",
            "rag.retrieval.top_score": 1.0,
            "server.address": None,
        },
    ),
    (
        "faiss L2",
        _faiss("l2"),
        {"rag.retrieval.score_kind": "distance", "rag.retrieval.top_score": 0.25},
    ),
    (
        "chroma in-process",
        _chroma,
        {
            "gen_ai.provider.name": "chroma",
            "db.system.name": "chroma",
            "db.collection.name": "conventions",
            "db.namespace": "default_database",
            "gen_ai.data_source.id": "conventions",
            "gen_ai.retrieval.top_k": 2,
            "rag.retrieval.score_kind": "distance",
            "server.address": None,
            "gen_ai.retrieval.documents": None,  # content: off
            "retrieval.documents.0.document.id": None,
        },
    ),
    (
        "qdrant local",
        _qdrant_local,
        {
            "db.system.name": "qdrant",
            "db.collection.name": "conventions",
            "gen_ai.retrieval.top_k": 2,
            "rag.retrieval.score_kind": "distance",  # Euclid: the nearest point first
            "server.address": None,
        },
    ),
    (
        "qdrant remote over HTTP",
        _qdrant_remote(prefer_grpc=False),
        {
            "db.collection.name": "remote-wiki",
            "gen_ai.retrieval.top_k": 3,
            "server.address": "127.0.0.1",
            "server.port": lambda f: f["port"],
            "error.type": lambda f: f["error"],
        },
    ),
    (
        "qdrant remote over gRPC",
        _qdrant_remote(prefer_grpc=True),
        {
            "server.address": "127.0.0.1",
            "server.port": lambda f: f["port"],
            "error.type": lambda f: f["error"],
        },
    ),
]

SPAN_KINDS = {
    "qdrant remote over HTTP": SpanKind.CLIENT,
    "qdrant remote over gRPC": SpanKind.CLIENT,
}


@pytest.mark.parametrize(("name", "run", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_stage_attributes(
    otel: Otel,
    tiny_cross_encoder: Any,
    minilm: Any,
    name: str,
    run: Callable[[Otel, dict[str, Any]], None],
    expected: dict[str, Any],
) -> None:
    fixtures: dict[str, Any] = {
        "cross_encoder": tiny_cross_encoder,
        "minilm": minilm,
        "port": free_port(),
    }
    run(otel, fixtures)
    spans = [s for s in otel.spans() if "openinference.span.kind" in (s.attributes or {})]
    assert len(spans) == 1, [s.name for s in spans]
    span = spans[0]
    assert span.kind is SPAN_KINDS.get(name, span.kind if "llm" in name else SpanKind.INTERNAL)
    resolved = {k: v(fixtures) if callable(v) else v for k, v in expected.items()}
    check(dict(span.attributes or {}), resolved)
    if "server.address" in resolved and resolved["server.address"] is not None:
        (point,) = otel.metric_points("gen_ai.client.operation.duration")
        assert point.attributes["server.address"] == resolved["server.address"]
        assert point.attributes["server.port"] == resolved["server.port"]


def test_error_type_is_the_bare_class_name(otel: Otel) -> None:
    class QuotaExceededError(Exception):
        pass

    @otel_rerank.llm(model="local-llm")
    def answer(prompt: str) -> str:
        raise QuotaExceededError("no")

    with pytest.raises(QuotaExceededError):
        answer("q")
    span = otel.span()
    assert span.attributes["error.type"] == "QuotaExceededError"
    (point,) = otel.metric_points("gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "QuotaExceededError"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Chroma server (``chroma run``, from chromadb's own package) on loopback."""
    import subprocess
    import sys
    import time

    pytest.importorskip("chromadb.cli.cli")
    workdir = tmp_path_factory.mktemp("chroma")
    port = free_port()
    log = (workdir / "chroma.log").open("wb")
    # What the `chroma` console script runs, started with this interpreter (its venv).
    command = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", command, "run", "--path", str(workdir / "data"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((workdir / "chroma.log").read_text(errors="replace")[-2000:])
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_chroma_http_client_is_a_client_span(otel: Otel, chroma_server: int) -> None:
    import gc

    import chromadb
    import httpx
    from chromadb.config import Settings

    def http_clients() -> list[httpx.Client]:
        # type(), not isinstance(): the latter reads __class__, which some proxies warn on
        return [o for o in gc.get_objects() if type(o) is httpx.Client]

    before = {id(c) for c in http_clients()}
    client = chromadb.HttpClient(
        host="127.0.0.1", port=chroma_server, settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("remote-docs")
    collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=DOCS[:2])
    otel.exporter.clear()
    collection.query(query_embeddings=[[1.0, 0.1]], n_results=2)
    client.close()
    # chromadb keeps a second HTTP client that close() leaves open: close what it opened.
    for leftover in http_clients():
        if id(leftover) not in before:
            leftover.close()
    span = otel.span()
    assert span.kind is SpanKind.CLIENT
    check(
        dict(span.attributes or {}),
        {
            "server.address": "127.0.0.1",
            "server.port": chroma_server,
            "db.system.name": "chroma",
            "db.collection.name": "remote-docs",
            "db.namespace": "default_database",
            "gen_ai.retrieval.top_k": 2,
            "rag.retrieval.returned_count": 2,
        },
    )
    (point,) = otel.metric_points("gen_ai.client.operation.duration")
    assert point.attributes["server.address"] == "127.0.0.1"
    assert point.attributes["server.port"] == chroma_server


def test_qdrant_scores_are_never_nan() -> None:
    from qdrant_client.http import models as rest

    from otel_rerank.instrumentation.qdrant_client import _attributes as qdrant

    unscored = SimpleNamespace(id=3, score=None, payload={"text": "t"})
    scored = rest.ScoredPoint(id=1, version=0, score=0.5, payload={"text": "s"})
    assert qdrant.hits([scored, unscored]) == (["s", "t"], [], ["1", "3"])
    assert qdrant.hits([scored]) == (["s"], [0.5], ["1"])


def test_chroma_http_client_collection_is_remote() -> None:
    from otel_rerank.instrumentation.chromadb import _attributes as chroma

    class _Remote:
        _api_url = "https://chroma.internal:8443/api/v2"

    class _Collection:
        database = "tenant-db"
        _client = _Remote()

    assert chroma.collection_attributes(_Collection()) == {
        "db.namespace": "tenant-db",
        "server.address": "chroma.internal",
        "server.port": 8443,
    }


# -- LLM clients over in-process mock transports ----------------------------------------------
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
ANSWER = "Instabilities that grow downstream."


def _openai(respond: Callable[[Any, Any], Any]) -> Any:
    openai = pytest.importorskip("openai")
    base_client = importlib.import_module("openai._base_client")
    http: Any = getattr(base_client, "httpx2", None) or base_client.httpx
    return openai.OpenAI(
        api_key="sk-test",
        base_url="https://llm.example.test:8443/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(lambda r: respond(http, r))),
    )


def _completion(http: Any, request: Any) -> Any:
    body = json.loads(request.content)
    if body.get("stream"):
        chunks = [
            {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": RESPONSE_MODEL,
             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish}]}
            for piece, finish in ((ANSWER[:10], None), (ANSWER[10:], "stop"))
        ]  # fmt: skip
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return http.Response(
            200, content=text.encode(), headers={"content-type": "text/event-stream"}
        )
    return http.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": RESPONSE_MODEL,
            "service_tier": "default",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 31,
                "completion_tokens": 7,
                "total_tokens": 38,
                "prompt_tokens_details": {"cached_tokens": 16},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        },
    )


MESSAGES = [
    {"role": "system", "content": "Answer from the documents."},
    {"role": "user", "content": QUERY},
]


def test_openai_chat_conventions(otel: Otel) -> None:
    client = _openai(_completion)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stop=["\n\n"],
        seed=7,
        n=1,
        frequency_penalty=0.5,
        presence_penalty=0.25,
        response_format={"type": "json_object"},
        service_tier="default",
    )
    span = otel.span()
    check(
        dict(span.attributes or {}),
        {
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": RESPONSE_MODEL,
            "llm.model_name": RESPONSE_MODEL,  # the model that answered
            "llm.provider": "openai",
            "llm.system": "openai",
            "gen_ai.usage.input_tokens": 31,
            "gen_ai.usage.output_tokens": 7,
            "llm.token_count.prompt": 31,
            "llm.token_count.completion": 7,
            "llm.token_count.total": 38,
            "gen_ai.usage.cache_read.input_tokens": 16,
            "gen_ai.usage.reasoning.output_tokens": 3,
            "gen_ai.request.stop_sequences": ("\n\n",),
            "gen_ai.request.seed": 7,
            "gen_ai.request.choice.count": None,  # n=1: not written
            "gen_ai.request.frequency_penalty": 0.5,
            "gen_ai.request.presence_penalty": 0.25,
            "gen_ai.output.type": "json",
            "openai.request.service_tier": "default",
            "openai.response.service_tier": "default",
            "openai.response.system_fingerprint": "fp_44709d6fcb",
            "server.address": "llm.example.test",
            "server.port": 8443,
            "output.value": None,  # content: off
            "gen_ai.input.messages": None,
            "gen_ai.output.messages": None,
        },
    )
    expected_metric = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": RESPONSE_MODEL,
        "server.address": "llm.example.test",
        "server.port": 8443,
    }
    (duration,) = otel.metric_points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == expected_metric
    for point in otel.metric_points("gen_ai.client.token.usage"):
        assert {k: v for k, v in point.attributes.items() if k != "gen_ai.token.type"} == (
            expected_metric
        )
    assert otel.metric_points("gen_ai.client.operation.time_to_first_chunk") == []


def test_openai_stream_time_to_first_chunk(otel: Otel) -> None:
    client = _openai(_completion)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == ANSWER
    span = otel.span()
    ttfc = span.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc <= (span.end_time - span.start_time) / 1e9
    assert "rag.llm.time_to_first_chunk" not in span.attributes
    assert span.attributes["llm.model_name"] == RESPONSE_MODEL
    (point,) = otel.metric_points("gen_ai.client.operation.time_to_first_chunk")
    assert point.count == 1
    assert point.sum == pytest.approx(ttfc)
    assert point.attributes["server.address"] == "llm.example.test"
    assert list(point.explicit_bounds) == list(semconv.DURATION_BUCKETS_S)


def test_openai_embeddings_conventions(otel: Otel) -> None:
    def respond(http: Any, request: Any) -> Any:
        return http.Response(
            200,
            json={
                "object": "list",
                "model": "text-embedding-3-small",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "usage": {"prompt_tokens": 5, "total_tokens": 5},
            },
        )

    _openai(respond).embeddings.create(
        model="text-embedding-3-small", input="q", encoding_format="float", dimensions=3
    )
    check(
        dict(otel.span().attributes or {}),
        {
            "embedding.model_name": "text-embedding-3-small",
            "gen_ai.response.model": "text-embedding-3-small",
            "gen_ai.request.encoding_formats": ("float",),
            "gen_ai.embeddings.dimension.count": 3,
            "llm.token_count.prompt": 5,
            "llm.token_count.total": 5,
            "llm.model_name": None,
        },
    )


def _anthropic(capture: bool) -> Any:
    anthropic = pytest.importorskip("anthropic")
    base_client = importlib.import_module("anthropic._base_client")
    http: Any = getattr(base_client, "httpx2", None) or base_client.httpx

    def respond(request: Any) -> Any:
        return http.Response(
            200,
            json={
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 5,
                    "cache_read_input_tokens": 30,
                    "cache_creation_input_tokens": 20,
                },
            },
        )

    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="https://anthropic.example.test",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(respond)),
    )


def test_anthropic_conventions(otel: Otel) -> None:
    _anthropic(False).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        stop_sequences=["END"],
        system="Answer from the documents.",
        messages=[{"role": "user", "content": QUERY}],
    )
    check(
        dict(otel.span().attributes or {}),
        {
            "llm.model_name": "claude-sonnet-4-5-20250929",
            "llm.provider": "anthropic",
            "llm.system": "anthropic",
            "gen_ai.request.stop_sequences": ("END",),
            "gen_ai.usage.input_tokens": 60,  # uncached + cache writes + cache reads
            "gen_ai.usage.cache_read.input_tokens": 30,
            "gen_ai.usage.cache_creation.input_tokens": 20,
            "llm.token_count.prompt": 60,
            "llm.token_count.total": 65,
            "server.address": "anthropic.example.test",
            "server.port": 443,
            "gen_ai.system_instructions": None,  # content: off
        },
    )


def test_anthropic_top_k_is_token_sampling() -> None:
    from otel_rerank.instrumentation.anthropic import _attributes as anthropic_attributes

    pairs = dict(anthropic_attributes.request({"top_k": 5, "max_tokens": 9}, False))
    assert pairs["gen_ai.request.top_k"] == 5  # the key the conventions keep for sampling
    assert "gen_ai.retrieval.top_k" not in pairs


# -- content: GenAI JSON attributes, schema-valid and under the same limits -----------------
@pytest.fixture
def capturing(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    otel.instrument(capture_content=True)
    yield otel


def test_chat_content_json_validates(capturing: Otel) -> None:
    _openai(_completion).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    _anthropic(True).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        system="Answer from the documents.",
        messages=[{"role": "user", "content": QUERY}],
    )
    openai_span, anthropic_span = capturing.spans()
    a = dict(openai_span.attributes or {})
    assert validate(a["gen_ai.input.messages"], "InputMessages") == [
        {"role": "system", "parts": [{"type": "text", "content": MESSAGES[0]["content"]}]},
        {"role": "user", "parts": [{"type": "text", "content": QUERY}]},
    ]
    assert validate(a["gen_ai.output.messages"], "OutputMessages") == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]
    assert "gen_ai.system_instructions" not in a  # openai's system message is in the history
    assert a["output.value"] == ANSWER
    assert a["llm.input_messages.1.message.content"] == QUERY

    b = dict(anthropic_span.attributes or {})
    assert validate(b["gen_ai.system_instructions"], "SystemInstructions") == [
        {"type": "text", "content": "Answer from the documents."}
    ]
    assert validate(b["gen_ai.input.messages"], "InputMessages") == [
        {"role": "user", "parts": [{"type": "text", "content": QUERY}]}
    ]
    output = validate(b["gen_ai.output.messages"], "OutputMessages")
    assert output[0]["finish_reason"] == "stop"  # anthropic's end_turn, in the conventions' name
    assert b["llm.input_messages.0.message.role"] == "system"  # Phoenix shows it first


def test_retrieval_content_json_validates(capturing: Otel) -> None:

    client = _chroma_ephemeral()
    collection = client.get_or_create_collection("content-json")
    collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=DOCS[:2])
    capturing.exporter.clear()
    collection.query(query_embeddings=[[1.0, 0.1]], n_results=2)
    client.delete_collection("content-json")
    a = dict(capturing.span().attributes or {})
    documents = validate(a["gen_ai.retrieval.documents"], "RetrievalDocuments")
    assert [d["id"] for d in documents] == ["a", "b"]
    assert [d["content"] for d in documents] == DOCS[:2]
    assert documents[0]["score"] < documents[1]["score"]  # distances, nearest first
    assert a["retrieval.documents.0.document.id"] == "a"


def test_retrieval_query_text(capturing: Otel) -> None:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(
        "texts", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    client.upsert("texts", points=[models.PointStruct(id=1, vector=[1.0, 0.0])])
    capturing.exporter.clear()
    # A text query: local mode would embed it with fastembed (absent or not, the query's
    # text is known before the call, and that is what is recorded).
    with contextlib.suppress(Exception):
        client.query_points("texts", query=models.Document(text=QUERY, model="m"), limit=1)
    a = dict(capturing.span().attributes or {})
    assert a["gen_ai.retrieval.query.text"] == QUERY
    assert a["input.value"] == QUERY


def test_json_content_obeys_the_same_limits(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, tiny_cross_encoder: Any
) -> None:
    monkeypatch.setenv("OTEL_RERANK_CONTENT_MAX_LENGTH", "8")
    monkeypatch.setenv("OTEL_RERANK_CONTENT_MAX_DOCUMENTS", "1")
    otel.instrument(capture_content=True)
    _openai(_completion).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = dict(otel.span().attributes or {})
    inputs = validate(a["gen_ai.input.messages"], "InputMessages")
    assert len(inputs) == 1  # capped like llm.input_messages
    assert "llm.input_messages.1.message.role" not in a
    assert inputs[0]["parts"][0]["content"] == a["llm.input_messages.0.message.content"]
    assert len(inputs[0]["parts"][0]["content"]) == 8
    assert inputs[0]["parts"][0]["content"].endswith("…")
    outputs = validate(a["gen_ai.output.messages"], "OutputMessages")
    assert outputs[0]["parts"][0]["content"] == ANSWER[:7] + "…"
    assert a["output.value"] == ANSWER[:7] + "…"

    otel.exporter.clear()
    tiny_cross_encoder.rank(QUERY, DOCS)
    r = dict(otel.span().attributes or {})
    assert "reranker.input_documents.1.document.id" not in r
    assert "reranker.output_documents.1.document.id" not in r
    assert len(r["reranker.output_documents.0.document.content"]) == 8
