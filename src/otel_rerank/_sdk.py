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
spans plus :data:`METRIC_SHUTDOWN_TIMEOUT_S` for metrics. At process exit one deadline,
:data:`EXIT_TIMEOUT_S`, covers closing the shadow rerankers, then spans, then metrics (the
providers' own exit hooks are off), so that a dead or black-holed collector and a stuck
shadow model together delay exit by under five seconds. (The SDK's batch processor would
otherwise export every queued batch at exit, each waiting out the export timeout.) Batching
numbers too large for the SDK's export threads (``OTEL_BSP_SCHEDULE_DELAY``,
``OTEL_METRIC_EXPORT_INTERVAL``, queue and batch sizes) are clamped with a warning. The span
queue is bounded by the SDK's batch processor (``OTEL_BSP_MAX_QUEUE_SIZE``); spans beyond it
are dropped and, with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``, counted in the SDK's
``otel.sdk.processor.span.processed`` metric with ``error.type=queue_full``.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import math
import os
import time
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
from otel_rerank._telemetry import (
    _is_real_meter_provider,
    _is_real_tracer_provider,
    global_meter_provider,
    global_tracer_provider,
)

#: Seconds one export may take (retries included) before it is abandoned.
EXPORT_TIMEOUT_S: Final = 2.0
_EXPORT_TIMEOUT_MS: Final = int(EXPORT_TIMEOUT_S * 1000)
#: Seconds shutdown waits for queued spans to be exported before dropping the rest.
SPAN_SHUTDOWN_TIMEOUT_S: Final = 2.0
#: Seconds shutdown waits for the final metric export.
METRIC_SHUTDOWN_TIMEOUT_S: Final = 1.0
#: Seconds otel-rerank may add to a normal interpreter exit, everything together: shadow
#: rerankers (``otel_rerank.shadow.EXIT_BOUND_S``), then spans, then metrics share one
#: deadline, so that with a stuck model, a full queue and a black-holed collector the
#: process is still gone within five seconds of its last statement.
EXIT_TIMEOUT_S: Final = 4.0

_logger = logging.getLogger("otel_rerank")


class _BoundedBatchSpanProcessor(BatchSpanProcessor):
    """A batch span processor whose ``shutdown`` gives up after a bounded time.

    The SDK's own waits up to 30 s while its worker exports every queued batch, each of
    which can wait out the full export timeout when the collector is black-holed.
    """

    #: Set by :meth:`Configured.shutdown`: the moment (``time.monotonic()``) to give up at.
    shutdown_deadline: float | None = None

    def shutdown(self) -> None:
        timeout_s = SPAN_SHUTDOWN_TIMEOUT_S
        if self.shutdown_deadline is not None:
            timeout_s = min(timeout_s, max(self.shutdown_deadline - time.monotonic(), 0.0))
        processor: Any = getattr(self, "_batch_processor", None)
        try:
            processor.shutdown(timeout_millis=timeout_s * 1000)
        except (AttributeError, TypeError):  # another SDK layout: its own (unbounded) shutdown
            super().shutdown()  # type: ignore[no-untyped-call]


class _ExportCutShortByShutdown(logging.Filter):
    """Once shutdown has begun, an export it cuts short is one log line, not a traceback.

    The SDK's shutdown closes the exporter while an export may still be in flight (its own
    comment says so); against a dead collector that export then fails on the closed channel
    and the SDK logs the whole traceback on the way out. The spans are lost either way: say
    so in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} at shutdown ({type(error).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_EXPORT_CUT_SHORT = _ExportCutShortByShutdown()
#: The SDK logger that reports a failed export with its traceback.
_SDK_EXPORT_LOGGER: Final = "opentelemetry.sdk._shared_internal"


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
    _span_processors: list[_BoundedBatchSpanProcessor] = field(default_factory=list)
    _shut_down: bool = False

    def force_flush(self, timeout_millis: int = 5000) -> None:
        """Push out every span and metric recorded so far."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_millis)

    def shutdown(
        self, timeout_s: float = SPAN_SHUTDOWN_TIMEOUT_S + METRIC_SHUTDOWN_TIMEOUT_S
    ) -> None:
        """Flush and stop what was installed, within ``timeout_s`` seconds in all.

        Spans get up to :data:`SPAN_SHUTDOWN_TIMEOUT_S` of it, keeping a share for metrics;
        metrics get what is left (at most :data:`METRIC_SHUTDOWN_TIMEOUT_S`). Also runs at
        interpreter exit, after the shadow rerankers are closed, within
        :data:`EXIT_TIMEOUT_S` for the three together. A second call does nothing.
        """
        if self._shut_down:
            return
        self._shut_down = True
        deadline = time.monotonic() + max(timeout_s, 0.0)
        logging.getLogger(_SDK_EXPORT_LOGGER).addFilter(_EXPORT_CUT_SHORT)
        if self.tracer_provider is not None:
            remaining = max(deadline - time.monotonic(), 0.0)
            reserve = min(METRIC_SHUTDOWN_TIMEOUT_S, remaining / 2) if self.meter_provider else 0
            span_deadline = time.monotonic() + min(SPAN_SHUTDOWN_TIMEOUT_S, remaining - reserve)
            for processor in self._span_processors:  # several exporters share the one budget
                processor.shutdown_deadline = span_deadline
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            remaining_ms = max(deadline - time.monotonic(), 0.0) * 1000
            self.meter_provider.shutdown(timeout_millis=remaining_ms)

    def _shutdown_at_exit(self) -> None:  # pragma: no cover - runs at interpreter exit
        from otel_rerank import shadow  # here: shadow imports the package that imports us

        deadline = time.monotonic() + EXIT_TIMEOUT_S
        # Shadow work first, so that the spans of the runs that finish are still exported.
        shadow.close_all(timeout=min(shadow.EXIT_BOUND_S, EXIT_TIMEOUT_S))
        self.shutdown(timeout_s=max(deadline - time.monotonic(), 0.0))
        # What the exporters left of the deadline goes to a shadow worker still finishing
        # its batch: one still inside native model code at teardown aborts the process.
        shadow.close_all(timeout=max(deadline - time.monotonic(), 0.0))


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
            ConsoleMetricExporter(),
            export_timeout_millis=_EXPORT_TIMEOUT_MS,
            **_metric_interval_setting(),
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
        return _BoundedPeriodicReader(
            exporter, export_timeout_millis=_EXPORT_TIMEOUT_MS, **_metric_interval_setting()
        )
    raise ConfigurationError(f"OTEL_METRICS_EXPORTER={name!r} is not supported")


#: The largest ``OTEL_BSP_SCHEDULE_DELAY`` / ``OTEL_METRIC_EXPORT_INTERVAL`` taken (a day):
#: the SDK's export threads crash on a wait beyond ``threading.TIMEOUT_MAX``.
MAX_INTERVAL_MS: Final = 86_400_000
#: The largest ``OTEL_BSP_MAX_QUEUE_SIZE`` (and export batch) taken: the queue bounds memory.
MAX_QUEUE_SIZE: Final = 1_048_576


def _clamped(name: str, value: float, maximum: float) -> float:
    if value <= maximum:
        return value
    _logger.warning("otel-rerank: %s=%s is too large; using %s", name, _env(name), maximum)
    return maximum


def _batch_settings() -> dict[str, Any]:
    """``OTEL_BSP_*`` values too large for the SDK, clamped; the SDK reads the rest itself.

    A value that is not an integer, or not positive, is left to the SDK, which reports it
    (and uses its default, or refuses the set-up).
    """
    settings: dict[str, Any] = {}
    for name, key, maximum in (
        ("OTEL_BSP_SCHEDULE_DELAY", "schedule_delay_millis", MAX_INTERVAL_MS),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "max_queue_size", MAX_QUEUE_SIZE),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "max_export_batch_size", MAX_QUEUE_SIZE),
    ):
        try:
            value = int(_env(name))
        except ValueError:
            continue
        if value > maximum:
            settings[key] = int(_clamped(name, value, maximum))
    return settings


def _metric_interval_setting() -> dict[str, Any]:
    """``export_interval_millis`` when ``OTEL_METRIC_EXPORT_INTERVAL`` needs correcting.

    Too large (but finite): clamped; NaN, zero or negative (a busy loop in the SDK): the
    SDK's default of 60 s. ``inf`` is the SDK's own "export at shutdown only" and is kept.
    """
    name = "OTEL_METRIC_EXPORT_INTERVAL"
    try:
        value = float(_env(name))
    except ValueError:
        return {}  # unset, or not a number: the SDK reports it and uses its default
    if math.isinf(value) and value > 0:
        return {}
    if math.isnan(value) or value <= 0:
        _logger.warning("otel-rerank: %s=%s is not a positive interval; using 60000", name, value)
        return {"export_interval_millis": 60_000.0}
    if value > MAX_INTERVAL_MS:
        return {"export_interval_millis": _clamped(name, value, MAX_INTERVAL_MS)}
    return {}


def _internal_metrics_provider(sdk_class: type) -> dict[str, Any]:
    """``meter_provider=`` for an SDK class that takes one (SDK >= 1.39), else nothing.

    Without it the SDK looks the global one up itself, which raises on every lookup when
    ``OTEL_PYTHON_METER_PROVIDER`` names a provider that cannot be loaded.
    """
    if "meter_provider" not in inspect.signature(sdk_class).parameters:
        return {}
    return {"meter_provider": global_meter_provider()}


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
        if not _is_real_tracer_provider(global_tracer_provider()):
            default = "otlp" if _endpoint_set("TRACES") else "file"
            exporters = [e for e in map(_span_exporter, _exporter_names("TRACES", default)) if e]
            result.tracer_provider = TracerProvider(
                resource=resource,
                shutdown_on_exit=False,  # our own exit handler: one deadline for everything
                **_internal_metrics_provider(TracerProvider),
            )
            batching = _batch_settings()
            for exporter in exporters:
                processor = _BoundedBatchSpanProcessor(
                    exporter,
                    export_timeout_millis=_EXPORT_TIMEOUT_MS,
                    **batching,
                    **_internal_metrics_provider(BatchSpanProcessor),
                )
                result._span_processors.append(processor)
                result.tracer_provider.add_span_processor(processor)
                if isinstance(exporter, JsonLinesSpanExporter):
                    result.traces_file = str(exporter.path)

        if not _is_real_meter_provider(global_meter_provider()):
            default = "otlp" if _endpoint_set("METRICS") else "none"
            readers = [r for r in map(_metric_reader, _exporter_names("METRICS", default)) if r]
            if readers:
                result.meter_provider = MeterProvider(
                    resource=resource, metric_readers=readers, shutdown_on_exit=False
                )
    except Exception:
        with contextlib.suppress(Exception):  # stop the threads of what was never installed
            result.shutdown()
        raise
    if result.tracer_provider is not None:
        trace.set_tracer_provider(result.tracer_provider)
    if result.meter_provider is not None:
        metrics.set_meter_provider(result.meter_provider)
    if result.tracer_provider is not None or result.meter_provider is not None:
        atexit.register(result._shutdown_at_exit)
    return result
