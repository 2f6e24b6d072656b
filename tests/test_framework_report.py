"""The report on a framework app's spans tells the truth (issue 14).

The LangChain, Haystack and LlamaIndex apps of ``test_framework_{langchain,haystack,
llama_index}`` with their start-up indexing call, their spans appended to an OTLP-JSON lines
file as the embedded default does, then ``otel-rerank report``: with the framework's entry
points left uninstrumented (no request spans) the report says so in one line and prints no
end-to-end row or verdict on it; instrumented, the indexing call is a background stage call
that leaves the verdict as it is. The LlamaIndex app runs in the ``.venv-llamaindex``
overlay (``make test-llamaindex``); each app is skipped where its framework is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_rerank
from otel_rerank import instrumentation, report
from otel_rerank._file_exporter import JsonLinesSpanExporter
from otel_rerank.cli import main
from otel_rerank.demo.llm_standin import LLMStandIn

from . import _framework_app as app
from ._framework_app import collect_framework_leftovers  # noqa: F401 (autouse)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:langchain_community.*"),
    pytest.mark.filterwarnings("ignore:.*HuggingFaceEmbeddings.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:haystack.*"),
    # ChatOpenAI, OpenAIChatGenerator and OpenAILike keep async HTTP clients (and LlamaIndex
    # an event loop) that their frameworks never close.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# An app builder indexes the corpus (the start-up call) and returns its ask(question).
Ask = Callable[[str], Any]


def _langchain(model: Path, llm_url: str) -> Ask:
    pytest.importorskip("langchain_classic")
    from .test_framework_langchain import build_chain

    chain, _ = build_chain(model, llm_url)  # FAISS.from_texts: a parentless encode
    return chain.invoke


def _haystack(model: Path, llm_url: str) -> Ask:
    pytest.importorskip("haystack")
    pytest.importorskip("haystack_integrations.components.rankers.sentence_transformers")
    from .test_framework_haystack import _inputs, build_pipeline

    pipeline, _ = build_pipeline(model, llm_url)  # the document embedder: a parentless encode
    return lambda question: pipeline.run(_inputs(question))


def _llama_index(model: Path, llm_url: str) -> Ask:
    pytest.importorskip("llama_index.core")
    pytest.importorskip("llama_index.llms.openai_like")
    pytest.importorskip("llama_index.embeddings.huggingface")
    from .test_framework_llama_index import build_engine

    engine, _ = build_engine(model, llm_url)  # from_documents: a parentless encode
    return engine.query


# (framework instrumentor whose entry points make the request spans, its app)
APPS = [
    pytest.param("langchain", _langchain, id="langchain"),
    pytest.param("haystack", _haystack, id="haystack"),
    pytest.param("llama_index", _llama_index, id="llama_index"),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMStandIn]:
    with LLMStandIn() as server:
        yield server


def _run_app(
    path: Path, libraries: list[str], build: Callable[[Path, str], Ask], model: Path, llm_url: str
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    meters = MeterProvider()
    otel_rerank.instrument(tracer_provider=provider, meter_provider=meters, libraries=libraries)
    try:
        ask = build(model, llm_url)  # indexes the corpus at start-up
        for question in app.QUERIES:
            ask(question)
    finally:
        otel_rerank.uninstrument()
        provider.shutdown()
        meters.shutdown()


@pytest.mark.parametrize(("framework", "build"), APPS)
def test_without_request_spans_the_report_says_so(
    framework: str,
    build: Callable[[Path, str], Ask],
    tmp_path: Path,
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "traces.jsonl"
    libraries = [n for n in instrumentation.libraries() if n != framework]
    _run_app(path, libraries, build, tiny_cross_encoder_path, llm_server.base_url)
    assert main(["report", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("end-to-end")]
    hints = [line for line in lines if line.startswith("no request spans")]
    assert len(hints) == 1 and "otel_rerank.request" in hints[0]
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert "WITHIN" not in verdict and "OVER" not in verdict
    rerank = next(line for line in lines if line.startswith("rerank "))
    assert rerank.split()[1] == str(len(app.QUERIES))  # stage rows are still there


@pytest.mark.parametrize(("framework", "build"), APPS)
def test_with_request_spans_an_indexing_call_leaves_the_verdict_alone(
    framework: str,
    build: Callable[[Path, str], Ask],
    tmp_path: Path,
    tiny_cross_encoder_path: Path,
    llm_server: LLMStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "traces.jsonl"
    libraries = instrumentation.libraries()
    _run_app(path, libraries, build, tiny_cross_encoder_path, llm_server.base_url)
    spans = report.load_spans(path)
    table = report.stage_table(spans)
    assert table.requests == len(app.QUERIES)
    assert table.background == {"embeddings": 1}  # the start-up indexing encode
    indexing = {s.trace_id for s in spans if s.parent_id is None and s.stage == "embeddings"}
    without = report.stage_table([s for s in spans if s.trace_id not in indexing])
    assert report.verdict(table, 1500) == report.verdict(without, 1500)
    assert table.row("embeddings").count == len(app.QUERIES)  # type: ignore[union-attr]
    shares = [row.share for row in table.rows]
    assert sum(shares) + table.other_share == pytest.approx(1.0)  # type: ignore[arg-type, operator]
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(app.QUERIES)} request(s)" in out
    assert "1 background stage call(s), not requests (1 embeddings)" in out
