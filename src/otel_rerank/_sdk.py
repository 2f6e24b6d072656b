"""``configure()``: SDK tracer and meter providers from the standard ``OTEL_*`` variables.

It exists so that ``import otel_rerank.auto`` gives a working pipeline in an app that has no
OpenTelemetry set-up of its own, and does nothing in one that has: a provider the app (or
``opentelemetry-instrument``) already installed is never replaced.

Honoured: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER`` (and ``_ARG``), ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the per-signal
endpoints, ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``grpc`` or ``http/protobuf``, the default the
OpenTelemetry specification gives), ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``
(``otlp``, ``console``, ``none``, and ``prometheus`` for metrics), and the ``OTEL_BSP_*``
and ``OTEL_METRIC_EXPORT_*`` settings the SDK reads itself. With no endpoint and no
exporter named, spans go to the embedded default, an OTLP-JSON lines file
(``OTEL_RERANK_TRACES_FILE``), and no metrics are exported.

Exporter timeouts are capped at :data:`EXPORT_TIMEOUT_S`, and shutting down (at process exit
or through :meth:`Configured.shutdown`) gives up after :data:`SPAN_SHUTDOWN_TIMEOUT_S` for
spans plus :data:`METRIC_SHUTDOWN_TIMEOUT_S` for metrics, so that a dead or black-holed
collector delays process exit by under five seconds. (The SDK's batch processor would
otherwise export every queued batch at exit, each waiting out the export timeout.) The span
queue is bounded by the SDK's batch processor (``OTEL_BSP_MAX_QUEUE_SIZE``); spans beyond it
are dropped and, with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``, counted in the SDK's
``otel.sdk.processor.span.processed`` metric with ``error.type=queue_full``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from otel_rerank._file_exporter import JsonLinesSpanExporter, default_traces_path
from otel_rerank._telemetry import _is_real_meter_provider, _is_real_tracer_provider

#: Seconds one export may take (retries included) before it is abandoned.
EXPORT_TIMEOUT_S: Final = 2.0
_EXPORT_TIMEOUT_MS: Final = int(EXPORT_TIMEOUT_S * 1000)
#: Seconds shutdown waits for queued spans to be exported before dropping the rest.
SPAN_SHUTDOWN_TIMEOUT_S: Final = 2.0
#: Seconds shutdown waits for the final metric export.
METRIC_SHUTDOWN_TIMEOUT_S: Final = 1.5


class _BoundedBatchSpanProcessor(BatchSpanProcessor):
    """A batch span processor whose ``shutdown`` gives up after a bounded time.

    The SDK's own waits up to 30 s while its worker exports every queued batch, each of
    which can wait out the full export timeout when the collector is black-holed.
    """

    def shutdown(self) -> None:
        processor: Any = getattr(self, "_batch_processor", None)
        try:
            processor.shutdown(timeout_millis=SPAN_SHUTDOWN_TIMEOUT_S * 1000)
        except (AttributeError, TypeError):  # another SDK layout: its own (unbounded) shutdown
            super().shutdown()  # type: ignore[no-untyped-call]


class _BoundedPeriodicReader(PeriodicExportingMetricReader):
    """A periodic metric reader whose ``shutdown`` waits at most a bounded time."""

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        limit = METRIC_SHUTDOWN_TIMEOUT_S * 1000
        super().shutdown(timeout_millis=min(timeout_millis, limit), **kwargs)


class ConfigurationError(ValueError):
    """An ``OTEL_*`` variable names something otel-rerank cannot set up."""


@dataclass
class Configured:
    """What ``configure()`` installed; ``None`` where the app's own provider was kept.

    Attributes:
        tracer_provider: the SDK tracer provider installed, if any.
        meter_provider: the SDK meter provider installed, if any.
        traces_file: where spans are written when the embedded default is in use.
    """

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    traces_file: str | None = None
    _extra: list[Any] = field(default_factory=list)

    def force_flush(self, timeout_millis: int = 5000) -> None:
        """Push out every span and metric recorded so far."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop what was installed (also runs at interpreter exit)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _sdk_disabled() -> bool:
    return _env("OTEL_SDK_DISABLED").lower() == "true"


def _endpoint_set(signal: str) -> bool:
    return bool(
        _env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _protocol(signal: str) -> str:
    protocol = (
        _env(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (use grpc or http/protobuf)"
        )
    return protocol


def _exporter_names(signal: str, default: str) -> list[str]:
    raw = _env(f"OTEL_{signal}_EXPORTER") or default
    return [n.strip().lower() for n in raw.split(",") if n.strip()]


def _span_exporter(name: str) -> SpanExporter | None:
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "file":
        return JsonLinesSpanExporter(default_traces_path())
    if name == "otlp":
        if _protocol("TRACES") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            return GrpcSpanExporter(timeout=EXPORT_TIMEOUT_S)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        return HttpSpanExporter(timeout=EXPORT_TIMEOUT_S)
    raise ConfigurationError(f"OTEL_TRACES_EXPORTER={name!r} is not supported")


def _metric_reader(name: str) -> MetricReader | None:
    if name == "none":
        return None
    if name == "console":
        return _BoundedPeriodicReader(
            ConsoleMetricExporter(), export_timeout_millis=_EXPORT_TIMEOUT_MS
        )
    if name == "prometheus":
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import start_http_server
        except ImportError as exc:
            raise ConfigurationError(
                "OTEL_METRICS_EXPORTER=prometheus needs opentelemetry-exporter-prometheus "
                "(pip install 'otel-rerank[prometheus]')"
            ) from exc
        host = _env("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost")
        port = int(_env("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"))
        start_http_server(port=port, addr=host)
        return PrometheusMetricReader()  # type: ignore[no-any-return]
    if name == "otlp":
        if _protocol("METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )

            exporter: Any = GrpcMetricExporter(timeout=EXPORT_TIMEOUT_S)
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HttpMetricExporter,
            )

            exporter = HttpMetricExporter(timeout=EXPORT_TIMEOUT_S)
        return _BoundedPeriodicReader(exporter, export_timeout_millis=_EXPORT_TIMEOUT_MS)
    raise ConfigurationError(f"OTEL_METRICS_EXPORTER={name!r} is not supported")


#: ``service.instance.id`` of this process, by pid (a forked child gets its own).
_INSTANCE_IDS: dict[int, str] = {}


def _with_instance_id(resource: Resource) -> Resource:
    """The resource with a per-process ``service.instance.id`` unless the user set one.

    Replicas of one service behind one collector need it: the collector's Prometheus
    exporter keys series by ``service.name`` and ``service.instance.id``, so without it the
    replicas overwrite each other's cumulative histograms and ``rate()`` goes wrong.
    """
    if "service.instance.id" in resource.attributes:
        return resource
    instance_id = _INSTANCE_IDS.setdefault(os.getpid(), str(uuid.uuid4()))
    return resource.merge(Resource({"service.instance.id": instance_id}))


def configure() -> Configured:
    """Install SDK providers from the environment unless the app already has them.

    Safe to call more than once: later calls find the providers installed and do nothing.
    All or nothing: both providers are built before either is installed, so a bad setting
    for one signal leaves the global providers as they were.

    Returns:
        What was installed (``None`` fields where an existing provider was kept).

    Raises:
        ConfigurationError: an ``OTEL_*`` variable names an unsupported exporter or protocol.
        ValueError: the SDK rejects a setting (a batch size larger than the queue, ...).
    """
    result = Configured()
    if _sdk_disabled():
        return result
    resource = _with_instance_id(Resource.create())
    try:
        if not _is_real_tracer_provider(trace.get_tracer_provider()):
            default = "otlp" if _endpoint_set("TRACES") else "file"
            exporters = [e for e in map(_span_exporter, _exporter_names("TRACES", default)) if e]
            result.tracer_provider = TracerProvider(resource=resource)
            for exporter in exporters:
                result.tracer_provider.add_span_processor(
                    _BoundedBatchSpanProcessor(exporter, export_timeout_millis=_EXPORT_TIMEOUT_MS)
                )
                if isinstance(exporter, JsonLinesSpanExporter):
                    result.traces_file = str(exporter.path)

        if not _is_real_meter_provider(metrics.get_meter_provider()):
            default = "otlp" if _endpoint_set("METRICS") else "none"
            readers = [r for r in map(_metric_reader, _exporter_names("METRICS", default)) if r]
            if readers:
                result.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    except Exception:
        with contextlib.suppress(Exception):  # stop the threads of what was never installed
            result.shutdown()
        raise
    if result.tracer_provider is not None:
        trace.set_tracer_provider(result.tracer_provider)
    if result.meter_provider is not None:
        metrics.set_meter_provider(result.meter_provider)
    return result
