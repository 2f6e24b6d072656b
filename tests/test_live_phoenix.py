"""Live: a RAG pipeline's spans reach a real Arize Phoenix over OTLP/HTTP and OTLP/gRPC.

Phoenix (``arize-phoenix``, ~850 MB) lives in its own venv, ``.venv-phoenix``, installed by
``make phoenix`` (a dependency of ``make test``); without it these tests skip and say so.
The fixture starts ``phoenix serve`` on free loopback ports with a throw-away working
directory, telemetry and external resources off and a clean environment, so it opens no
connection beyond loopback (checked once with strace; the exporters talk to 127.0.0.1).
Phoenix's gRPC port is bound on all interfaces (Phoenix has no setting for it); nothing
but this test sends to it. Each test runs embeddings → retrieval → rerank → LLM inside a
root span (the rerank is the real sentence-transformers instrumentation around the tiny
cross-encoder; the other stages are otel-rerank's decorators), exports it to its own
Phoenix project over one transport, reads the spans back through Phoenix's REST API
(``GET /v1/projects/{project}/spans``) and checks the SPEC span names, the OpenInference
kinds Phoenix derived, and that every stage is a child of the root in one trace.

A second test runs one request through the real instrumentations (sentence-transformers
embeddings, a faiss search, a cross-encoder ``rank`` with ``top_k``, and an openai chat
completion against an in-process mock transport) with content capture on, and reads back
what Phoenix's span detail page shows: the reranker's model, top-k and its input and
output documents (ids, scores, best first), the embedding model, the LLM's response model,
token counts and messages, and the retriever's documents.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

import otel_rerank
from otel_rerank import semconv
from otel_rerank.instrumentation.sentence_transformers import _attributes as st_attributes
from tests._collectors import free_port

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
STARTUP_TIMEOUT_S = 180  # migrations on a fresh SQLite file; ~15-60 s on a busy 2-core box


@dataclass
class Phoenix:
    http_port: int
    grpc_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_for_spans(self, project: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        spans = self.spans(project)
        while len(spans) < count and time.monotonic() < deadline:
            time.sleep(0.5)
            spans = self.spans(project)
        return spans

    def spans(self, project: str) -> list[dict[str, Any]]:
        url = f"{self.base}/v1/projects/{project}/spans?limit=100"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return list(json.load(response)["data"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project appears with its first span
                return []
            raise


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    if not PHOENIX.exists():
        pytest.skip(f"{PHOENIX.relative_to(ROOT)} is absent: `make phoenix` installs Phoenix")
    workdir = tmp_path_factory.mktemp("phoenix")
    server = Phoenix(free_port(), free_port())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(server.http_port),
        "PHOENIX_GRPC_PORT": str(server.grpc_port),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        # Otherwise Phoenix looks up github.com (a WASM sandbox download) and its docs' MCP
        # server at start-up; with this off, strace shows no connection but loopback.
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
    }
    log = (workdir / "phoenix.log").open("wb")
    proc = subprocess.Popen(
        [str(PHOENIX), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
    )
    try:
        start = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{server.base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - start > STARTUP_TIMEOUT_S:
                log.flush()
                tail = (workdir / "phoenix.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"Phoenix did not start in {STARTUP_TIMEOUT_S} s:\n{tail}")
            time.sleep(0.25)
        print(f"Phoenix ready after {time.monotonic() - start:.1f} s")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def exporter_for(transport: str, server: Phoenix) -> SpanExporter:
    if transport == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{server.base}/v1/traces", timeout=10)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcSpanExporter,
    )

    return GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, timeout=10)


def run_pipeline(provider: TracerProvider, cross_encoder: Any) -> None:
    """embeddings -> retrieval -> rerank (real CrossEncoder.predict) -> LLM, under a root."""

    @otel_rerank.embedding(model="all-MiniLM-L6-v2", provider="custom")
    def embed(texts: list[str]) -> list[list[float]]:
        return [[0.1, 0.2, 0.3] for _ in texts]

    @otel_rerank.retrieval(data_source="cranfield", top_k=3)
    def retrieve(vector: list[float], k: int) -> list[str]:
        return ["boundary layer transition", "shock waves on wings", "heat transfer"][:k]

    @otel_rerank.llm(model="local-llm")
    def answer(prompt: str) -> str:
        return "an answer"

    query = "what causes boundary layer transition"
    with provider.get_tracer("test").start_as_current_span("rag request"):
        documents = retrieve(embed([query])[0], 3)
        scores = cross_encoder.predict([(query, d) for d in documents])
        best = int(max(range(len(documents)), key=lambda i: float(scores[i])))
        answer(f"{query}\n{documents[best]}")


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_pipeline_spans_reach_phoenix_with_names_kinds_and_parents(
    phoenix: Phoenix, transport: str, tiny_cross_encoder: Any, tiny_cross_encoder_path: Path
) -> None:
    project = f"otel-rerank-{transport}"
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "rag-live-test", "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter_for(transport, phoenix)))
    otel_rerank.instrument(tracer_provider=provider, libraries=["sentence_transformers"])
    try:
        run_pipeline(provider, tiny_cross_encoder)
    finally:
        otel_rerank.uninstrument()
        provider.shutdown()

    deadline = time.monotonic() + 30
    spans = phoenix.spans(project)
    while len(spans) < 5 and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = phoenix.spans(project)
    by_name = {s["name"]: s for s in spans}
    model = tiny_cross_encoder_path.name
    stages = {
        "embeddings all-MiniLM-L6-v2": (semconv.OPERATION_EMBEDDINGS, semconv.KIND_EMBEDDING),
        "retrieval cranfield": (semconv.OPERATION_RETRIEVAL, semconv.KIND_RETRIEVER),
        f"rerank {model}": (semconv.OPERATION_RERANK, semconv.KIND_RERANKER),
        "chat local-llm": (semconv.OPERATION_CHAT, semconv.KIND_LLM),
    }
    assert set(by_name) == {"rag request", *stages}, sorted(by_name)

    root = by_name["rag request"]
    assert root["parent_id"] is None
    trace_id = root["context"]["trace_id"]
    for name, (operation, kind) in stages.items():
        span = by_name[name]
        assert span["context"]["trace_id"] == trace_id, name
        assert span["parent_id"] == root["context"]["span_id"], name
        assert span["span_kind"] == kind, name
        assert span["attributes"][semconv.GEN_AI_OPERATION_NAME] == operation, name
    rerank = by_name[f"rerank {model}"]
    assert rerank["attributes"][semconv.GEN_AI_PROVIDER_NAME] == "sentence_transformers"
    assert rerank["attributes"][semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
    starts = [by_name[name]["start_time"] for name in stages]
    assert starts == sorted(starts)  # the stages ran in pipeline order


# -- what Phoenix's span detail page shows, for one request -----------------------------
CORPUS = [
    "boundary layer transition is caused by instabilities that grow downstream",
    "shock waves form on transonic wings",
    "heat transfer in laminar boundary layers",
    "the lift of a wing comes from the pressure difference",
]
QUERY = "what causes boundary layer transition"
REQUEST_MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
ANSWER = "Instabilities that grow downstream."


def _openai_client() -> Any:
    """An openai client whose requests are answered in-process (no network)."""
    import importlib

    openai = pytest.importorskip("openai")
    base_client = importlib.import_module("openai._base_client")
    http: Any = getattr(base_client, "httpx2", None) or base_client.httpx

    def respond(request: Any) -> Any:
        return http.Response(
            200,
            json={
                "id": "chatcmpl-live",
                "object": "chat.completion",
                "created": 1,
                "model": RESPONSE_MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38},
            },
        )

    return openai.OpenAI(
        api_key="sk-live-test",
        base_url="https://llm.example.test/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(respond)),
    )


def _attribute(span: dict[str, Any], key: str) -> Any:
    """One attribute as Phoenix returns it (flat dotted keys or nested objects)."""
    attributes = span["attributes"]
    if key in attributes:
        return attributes[key]
    node: Any = attributes
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(f"{key} not in {json.dumps(attributes)[:3000]}")
    return node


def _documents(span: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``{prefix}.{i}.document.*`` as a list of ``{"id", "score", "content"}`` dicts."""
    found = []
    for i in range(50):
        try:
            doc_id = _attribute(span, f"{prefix}.{i}.document.id")
        except KeyError:
            break
        doc: dict[str, Any] = {"id": doc_id}
        for field in ("score", "content"):
            with contextlib.suppress(KeyError):
                doc[field] = _attribute(span, f"{prefix}.{i}.document.{field}")
        found.append(doc)
    return found


def test_phoenix_shows_models_documents_tokens_and_messages(
    phoenix: Phoenix, tiny_cross_encoder: Any, minilm: Any
) -> None:
    import faiss
    import numpy as np

    project = "otel-rerank-detail"
    corpus_vectors = np.asarray(minilm.encode(CORPUS, normalize_embeddings=True), dtype="float32")
    index = faiss.IndexFlatIP(corpus_vectors.shape[1])
    index.add(corpus_vectors)
    client = _openai_client()

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "rag-live-test", "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter_for("http", phoenix)))
    otel_rerank.instrument(
        tracer_provider=provider,
        libraries=["sentence_transformers", "faiss", "openai"],
        capture_content=True,
    )
    try:
        with provider.get_tracer("test").start_as_current_span("rag request"):
            query_vector = minilm.encode([QUERY], normalize_embeddings=True)
            _, labels = index.search(np.asarray(query_vector, dtype="float32"), 3)
            candidates = [CORPUS[i] for i in labels[0]]
            ranked = tiny_cross_encoder.rank(QUERY, candidates, top_k=2)
            best = candidates[ranked[0]["corpus_id"]]
            client.chat.completions.create(
                model=REQUEST_MODEL,
                messages=[
                    {"role": "system", "content": "Answer from the document."},
                    {"role": "user", "content": f"{QUERY}\n{best}"},
                ],
            )
    finally:
        otel_rerank.uninstrument()
        provider.shutdown()

    spans = phoenix.wait_for_spans(project, 5)
    by_kind = {s["span_kind"]: s for s in spans}
    assert set(by_kind) >= {"EMBEDDING", "RETRIEVER", "RERANKER", "LLM"}, sorted(by_kind)

    # Embedding: the model Phoenix names the span's embeddings by.
    embedding = by_kind["EMBEDDING"]
    assert _attribute(embedding, "embedding.model_name") == st_attributes.model_name(minilm)

    # Retriever: its documents (faiss ids and inner-product scores, best first).
    retriever = _documents(by_kind["RETRIEVER"], "retrieval.documents")
    assert [d["id"] for d in retriever] == [str(i) for i in labels[0]]
    assert [d["score"] for d in retriever] == sorted((d["score"] for d in retriever), reverse=True)
    assert _attribute(by_kind["RETRIEVER"], "rag.retrieval.score_kind") == "similarity"

    # Reranker: model, top-k, the input documents and the reranked output (best first).
    reranker = by_kind["RERANKER"]
    assert _attribute(reranker, "reranker.model_name") == _attribute(
        reranker, "gen_ai.request.model"
    )
    assert _attribute(reranker, "reranker.top_k") == 2
    assert _attribute(reranker, "reranker.query") == QUERY
    inputs = _documents(reranker, "reranker.input_documents")
    assert [(d["id"], d["content"]) for d in inputs] == [
        (str(i), text) for i, text in enumerate(candidates)
    ]
    outputs = _documents(reranker, "reranker.output_documents")
    assert [d["id"] for d in outputs] == [str(r["corpus_id"]) for r in ranked]
    assert [d["score"] for d in outputs] == pytest.approx([float(r["score"]) for r in ranked])
    assert [d["content"] for d in outputs] == [candidates[r["corpus_id"]] for r in ranked]

    # LLM: the model that answered, token counts, and the messages both ways.
    llm = by_kind["LLM"]
    assert _attribute(llm, "llm.model_name") == RESPONSE_MODEL
    assert _attribute(llm, "llm.provider") == "openai"
    assert _attribute(llm, "llm.system") == "openai"
    assert _attribute(llm, "llm.token_count.prompt") == 31
    assert _attribute(llm, "llm.token_count.completion") == 7
    assert _attribute(llm, "llm.token_count.total") == 38
    assert _attribute(llm, "llm.input_messages.0.message.role") == "system"
    assert _attribute(llm, "llm.input_messages.1.message.content").startswith(QUERY)
    assert _attribute(llm, "llm.output_messages.0.message.role") == "assistant"
    assert _attribute(llm, "llm.output_messages.0.message.content") == ANSWER
    assert _attribute(llm, "output.value") == ANSWER
