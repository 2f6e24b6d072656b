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


_PROVIDER_APP = textwrap.dedent(
    """
    import asyncio, json, sys
    import otel_rerank

    @otel_rerank.rerank(model="m")
    def rerank(query, documents):
        return [float(len(d)) for d in documents]

    @otel_rerank.llm
    def stream():
        got = yield 1
        yield got

    @otel_rerank.llm
    async def astream():
        got = yield 1
        yield got

    @otel_rerank.embedding
    async def embed(texts):
        return [[0.0] for _ in texts]

    async def async_calls():
        gen = astream()
        first = await gen.asend(None)
        second = await gen.asend("sent")
        await gen.aclose()
        return [first, second, await embed(["a"])]

    def calls():
        gen = stream()
        with otel_rerank.retrieval(data_source="idx"):
            pass
        return [rerank("q", ["a", "bb"]), next(gen), gen.send("sent"), asyncio.run(async_calls())]

    expected = [[1.0, 2.0], 1, "sent", [1, "sent", [[0.0]]]]
    before = calls() == expected
    if sys.argv[1] == "auto":
        import otel_rerank.auto
    after = calls() == expected
    configured = otel_rerank.auto.configured if sys.argv[1] == "auto" else None
    if configured is not None:
        configured.force_flush()
    print(json.dumps({"before": before, "after": after,
                      "configured": configured is not None}), flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["import", "auto"])
@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_PYTHON_TRACER_PROVIDER": "no-such-provider"},
        {"OTEL_PYTHON_METER_PROVIDER": "no-such-provider"},
        {"OTEL_PYTHON_TRACER_PROVIDER": "nope", "OTEL_PYTHON_METER_PROVIDER": "nope"},
    ],
)
def test_unloadable_provider_named_in_the_environment_never_breaks_a_call(
    tmp_path: Path, variables: dict[str, str], how: str
) -> None:
    """The API raises StopIteration on each lookup of such a provider; we never do."""
    traces = tmp_path / "traces.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(variables, OTEL_RERANK_TRACES_FILE=str(traces))
    result = subprocess.run(
        [sys.executable, "-c", _PROVIDER_APP, how],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["before"] and state["after"], state
    if how == "auto":  # configure() still sets up the pipeline, and the calls are traced
        assert state["configured"]
        assert "rerank m" in traces.read_text(encoding="utf-8")


_BATCHING_APP = textwrap.dedent(
    """
    import json, threading, time
    crashes = []
    threading.excepthook = lambda info: crashes.append(repr(info.exc_value))
    import otel_rerank.auto
    import otel_rerank

    @otel_rerank.rerank(model="m")
    def rerank(query, documents):
        return [0.5 for _ in documents]

    results_ok = all(rerank("q", ["a"]) == [0.5] for _ in range(600))
    path = otel_rerank.auto.configured and otel_rerank.auto.configured.traces_file
    deadline = time.monotonic() + 20
    exported = False
    while path and not exported and time.monotonic() < deadline:
        try:
            exported = "rerank m" in open(path).read()
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    time.sleep(0.3)  # the metric thread's first wait
    print(json.dumps({"results_ok": results_ok, "crashes": crashes,
                      "exported_before_exit": exported}), flush=True)
    """
)

ABSURD_BATCHING = {
    "schedule delay": {"OTEL_BSP_SCHEDULE_DELAY": "99999999999999999999"},
    "queue size": {"OTEL_BSP_MAX_QUEUE_SIZE": "99999999999999999999"},
    "queue and batch size": {
        "OTEL_BSP_MAX_QUEUE_SIZE": "99999999999999999999",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "99999999999999999999",
    },
    "metric interval": {
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "99999999999999999999",
    },
    "metric interval nan": {
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "nan",
    },
    "metric interval zero": {
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "0",
    },
}


@pytest.mark.slow
def test_absurd_batching_numbers_never_crash_the_export_threads(tmp_path: Path) -> None:
    """Too large: clamped (with a warning); NaN or zero intervals: the SDK's default."""
    procs = {}
    for name, settings in ABSURD_BATCHING.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_RERANK_TRACES_FILE"] = str(tmp_path / f"{name.replace(' ', '-')}.jsonl")
        env["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "100"  # 600 spans: exported while running
        env.update(settings)
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _BATCHING_APP],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    problems = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        lines = [line for line in out.splitlines() if line.startswith('{"results_ok"')]
        if proc.returncode != 0 or not lines or "Traceback" in err:
            problems[name] = f"exit {proc.returncode}: {err.strip()[-500:]}"
            continue
        state = json.loads(lines[0])
        if not (state["results_ok"] and state["exported_before_exit"]) or state["crashes"]:
            problems[name] = state
    assert not problems, problems
