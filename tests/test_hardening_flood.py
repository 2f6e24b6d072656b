"""A flood of large reranks with content capture on stays within every limit.

10,000 reranks of 100 candidates, each document 5,000 characters, with content capture on:

* every span keeps the content policy: at most ``max_documents`` documents written, each
  truncated to ``max_length`` characters, and the span's attribute count under the SDK's
  limit (nothing dropped by the SDK, which would lose attributes arbitrarily);
* the metric series stay low-cardinality (one duration series, whatever the inputs);
* memory is bounded: with spans going to a bounded batch processor, the objects Python
  tracks and the resident memory after 10,000 calls are what they were after 2,000, give
  or take noise — a per-call leak of one span or one truncated document would show as
  8,000 objects or 8 MB.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import otel_rerank
from otel_rerank import _config, _safe, semconv
from tests.conftest import metric_points

CALLS = 10_000
CHECKPOINT = 2_000
CANDIDATES = 100
DOCUMENT_CHARS = 5_000
#: Growth allowed between the checkpoint and the end (caches, allocator noise).
OBJECT_ALLOWANCE = 1_000
RSS_ALLOWANCE = 4 * 1024 * 1024


class _KeepLast(SpanExporter):
    """Keeps only the most recent spans (bounded) and counts the rest."""

    def __init__(self, keep: int) -> None:
        self.recent: collections.deque[ReadableSpan] = collections.deque(maxlen=keep)
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.recent.extend(spans)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _flood() -> dict[str, Any]:
    """The flood itself; run in a fresh interpreter so resident memory is ours alone."""
    _safe.STRICT = True  # an internal error fails the run instead of hiding
    exporter = _KeepLast(keep=10)
    tracer_provider = TracerProvider(span_limits=SpanLimits())
    # A small queue: the allocator keeps the queue's high-water mark resident, and a
    # 512-span queue of captured reranks (~10 kB each) filled later in the run under load
    # would read as growth.
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_queue_size=64, max_export_batch_size=64, schedule_delay_millis=50
        )
    )
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel_rerank.instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=True
    )
    documents = [f"{i:04d} " + "x" * DOCUMENT_CHARS for i in range(CANDIDATES)]
    scores = [float(CANDIDATES - i) for i in range(CANDIDATES)]

    @otel_rerank.rerank(model="flood")
    def rerank(query: str, documents: list[str]) -> list[float]:
        return scores

    try:
        for n in range(CALLS):
            if n == CHECKPOINT:
                checkpoint = _memory(tracer_provider)
            rerank(f"query {n % 7} " + "q" * 3000, documents)
        end = _memory(tracer_provider)
        duration = metric_points(reader, semconv.METRIC_OPERATION_DURATION)
        candidates = metric_points(reader, semconv.METRIC_RERANK_CANDIDATES)
    finally:
        otel_rerank.uninstrument()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return {
        "checkpoint": checkpoint,
        "end": end,
        "spans": [
            {"attributes": dict(s.attributes or {}), "dropped": s.dropped_attributes}
            for s in exporter.recent
        ],
        "duration_counts": [p.count for p in duration],
        "candidate_series": len(candidates),
    }


@pytest.mark.slow
def test_ten_thousand_captured_reranks_stay_bounded() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    checkpoint, end = result["checkpoint"], result["end"]

    # No growth between 2,000 and 10,000 calls: neither in objects the garbage collector
    # tracks (a leaked span, dict or list per call would add 8,000 or more) nor in resident
    # memory (a leaked 1 kB string per call would add 8 MB).
    assert end[0] - checkpoint[0] < OBJECT_ALLOWANCE, (checkpoint, end)
    assert end[1] - checkpoint[1] < RSS_ALLOWANCE, (checkpoint, end)

    assert result["spans"], "no span reached the exporter"
    limit = SpanLimits().max_span_attributes
    policy = _config.ContentPolicy()
    prefix = semconv.RERANKER_INPUT_DOCUMENTS + "."
    for span in result["spans"]:
        attributes = span["attributes"]
        assert span["dropped"] == 0
        assert len(attributes) < limit
        contents = [
            v for k, v in attributes.items() if k.startswith(prefix) and k.endswith("content")
        ]
        assert len(contents) == policy.max_documents
        assert all(isinstance(v, str) and len(v) <= policy.max_length for v in contents)
        query = attributes[semconv.RERANKER_QUERY]
        assert isinstance(query, str) and len(query) <= policy.max_length
        assert attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == CANDIDATES

    # Metric attributes never carry content: one series per metric, whatever the queries.
    assert result["duration_counts"] == [CALLS]
    assert result["candidate_series"] == 1


_CHILD = "import json, tests.test_hardening_flood as f; print(json.dumps(f._flood()))"


def _memory(tracer_provider: TracerProvider) -> tuple[int, int]:
    """(objects the garbage collector tracks, resident set size in bytes) after a flush."""
    tracer_provider.force_flush()
    gc.collect()
    return len(gc.get_objects()), _rss()


def _rss() -> int:
    statm = Path("/proc/self/statm")
    if statm.exists():
        rss = int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    else:  # not Linux: the peak, which a leak raises just the same
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return rss


FAILING_CALLS = 3_000
QUOTED_CHARS = 100_000
#: Growth allowed for 2,048 queued failed spans; unbounded messages (each quoting 100 kB of
#: documents, in the message and again in the stack trace) would take 400 MB or more.
FAILURE_RSS_ALLOWANCE = 48 * 1024 * 1024


class _BlackHole(SpanExporter):
    """An export that never returns until shutdown: a black-holed collector."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


def _failing_flood() -> dict[str, Any]:
    """Failing reranks whose exceptions quote their documents, behind a dead collector."""
    _safe.STRICT = True
    exporter = _BlackHole()
    processor = BatchSpanProcessor(exporter)  # the default queue: 2,048 spans
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otel_rerank.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    documents = ["d" * (QUOTED_CHARS // 10) for _ in range(10)]

    @otel_rerank.rerank(model="failing")
    def rerank(query: str, documents: list[str]) -> list[float]:
        raise ValueError("cannot score: " + "".join(documents))

    gc.collect()
    before = _rss()
    try:
        for _ in range(FAILING_CALLS):
            with contextlib.suppress(ValueError):
                rerank("q", documents)
        gc.collect()
        after = _rss()
        queued = list(processor._batch_processor._queue)
        events = [dict(e.attributes or {}) for s in queued[:50] for e in s.events]
    finally:
        otel_rerank.uninstrument()
        exporter.shutdown()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return {"growth": after - before, "queued": len(queued), "events": events}


@pytest.mark.slow
def test_failing_calls_behind_a_dead_collector_stay_bounded() -> None:
    """Exception events are bounded and carry no message with capture off (the default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, tests.test_hardening_flood as f; print(json.dumps(f._failing_flood()))",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["queued"] == 2048  # the queue is full: the collector takes nothing
    assert result["growth"] < FAILURE_RSS_ALLOWANCE, result["growth"]
    policy = _config.ContentPolicy()
    assert result["events"]
    for event in result["events"]:
        assert event["exception.type"] == "ValueError"
        assert "exception.message" not in event
        assert len(event["exception.stacktrace"]) <= policy.max_length
        assert "ddddd" not in event["exception.stacktrace"]
