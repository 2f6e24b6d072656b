"""Per-call cost of the stage span alone (``_span.StageSpan``), against a hand-written floor.

``library_overhead.py`` measures whole library calls, where the span's share is a few
microseconds among a call's hundreds and the wrappers' extraction; on a shared machine its
rows often cannot resolve it. This script measures the span layer by itself: each case is a
wrapper's sequence of ``StageSpan`` calls with the extractors' pairs precomputed, so only
the span's own work is timed:

* ``faiss``   start attributes, two ``extract`` passes (10 attributes in all);
* ``cohere``  server attributes, ``record_candidates``, three ``extract`` passes and
              ``record_ranked`` of 10 results (34 attributes, two histogram records);
* ``predict`` ``record_candidates`` and ``record_scores`` of 50 scores (top score, top-1
              change, Kendall's tau-b and the reranked list: 30 attributes);
* ``wrapper`` the generic library wrapper (``instrumentation._base.Method``) around a
              method that does nothing, declared like faiss's ``search``: a per-instance
              start, request and response extractors, a content writer, one span per
              group (10 attributes). What every instrumented library call pays on top of
              its extractors: the checks, the span, argument binding, the one write.

Its floor is ``tracer.start_as_current_span`` with the attributes that case's span ended
with, all given at start, and the same histogram records, made while it is current as
ours are: the least any instrumentation
recording that much costs. ``A/A`` is the floor timed again as another case (noise). Per
block each case's 10th-percentile call (process CPU time, ``_timing.py``), cases
alternating every 50 calls; every number is the median over blocks. Run::

    .venv/bin/python benchmarks/span_overhead.py [--blocks 30]

and, for another checkout's code, with its ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from _timing import quantile_us, time_calls  # benchmarks/ is on sys.path as a script
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_rerank
from otel_rerank import _span, semconv
from otel_rerank._span import Attributes, StageSpan
from otel_rerank.instrumentation._base import Method, Start
from otel_rerank.instrumentation._common import InstanceCache


class _NullExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


_FAISS_START = {
    semconv.GEN_AI_DATA_SOURCE_ID: "IndexFlatIP",
    semconv.DB_SYSTEM_NAME: "faiss",
    semconv.RAG_RETRIEVAL_SCORE_KIND: "similarity",
}
_FAISS_REQUEST = [("gen_ai.retrieval.top_k", 10), ("rag.query.count", 1), ("unset", None)]
_FAISS_RESPONSE = [("rag.retrieval.returned_count", 10), ("rag.retrieval.top_score", 0.9)]
_COHERE_SERVER = {"server.address": "api.cohere.com", "server.port": 443}
_COHERE_REQUEST = [("gen_ai.rerank.top_n", 10), ("rag.batch_size", None), ("rag.extra", "y")]
_COHERE_RESPONSE = [("gen_ai.response.id", "rerank-bench"), ("rag.search_units", 1)]
_COHERE_PARTIAL = [("rag.rerank.top_score", 1.0), ("rag.rerank.top1_changed", False)]
_RANKED = [(i, 1.0 - i / 50) for i in range(10)]
_SCORES = [float((i * 7919) % 50) / 50 for i in range(50)]


def _faiss() -> None:
    call = _span.begin(
        _span.RETRIEVAL, provider="faiss", detail="IndexFlatIP", attributes=dict(_FAISS_START)
    )
    assert call is not None
    with call:
        call.extract(lambda: _FAISS_REQUEST)
        call.extract(lambda: _FAISS_RESPONSE)


def _cohere() -> None:
    call = _span.begin(
        _span.RERANK, provider="cohere", model="rerank-v3.5", attributes=dict(_COHERE_SERVER)
    )
    assert call is not None
    with call:
        call.record_candidates(50)
        call.extract(lambda: _COHERE_REQUEST)
        call.extract(lambda: _COHERE_RESPONSE)
        call.extract(lambda: _COHERE_PARTIAL)
        call.record_ranked(_RANKED)


def _predict() -> None:
    call = _span.begin(_span.RERANK, provider="sentence_transformers", model="tiny")
    assert call is not None
    with call:
        call.record_candidates(50)
        call.extract(lambda: [("rag.batch_size", 32)])
        call.record_scores(_SCORES)


class _Index:
    """A made-up library class; its ``search`` does nothing, so only the wrapper is timed."""

    def search(self, x: Any, k: int, *, params: Any = None) -> Any:
        return x


_index_starts = InstanceCache(lambda index: Start(detail="IndexFlatIP", attributes=_FAISS_START))


def _index_request(index: Any, arguments: Mapping[str, Any]) -> Attributes:
    yield semconv.GEN_AI_RETRIEVAL_TOP_K, arguments.get("k")
    yield from _FAISS_REQUEST[1:]


def _index_response(result: Any) -> Attributes:
    return _FAISS_RESPONSE


def _index_hits(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    call.record_retrieved(None, [0.9], ["1"])  # capture is off: never runs


_SEARCH = Method(
    stage=_span.RETRIEVAL,
    provider="faiss",
    start=lambda index, arguments: _index_starts.of(index),
    request=_index_request,
    response=_index_response,
    content_out=_index_hits,
    one_span="span_overhead",
)
_Index.search = wrapt.FunctionWrapper(_Index.__dict__["search"], _SEARCH.wrapper)  # type: ignore[method-assign]
_INDEX = _Index()


def _wrapper() -> None:
    _INDEX.search(None, 10)


CASES: dict[str, tuple[Callable[[], None], int | None]] = {
    "faiss": (_faiss, None),
    "cohere": (_cohere, 50),
    "predict": (_predict, 50),
    "wrapper": (_wrapper, None),
}


def _floor(
    span: ReadableSpan, candidates: int | None, tracer: Any, duration: Any, counted: Any
) -> Callable[[], None]:
    """The hand-written span with ``span``'s final attributes at start, and the same records."""
    name, kind, attributes = span.name, span.kind, dict(span.attributes or {})
    keys = (semconv.GEN_AI_OPERATION_NAME, semconv.GEN_AI_PROVIDER_NAME)
    metric = {k: attributes[k] for k in keys}
    perf_counter = time.perf_counter

    def floor() -> None:
        start = perf_counter()
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes):
            if candidates is not None:
                counted.record(candidates, metric)
            duration.record(perf_counter() - start, metric)

    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=30)
    args = parser.parse_args()

    # Learn each case's final attributes once, with an in-memory exporter.
    recorder = InMemorySpanExporter()
    probe = TracerProvider()
    probe.add_span_processor(SimpleSpanProcessor(recorder))
    otel_rerank.instrument(tracer_provider=probe, meter_provider=MeterProvider(), libraries=[])
    ended: dict[str, ReadableSpan] = {}
    for key, (fn, _) in CASES.items():
        fn()
        (ended[key],) = recorder.get_finished_spans()
        recorder.clear()

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_NullExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otel_rerank.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=False,
        libraries=[],
    )
    tracer, meter = tracer_provider.get_tracer("floor"), meter_provider.get_meter("floor")
    duration = meter.create_histogram("floor.duration", unit="s")
    counted = meter.create_histogram("floor.candidates")
    phases = {}
    for key, (fn, candidates) in CASES.items():
        floor = _floor(ended[key], candidates, tracer, duration, counted)
        phases[key] = {"floor": floor, "A/A": floor, "ours": fn}
    results: dict[str, dict[str, list[float]]] = {
        key: {phase: [] for phase in cases} for key, cases in phases.items()
    }
    for _ in range(args.blocks):
        samples: dict[str, dict[str, list[int]]] = {
            key: {phase: [] for phase in cases} for key, cases in phases.items()
        }
        for _ in range(6):
            for key, cases in phases.items():
                for phase, fn in cases.items():
                    time_calls(fn, 50, samples[key][phase])
        for key, cases in samples.items():
            for phase, timed in cases.items():
                results[key][phase].append(quantile_us(timed, 0.1))

    print(f"StageSpan alone vs a hand-written floor; {args.blocks} blocks; µs per call")
    print(
        f"{'case':8} {'attrs':>5} {'floor':>8} {'A/A':>8} {'ours':>8} "
        f"{'ours-floor':>11} {'ours/floor':>10}"
    )
    for key, cases in results.items():
        floor = statistics.median(cases["floor"])
        aa = statistics.median(cases["A/A"])
        ours = statistics.median(cases["ours"])
        extra = statistics.median(o - f for o, f in zip(cases["ours"], cases["floor"], strict=True))
        print(
            f"{key:8} {len(ended[key].attributes or {}):5d} {floor:8.1f} {aa:8.1f} "
            f"{ours:8.1f} {extra:+11.1f} {ours / floor:10.2f}"
        )
    otel_rerank.uninstrument()
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
