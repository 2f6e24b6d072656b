"""instrument()/uninstrument(): idempotent, exact undo, narrowing, entry points."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import tomllib

import otel_rerank
from otel_rerank import instrumentation
from otel_rerank.instrumentation._base import is_replacement
from tests.conftest import Otel, make_otel


def _originals() -> dict[tuple[type, str], Any]:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    return {
        (CrossEncoder, "predict"): CrossEncoder.__dict__["predict"],
        (CrossEncoder, "rank"): CrossEncoder.__dict__["rank"],
        (SentenceTransformer, "encode"): SentenceTransformer.__dict__["encode"],
    }


def test_instrument_twice_and_uninstrument_twice_are_harmless(tiny_cross_encoder: Any) -> None:
    before = _originals()
    sdk = make_otel()
    assert "sentence_transformers" in sdk.instrument()
    assert "sentence_transformers" in sdk.instrument()
    tiny_cross_encoder.predict([("q", "d")])
    assert len(sdk.spans()) == 1  # not wrapped twice

    otel_rerank.uninstrument()
    otel_rerank.uninstrument()
    after = _originals()
    for key, original in before.items():
        # The very object that was there before (sentence-transformers' own decorators
        # give it a __wrapped__ of its own; ours is gone).
        assert after[key] is original, key
        assert not is_replacement(after[key])
    tiny_cross_encoder.predict([("q", "d")])
    assert len(sdk.spans()) == 1  # no span after uninstrument


def test_second_instrument_call_switches_providers(tiny_cross_encoder: Any) -> None:
    first, second = make_otel(), make_otel()
    first.instrument()
    second.instrument()
    try:
        tiny_cross_encoder.predict([("q", "d")])
    finally:
        otel_rerank.uninstrument()
    assert first.spans() == []
    assert len(second.spans()) == 1


def test_libraries_narrows_and_unknown_names_are_refused(otel: Otel) -> None:
    otel_rerank.uninstrument()
    assert otel.instrument(libraries=["sentence_transformers"]) == ["sentence_transformers"]
    assert otel_rerank.instrumented_libraries() == ["sentence_transformers"]
    with pytest.raises(ValueError, match="no_such_lib"):
        otel_rerank.instrument(libraries=["no_such_lib"])


def test_missing_library_is_skipped_silently(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otel_rerank.uninstrument()
    cls = instrumentation.load("sentence_transformers")
    monkeypatch.setattr(cls, "is_installed", classmethod(lambda c: False))
    with caplog.at_level("DEBUG"):
        assert otel.instrument() == [
            n for n in otel_rerank.instrumented_libraries() if n != "sentence_transformers"
        ]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


#: Each library's instrumentor, spelled out here so the checks below are not circular.
EXPECTED_INSTRUMENTORS = {
    "sentence_transformers": (
        "otel_rerank.instrumentation.sentence_transformers",
        "SentenceTransformersInstrumentor",
    ),
    "openai": ("otel_rerank.instrumentation.openai", "OpenAIInstrumentor"),
    "anthropic": ("otel_rerank.instrumentation.anthropic", "AnthropicInstrumentor"),
    "faiss": ("otel_rerank.instrumentation.faiss", "FaissInstrumentor"),
    "chromadb": ("otel_rerank.instrumentation.chromadb", "ChromaInstrumentor"),
    "qdrant_client": ("otel_rerank.instrumentation.qdrant_client", "QdrantInstrumentor"),
    "cohere": ("otel_rerank.instrumentation.cohere", "CohereInstrumentor"),
    "rerankers": ("otel_rerank.instrumentation.rerankers", "RerankersInstrumentor"),
    "langchain": ("otel_rerank.instrumentation.langchain", "LangChainInstrumentor"),
    "llama_index": ("otel_rerank.instrumentation.llama_index", "LlamaIndexInstrumentor"),
    "haystack": ("otel_rerank.instrumentation.haystack", "HaystackInstrumentor"),
}


def test_the_registry_is_our_entry_points_and_lists_every_library() -> None:
    ours = {
        ep.name for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.value.startswith("otel_rerank.")
    }  # fmt: skip
    assert ours == {f"otel_rerank_{name}" for name in EXPECTED_INSTRUMENTORS}
    assert instrumentation.libraries() == sorted(EXPECTED_INSTRUMENTORS)


def test_other_distributions_entry_points_are_not_ours() -> None:
    # opentelemetry-instrumentation-httpx (a test dependency) is in the same group.
    others = [
        ep for ep in entry_points(group="opentelemetry_instrumentor")
        if not ep.value.startswith("otel_rerank.")
    ]  # fmt: skip
    assert others
    assert not {ep.name for ep in others} & set(instrumentation.libraries())
    with pytest.raises(KeyError):
        instrumentation.load(others[0].name)


def test_without_our_entry_points_nothing_is_instrumented_and_the_log_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A source tree on sys.path without `pip install`: no metadata, so no entry points.
    monkeypatch.setattr(instrumentation, "entry_points", lambda group: [])
    instrumentation._registry.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="otel_rerank"):
            assert instrumentation.libraries() == []
        assert "no opentelemetry_instrumentor entry points" in caplog.text
    finally:
        monkeypatch.undo()
        instrumentation._registry.cache_clear()
    assert instrumentation.libraries() == sorted(EXPECTED_INSTRUMENTORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_INSTRUMENTORS))
def test_pyproject_declares_the_entry_point(name: str) -> None:
    """The entry point ``opentelemetry-instrument`` loads names the registry's class."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["opentelemetry_instrumentor"]
    module_name, class_name = EXPECTED_INSTRUMENTORS[name]
    expected = getattr(importlib.import_module(module_name), class_name)
    assert declared[f"otel_rerank_{name}"] == f"{module_name}:{class_name}"
    assert instrumentation.load(name) is expected


def test_every_registered_instrumentor_loads() -> None:
    for name in instrumentation.libraries():
        cls = instrumentation.load(name)
        assert cls.package
        assert cls.supported


def test_opentelemetry_instrument_picks_our_instrumentors_up(tmp_path: Any) -> None:
    """``opentelemetry-instrument python app.py`` instruments sentence-transformers as is."""
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(
            """
            from sentence_transformers import CrossEncoder
            from otel_rerank.instrumentation._base import is_replacement
            assert is_replacement(CrossEncoder.__dict__["predict"])
            print("INSTRUMENTED")
            """
        )
    )
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    result = subprocess.run(
        [str(bin_dir / "opentelemetry-instrument"), sys.executable, str(app)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert "INSTRUMENTED" in result.stdout, result.stderr[-2000:]


def test_an_instrumentors_own_providers_are_that_librarys_only(tiny_cross_encoder: Any) -> None:
    from otel_rerank.instrumentation.sentence_transformers import (
        SentenceTransformersInstrumentor,
    )

    own, default = make_otel(), make_otel()

    @otel_rerank.rerank(model="mine")
    def mine(query: str, documents: list[str]) -> list[float]:
        return [0.5] * len(documents)

    SentenceTransformersInstrumentor().instrument(
        tracer_provider=own.tracer_provider, meter_provider=own.meter_provider
    )
    try:
        default.instrument()  # the defaults for everything else; not the library's own
        tiny_cross_encoder.predict([("q", "d")])
        mine("q", ["d"])
    finally:
        otel_rerank.uninstrument()
    assert [s.name for s in own.spans()] == ["rerank tiny-cross-encoder"]
    assert own.metric_points("gen_ai.client.operation.duration")
    assert [s.name for s in default.spans()] == ["rerank mine"]
    # Uninstrumented, the library's settings are gone with its patches.
    SentenceTransformersInstrumentor().instrument()
    try:
        default.instrument()
        tiny_cross_encoder.predict([("q", "d")])
    finally:
        otel_rerank.uninstrument()
    assert len(own.spans()) == 1
    assert len(default.spans()) == 2


def test_an_instrumentors_own_capture_flag_is_kept_and_that_librarys_only(
    tiny_cross_encoder: Any,
) -> None:
    from otel_rerank import semconv
    from otel_rerank.instrumentation.sentence_transformers import (
        SentenceTransformersInstrumentor,
    )

    sdk = make_otel()

    @otel_rerank.rerank(model="mine")
    def mine(query: str, documents: list[str]) -> list[float]:
        return [0.5] * len(documents)

    SentenceTransformersInstrumentor().instrument(capture_content=True)  # no providers
    try:
        sdk.instrument(capture_content=False)
        tiny_cross_encoder.rank("the query", ["a document"])
        mine("the query", ["a document"])
    finally:
        otel_rerank.uninstrument()
    library, decorated = sdk.spans()
    assert dict(library.attributes or {})[semconv.RERANKER_QUERY] == "the query"
    assert semconv.RERANKER_QUERY not in dict(decorated.attributes or {})


def test_the_telemetry_kept_for_the_globals_follows_every_settings_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``current()`` gives again what it worked out while the two global providers stay the
    same objects; a settings change (``instrument()``'s providers, its content setting) is
    seen on the next call, and an answer worked out while the settings changed is not kept."""
    from opentelemetry import trace

    from otel_rerank import _telemetry

    first, second = make_otel(), make_otel()

    def exported_to(telemetry: Any) -> Otel:
        telemetry.tracer.start_span("probe").end()
        (sdk,) = [sdk for sdk in (first, second) if sdk.exporter.get_finished_spans()]
        sdk.exporter.clear()
        return sdk

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", first.tracer_provider)
    try:
        found = _telemetry.current()
        assert _telemetry.current() is found  # kept
        assert exported_to(found) is first
        _telemetry.use(tracer_provider=second.tracer_provider)
        now = _telemetry.current()
        assert exported_to(now) is second
        _telemetry.use(tracer_provider=second.tracer_provider, capture_content=True)
        captured = _telemetry.current()
        assert captured is not None and captured is not now and captured.content.capture
        _telemetry.reset()
        assert exported_to(_telemetry.current()) is first
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", second.tracer_provider)
        assert exported_to(_telemetry.current()) is second  # a global set: seen at once

        resolve_now = _telemetry._resolve_now

        def changed_meanwhile() -> Any:
            answer = resolve_now()
            _telemetry._update_own_providers()  # as use() from another thread
            return answer

        monkeypatch.setattr(_telemetry, "_resolve_now", changed_meanwhile)
        _telemetry._update_own_providers()
        _telemetry.current()
        assert _telemetry._known is _telemetry._NOTHING_KNOWN  # not kept: worked out again
    finally:
        _telemetry.reset()


def test_where_an_unset_global_is_not_the_proxy_the_resolved_telemetry_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an ``OTEL_PYTHON_*_PROVIDER`` variable set (or an API that keeps its globals
    elsewhere) the API is asked for an unset provider on every call, and the telemetry
    built for its answer is reused while the answer stays the same."""
    from opentelemetry.metrics import _internal as metrics_internal

    from otel_rerank import _telemetry

    sdk = make_otel()
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(_telemetry, "_UNSET_IS_PROXY", False)
    _telemetry.use(tracer_provider=sdk.tracer_provider)
    try:
        first = _telemetry.current()
        assert first is not None and first.tracing and not first.metering
        assert _telemetry.current() is first
    finally:
        _telemetry.reset()


def test_tracing_only_records_no_metric_until_a_meter_provider_is_set(
    tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tracer provider and no meter provider, a call makes its span and records no
    point (``Telemetry.metering``), and asks the API for the meter provider only the first
    time (the unset global stands for the API's proxy); the first call after the
    application sets a global meter provider records its duration there."""
    from opentelemetry.metrics import _internal as metrics_internal

    from otel_rerank import _telemetry

    sdk = make_otel()
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    otel_rerank.instrument(tracer_provider=sdk.tracer_provider)
    asked: list[object] = []
    ask = _telemetry.global_meter_provider
    try:
        tiny_cross_encoder.predict([("q", "d")])
        telemetry = _telemetry.current()
        assert telemetry is not None and telemetry.tracing and not telemetry.metering
        monkeypatch.setattr(_telemetry, "global_meter_provider", lambda: asked.append(1) or ask())
        tiny_cross_encoder.predict([("q", "d")])
        assert asked == []
        monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", sdk.meter_provider)
        tiny_cross_encoder.predict([("q", "d")])
    finally:
        otel_rerank.uninstrument()
    assert len(sdk.spans()) == 3
    (point,) = sdk.metric_points("gen_ai.client.operation.duration")
    assert point.count == 1
    (candidates,) = sdk.metric_points("rag.rerank.candidates")
    assert candidates.count == 1
