"""What a dead collector costs the application: call latency, memory, and exit time.

Side by side in one run, a decorated rerank call (20 candidates, content capture off) is
timed with the span pipeline ``configure()`` builds — a batch span processor in front of the
real OTLP exporter with otel-rerank's timeouts — pointed at:

* ``no exporter`` — the SDK with a batch processor whose exporter discards (the baseline:
  the cost of creating spans, nothing else);
* ``healthy`` — a loopback OTLP/HTTP collector that accepts everything;
* ``closed`` / ``blackhole`` / ``unavailable`` — a port nobody listens on, a server that
  accepts connections and never answers, and one that answers 503 (HTTP) / UNAVAILABLE
  (gRPC); for both ``http/protobuf`` and ``grpc``.

For each: p50 / p95 / p99 / max per-call latency and its ratio to the baseline, spans the
queue dropped (the SDK's own counter, ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``), and
how long ``shutdown()`` took. With ``--exit`` it also runs ``import otel_rerank.auto`` in a
subprocess against each dead endpoint and reports the seconds from its last statement to
its exit. Cases are interleaved round by round so machine noise hits them alike; each
number is the median over rounds. Run::

    .venv/bin/python benchmarks/dead_collector.py [--calls 5000] [--rounds 3] [--exit]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from unittest import mock

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import otel_rerank
from otel_rerank import _sdk


def _collectors() -> ModuleType:
    """The test suite's loopback collectors (``tests/_collectors.py``)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("tests._collectors")


DOCUMENTS = [f"candidate passage {i} about wing lift and drag" for i in range(20)]
SCORES = [float(20 - i) for i in range(20)]


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@contextlib.contextmanager
def _endpoint(case: str) -> Iterator[tuple[str, str] | None]:
    """``(endpoint, protocol)`` for a case, or ``None`` for the no-exporter baseline."""
    if case == "no exporter":
        yield None
    elif case == "healthy":
        with _collectors().HealthyHttpCollector() as collector:
            yield collector.endpoint, "http/protobuf"
    else:
        protocol, mode = case.split(" ", 1)
        with _collectors().failing_collector(mode, protocol) as endpoint:
            yield endpoint, protocol


def _measure(case: str, calls: int) -> dict[str, float]:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    with _endpoint(case) as target:
        if target is None:
            exporter: SpanExporter = _Discard()
        else:
            endpoint, protocol = target
            otlp = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            }
            with mock.patch.dict(os.environ, otlp):
                built = _sdk._span_exporter("otlp")  # what configure() builds
            assert built is not None
            exporter = built
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            _sdk._BoundedBatchSpanProcessor(
                exporter,
                export_timeout_millis=_sdk._EXPORT_TIMEOUT_MS,
                meter_provider=meter_provider,
            )
        )
        otel_rerank.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

        @otel_rerank.rerank(model="bench")
        def rerank(query: str, documents: list[str]) -> list[float]:
            return SCORES

        for _ in range(200):  # warm-up
            rerank("q", DOCUMENTS)
        samples = []
        clock = time.perf_counter
        for _ in range(calls):
            start = clock()
            rerank("q", DOCUMENTS)
            samples.append(clock() - start)
        dropped = 0
        data = reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == "otel.sdk.processor.span.processed":
                        dropped += sum(
                            p.value
                            for p in metric.data.data_points
                            if p.attributes.get("error.type") == "queue_full"
                        )
        otel_rerank.uninstrument()
        start = time.monotonic()
        tracer_provider.shutdown()
        shutdown_s = time.monotonic() - start
        meter_provider.shutdown()
    samples.sort()
    return {
        "p50_us": _pct(samples, 50) * 1e6,
        "p95_us": _pct(samples, 95) * 1e6,
        "p99_us": _pct(samples, 99) * 1e6,
        "max_us": samples[-1] * 1e6,
        "dropped": float(dropped),
        "shutdown_s": shutdown_s,
    }


def _pct(sorted_samples: list[float], q: float) -> float:
    index = min(len(sorted_samples) - 1, round(q / 100 * (len(sorted_samples) - 1)))
    return sorted_samples[index]


_CHILD = textwrap.dedent(
    """
    import sys, time
    import otel_rerank.auto
    import otel_rerank

    @otel_rerank.rerank(model="m")
    def rerank(query, documents):
        return [0.5] * len(documents)

    for _ in range(3000):
        rerank("q", ["a", "b", "c"])
    print(time.monotonic(), flush=True)
    """
)


def _exit_delay(case: str) -> float:
    with _endpoint(case) as target:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        if target is not None:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"], env["OTEL_EXPORTER_OTLP_PROTOCOL"] = target
        else:
            env["OTEL_TRACES_EXPORTER"] = "none"
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
        ).stdout
        return time.monotonic() - float(out.split()[0])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=5000, help="timed calls per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exit", action="store_true", help="also time process exit")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"  # the drop counter
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # expected export failures

    collectors = _collectors()
    cases = ["no exporter", "healthy"] + [
        f"{p} {m}" for p in collectors.PROTOCOLS for m in collectors.FAILURE_MODES
    ]
    rounds: dict[str, list[dict[str, float]]] = {case: [] for case in cases}
    for round_no in range(args.rounds):
        for case in cases:
            rounds[case].append(_measure(case, args.calls))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    results = {
        case: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for case, runs in rounds.items()
    }
    if args.exit:
        for case in cases:
            results[case]["exit_s"] = _exit_delay(case)

    base = results["no exporter"]
    print(
        f"decorated rerank (20 candidates), {args.calls} calls x {args.rounds} rounds, "
        f"medians; export timeout {_sdk.EXPORT_TIMEOUT_S} s, "
        f"shutdown budget {_sdk.SPAN_SHUTDOWN_TIMEOUT_S}+{_sdk.METRIC_SHUTDOWN_TIMEOUT_S} s"
    )
    header = (
        f"{'collector':28} {'p50 us':>8} {'p95 us':>8} {'p99 us':>8} {'max us':>9} "
        f"{'p50 x':>6} {'p99 x':>6} {'dropped':>8} {'shutdown s':>10}"
    )
    if args.exit:
        header += f" {'exit s':>7}"
    print(header)
    for case, r in results.items():
        line = (
            f"{case:28} {r['p50_us']:8.1f} {r['p95_us']:8.1f} {r['p99_us']:8.1f} "
            f"{r['max_us']:9.0f} {r['p50_us'] / base['p50_us']:6.2f} "
            f"{r['p99_us'] / base['p99_us']:6.2f} {r['dropped']:8.0f} {r['shutdown_s']:10.2f}"
        )
        if args.exit:
            line += f" {r['exit_s']:7.2f}"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
