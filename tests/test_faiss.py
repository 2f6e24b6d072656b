"""faiss: ``search`` on every index class is one retrieval span; nothing else is touched."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

import otel_rerank
from otel_rerank import semconv
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.faiss import FaissInstrumentor, _attributes

from .conftest import Otel, make_otel

faiss = pytest.importorskip("faiss")

DIM = 8


def _vectors(n: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def docs() -> Any:
    return _vectors(64)


def _retrieval_spans(otel: Otel) -> list[Any]:
    return [s for s in otel.spans() if s.name.startswith("retrieval")]


def test_flat_ip_single_query(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    scores, ids = index.search(docs[3:4], 5)

    span = otel.span("retrieval IndexFlatIP")
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "faiss"
    assert attrs[semconv.DB_SYSTEM_NAME] == "faiss"
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == "IndexFlatIP"
    assert attrs["gen_ai.retrieval.top_k"] == 5
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 1
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 5
    assert ids[0, 0] == 3  # the query is document 3 itself
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(float(scores[0, 0]))
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(1.0, abs=1e-5)
    assert span.status.status_code is StatusCode.UNSET

    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.count == 1
    assert point.attributes == {
        semconv.GEN_AI_OPERATION_NAME: "retrieval",
        semconv.GEN_AI_PROVIDER_NAME: "faiss",
    }


def test_padding_is_not_counted(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs[:3])
    _, ids = index.search(docs[:1], 10)
    assert (ids == -1).sum() == 7
    assert otel.span().attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 3


def test_empty_index_has_no_top_score(otel: Otel) -> None:
    index = faiss.IndexFlatL2(DIM)
    index.search(_vectors(1), 4)
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 0
    assert semconv.RAG_RETRIEVAL_TOP_SCORE not in attrs


def test_l2_top_score_is_the_smallest_distance(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatL2(DIM)
    index.add(docs)
    distances, _ = index.search(docs[7:8] + 0.01, 4)
    top = otel.span("retrieval IndexFlatL2").attributes[semconv.RAG_RETRIEVAL_TOP_SCORE]
    assert top == pytest.approx(float(distances[0].min()))


def test_batch_records_query_count_and_total_hits(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    index.search(docs[:6], 4)
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 6
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 24
    assert semconv.RAG_RETRIEVAL_TOP_SCORE not in attrs  # no single "best hit" for a batch


def test_ivf_flat(otel: Otel, docs: Any) -> None:
    quantizer = faiss.IndexFlatL2(DIM)
    index = faiss.IndexIVFFlat(quantizer, DIM, 4)
    index.train(docs)
    index.add(docs)
    index.nprobe = 4
    otel.exporter.clear()
    index.search(docs[:1], 3)
    # One span: the coarse quantizer's search runs inside faiss's C++ code.
    span = otel.span()
    assert span.name == "retrieval IndexIVFFlat"
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 3


def test_hnsw_flat(otel: Otel, docs: Any) -> None:
    index = faiss.IndexHNSWFlat(DIM, 8)
    index.add(docs)
    _, ids = index.search(docs[10:11], 3)
    span = otel.span("retrieval IndexHNSWFlat")
    assert span.attributes["gen_ai.retrieval.top_k"] == 3
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == int((ids >= 0).sum())


def test_index_factory_and_binary_index(otel: Otel, docs: Any) -> None:
    index = faiss.index_factory(DIM, "IDMap,Flat", faiss.METRIC_INNER_PRODUCT)
    index.add_with_ids(docs[:4], np.array([100, 101, 102, 103], dtype="int64"))
    index.search(docs[2:3], 2)

    binary = faiss.IndexBinaryFlat(64)
    codes = np.random.default_rng(1).integers(0, 256, size=(10, 8), dtype="uint8")
    binary.add(codes)
    binary.search(codes[:1], 2)

    names = sorted(s.name for s in _retrieval_spans(otel))
    assert names == ["retrieval IndexBinaryFlat", "retrieval IndexIDMap"]
    binary_span = otel.span("retrieval IndexBinaryFlat")
    assert binary_span.attributes[semconv.RAG_RETRIEVAL_TOP_SCORE] == 0  # Hamming to itself


def test_user_given_data_source(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    otel_rerank.instrumentation.faiss.set_data_source(index, "wiki-chunks")
    index.search(docs[:1], 2)
    span = otel.span("retrieval wiki-chunks")
    assert span.attributes[semconv.GEN_AI_DATA_SOURCE_ID] == "wiki-chunks"
    # Named again after a search (its start was cached): the new name is recorded.
    otel_rerank.instrumentation.faiss.set_data_source(index, "wiki-v2")
    index.search(docs[:1], 2)
    assert otel.span("retrieval wiki-v2").attributes[semconv.GEN_AI_DATA_SOURCE_ID] == "wiki-v2"


def test_range_search_and_other_methods_untouched(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    index.range_search(docs[:1], 0.5)
    index.reconstruct(0)
    assert otel.spans() == []
    for cls in _attributes.index_classes(faiss):
        for name in ("range_search", "add", "train", "reconstruct"):
            assert not is_replacement(cls.__dict__.get(name))


def test_every_index_class_is_patched() -> None:
    classes = list(_attributes.index_classes(faiss))
    names = {c.__name__ for c in classes}
    assert {"IndexFlat", "IndexIVF", "IndexHNSW", "IndexBinaryFlat"} <= names
    assert "HNSW" not in names and "ProductQuantizer" not in names  # not indexes
    sdk = make_otel()
    sdk.instrument(libraries=["faiss"])
    try:
        for cls in classes:
            assert is_replacement(cls.__dict__["search"]), cls
    finally:
        otel_rerank.uninstrument()


def test_error_is_recorded_and_reraised_unchanged(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    wrong_dimension = np.zeros((1, DIM + 1), dtype="float32")
    with pytest.raises(AssertionError) as raised:
        index.search(wrong_dimension, 3)
    assert raised.type is AssertionError
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "AssertionError"
    assert span.events[0].name == "exception"
    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.attributes[semconv.ERROR_TYPE] == "AssertionError"


def test_suppressed(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    with suppress_instrumentation():
        _, ids = index.search(docs[:1], 2)
    assert ids[0, 0] == 0
    assert otel.spans() == []
    assert otel.metric_points(semconv.METRIC_OPERATION_DURATION) == []


def test_sampled_out_still_measures(otel: Otel, docs: Any) -> None:
    sampled_out = make_otel(ALWAYS_OFF)
    sampled_out.instrument()
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    index.search(docs[:1], 2)
    assert sampled_out.spans() == []
    (point,) = sampled_out.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.count == 1


def test_content_off_by_default(otel: Otel, docs: Any) -> None:
    index = faiss.IndexFlatIP(DIM)
    index.add(docs)
    index.search(docs[:1], 3)
    assert not any(k.startswith("retrieval.documents") for k in otel.span().attributes)


def test_content_on_records_ids_and_scores_never_vectors(otel: Otel, docs: Any) -> None:
    otel.instrument(capture_content=True)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(DIM))
    index.add_with_ids(docs[:5], np.arange(500, 505, dtype="int64"))
    scores, ids = index.search(docs[1:2], 3)
    attrs = otel.span().attributes
    for i in range(3):
        assert attrs[f"retrieval.documents.{i}.document.id"] == str(ids[0, i])
        assert attrs[f"retrieval.documents.{i}.document.score"] == pytest.approx(scores[0, i])
    assert attrs["retrieval.documents.0.document.id"] == "501"
    assert not any(k.endswith("document.content") for k in attrs)
    # Vectors are never recorded: no attribute holds a sequence of DIM floats.
    assert not any(isinstance(v, tuple) and len(v) == DIM for v in attrs.values())


def test_a_user_subclass_is_not_patched_and_its_search_is_one_span(otel: Otel, docs: Any) -> None:
    class Logged(faiss.IndexFlatIP):  # type: ignore[misc,name-defined]
        def search(self, x: Any, k: int, **kwargs: Any) -> Any:
            return super().search(x, k, **kwargs)

    assert not is_replacement(vars(Logged)["search"])
    index = Logged(DIM)
    index.add(docs)
    index.search(docs[:1], 2)
    (span,) = otel.spans()  # the base class's search, the one patched
    assert span.name == "retrieval Logged"


def test_uninstrument_restores_the_originals(otel: Otel) -> None:
    originals = {
        cls: cls.__dict__["search"].__wrapped__ for cls in _attributes.index_classes(faiss)
    }
    otel_rerank.uninstrument()
    for cls, original in originals.items():
        restored = cls.__dict__["search"]
        assert restored is original
        assert not is_replacement(restored)
        assert not hasattr(restored, "__wrapped__")
    otel_rerank.uninstrument()  # twice is harmless


def test_missing_library_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an absent package looks like
    sdk = make_otel()
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG):
        warnings.simplefilter("error")
        done = sdk.instrument(libraries=["faiss"])
    try:
        assert done == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        otel_rerank.uninstrument()


def test_faiss_imported_after_instrument() -> None:
    script = textwrap.dedent(
        """
        import sys
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import otel_rerank

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        otel_rerank.instrument(tracer_provider=provider, libraries=["faiss"])
        assert "faiss" not in sys.modules
        import numpy as np
        import faiss

        index = faiss.IndexHNSWFlat(4, 8)
        index.add(np.eye(4, dtype="float32"))
        index.search(np.eye(4, dtype="float32")[:1], 2)
        print([s.name for s in exporter.get_finished_spans()])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['retrieval IndexHNSWFlat']"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            (np.array([[0.9, 0.5, -np.inf]]), np.array([[4, 2, -1]])),
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 2, semconv.RAG_RETRIEVAL_TOP_SCORE: 0.9},
        ),
        (
            (np.zeros((2, 3)), np.array([[1, 2, 3], [4, -1, -1]])),
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 4},
        ),
        ((np.zeros((1, 2)), np.array([[-1, -1]])), {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 0}),
        ("not a result", {}),
        ((np.zeros((1, 2)), np.zeros((1, 3))), {}),  # shapes disagree
    ],
)
def test_search_response_table(result: Any, expected: dict[str, Any]) -> None:
    assert dict(_attributes.search_response(result)) == expected


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"x": np.zeros((3, 4)), "k": 7},
            {"gen_ai.retrieval.top_k": 7, "rag.retrieval.query_count": 3},
        ),
        ({"x": np.zeros(4), "k": True}, {}),
        ({}, {}),
    ],
)
def test_search_request_table(arguments: dict[str, Any], expected: dict[str, Any]) -> None:
    assert dict(_attributes.search_request(None, arguments)) == expected


def test_dependency_names_the_installed_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    assert FaissInstrumentor().instrumentation_dependencies() == ("faiss-cpu >= 1.8",)
    installed = {"faiss-gpu-cu12": "1.9.0"}

    def version(name: str) -> str:
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert FaissInstrumentor().instrumentation_dependencies() == ("faiss-gpu-cu12 >= 1.8",)
    installed.clear()  # importable, but no pip metadata (a conda build): no check
    assert FaissInstrumentor().instrumentation_dependencies() == ()
