"""Exemplars: every metric point of a call points at the call's own span.

The SDK keeps an exemplar for a measurement recorded while a sampled span is current (its
default, trace-based filter). A point recorded after the call's span was left (the
duration) or before it was entered (the candidate count) would otherwise point at the
parent span, or at nothing for a root call: a p95 panel's exemplar would not lead to the
slow rerank. Each point is recorded with the call's span current, so it does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otel_rerank
from otel_rerank import semconv

from .conftest import Otel, make_otel

PAIRS = [("which?", "a"), ("which?", "b"), ("which?", "c")]
DURATION, CANDIDATES = semconv.METRIC_OPERATION_DURATION, semconv.METRIC_RERANK_CANDIDATES


def _ids(span: Any) -> tuple[int, int]:
    return span.context.trace_id, span.context.span_id


def _rerank_span(otel: Otel) -> Any:
    (span,) = [s for s in otel.spans() if s.name.startswith("rerank ")]
    return span


@pytest.mark.parametrize("parent", [True, False], ids=["child", "root"])
def test_cross_encoder_points_point_at_the_rerank_span(
    otel: Otel, tiny_cross_encoder: Any, parent: bool
) -> None:
    if parent:
        with otel.tracer_provider.get_tracer("app").start_as_current_span("request"):
            tiny_cross_encoder.predict(PAIRS)
    else:
        tiny_cross_encoder.predict(PAIRS)
    rerank = _ids(_rerank_span(otel))
    assert otel.exemplar_ids() == {DURATION: [rerank], CANDIDATES: [rerank]}


def test_a_decorated_rerank_points_at_its_span(otel: Otel) -> None:
    @otel_rerank.rerank(model="bge")
    def my_rerank(query: str, documents: list[str]) -> list[float]:
        return [0.1, 0.9, 0.5]

    with otel.tracer_provider.get_tracer("app").start_as_current_span("request"):
        my_rerank("which?", ["a", "b", "c"])
    rerank = _ids(otel.span("rerank bge"))
    assert otel.exemplar_ids() == {DURATION: [rerank], CANDIDATES: [rerank]}


def test_a_leaf_span_made_at_its_end_is_the_one_pointed_at(otel: Otel) -> None:
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype=np.float32))
    with otel.tracer_provider.get_tracer("app").start_as_current_span("request"):
        index.search(np.ones((1, 4), dtype=np.float32), 2)
    (retrieval,) = [s for s in otel.spans() if s.name != "request"]
    assert otel.exemplar_ids() == {DURATION: [_ids(retrieval)]}


def test_a_sampled_out_call_has_points_without_exemplars(tiny_cross_encoder: Any) -> None:
    sdk = make_otel(sampler=ALWAYS_OFF)
    sdk.instrument(capture_content=False)
    try:
        tiny_cross_encoder.predict(PAIRS)
        assert sdk.exemplar_ids() == {DURATION: [], CANDIDATES: []}
    finally:
        otel_rerank.uninstrument()
