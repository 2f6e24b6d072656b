"""A broken telemetry configuration never stops, breaks or half-configures the application.

Each case is a real process that runs ``import otel_rerank.auto`` under one bad ``OTEL_*``
setting (unknown protocol or exporter, a negative or non-numeric queue size, a batch larger
than the queue, an unparsable sampler, resource, endpoint, timeout or header list, an
unwritable traces file, a Prometheus port that is not a number) and then calls a decorated
function. In every case the process exits normally and the function returns its result.
And ``configure()`` is all or nothing: either it reports what it installed, or it leaves
the global providers as they were — never a tracer provider installed with no handle on it
while the metrics part failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_APP = textwrap.dedent(
    """
    import json
    import otel_rerank.auto
    import otel_rerank
    from opentelemetry import metrics, trace

    @otel_rerank.rerank(model="m")
    def rerank(query, documents):
        return [float(len(d)) for d in documents]

    results = [rerank("q", ["a", "bb"]) for _ in range(20)]
    print(json.dumps({
        "results_ok": all(r == [1.0, 2.0] for r in results),
        "configured": otel_rerank.auto.configured is not None,
        "tracer_provider": type(trace.get_tracer_provider()).__name__,
        "meter_provider": type(metrics.get_meter_provider()).__name__,
    }), flush=True)
    """
)

CASES: dict[str, dict[str, str]] = {
    "unknown protocol": {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
    },
    "unknown traces exporter": {"OTEL_TRACES_EXPORTER": "nonsense"},
    "unknown metrics exporter": {"OTEL_METRICS_EXPORTER": "nonsense"},
    "negative queue size": {"OTEL_BSP_MAX_QUEUE_SIZE": "-5"},
    "non-numeric queue size": {"OTEL_BSP_MAX_QUEUE_SIZE": "lots"},
    "batch larger than queue": {
        "OTEL_BSP_MAX_QUEUE_SIZE": "10",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100",
    },
    "unknown sampler": {"OTEL_TRACES_SAMPLER": "bogus"},
    "bad sampler argument": {
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "lots",
    },
    "garbage resource attributes": {"OTEL_RESOURCE_ATTRIBUTES": "garbage,,=x,%%"},
    "unwritable traces file": {"OTEL_RERANK_TRACES_FILE": "/proc/no-such-dir/traces.jsonl"},
    "endpoint not a URL": {"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"},
    "grpc endpoint not a host": {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "::::",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    },
    "non-numeric timeout": {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "soon",
    },
    "malformed headers": {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=b=c,,=,x",
    },
    "bad content settings": {
        "OTEL_RERANK_CAPTURE_CONTENT": "maybe",
        "OTEL_RERANK_CONTENT_MAX_LENGTH": "-3",
        "OTEL_RERANK_CONTENT_MAX_DOCUMENTS": "many",
    },
    "non-numeric metric interval": {
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "often",
    },
    "non-numeric prometheus port": {
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "not-a-port",
    },
}


@pytest.mark.slow
def test_bad_configuration_never_breaks_the_app(tmp_path: Path) -> None:
    procs = {}
    for name, settings in CASES.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_RERANK_TRACES_FILE"] = str(tmp_path / "traces.jsonl")
        env.update(settings)
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _APP],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    problems = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0 or not out.strip():
            problems[name] = f"exit {proc.returncode}: {err.strip()[-300:]}"
            continue
        state = json.loads(out.strip().splitlines()[-1])
        if not state["results_ok"]:
            problems[name] = "the decorated function's results changed"
        elif not state["configured"] and (
            state["tracer_provider"] == "TracerProvider"
            or state["meter_provider"] == "MeterProvider"
        ):
            problems[name] = f"half-configured: {state}"
    assert not problems, problems
