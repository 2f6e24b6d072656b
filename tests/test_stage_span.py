"""The stage span itself: one write per call, exactly-once end, the stand-in, suppression.

What the library tests cannot show from the outside: how many times the SDK span is
written to, that ``end`` from several threads records once, that a sampled-out span runs
no extraction, content writer or rerank maths, and that the no-SDK stand-in is one
stateless ``StageSpan`` shared by threads and tasks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import otel_rerank
from otel_rerank import _metrics, _rerank, _safe, _span
from otel_rerank._span import StageSpan
from tests.conftest import Otel, make_otel


def _begin(**kwargs: Any) -> StageSpan:
    call = _span.begin(_span.RERANK, provider="custom", model="m", **kwargs)
    assert call is not None
    return call


def test_a_call_writes_its_attributes_to_the_sdk_span_once(otel: Otel) -> None:
    call = _begin()
    writes: list[str] = []
    span: Any = call.span
    set_attributes, set_attribute = span.set_attributes, span.set_attribute
    with (
        mock.patch.object(
            span, "set_attributes", lambda a: (writes.append("many"), set_attributes(a))
        ),
        mock.patch.object(
            span, "set_attribute", lambda k, v: (writes.append(k), set_attribute(k, v))
        ),
        call,
    ):
        call.record_candidates(3)
        call.extract(lambda: [("rag.batch_size", 8), ("skipped", None)])
        call.set("rag.custom", 1)
        call.record_scores([0.1, 0.9, 0.5])
        call.record_ranked([(1, 0.9), (2, 0.5), (0, 0.1)])
    assert writes == ["many"]
    attributes = otel.span().attributes or {}
    assert attributes["gen_ai.rerank.candidate.count"] == 3
    assert attributes["rag.batch_size"] == 8
    assert "skipped" not in attributes
    assert attributes["rag.rerank.top1_changed"] is True
    assert attributes["reranker.output_documents.0.document.id"] == "1"


def test_the_latest_ranking_is_written_whole(otel: Otel) -> None:
    with _begin() as call:
        call.record_scores([0.1, 0.9, 0.5, 0.3])
        call.record_ranked([(1, 0.9), (2, 0.5)])  # an API's top_n=2 list replaces it
    attributes = otel.span().attributes or {}
    ids = sorted(k for k in attributes if k.endswith(".document.id"))
    assert ids == [
        "reranker.output_documents.0.document.id",
        "reranker.output_documents.1.document.id",
    ]


def test_the_latest_scores_replace_a_ranking_written_whole(otel: Otel) -> None:
    with _begin() as call:
        call.record_scores([0.1, 0.9, 0.5, 0.3])
        call.record_scores([0.2, 0.8], top_n=1)  # written over the first, whole
        call.record_scores("not scores")  # not a ranking: the last one stays
    with _begin() as call:
        call.record_ranked([(1, 0.9), (2, 0.5), (0, 0.1)])
        call.record_scores([0.7, 0.1])  # the scores' ranking replaces the pairs'
    replaced, after_pairs = (dict(span.attributes or {}) for span in otel.spans())
    assert sorted(k for k in replaced if k.startswith("reranker.output_documents")) == [
        "reranker.output_documents.0.document.id",
        "reranker.output_documents.0.document.score",
    ]
    assert replaced["reranker.output_documents.0.document.id"] == "1"
    assert replaced["rag.rerank.top_score"] == 0.8
    assert sorted(k for k in after_pairs if k.endswith(".document.id")) == [
        "reranker.output_documents.0.document.id",
        "reranker.output_documents.1.document.id",
    ]
    assert after_pairs["reranker.output_documents.0.document.id"] == "0"


def test_a_ranking_as_columns_writes_what_its_pairs_write(otel: Otel) -> None:
    with _begin() as call:
        call.record_ranked([(1, 0.9), (2, 0.5), (0, float("nan"))])
    with _begin() as call:
        call.record_ranked_columns([1, 2, 0], [0.9, 0.5, float("nan")])
    by_pairs, by_columns = (dict(span.attributes or {}) for span in otel.spans())
    assert by_pairs == by_columns
    assert by_columns["reranker.output_documents.2.document.id"] == "0"
    assert "reranker.output_documents.2.document.score" not in by_columns  # not finite


def test_scores_are_read_from_a_models_array_as_from_a_list(otel: Otel) -> None:
    import numpy as np
    import torch

    given = [0.1, 0.9, 0.5, 0.5]
    for scores in (given, np.asarray(given, dtype=np.float32), torch.tensor([given]).T):
        with _begin() as call:
            call.record_scores(scores)
    from_list, *from_arrays = (dict(span.attributes or {}) for span in otel.spans())
    assert from_list["rag.rerank.kendall_tau"] == pytest.approx(-0.18257418583505536)
    for found in from_arrays:
        assert found.keys() == from_list.keys()
        for key, value in from_list.items():  # float32 scores: to their precision
            assert found[key] == (pytest.approx(value, rel=1e-6) if type(value) is float else value)


def test_output_documents_get_their_text_whichever_comes_first() -> None:
    sdk = make_otel()
    sdk.instrument(capture_content=True)
    try:
        with _begin() as call:
            call.record_ranked([(1, 0.9), (0, 0.1)])
            call.record_documents("reranker.input_documents", ["a", "b"])
        attributes = sdk.span().attributes or {}
        assert attributes["reranker.output_documents.0.document.content"] == "b"
        assert attributes["reranker.output_documents.1.document.content"] == "a"
        assert attributes["reranker.input_documents.1.document.id"] == "1"
    finally:
        otel_rerank.uninstrument()


def test_end_from_many_threads_records_once(otel: Otel) -> None:
    call = _begin()
    barrier = threading.Barrier(8)

    def end() -> None:
        barrier.wait()
        call.end()

    threads = [threading.Thread(target=end) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(otel.spans()) == 1
    (point,) = otel.metric_points("gen_ai.client.operation.duration")
    assert point.count == 1


def test_an_ended_span_records_nothing_more(otel: Otel, caplog: pytest.LogCaptureFixture) -> None:
    call = _begin()
    call.end()
    assert call.recording is False
    call.set("late", 1)
    call.record_candidates(5)  # the metric still counts: it belongs to the call
    call.end()
    assert "late" not in (otel.span().attributes or {})
    assert otel.metric_points("rag.rerank.candidates")[0].count == 1
    assert "ended span" not in caplog.text


def test_the_candidates_of_a_failed_call_are_recorded_as_it_ends(otel: Otel) -> None:
    # Given before the call, recorded beside its duration, in the span's context.
    call = _begin()
    call.record_candidates(4)
    assert otel.metric_points("rag.rerank.candidates") == []  # in flight: not yet
    with pytest.raises(ValueError), call:
        raise ValueError("the model failed")
    span = otel.span().context
    # One collection hands the exemplars: read them first.
    assert otel.exemplar_ids()["rag.rerank.candidates"] == [(span.trace_id, span.span_id)]
    (point,) = otel.metric_points("rag.rerank.candidates")
    assert (point.count, point.sum) == (1, 4)
    assert "error.type" not in (point.attributes or {})  # a count, not an outcome


def test_a_failing_candidates_point_still_records_the_duration(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The two points a call records as it ends come from one function: the first failing
    # must not cost the second (nor reach the call).
    call = _begin()
    call.record_candidates(4)
    histogram = call._telemetry.candidates  # type: ignore[union-attr]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a histogram of ours broke")

    monkeypatch.setattr(_safe, "STRICT", False)  # logged, as in an app
    with mock.patch.object(histogram, "record", broken), call:
        pass
    assert otel.metric_points("rag.rerank.candidates") == []
    (point,) = otel.metric_points("gen_ai.client.operation.duration")
    assert point.count == 1


def test_a_key_that_is_not_a_string_is_dropped_not_raised(otel: Otel) -> None:
    with otel_rerank.rerank(model="m") as call:
        call.set_attribute(["not", "hashable"], 1)  # type: ignore[arg-type]
        call.set_attribute(3, 1)  # type: ignore[arg-type]
        call.set_attribute("kept", 1)
    attributes = otel.span().attributes or {}
    assert attributes["kept"] == 1
    assert 3 not in attributes  # type: ignore[comparison-overlap]


@pytest.fixture
def unsampled_parent() -> Iterator[None]:
    """A current parent whose trace is not sampled: the default parent-based sampler drops
    every child span."""
    parent = NonRecordingSpan(
        SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(0))
    )
    token = context.attach(trace.set_span_in_context(parent))
    try:
        yield
    finally:
        context.detach(token)


@pytest.mark.usefixtures("unsampled_parent")
def test_a_sampled_out_span_extracts_nothing(otel: Otel) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ran for a sampled-out span")

    with mock.patch.object(_rerank, "summary", must_not_run), _begin() as call:
        assert call.recording is False
        call.extract(must_not_run)
        call.record_content(must_not_run)
        call.record_scores([0.1, 0.9])
        call.record_ranked([(1, 0.9)])
        call.record_documents("reranker.input_documents", ["a"])
        call.record_candidates(2)
    assert otel.spans() == []
    # Metrics do not depend on sampling.
    assert len(otel.metric_points("gen_ai.client.operation.duration")) == 1
    assert len(otel.metric_points("rag.rerank.candidates")) == 1


@pytest.mark.usefixtures("otel")
def test_suppression_by_the_instrumentation_package_and_the_legacy_key() -> None:
    with suppress_instrumentation():
        assert _span.begin(_span.RERANK, provider="custom") is None
    # The plain-string key some older instrumentations still set.
    token = context.attach(context.set_value("suppress_instrumentation", True))
    try:
        assert _span.begin(_span.RERANK, provider="custom") is None
    finally:
        context.detach(token)
    call = _span.begin(_span.RERANK, provider="custom")
    assert call is not None
    call.end()


def _use_every_method(call: StageSpan) -> None:
    call.set("k", 1)
    call.extract(lambda: [("k", 1)])
    call.record_candidates(2)
    call.record_scores([0.2, 0.1])
    call.record_ranked([(0, 0.2)])
    call.record_tokens(1, 2)
    call.record_response_model("m")
    call.record_time_to_first_chunk(0.1)
    call.record_text("k", "t")
    call.record_documents("p", ["d"])
    call.record_retrieved(["d"], [0.5], ["i"])
    call.end()


def test_the_no_sdk_stand_in_is_shared_by_threads_and_tasks() -> None:
    scope = otel_rerank.rerank(model="shared")
    seen: list[StageSpan] = []
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            for _ in range(50):
                with scope as call:
                    _use_every_method(call)
                    seen.append(call)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    async def in_task() -> None:
        async with scope as call:
            await asyncio.sleep(0)
            _use_every_method(call)
            seen.append(call)

    async def tasks() -> None:
        await asyncio.gather(*(in_task() for _ in range(20)))

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert {id(call) for call in seen} == {id(_span.NON_RECORDING)}
    stand_in = _span.NON_RECORDING
    assert stand_in.recording is False and stand_in.capturing is False
    assert stand_in._pending == {} and stand_in._ranking is None  # still nothing kept


def test_metric_attribute_sets_are_built_once_and_bounded() -> None:
    base = _metrics.MetricAttributes({"gen_ai.operation.name": "rerank"})
    first = base.plus("gen_ai.response.model", "m")
    assert base.plus("gen_ai.response.model", "m") is first
    assert first.values == {"gen_ai.operation.name": "rerank", "gen_ai.response.model": "m"}
    assert base.values == {"gen_ai.operation.name": "rerank"}  # never written to
    for i in range(3 * _metrics._MAX_VARIANTS):
        base.plus("gen_ai.response.model", f"m{i}")
    assert len(base._variants) <= _metrics._MAX_VARIANTS
    unhashable = base.plus("server.address", ["a", "b"])  # type: ignore[arg-type]
    assert unhashable.values["server.address"] == ["a", "b"]


@pytest.mark.parametrize(
    "keys",
    [(), ("suppress_instrumentation",), (context._SUPPRESS_INSTRUMENTATION_KEY,), "both"],
)
def test_the_wrappers_check_agrees_with_the_instrumentation_package(otel: Otel, keys: Any) -> None:
    # records() answers the suppression check and hands back the span's parent: it must
    # say what is_instrumentation_enabled() says, for each key.
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    if keys == "both":
        with suppress_instrumentation():
            assert _span.records() is None
            assert not is_instrumentation_enabled()
        return
    ctx = context.get_current()
    for key in keys:
        ctx = context.set_value(key, True, ctx)
    token = context.attach(ctx)
    try:
        found = _span.records()
        assert (found is None) == (not is_instrumentation_enabled())
        assert (found is None) == bool(keys)
        if found is not None:
            assert found[1] is context.get_current()
    finally:
        context.detach(token)


def test_a_span_started_in_a_given_parent_context_is_current_on_top_of_it(otel: Otel) -> None:
    with trace.get_tracer("t", tracer_provider=otel.tracer_provider).start_as_current_span("p"):
        found = _span.records()
        assert found is not None
        telemetry, parent = found
        call = StageSpan(telemetry, _span.opening(_span.RETRIEVAL, "custom"), None, parent)
        with call:
            assert trace.get_current_span() is call.span
    outer, inner = sorted(otel.spans(), key=lambda s: s.start_time or 0)
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id


def test_read_pairs_adds_every_pair_with_a_value_or_none_of_a_failing_extractor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    into: dict[str, Any] = {"kept": 1}
    _span.read_pairs(into, lambda: (("a", 1), ("b", None), ("c", "x")))
    assert into == {"kept": 1, "a": 1, "c": "x"}  # None skipped, the rest added
    _span.read_pairs(into, lambda n: (("d", n),), 2)
    assert into["d"] == 2
    # Only None is absent: falsy values are values, and the order of the rest is kept.
    falsy = (("f", 0), ("g", None), ("h", ""), ("i", False), ("j", 0.0), ("k", None))
    _span.read_pairs(into, lambda: falsy)
    assert list(into.items())[-4:] == [("f", 0), ("h", ""), ("i", False), ("j", 0.0)]

    def failing() -> Iterator[tuple[str, Any]]:
        yield "e", 3
        raise RuntimeError("ours")

    monkeypatch.setattr(_safe, "STRICT", False)  # production behaviour: log and carry on
    _span.read_pairs(into, failing)
    assert "e" not in into  # a failing extractor adds none of its pairs
