"""ShadowReranker: the caller never waits, one linked shadow span per run, modes, overflow."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import otel_rerank
from otel_rerank import _telemetry, semconv
from otel_rerank.shadow import (
    MODE_ENV,
    ShadowReranker,
    ShadowResult,
    _default_text,
    current_mode,
    reranked_order,
)


class _Scorer:
    """A stand-in with CrossEncoder's predict: scores by length of the document text."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay = delay
        self.gate = gate
        self.calls: list[list[tuple[str, str]]] = []

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[float]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        self.calls.append(list(pairs))
        return [float(len(doc)) for _, doc in pairs]


CANDIDATES = ["a", "ccc", "bb"]  # lengths 1, 3, 2: the reranker puts "ccc" first


@pytest.fixture(autouse=True)
def _mode_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODE_ENV, raising=False)


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_default_mode_is_shadow_and_unknown_values_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert current_mode() == "shadow"
    monkeypatch.setenv(MODE_ENV, " SERVE ")
    assert current_mode() == "serve"
    monkeypatch.setenv(MODE_ENV, "servee")
    assert current_mode() == "shadow"
    assert current_mode("off") == "off"


def test_shadow_returns_the_same_list_at_once_and_records_a_linked_span(otel: Any) -> None:
    model = _Scorer(delay=0.3)
    shadow = ShadowReranker(model, sample_rate=1.0)
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        started = time.perf_counter()
        served = shadow("q", CANDIDATES)
        elapsed = time.perf_counter() - started
    assert served is CANDIDATES
    assert served == ["a", "ccc", "bb"]
    assert elapsed < 0.1  # the 0.3 s predict runs off the request path
    assert shadow.close(timeout=5)
    assert model.calls == [[("q", "a"), ("q", "ccc"), ("q", "bb")]]
    span = otel.span("rerank _Scorer")
    attrs = span.attributes
    assert attrs[semconv.RAG_RERANK_SHADOW] is True
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "rerank"
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] is True
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == 3.0
    # scores [1, 3, 2] in the order given: one concordant pair, two discordant ones
    assert attrs[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(-1 / 3)
    assert [link.context.span_id for link in span.links] == [request.get_span_context().span_id]
    assert span.parent is None  # its own trace, off the request path
    assert span.end_time - span.start_time >= 0.3e9


def test_shadow_latency_is_marked_on_the_duration_metric(
    otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0)
    shadow("q", CANDIDATES)
    assert shadow.close(timeout=5)
    monkeypatch.setenv(MODE_ENV, "serve")
    shadow("q", CANDIDATES)
    points = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    marks = sorted(str(p.attributes.get(semconv.RAG_RERANK_SHADOW)) for p in points)
    assert marks == ["None", "True"]  # served reranks stay in the serving-latency series
    assert all(p.count == 1 for p in points)


def test_inner_instrumented_cross_encoder_makes_one_span(
    otel: Any, tiny_cross_encoder: Any
) -> None:
    shadow = ShadowReranker(tiny_cross_encoder, sample_rate=1.0)
    assert shadow("the quick fox", ["lazy dog", "python docs", "trace metric"]) is not None
    assert shadow.close(timeout=10)
    spans = [s for s in otel.spans() if s.attributes[semconv.GEN_AI_OPERATION_NAME] == "rerank"]
    assert len(spans) == 1
    assert spans[0].attributes[semconv.RAG_RERANK_SHADOW] is True
    assert spans[0].attributes[semconv.GEN_AI_PROVIDER_NAME] == "sentence_transformers"


def test_full_queue_drops_and_counts_without_blocking(otel: Any) -> None:
    gate = threading.Event()
    model = _Scorer(gate=gate)
    shadow = ShadowReranker(model, sample_rate=1.0, max_queue=2)
    shadow("q0", CANDIDATES)  # taken by the worker, which waits on the gate
    _wait_for(lambda: shadow.pending == 0)
    started = time.perf_counter()
    for i in range(1, 6):  # two fit in the queue, three are dropped
        assert shadow(f"q{i}", CANDIDATES) is CANDIDATES
    assert time.perf_counter() - started < 1.0  # never waited for the gate
    gate.set()
    assert shadow.close(timeout=5)
    points = otel.metric_points(semconv.METRIC_SHADOW_DROPPED)
    assert sum(p.value for p in points) == 3
    assert points[0].attributes[semconv.GEN_AI_REQUEST_MODEL] == "_Scorer"
    assert [c[0][0] for c in model.calls] == ["q0", "q1", "q2"]


def test_serve_mode_reranks_synchronously_as_a_child_span(
    otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODE_ENV, "serve")
    shadow = ShadowReranker(_Scorer(), sample_rate=0.0)  # sampling applies to shadow only
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        served = shadow("q", CANDIDATES)
    assert served == ["ccc", "bb", "a"]
    assert CANDIDATES == ["a", "ccc", "bb"]  # the caller's list is not reordered in place
    span = otel.span("rerank _Scorer")
    assert span.parent.span_id == request.get_span_context().span_id
    assert span.attributes[semconv.RAG_RERANK_SHADOW] is False
    assert span.attributes[semconv.RAG_RERANK_TOP1_CHANGED] is True


def test_serve_mode_keeps_ties_in_retrieval_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "serve")
    shadow = ShadowReranker(_Scorer())
    assert shadow("q", ["xx", "b", "yy", "a"]) == ["xx", "yy", "b", "a"]


def test_off_mode_does_nothing(otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_ENV, "off")
    model = _Scorer()
    shadow = ShadowReranker(model, sample_rate=1.0)
    assert shadow("q", CANDIDATES) is CANDIDATES
    assert shadow.close(timeout=1)
    assert model.calls == []
    assert otel.spans() == []


def test_mode_is_read_per_call(otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0)
    monkeypatch.setenv(MODE_ENV, "serve")
    assert shadow("q", CANDIDATES) == ["ccc", "bb", "a"]
    monkeypatch.setenv(MODE_ENV, "off")
    assert shadow("q", CANDIDATES) is CANDIDATES
    monkeypatch.setenv(MODE_ENV, "shadow")
    assert shadow("q", CANDIDATES) is CANDIDATES
    assert shadow.close(timeout=5)
    flags = sorted(s.attributes[semconv.RAG_RERANK_SHADOW] for s in otel.spans())
    assert flags == [False, True]


def test_sample_rate_zero_never_runs(otel: Any) -> None:
    model = _Scorer()
    shadow = ShadowReranker(model, sample_rate=0.0)
    for _ in range(20):
        shadow("q", CANDIDATES)
    assert shadow.close(timeout=1)
    assert model.calls == []


def test_many_threads(otel: Any) -> None:
    results: list[ShadowResult] = []
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0, max_queue=1000, on_result=results.append)
    tracer = otel.tracer_provider.get_tracer("app")

    def worker(n: int) -> None:
        for i in range(10):
            with tracer.start_as_current_span(f"request {n}-{i}"):
                assert shadow(f"q{n}-{i}", CANDIDATES) is CANDIDATES

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shadow.close(timeout=10)
    assert len(results) == 80
    assert all(r.order == [1, 2, 0] and r.top1_changed for r in results)
    requests = {s.context.span_id: s.name for s in otel.spans() if s.name.startswith("request")}
    shadows = [s for s in otel.spans() if s.name.startswith("rerank")]
    assert len(shadows) == 80
    linked = {requests[s.links[0].context.span_id] for s in shadows}
    assert len(linked) == 80  # each run links to its own request


async def test_asyncio_callers(otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = ShadowReranker(_Scorer(delay=0.05), sample_rate=1.0, max_queue=100)
    tracer = otel.tracer_provider.get_tracer("app")

    async def request(i: int) -> list[str]:
        with tracer.start_as_current_span(f"request {i}"):
            return await shadow.acall(f"q{i}", CANDIDATES)

    served = await asyncio.gather(*(request(i) for i in range(5)))
    assert all(s is CANDIDATES for s in served)
    monkeypatch.setenv(MODE_ENV, "serve")
    with tracer.start_as_current_span("served") as parent:
        assert await shadow.acall("q", CANDIDATES) == ["ccc", "bb", "a"]
    assert shadow.close(timeout=5)
    served_span = next(
        s for s in otel.spans() if s.attributes.get(semconv.RAG_RERANK_SHADOW) is False
    )
    assert served_span.parent.span_id == parent.get_span_context().span_id
    assert sum(1 for s in otel.spans() if s.attributes.get(semconv.RAG_RERANK_SHADOW)) == 5


def test_no_sdk_skips_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_telemetry, "current", lambda: None)  # as with no SDK configured
    model = _Scorer()
    shadow = ShadowReranker(model, sample_rate=1.0)
    assert shadow("q", CANDIDATES) is CANDIDATES
    assert shadow.close(timeout=1)
    assert model.calls == []


def test_on_result_runs_without_an_sdk() -> None:
    results: list[ShadowResult] = []
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0, on_result=results.append)
    shadow("q", [{"text": "a"}, {"text": "ccc"}])
    assert shadow.close(timeout=5)
    (result,) = results
    assert result.scores == [1.0, 3.0]
    assert result.order == [1, 0]
    assert result.top1_changed
    assert result.kendall_tau == pytest.approx(-1.0)
    assert result.latency_s >= 0 and result.queue_wait_s >= 0


def test_a_failing_model_is_recorded_and_the_worker_survives(otel: Any) -> None:
    class Broken:
        def __init__(self) -> None:
            self.fail = True

        def predict(self, pairs: list[Any], batch_size: int = 32) -> list[float]:
            if self.fail:
                self.fail = False
                raise RuntimeError("model down")
            return [0.0] * len(pairs)

    shadow = ShadowReranker(Broken(), sample_rate=1.0)
    shadow("q1", CANDIDATES)
    _wait_for(lambda: len(otel.spans()) == 1)
    shadow("q2", CANDIDATES)
    assert shadow.close(timeout=5)
    first, second = otel.spans()
    assert first.attributes[semconv.ERROR_TYPE] == "RuntimeError"
    assert semconv.ERROR_TYPE not in second.attributes


def test_close_is_bounded_and_abandons_queued_work(otel: Any) -> None:
    gate = threading.Event()
    model = _Scorer(gate=gate)
    shadow = ShadowReranker(model, sample_rate=1.0, max_queue=4)
    for i in range(4):
        shadow(f"q{i}", CANDIDATES)
    started = time.perf_counter()
    assert shadow.close(timeout=0.2) is False
    assert time.perf_counter() - started < 2.0
    gate.set()
    shadow("late", CANDIDATES)  # closed: ignored
    _wait_for(lambda: shadow._worker is not None and not shadow._worker.is_alive())
    assert len(model.calls) == 1  # only the run already in predict finished


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        ShadowReranker(_Scorer(), sample_rate=1.5)
    with pytest.raises(ValueError, match="max_queue"):
        ShadowReranker(_Scorer(), max_queue=0)
    with pytest.raises(ValueError, match="mode"):
        ShadowReranker(_Scorer(), mode="on")
    with pytest.raises(TypeError, match="predict"):
        ShadowReranker(object())


def test_exported_from_the_package() -> None:
    assert otel_rerank.ShadowReranker is ShadowReranker


def test_content_is_recorded_only_when_capture_is_on(otel: Any) -> None:
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0)
    shadow("secret query", CANDIDATES)
    _wait_for(lambda: len(otel.spans()) == 1)
    quiet = otel.spans()[0].attributes
    assert not any(k.startswith(("reranker.query", "reranker.input")) for k in quiet)
    assert not any(k.endswith("document.content") for k in quiet)
    # The reranked order is not content: ids (input positions) and scores, best first.
    assert [quiet[f"reranker.output_documents.{i}.document.id"] for i in range(3)] == [
        "1",
        "2",
        "0",
    ]
    assert quiet["reranker.output_documents.0.document.score"] == 3.0
    otel.instrument(capture_content=True)
    shadow("visible query", CANDIDATES)
    assert shadow.close(timeout=5)
    attrs = otel.spans()[1].attributes
    assert attrs[semconv.RERANKER_QUERY] == "visible query"
    assert attrs["reranker.input_documents.1.document.content"] == "ccc"
    assert attrs["reranker.output_documents.0.document.content"] == "ccc"
    assert attrs["reranker.output_documents.0.document.score"] == 3.0


class _Doc:
    def __init__(self, page_content: str) -> None:
        self.page_content = page_content


@pytest.mark.parametrize(
    ("candidate", "text"),
    [
        ("plain", "plain"),
        ({"text": "from text"}, "from text"),
        ({"content": "from content"}, "from content"),
        ({"page_content": "langchain-style"}, "langchain-style"),
        (_Doc("attribute"), "attribute"),
        (42, "42"),
    ],
)
def test_candidate_text(candidate: Any, text: str) -> None:
    assert _default_text(candidate) == text


@given(st.lists(st.integers(-3, 3), max_size=30))
def test_reranked_order_is_a_stable_descending_sort(scores: list[int]) -> None:
    order = reranked_order([float(s) for s in scores])
    assert sorted(order) == list(range(len(scores)))
    for a, b in itertools.pairwise(order):
        assert scores[a] > scores[b] or (scores[a] == scores[b] and a < b)


# -- hardening, round two (issue 13) --------------------------------------------------------


def test_numpy_candidates_are_shadowed_and_returned_as_given(otel: Any) -> None:
    import numpy as np

    candidates = np.array(CANDIDATES)
    with ShadowReranker(_Scorer(), sample_rate=1.0) as shadow:
        served = shadow("q", candidates)
        assert served is candidates
        assert shadow("q", np.array([], dtype=str)).size == 0  # empty: nothing to shadow
        _wait_for(lambda: len(otel.spans()) == 1)
    assert otel.span().attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3


@pytest.mark.parametrize("mode", ["shadow", "serve", "off"])
def test_a_generator_of_candidates_is_read_once_and_its_items_served(otel: Any, mode: str) -> None:
    def candidates() -> Any:
        yield from CANDIDATES

    with ShadowReranker(_Scorer(), sample_rate=1.0, mode=mode) as shadow:
        served = shadow("q", candidates())
        if mode == "off":
            assert list(served) == CANDIDATES  # untouched: still a fresh generator
        elif mode == "shadow":
            assert served == CANDIDATES  # what the request would have read itself
            _wait_for(lambda: len(otel.spans()) == 1)
            assert otel.span().attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
        else:
            assert served == ["ccc", "bb", "a"]


def test_close_never_blocks_on_a_full_queue_behind_a_stuck_model(otel: Any) -> None:
    gate = threading.Event()  # never set while close() runs: the model is stuck
    shadow = ShadowReranker(_Scorer(gate=gate), sample_rate=1.0, max_queue=2)
    for _ in range(5):
        shadow("q", CANDIDATES)
    _wait_for(lambda: shadow.pending == 2)  # one run stuck in predict, the queue full
    started = time.monotonic()
    assert shadow.close(timeout=0.5) is False
    assert time.monotonic() - started < 1.0  # was timeout (put) + timeout (join)
    gate.set()


def test_close_with_a_full_queue_still_runs_what_fits_in_the_time(otel: Any) -> None:
    shadow = ShadowReranker(_Scorer(delay=0.01), sample_rate=1.0, max_queue=4)
    for _ in range(6):
        shadow("q", CANDIDATES)
    assert shadow.close(timeout=5.0) is True  # the stop marker did not fit: ends when empty
    assert len(otel.spans()) >= 4


def test_dropped_rerankers_release_their_threads_and_models(otel: Any) -> None:
    import gc
    import weakref

    models: list[weakref.ref[Any]] = []
    before = {t.ident for t in threading.enumerate()}
    for _ in range(20):
        model = _Scorer()
        models.append(weakref.ref(model))
        shadow = ShadowReranker(model, sample_rate=1.0)
        shadow("q", CANDIDATES)  # starts its worker
        queued = shadow._queue
        _wait_for(queued.empty)
        del model, shadow, queued  # dropped without close()
    gc.collect()
    _wait_for(lambda: all(ref() is None for ref in models))
    _wait_for(
        lambda: (
            not [
                t
                for t in threading.enumerate()
                if t.name == "otel-rerank-shadow" and t.ident not in before
            ]
        )
    )


def test_a_long_shadow_run_stops_between_batches_once_abandoned(otel: Any) -> None:
    model = _Scorer(delay=0.05)
    shadow = ShadowReranker(model, sample_rate=1.0, batch_size=2)
    shadow("q", ["x"] * 40)  # 20 batches, one second of work
    _wait_for(lambda: len(model.calls) >= 1)
    started = time.monotonic()
    shadow.close(timeout=0.2)
    _wait_for(lambda: not shadow._worker.is_alive())  # type: ignore[union-attr]
    assert time.monotonic() - started < 0.5
    assert len(model.calls) < 20
    assert all(len(pairs) <= 2 for pairs in model.calls)


def _boom(*args: Any) -> None:
    raise KeyError("a bug of ours")


def test_our_own_error_in_the_worker_is_not_swallowed_under_strict_mode(
    otel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    monkeypatch.setattr(ShadowReranker, "_record", staticmethod(_boom))
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0)
    shadow("q", CANDIDATES)
    _wait_for(lambda: bool(seen))
    shadow.close(timeout=5)
    assert isinstance(seen[0], KeyError)


def test_our_own_error_in_the_worker_is_logged_through_the_one_logger_in_production(
    otel: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_rerank import _safe

    monkeypatch.setattr(_safe, "STRICT", False)
    monkeypatch.setattr(ShadowReranker, "_record", staticmethod(_boom))
    shadow = ShadowReranker(_Scorer(), sample_rate=1.0)
    with caplog.at_level("DEBUG", logger="otel_rerank"):
        shadow("q1", CANDIDATES)
        shadow("q2", CANDIDATES)
        assert shadow.close(timeout=5)  # the worker survived both
    internal = [r for r in caplog.records if "internal error in shadow worker" in r.getMessage()]
    assert len(internal) == 2
    assert all(r.name == "otel_rerank" for r in internal)


def test_a_failing_on_result_is_the_users_and_the_worker_survives(otel: Any) -> None:
    calls: list[str] = []

    def on_result(result: Any) -> None:
        calls.append(result.query)
        raise RuntimeError("the user's callback")

    shadow = ShadowReranker(_Scorer(), sample_rate=1.0, on_result=on_result)
    shadow("q1", CANDIDATES)
    shadow("q2", CANDIDATES)
    assert shadow.close(timeout=5)
    assert calls == ["q1", "q2"]


def test_a_cross_encoders_spans_name_the_model_as_the_instrumentation_does(
    tiny_cross_encoder: Any,
) -> None:
    from otel_rerank.instrumentation.sentence_transformers import _attributes

    shadow = ShadowReranker(tiny_cross_encoder, sample_rate=1.0)
    try:
        assert shadow.model == _attributes.model_name(tiny_cross_encoder) == "tiny-cross-encoder"
    finally:
        shadow.close(timeout=1)


def test_a_model_whose_attributes_raise_is_named_by_its_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_rerank import _safe

    class Hostile(_Scorer):
        @property
        def config(self) -> Any:
            raise RuntimeError("a proxy that cannot answer")

    monkeypatch.setattr(_safe, "STRICT", False)  # production: logged, never raised
    shadow = ShadowReranker(Hostile())
    try:
        assert shadow.model == "Hostile"
    finally:
        shadow.close(timeout=1)
