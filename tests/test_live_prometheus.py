"""Live: a real Prometheus scrapes instrumented pipelines and fires the shipped alert.

Two copies of collector/loadgen.py run as subprocesses, each serving its metrics on a free
loopback port through the Python ``PrometheusMetricReader``: ``rag-slow`` whose reranks
take longer than the budget, and ``rag-fast`` whose reranks do not. A real Prometheus 3
(built from Go modules by ``make test``: scripts/build-backend.sh), started on a free
loopback port with a 1 s scrape/evaluation interval, loads ``alerts.yml`` rendered from
the *same template* with a test budget and short windows (``render_rules.RuleParams``).
The test waits until ``RerankLatencyP95OverBudget`` is firing for ``rag-slow`` and checks
that ``rag-fast``, which has traffic too, has no alert at all. Bounded: about 15–30 s, 90 s at most.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests._backend import binary
from tests._collectors import free_port

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
BUDGET_S = 0.25  # a documented budget and bucket boundary, so slow reranks stay short
SLOW_RERANK_MS = 300
FAST_RERANK_MS = 20
DEADLINE_S = 90


def load_render_rules() -> ModuleType:
    module_name = "_collector_render_rules"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, COLLECTOR / "render_rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def query(base: str, promql: str) -> dict[str, float]:
    """Instant query -> {job: value}."""
    data = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    return {r["metric"].get("job", ""): float(r["value"][1]) for r in data["data"]["result"]}


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two load generators and a Prometheus scraping them; yields Prometheus' base URL."""
    tmp_path = tmp_path_factory.mktemp("live-prometheus")
    prometheus = binary("prometheus")
    render_rules = load_render_rules()
    params = render_rules.RuleParams(budget_s=BUDGET_S, rate_window="10s", alert_for="2s")
    (tmp_path / "alerts.yml").write_text(render_rules.render_alerts(params), encoding="utf-8")

    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    jobs = {"rag-slow": SLOW_RERANK_MS, "rag-fast": FAST_RERANK_MS}
    targets = {}
    env = {**os.environ, "OTEL_SDK_DISABLED": "false"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    try:
        for job, rerank_ms in jobs.items():
            port = free_port()
            targets[job] = f"127.0.0.1:{port}"
            log = (tmp_path / f"{job}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(COLLECTOR / "loadgen.py"),
                        "--prometheus-port",
                        str(port),
                        "--service-name",
                        job,
                        "--rate",
                        "20",
                        "--rerank-ms",
                        str(rerank_ms),
                        "--duration",
                        str(DEADLINE_S + 30),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        scrape = "\n".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']"
            for job, target in targets.items()
        )
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [alerts.yml]\nscrape_configs:\n{scrape}\n",
            encoding="utf-8",
        )
        port = free_port()
        prometheus_log = (tmp_path / "prometheus.log").open("wb")
        logs.append(prometheus_log)
        procs.append(
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=prometheus_log,
            )
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            for proc in procs:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not become ready in 30 s"
            time.sleep(0.2)
        yield base
    finally:
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()


def alerts(base: str) -> list[dict[str, Any]]:
    return [
        a
        for a in get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
        if a["labels"]["alertname"] == "RerankLatencyP95OverBudget"
    ]


def test_shipped_rules_load(stack: str) -> None:
    groups = get_json(f"{stack}/api/v1/rules")["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"RerankLatencyP95OverBudget", "RerankLatencyP95OverBudgetSpanMetrics"} <= names
    assert all(r["health"] != "err" for g in groups for r in g["rules"])


def test_alert_fires_for_the_slow_reranker_and_not_for_the_fast_one(stack: str) -> None:
    start = time.monotonic()
    firing: list[dict[str, Any]] = []
    while time.monotonic() - start < DEADLINE_S:
        firing = [a for a in alerts(stack) if a["state"] == "firing"]
        if firing:
            break
        time.sleep(1)
    elapsed = time.monotonic() - start
    assert firing, f"no firing alert after {DEADLINE_S} s: {alerts(stack)}"
    print(f"RerankLatencyP95OverBudget firing after {elapsed:.1f} s")
    assert [a["labels"]["job"] for a in firing] == ["rag-slow"]
    assert firing[0]["labels"]["source"] == "app"

    # The fast service is quiet because it is fast, not because it is silent.
    rerank_count = 'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="rerank"}'
    calls = query(stack, f"sum by (job) ({rerank_count})")
    assert calls["rag-fast"] >= 20 and calls["rag-slow"] >= 5, calls
    assert not [a for a in alerts(stack) if a["labels"]["job"] == "rag-fast"]

    share = query(stack, "job:gen_ai_rerank_slower_than_budget:ratio_rate10s")
    assert share["rag-slow"] == pytest.approx(1.0)
    assert share["rag-fast"] == pytest.approx(0.0)
    p95 = query(
        stack,
        'job_gen_ai_operation_name:gen_ai_client_operation_duration_seconds:p95_rate10s{gen_ai_operation_name="rerank"}',
    )
    assert p95["rag-slow"] > BUDGET_S > p95["rag-fast"]


def test_dashboard_queries_return_the_live_series(stack: str) -> None:
    """The Grafana panels on the in-app histogram are valid PromQL that finds both services."""
    path = COLLECTOR / "grafana" / "dashboards" / "otel-rerank-stages.json"
    panels = json.loads(path.read_text(encoding="utf-8"))["panels"]
    checked = 0
    for target in (t for p in panels for t in p["targets"]):
        if "traces_span_metrics" in target["expr"]:
            continue  # span metrics need the collector, which this test does not run
        expr = target["expr"].replace("$job", ".*").replace("rate5m", "rate10s")
        result = query(stack, expr.replace("[5m]", "[10s]"))
        assert {"rag-slow", "rag-fast"} <= set(result), (expr, result)
        checked += 1
    assert checked >= 4
