"""Live: the single-collector stack of compose.yaml, run from Go-built binaries on loopback.

Apps (collector/loadgen.py: a root span and embeddings → retrieval → rerank → chat under it,
exported by ``otel_rerank.configure()``) send OTLP over gRPC and HTTP/protobuf to our
Collector running ``collector/otelcol-config.yaml``, which forwards the traces to Jaeger v2
running ``collector/jaeger-config.yaml`` and serves the app metrics and span metrics to a
real Prometheus 3. That Prometheus runs ``collector/prometheus.yml`` with its intervals cut
to 1 s and its targets moved to loopback, and the shipped rules rendered from the same
template with a 250 ms budget and short windows (so the slow reranks stay short). Every
config runs as shipped: the tests only set the ports (and the span-metrics flush interval)
through the configs' ``${env:VAR:-default}`` variables.

Traffic: ``rag-slow``, two replicas at once (one over gRPC, one over HTTP), reranks spread
evenly over 330–480 ms (all over the budget, all inside the 320–500 ms bucket, so the p95
Prometheus interpolates is well defined); ``rag-fast``, reranks of 20 ms; and two short
runs of 4 requests (``rag-traces-grpc``, ``rag-traces-http``) whose traces are checked one
by one. Bounded: about a minute once the binaries are built.
"""

from __future__ import annotations

import math
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_rerank import semconv
from tests import _backend as backend
from tests.test_collector_configs import render_rules

pytestmark = [pytest.mark.live, pytest.mark.slow]

BUDGET_S = 0.25
SLOW_MS = (330, 480)
FAST_MS = 20
RERANK_SPAN = "rerank ms-marco-MiniLM-L-6-v2"
STAGE_SPANS = {
    "embeddings all-MiniLM-L6-v2",
    "retrieval cranfield",
    RERANK_SPAN,
    "chat local-llm",
}
TRACED_REQUESTS = 4
FIRE_DEADLINE_S = 120


class Stack:
    def __init__(self, tmp: Path, otelcol: backend.Server, jaeger: backend.Server, prom: str):
        self.tmp = tmp
        self.otelcol = otelcol
        self.jaeger = jaeger
        self.prometheus = prom
        self.loadgens: dict[str, subprocess.Popen[bytes]] = {}

    def logs(self) -> list[Path]:
        return [self.otelcol.log, self.jaeger.log, self.tmp / "prometheus.log"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return list(backend.get_json(url)["data"]["result"])

    def alerts(self, name: str) -> list[dict[str, Any]]:
        alerts = backend.get_json(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    def firing(self, name: str, label: str, value: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts(name)
            if a["state"] == "firing" and a["labels"].get(label) == value
        ]


def prometheus_config(path: Path, scrape: str, itself: str) -> None:
    """collector/prometheus.yml with 1 s intervals, loopback targets and no Alertmanager."""
    config = yaml.safe_load((backend.COLLECTOR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    del config["alerting"]  # the alert state is read from Prometheus itself
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["otel-collector"]["static_configs"] = [{"targets": [scrape]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [itself]}]
    params = render_rules.RuleParams(budget_s=BUDGET_S, rate_window="15s", alert_for="2s")
    (path.parent / "alerts.yml").write_text(render_rules.render_alerts(params), encoding="utf-8")
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("backend-stack")
    prometheus = backend.prometheus(tmp, tmp / "prometheus.yml")
    jaeger = backend.jaeger(tmp, prometheus_url=backend.prometheus_url(prometheus))
    otelcol = backend.collector("otelcol-config.yaml", tmp, OTELCOL_SPANMETRICS_FLUSH_INTERVAL="1s")
    otelcol.env["OTELCOL_JAEGER_ENDPOINT"] = jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"]
    prometheus_config(
        tmp / "prometheus.yml",
        otelcol.env["OTELCOL_PROMETHEUS_ENDPOINT"],
        backend.prometheus_url(prometheus).removeprefix("http://"),
    )
    # Each starts ready (Prometheus answering /-/ready), on fresh ports if one was taken;
    # the URLs are read from the servers after that.
    with backend.running(jaeger, prometheus, otelcol):
        backend.wait_jaeger(jaeger)
        backend.wait_healthy(otelcol)
        stack = Stack(tmp, otelcol, jaeger, backend.prometheus_url(prometheus))
        endpoints = backend.otlp_endpoints(otelcol)
        long_run = ["--duration", str(FIRE_DEADLINE_S + 60)]
        slow = ["--rate", "3", "--rerank-ms", str(SLOW_MS[0]), "--rerank-ms-max", str(SLOW_MS[1])]
        try:
            for protocol in ("grpc", "http/protobuf"):
                stack.loadgens[f"rag-slow {protocol}"] = backend.loadgen(
                    tmp, "rag-slow", endpoints[protocol], protocol, *slow, *long_run
                )
                name = "rag-traces-" + protocol.split("/")[0]
                stack.loadgens[name] = backend.loadgen(
                    tmp, name, endpoints[protocol], protocol, "--requests", str(TRACED_REQUESTS),
                    "--rate", "4", "--rerank-ms", "5",
                )  # fmt: skip
            stack.loadgens["rag-fast"] = backend.loadgen(
                tmp, "rag-fast", endpoints["http/protobuf"], "http/protobuf",
                "--rate", "5", "--rerank-ms", str(FAST_MS), *long_run,
            )  # fmt: skip
            yield stack
        finally:
            for proc in stack.loadgens.values():
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=15)


def test_collector_starts_without_warnings(stack: Stack) -> None:
    """No deprecated component names (``otlp``, ``spanmetrics``) and no config warnings."""
    backend.wait_for("collector up", lambda: "Everything is ready" in stack.otelcol.text(), 30)
    lines = stack.otelcol.text().splitlines()
    # gRPC's connection notices are not about the config (Jaeger may start a moment later).
    warnings = [line for line in lines if "\twarn\t" in line and "\tgrpc@" not in line]
    assert not warnings, "\n".join(warnings)
    assert not [line for line in lines if "deprecat" in line.lower()]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_each_request_is_one_trace_in_jaeger(stack: Stack, protocol: str) -> None:
    service = f"rag-traces-{protocol}"
    proc = stack.loadgens[service]
    assert proc.wait(timeout=60) == 0

    def all_traces() -> list[dict[str, Any]]:
        traces = backend.jaeger_traces(stack.jaeger, service)
        complete = [t for t in traces if len(t["spans"]) == 1 + len(STAGE_SPANS)]
        return traces if len(complete) == TRACED_REQUESTS else []

    traces = backend.wait_for(f"{service} traces in Jaeger", all_traces, 60, stack.logs())
    assert len(traces) == TRACED_REQUESTS
    for trace in traces:
        spans = {s["spanID"]: s for s in trace["spans"]}
        (root,) = [s for s in spans.values() if not s["references"]]
        assert root["operationName"] == "rag request"
        children = [s for s in spans.values() if s is not root]
        assert {s["operationName"] for s in children} == STAGE_SPANS
        for child in children:
            (ref,) = child["references"]
            assert ref["refType"] == "CHILD_OF" and ref["spanID"] == root["spanID"]
            assert ref["traceID"] == trace["traceID"]
        tags = {
            t["key"]: t["value"]
            for t in next(c for c in children if c["operationName"] == RERANK_SPAN)["tags"]
        }
        assert tags[semconv.GEN_AI_OPERATION_NAME] == semconv.OPERATION_RERANK
        assert tags[semconv.GEN_AI_REQUEST_MODEL] == "ms-marco-MiniLM-L-6-v2"
        assert tags["span.kind"] == "internal"
        process = trace["processes"][root["processID"]]
        assert process["serviceName"] == service
        process_tags = {t["key"]: t["value"] for t in process["tags"]}
        assert process_tags.get("service.instance.id")  # set by configure()


def test_span_metrics_alert_fires_for_the_slow_reranker_only(stack: Stack) -> None:
    name = "RerankLatencyP95OverBudgetSpanMetrics"
    firing = backend.wait_for(
        f"{name} firing for rag-slow",
        lambda: stack.firing(name, "service_name", "rag-slow"),
        FIRE_DEADLINE_S,
        stack.logs(),
        every=1,
    )
    assert firing[0]["labels"]["source"] == "spanmetrics"
    # rag-fast is quiet because it is fast, not because it is silent.
    count = (
        'traces_span_metrics_calls_total{service_name="rag-fast", gen_ai_operation_name="rerank"}'
    )
    assert sum(float(r["value"][1]) for r in stack.query(count)) >= 10
    assert not [a for a in stack.alerts(name) if a["labels"].get("service_name") == "rag-fast"]


def test_in_app_alert_fires_through_the_collector_with_two_replicas(stack: Stack) -> None:
    name = "RerankLatencyP95OverBudget"
    firing = backend.wait_for(
        f"{name} firing for rag-slow",
        lambda: stack.firing(name, "job", "rag-slow"),
        FIRE_DEADLINE_S,
        stack.logs(),
        every=1,
    )
    assert firing[0]["labels"]["source"] == "app"
    assert not [a for a in stack.alerts(name) if a["labels"].get("job") == "rag-fast"]
    # Two replicas, two series (instance = service.instance.id), each one counter that only
    # grows: without distinct instance ids they would overwrite each other in the exporter.
    count = f'{render_rules.APP_COUNT}{{job="rag-slow", gen_ai_operation_name="rerank"}}'
    series = stack.query(count)
    assert len({r["metric"]["instance"] for r in series}) == 2, series
    resets = stack.query(f"resets({count}[1m])")
    assert all(float(r["value"][1]) == 0 for r in resets), resets


def test_jaeger_monitor_tab_reports_the_rerank_p95_in_ms(stack: Stack) -> None:
    """``/api/metrics/latencies`` (what the Monitor tab plots) is the induced p95, in ms."""
    params = urllib.parse.urlencode(
        {
            "service": "rag-slow",
            "quantile": "0.95",
            "spanKind": "internal",
            "groupByOperation": "true",
        }
    )
    url = f"{backend.jaeger_api(stack.jaeger)}/metrics/latencies?{params}"

    def rerank_p95() -> float | None:
        for metric in backend.get_json(url)["metrics"]:
            labels = {label["name"]: label["value"] for label in metric["labels"]}
            if labels.get("operation") == RERANK_SPAN:
                values = [p["gaugeValue"]["doubleValue"] for p in metric["metricPoints"]]
                values = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
                if values:
                    return float(values[-1])
        return None

    reported = backend.wait_for("Monitor tab latency of the rerank", rerank_p95, 90, stack.logs())
    # The expected p95, from the spans Jaeger stored (durations in µs) and the bucket layout:
    # every rerank lies in one bucket, (320, 500] ms, where histogram_quantile interpolates
    # linearly; the spread reranks are close to uniform over it, so the true p95 is near.
    durations_ms = sorted(
        s["duration"] / 1000
        for t in backend.jaeger_traces(stack.jaeger, "rag-slow")
        for s in t["spans"]
        if s["operationName"] == RERANK_SPAN
    )
    assert len(durations_ms) >= 20
    true_p95 = durations_ms[math.ceil(0.95 * len(durations_ms)) - 1]
    # At least the p95 lies in that bucket (a loaded machine may push a few reranks past it).
    assert durations_ms[0] > 320 and true_p95 <= 500, durations_ms
    print(f"Monitor tab rerank p95 {reported:.1f} ms; stored spans' p95 {true_p95:.1f} ms")
    assert reported == pytest.approx(true_p95, rel=0.10), (reported, true_p95)
