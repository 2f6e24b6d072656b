"""Live: the scale tier, one agent (otelcol-agent.yaml) in front of two gateways.

The agent load-balances spans by trace id; each gateway (otelcol-gateway.yaml) computes span
metrics from every span, then tail-samples what it forwards to its Jaeger. Each gateway gets
a Jaeger of its own, so where a trace's spans landed is visible: a trace stored in one Jaeger
and not the other, with all five spans, arrived whole at one gateway. Traffic, sent by
collector/loadgen.py through the agent: normal requests (fast reranks), requests that fail,
and requests whose rerank is slower than the budget the gateway's threshold is rendered
from. Expected: every error and every slow-rerank trace kept, about the configured share of
the normal ones, and the span-metric call counts of both gateways adding up to the requests
sent (they are computed before sampling).

The configs run as shipped with their ports (and the flush and decision-wait intervals) set
through their ``${env:VAR:-default}`` variables, except one thing the environment cannot
express: the agent's DNS resolver (one name resolving to every gateway) becomes a static
list of the two loopback gateways. The shipped DNS form is checked by ``validate``
(tests/test_backend_validate.py). Bounded: about a minute once the binaries are built.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import _backend as backend
from tests.test_collector_configs import render_rules

pytestmark = [pytest.mark.live, pytest.mark.slow]

NORMAL = 240
ERRORS = 12
SLOW = 5
TRACE_SPANS = 5


def sampling_percentage() -> float:
    config = yaml.safe_load((backend.COLLECTOR / "otelcol-gateway.yaml").read_text("utf-8"))
    policies = config["processors"]["tail_sampling"]["policies"]
    (share,) = [
        p["probabilistic"]["sampling_percentage"] for p in policies if p["type"] == "probabilistic"
    ]
    return float(share)


def agent_config(tmp: Path, gateways: list[str]) -> Path:
    config = yaml.safe_load((backend.COLLECTOR / "otelcol-agent.yaml").read_text("utf-8"))
    resolver = config["exporters"]["load_balancing"]["resolver"]
    assert set(resolver) == {"dns"}
    config["exporters"]["load_balancing"]["resolver"] = {"static": {"hostnames": gateways}}
    path = tmp / "otelcol-agent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Tier:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.jaegers = [backend.jaeger(tmp, name=f"jaeger-{i}") for i in (0, 1)]
        self.gateways = [
            backend.collector(
                "otelcol-gateway.yaml",
                tmp,
                name=f"gateway-{i}",
                HOSTNAME=f"gateway-{i}",
                OTELCOL_JAEGER_ENDPOINT=jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"],
                OTELCOL_SPANMETRICS_FLUSH_INTERVAL="1s",
                OTELCOL_DECISION_WAIT="3s",
            )
            for i, jaeger in enumerate(self.jaegers)
        ]
        hostnames = [g.env["OTELCOL_OTLP_GRPC_ENDPOINT"] for g in self.gateways]
        self.agent = backend.collector(agent_config(tmp, hostnames), tmp, name="agent")

    def servers(self) -> list[backend.Server]:
        return [*self.jaegers, *self.gateways, self.agent]

    def logs(self) -> list[Path]:
        return [s.log for s in self.servers()]

    def traces(self, service: str) -> list[list[dict[str, Any]]]:
        """Per Jaeger, the traces of ``service`` it holds."""
        return [backend.jaeger_traces(j, service) for j in self.jaegers]

    def calls(self, service: str, span_name: str) -> list[float]:
        """Per gateway, its span-metric call count for that span."""
        counts = []
        for gateway in self.gateways:
            text = backend.get_text(f"http://{gateway.env['OTELCOL_PROMETHEUS_ENDPOINT']}/metrics")
            samples = backend.prometheus_samples(
                text, "traces_span_metrics_calls_total", service_name=service, span_name=span_name
            )
            counts.append(sum(value for _, value in samples))
        return counts


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    tier = Tier(tmp_path_factory.mktemp("backend-tier"))
    with backend.running(*tier.servers()):
        for jaeger in tier.jaegers:
            backend.wait_jaeger(jaeger)
        for collector in [*tier.gateways, tier.agent]:
            backend.wait_healthy(collector)
        endpoint = backend.otlp_endpoints(tier.agent)["grpc"]
        slow_ms = str(render_rules.BUDGET_S * 1000 + 100)
        runs: list[subprocess.Popen[bytes]] = [
            backend.loadgen(tier.tmp, "tier-normal", endpoint, "grpc",
                            "--requests", str(NORMAL), "--rate", "40", "--rerank-ms", "2"),
            backend.loadgen(tier.tmp, "tier-errors", endpoint, "grpc",
                            "--requests", str(ERRORS), "--rate", "20", "--rerank-ms", "2",
                            "--error-share", "1"),
            backend.loadgen(tier.tmp, "tier-slow", endpoint, "grpc",
                            "--requests", str(SLOW), "--rate", "20", "--slow-share", "1",
                            "--slow-ms", slow_ms),
        ]  # fmt: skip
        try:
            for run in runs:
                assert run.wait(timeout=120) == 0
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
        yield tier


def test_span_metrics_count_every_request_before_sampling(tier: Tier) -> None:
    sent = {"tier-normal": NORMAL, "tier-errors": ERRORS, "tier-slow": SLOW}

    def counted() -> dict[str, float]:
        return {service: sum(tier.calls(service, "rag request")) for service in sent}

    # Waits until the counts match (the last spans are flushed a moment after the apps
    # exit); fails with the last counts otherwise.
    backend.wait_for("span metrics for every request", lambda: counted() == sent, 60, tier.logs())
    calls = tier.calls("tier-normal", "rag request")
    print(f"span-metric request counts per gateway: {calls}")
    assert all(c > 0 for c in calls), f"one gateway got no traffic: {calls}"
    assert counted() == sent  # and no more arrive


def test_every_trace_lands_whole_on_one_gateway(tier: Tier) -> None:
    def kept_all_errors() -> list[list[dict[str, Any]]] | None:
        per_jaeger = tier.traces("tier-errors")
        return per_jaeger if sum(map(len, per_jaeger)) == ERRORS else None

    backend.wait_for("every error trace in a Jaeger", kept_all_errors, 60, tier.logs())
    for service in ("tier-errors", "tier-slow", "tier-normal"):
        per_jaeger = tier.traces(service)
        ids = [{t["traceID"] for t in traces} for traces in per_jaeger]
        assert not ids[0] & ids[1], f"{service}: a trace split across gateways"
        for traces in per_jaeger:
            for trace in traces:
                assert len(trace["spans"]) == TRACE_SPANS, trace["traceID"]


def test_tail_sampling_keeps_errors_slow_reranks_and_a_share_of_the_rest(tier: Tier) -> None:
    def kept(service: str, expected: int) -> int | None:
        count = sum(map(len, tier.traces(service)))
        return count if count == expected else None

    backend.wait_for("every error trace kept", lambda: kept("tier-errors", ERRORS), 60, tier.logs())
    backend.wait_for(
        "every slow-rerank trace kept", lambda: kept("tier-slow", SLOW), 60, tier.logs()
    )
    normal = sum(map(len, tier.traces("tier-normal")))
    share = sampling_percentage() / 100
    print(f"kept {normal} of {NORMAL} normal traces (configured share {share:.0%})")
    # Binomial(240, 0.1): mean 24, sd 4.6; the bounds (6 and 45) are about 4 sd away.
    assert 0.25 * share * NORMAL <= normal <= 1.9 * share * NORMAL, normal


def test_agent_and_gateways_use_no_deprecated_names(tier: Tier) -> None:
    for collector in [*tier.gateways, tier.agent]:
        deprecated = [line for line in collector.text().splitlines() if "deprecat" in line.lower()]
        assert not deprecated, "\n".join(deprecated)
