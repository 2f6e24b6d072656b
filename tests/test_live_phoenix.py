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
"""

from __future__ import annotations

import json
import os
import socket
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

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
STARTUP_TIMEOUT_S = 180  # migrations on a fresh SQLite file; ~15-60 s on a busy 2-core box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Phoenix:
    http_port: int
    grpc_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

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
