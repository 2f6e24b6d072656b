"""The example service (examples/rag_app.py) and load generator (examples/load.py), in process.

The app is built around a small real pipeline — all-MiniLM-L6-v2, a faiss index over 40
standard-library passages, the loopback LLM stand-in through the real openai client — and
an in-memory SDK. The reranker is a scorer that reverses retrieval's order, so what
``OTEL_RERANK_MODE`` serves is visible in the response: retrieval's order for ``off`` and
``shadow``, the reversed one for ``serve``. Every trace test runs twice: with the server
span made by FastAPI's own instrumentation and by the example's ``RootSpanMiddleware``;
one more runs the app under a globally instrumented FastAPI, as ``opentelemetry-instrument``
leaves it.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from otel_rerank import ShadowReranker, report, semconv
from otel_rerank._file_exporter import JsonLinesSpanExporter
from otel_rerank.demo import LLMStandIn, Passage, RagPipeline, build_passages, flat_index
from otel_rerank.demo.llm_standin import MODEL

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUERY = "How do I turn a Python object into a JSON string?"
STAGES = ("embeddings", "retrieval", "rerank", "chat")


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rag_app = _load_example("rag_app")
load = _load_example("load")


class ReverseScorer:
    """A cross-encoder stand-in whose order is the reverse of the order it is given."""

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[float]:
        return [float(i) for i in range(len(pairs))]


@pytest.fixture(scope="module")
def pipeline(minilm: Any) -> Iterator[RagPipeline]:
    import openai

    passages = build_passages(40)
    with suppress_instrumentation():
        vectors = minilm.encode([p.content for p in passages], normalize_embeddings=True)
    standin = LLMStandIn().start()
    client = openai.OpenAI(base_url=standin.base_url, api_key="unused", max_retries=0)
    reranker: ShadowReranker[Passage] = ShadowReranker(
        ReverseScorer(), sample_rate=1.0, text=lambda p: p.content, model="reverse"
    )
    rag = RagPipeline(
        embedder=minilm,
        index=flat_index(vectors.astype("float32")),
        passages=passages,
        reranker=reranker,
        llm=client,
        llm_model=MODEL,
        k=8,
        top_n=3,
        closers=[standin.stop],
    )
    yield rag
    rag.close()


@pytest.fixture(autouse=True)
def _serve_unless_a_test_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    # The library's default mode is shadow: without this, every test would leave shadow work
    # on the module-wide reranker's worker, to surface in a later test's spans.
    monkeypatch.setenv("OTEL_RERANK_MODE", "serve")


@pytest.fixture(params=[True, False], ids=["fastapi-instrumentation", "root-span-middleware"])
def client(
    pipeline: RagPipeline, otel: Any, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    app = rag_app.create_app(
        pipeline, tracer_provider=otel.tracer_provider, fastapi_instrumentation=request.param
    )
    with TestClient(app) as test_client:
        yield test_client


def _status_code(span: ReadableSpan) -> Any:
    # FastAPI's instrumentation writes the older `http.status_code` unless the stable HTTP
    # conventions are opted into (OTEL_SEMCONV_STABILITY_OPT_IN=http); the middleware, the
    # stable name.
    attributes = span.attributes or {}
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


def _server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == SpanKind.SERVER]


def _retrieved_ids(pipeline: RagPipeline) -> list[int]:
    with suppress_instrumentation():
        return [p.id for p in pipeline.retrieve(QUERY)]


def _root(spans: list[ReadableSpan], trace_id: str) -> ReadableSpan:
    roots = [
        s for s in spans if s.parent is None and format(s.context.trace_id, "032x") == trace_id
    ]
    assert len(roots) == 1, [s.name for s in spans]
    return roots[0]


def _stage(span: ReadableSpan) -> Any:
    return (span.attributes or {}).get(semconv.GEN_AI_OPERATION_NAME)


def test_answer_passages_and_trace_id_come_back(client: TestClient, otel: Any) -> None:
    response = client.post("/ask", json={"query": QUERY})

    assert response.status_code == 200
    body = response.json()
    assert len(body["passages"]) == 3
    top = body["passages"][0]
    assert body["answer"] == f'From the documentation: "{top["title"]}: {top["text"]}"'
    trace_id = body["trace_id"]
    assert isinstance(trace_id, str) and len(trace_id) == 32
    spans = otel.spans()
    root = _root(spans, trace_id)
    assert root.name == "POST /ask"
    assert _status_code(root) == 200
    assert _server_spans(spans) == [root]  # one server span per request, never two


@pytest.mark.parametrize("mode", ["off", "shadow", "serve"])
def test_mode_decides_what_is_served(
    mode: str,
    client: TestClient,
    otel: Any,
    pipeline: RagPipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retrieved = _retrieved_ids(pipeline)
    assert len(retrieved) == 8
    monkeypatch.setenv("OTEL_RERANK_MODE", mode)

    body = client.post("/ask", json={"query": QUERY}).json()

    served = [p["id"] for p in body["passages"]]
    assert body["mode"] == mode
    expected = retrieved[::-1][:3] if mode == "serve" else retrieved[:3]
    assert served == expected
    root = _root(otel.spans(), body["trace_id"])
    children = [
        s for s in otel.spans() if s.parent is not None and s.parent.span_id == root.context.span_id
    ]
    stages = sorted(_stage(s) for s in children)
    if mode == "serve":
        assert stages == sorted(STAGES)
    else:
        assert stages == sorted(("embeddings", "retrieval", "chat"))
    if mode == "shadow":
        # The shadow run is off the request path: its own trace, linked to the request.
        deadline = time.monotonic() + 30
        shadow: list[ReadableSpan] = []
        while not shadow and time.monotonic() < deadline:
            time.sleep(0.05)
            shadow = [
                s
                for s in otel.spans()
                if (s.attributes or {}).get("rag.rerank.shadow")
                and [link.context.span_id for link in s.links] == [root.context.span_id]
            ]
        assert len(shadow) == 1
        assert shadow[0].parent is None
        assert (shadow[0].attributes or {})[semconv.RAG_RERANK_TOP1_CHANGED] is True


def test_stage_spans_are_children_of_the_request_span(
    client: TestClient, otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_MODE", "serve")
    ids = [client.post("/ask", json={"query": QUERY}).json()["trace_id"] for _ in range(2)]

    assert len(set(ids)) == 2  # one trace per request
    spans = otel.spans()
    for trace_id in ids:
        members = [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
        root = _root(spans, trace_id)
        assert len(members) == 5
        for span in members:
            if span is not root:
                assert span.parent is not None
                assert span.parent.span_id == root.context.span_id
                assert root.start_time <= span.start_time <= span.end_time <= root.end_time
        assert sorted(_stage(s) for s in members if s is not root) == sorted(STAGES)


def test_a_rejected_request_still_gets_a_root_span(client: TestClient, otel: Any) -> None:
    response = client.post("/ask", json={"query": ""})
    unknown = client.get("/no/such/path")

    assert response.status_code == 422
    assert unknown.status_code == 404
    by_name = {s.name: s for s in otel.spans()}
    assert _status_code(by_name["POST /ask"]) == 422
    assert "GET" in by_name  # an unknown path is not put in the span name
    assert not [s for s in otel.spans() if _stage(s)]  # no pipeline stage ran


def test_health_checks_are_not_traced(client: TestClient, otel: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert otel.spans() == []


def test_the_report_counts_each_request_once(
    client: TestClient, otel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_MODE", "off")
    for i in range(7):
        assert client.post("/ask", json={"query": QUERY}).status_code == 200
        if i % 2 == 0:
            assert client.get("/healthz").status_code == 200
    traces = tmp_path / "traces.jsonl"
    JsonLinesSpanExporter(traces).export(otel.spans())

    table = report.stage_table(report.load_spans(traces))

    assert table.requests == 7
    assert table.end_to_end is not None and table.end_to_end.count == 7
    assert {row.stage: row.count for row in table.rows} == {
        "embeddings": 7,
        "retrieval": 7,
        "chat": 7,
    }


@pytest.mark.parametrize("fastapi_instrumentation", [True, False])
def test_under_opentelemetry_instrument_still_one_server_span(
    pipeline: RagPipeline,
    otel: Any,
    monkeypatch: pytest.MonkeyPatch,
    fastapi_instrumentation: bool,
) -> None:
    # What `opentelemetry-instrument python examples/rag_service.py` does before the app
    # exists: every FastAPI app is instrumented at construction, health checks included.
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    monkeypatch.setenv("OTEL_RERANK_MODE", "serve")
    instrumentor = FastAPIInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        app = rag_app.create_app(
            pipeline,
            tracer_provider=otel.tracer_provider,
            fastapi_instrumentation=fastapi_instrumentation,
        )
        with TestClient(app) as test_client:
            body = test_client.post("/ask", json={"query": QUERY}).json()
            healthy = test_client.get("/healthz").status_code == 200
    finally:
        instrumentor.uninstrument()

    assert healthy
    spans = otel.spans()
    servers = _server_spans(spans)
    assert [s.name for s in servers] == ["POST /ask"]
    root = _root(spans, body["trace_id"])
    assert servers == [root]
    stages = [s for s in spans if _stage(s)]
    assert sorted(_stage(s) for s in stages) == sorted(STAGES)
    for span in stages:
        assert span.parent is not None
        assert span.parent.span_id == root.context.span_id
    if fastapi_instrumentation:  # re-instrumented with the health check left out
        assert not [s for s in spans if "healthz" in s.name]


# -- examples/load.py ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    ["http://example.com:8000", "http://10.0.0.1:8000", "http://0.0.0.0:8000", "ftp://127.0.0.1"],
)
def test_load_refuses_anything_but_loopback(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert load.main(["--url", url, "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("load.py: error:")


@pytest.mark.parametrize(
    "args", [["--rate", "0"], ["--rate", "1000"], ["--duration", "100000"], ["--max-requests", "0"]]
)
def test_load_bounds_are_enforced(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert load.main(["--url", "http://127.0.0.1:9", *args]) == 2
    assert "must be" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"])
def test_load_accepts_loopback(url: str) -> None:
    assert load.check_url(url) == url + "/ask"


async def test_load_sends_a_bounded_number_of_requests_at_its_rate(
    pipeline: RagPipeline, otel: Any
) -> None:
    app = rag_app.create_app(pipeline, tracer_provider=otel.tracer_provider)
    transport = httpx.ASGITransport(app=app)
    started = time.perf_counter()

    summary = await load.run_load(
        "http://127.0.0.1:8000", rate=10, duration_s=0.5, max_requests=3, transport=transport
    )

    assert summary.sent == 3 and summary.ok == 3 and summary.failed == 0
    assert len(summary.latencies_ms) == 3
    assert time.perf_counter() - started >= 0.2  # request 3 is due 2 / rate after the start
    trace_ids = {format(s.context.trace_id, "032x") for s in otel.spans() if s.name == "POST /ask"}
    assert summary.slowest[1] in trace_ids
    assert "3 sent, 3 ok, 0 failed" in summary.text()


# -- examples/rag_service.py ---------------------------------------------------------------
@pytest.mark.parametrize("config", ["", "{not json"])
def test_service_with_a_broken_model_config_exits_2_in_one_line(
    config: str, tmp_path: Path
) -> None:
    import os
    import subprocess

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        OTEL_RERANK_TRACES_FILE=str(tmp_path / "traces.jsonl"),
        OTEL_RERANK_CACHE_DIR=os.environ.get("OTEL_RERANK_CACHE_DIR", ""),
    )
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "rag_service.py"), "--model", str(model), "--port", "0"],
        capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    err = done.stderr.strip()
    assert err.startswith(f"rag_service: error: cannot load a cross-encoder from {model} (")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
