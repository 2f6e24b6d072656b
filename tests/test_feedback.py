"""otel_rerank.feedback and the document ids rerank spans record so feedback can be joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

import otel_rerank
from otel_rerank import report
from otel_rerank._file_exporter import spans_to_otlp_json

from .conftest import Otel, make_otel


class ReverseScorer:
    """A cross-encoder stand-in that prefers later candidates (reverses retrieval's order)."""

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
        return [float(i) for i in range(len(pairs))]


def records(spans: Sequence[ReadableSpan]) -> list[report.SpanRecord]:
    """Spans as the report reads them back from an OTLP-JSON export."""
    return report.parse_otlp_json(spans_to_otlp_json(spans))


def _request_span() -> Any:
    with otel_rerank.request(name="ask") as state:
        assert state is not None and state.span is not None
        return state.span


def test_feedback_is_a_linked_span_of_its_own_with_ids_only(otel: Otel) -> None:
    request = _request_span()
    assert otel_rerank.feedback(request, "doc-7", position=2, kind="Thumbs_Up") is True
    span = otel.span("feedback thumbs_up")
    context = request.get_span_context()
    assert span.parent is None
    assert span.context.trace_id != context.trace_id  # its own trace: the request's ended
    assert [link.context for link in span.links] == [context]
    assert dict(span.attributes or {}) == {
        "rag.feedback.trace_id": format(context.trace_id, "032x"),
        "rag.feedback.document.id": "doc-7",
        "rag.feedback.position": 2,
        "rag.feedback.kind": "thumbs_up",
        "rag.feedback.useful": True,
    }


@pytest.mark.parametrize("form", ["span", "context", "traceparent", "hex", "int"])
def test_every_form_of_request_reference_joins_on_the_trace_id(otel: Otel, form: str) -> None:
    request = _request_span()
    context = request.get_span_context()
    trace_hex = format(context.trace_id, "032x")
    reference = {
        "span": request,
        "context": context,
        "traceparent": f"00-{trace_hex}-{format(context.span_id, '016x')}-01",
        "hex": trace_hex.upper(),
        "int": context.trace_id,
    }[form]
    assert otel_rerank.feedback(reference, 42, kind="cite")
    span = otel.span("feedback cite")
    assert (span.attributes or {})["rag.feedback.trace_id"] == trace_hex
    assert (span.attributes or {})["rag.feedback.document.id"] == "42"
    linked = [link.context.span_id for link in span.links]
    assert linked == ([] if form in ("hex", "int") else [context.span_id])


def test_negative_kinds_and_explicit_useful(otel: Otel) -> None:
    request = _request_span()
    otel_rerank.feedback(request, "a", kind="thumbs_down")
    otel_rerank.feedback(request, "b", kind="click", useful=False)
    otel_rerank.feedback(request, "c", kind="thumbs_down", useful=True)
    useful = {
        (s.attributes or {})["rag.feedback.document.id"]: (s.attributes or {})[
            "rag.feedback.useful"
        ]
        for s in otel.spans()
        if s.name.startswith("feedback")
    }
    assert useful == {"a": False, "b": False, "c": True}


def test_feedback_spans_are_not_requests_in_the_report(otel: Otel) -> None:
    request = _request_span()
    for i in range(3):
        otel_rerank.feedback(request, f"d{i}", position=i)
    table = report.stage_table(records(otel.spans()))
    assert table.requests == 1


def test_no_sdk_records_nothing() -> None:
    assert otel_rerank.feedback("0" * 31 + "1", "doc") is False


@pytest.mark.parametrize(
    ("reference", "document"),
    [
        ("not a trace id", "d"),
        ("0" * 32, "d"),
        (0, "d"),
        (True, "d"),
        (trace.INVALID_SPAN_CONTEXT, "d"),
        ("ab" * 16, None),
        ("ab" * 16, ["a", "list"]),
        ("ab" * 16, float("nan")),
        ("ab" * 16, ""),
    ],
)
def test_unusable_arguments_record_nothing(otel: Otel, reference: Any, document: Any) -> None:
    assert otel_rerank.feedback(reference, document) is False
    assert otel.spans() == []


@settings(max_examples=150, deadline=None)
@given(
    reference=st.one_of(
        st.text(max_size=60), st.integers(), st.none(), st.binary(max_size=20), st.floats()
    ),
    document=st.one_of(st.text(max_size=300), st.integers(), st.none(), st.floats()),
    position=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3)),
    kind=st.one_of(st.text(max_size=80), st.none(), st.integers()),
    useful=st.one_of(st.none(), st.booleans(), st.integers()),
)
def test_feedback_never_raises(
    reference: Any, document: Any, position: Any, kind: Any, useful: Any
) -> None:
    sdk = make_otel()
    sdk.instrument()
    try:
        recorded = otel_rerank.feedback(
            reference, document, position=position, kind=kind, useful=useful
        )
        assert recorded is (len(sdk.spans()) == 1)
    finally:
        otel_rerank.uninstrument()
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


def test_hostile_inputs_with_an_sdk_stay_bounded(otel: Otel) -> None:
    request = _request_span()
    assert otel_rerank.feedback(request, "x" * 10_000, position=-1, kind="é" * 100 + "!!")
    span = otel.spans()[-1]
    attributes = span.attributes or {}
    assert len(str(attributes["rag.feedback.document.id"])) == 256
    assert "rag.feedback.position" not in attributes
    assert len(str(attributes["rag.feedback.kind"])) <= 32


# -- ids on rerank spans ------------------------------------------------------------------
@dataclass
class Doc:
    id: int
    text: str


def test_shadow_runs_record_served_and_reranked_ids(otel: Otel) -> None:
    shadow = otel_rerank.ShadowReranker(ReverseScorer(), sample_rate=1.0, model="rev")
    with otel_rerank.request(name="ask"):
        shadow("q", [{"id": f"d{i}", "text": f"t{i}"} for i in range(4)])
    assert shadow.close(timeout=10)
    attributes = otel.span("rerank rev").attributes or {}
    assert list(attributes["rag.rerank.served.ids"]) == ["d0", "d1", "d2", "d3"]
    assert list(attributes["rag.rerank.reranked.ids"]) == ["d3", "d2", "d1", "d0"]
    assert attributes["rag.rerank.served.order"] == "retrieval"
    assert "rag.rerank.retrieval.ids" not in attributes


@pytest.mark.parametrize(
    ("candidates", "ids", "expected"),
    [
        ([Doc(1, "a"), Doc(2, "b")], None, ["2", "1"]),
        (["a", "b"], ["x", "y"], ["y", "x"]),
        (["a", "b"], None, None),  # plain strings have no id
        ([{"id": "p"}, {"text": "no id"}], None, None),  # every candidate needs one
        (["a", "b"], ["only one"], None),  # one id per candidate
    ],
)
def test_ids_come_from_the_argument_or_the_candidates(
    otel: Otel, candidates: list[Any], ids: Any, expected: list[str] | None
) -> None:
    serve = otel_rerank.ShadowReranker(ReverseScorer(), mode="serve", model="rev", text=str)
    served = serve("q", candidates, ids=ids)
    assert served == candidates[::-1]
    attributes = otel.span("rerank rev").attributes or {}
    if expected is None:
        assert "rag.rerank.reranked.ids" not in attributes
    else:
        assert list(attributes["rag.rerank.served.ids"]) == expected
        assert list(attributes["rag.rerank.reranked.ids"]) == expected
        assert list(attributes["rag.rerank.retrieval.ids"]) == expected[::-1]
        assert attributes["rag.rerank.served.order"] == "reranked"


def test_recorded_ids_are_capped(otel: Otel) -> None:
    serve = otel_rerank.ShadowReranker(ReverseScorer(), mode="serve", model="rev")
    serve("q", [f"t{i}" for i in range(120)], ids=range(120))
    attributes = otel.span("rerank rev").attributes or {}
    assert len(attributes["rag.rerank.reranked.ids"]) == 50
    assert list(attributes["rag.rerank.reranked.ids"])[:2] == ["119", "118"]


def test_feedback_joins_a_shadow_run_through_its_link(otel: Otel) -> None:
    shadow = otel_rerank.ShadowReranker(ReverseScorer(), sample_rate=1.0, model="rev")
    with otel_rerank.request(name="ask") as state:
        served = shadow("q", [{"id": f"d{i}", "text": f"t{i}"} for i in range(6)])
    assert shadow.close(timeout=10)
    assert state is not None and state.span is not None
    otel_rerank.feedback(state.span, served[5]["id"], position=5)
    joined, feedback, unjoined = report.join_feedback(records(otel.spans()))
    assert (feedback, unjoined) == (1, 0)
    [request] = joined
    assert request.useful == frozenset({"d5"})
    assert request.retrieval[0] == "d0" and request.reranked[0] == "d5"
    assert request.trace_id == format(state.span.get_span_context().trace_id, "032x")
