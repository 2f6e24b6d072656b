"""Structural tests of the collector bundle in collector/: the design rules of its configs.

They read the YAML as compose runs it (every ``${env:VAR:-default}`` at its default) and
check what a reviewer would: every pipeline names components that exist, connectors sit
at both ends, memory_limiter is first and batch last, the spanmetrics buckets are the in-app
ones (in ms), the Prometheus names the rules query are what both sources really produce, the
gateway samples after computing span metrics, the committed rules equal what the one budget
renders, and compose points the app at the collector by ``OTEL_EXPORTER_OTLP_ENDPOINT`` only.
Whether the programs accept the configs, and what they do with them, is tested by running
them: tests/test_backend_validate.py (``validate``) and the live tests/test_backend_*.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from otel_rerank import semconv

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
COLLECTOR_CONFIGS = ["otelcol-config.yaml", "otelcol-agent.yaml", "otelcol-gateway.yaml"]
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")


_ENV_DEFAULT = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}")


def with_env_defaults(text: str) -> str:
    """The config text as the collector sees it with no variable set (compose's values)."""
    return _ENV_DEFAULT.sub(lambda m: m.group(1), text)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load(with_env_defaults((COLLECTOR / name).read_text(encoding="utf-8")))
    assert isinstance(data, dict), name
    return data


def load_script(name: str) -> ModuleType:
    """Import a script from collector/ (not a package) under a private module name."""
    module_name = f"_collector_{name.removesuffix('.py')}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, COLLECTOR / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


render_rules = load_script("render_rules.py")


def component_type(component_id: str) -> str:
    """``otlp/jaeger`` -> ``otlp``: the collector's type/name id syntax."""
    return component_id.split("/", 1)[0]


def pipelines(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    result = config["service"]["pipelines"]
    assert isinstance(result, dict) and result
    return result


def go_duration_seconds(text: str) -> Fraction:
    """Parse a Go duration such as ``75ms`` or ``1.25s`` exactly (no float rounding)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    assert match, f"not a simple Go duration: {text!r}"
    scale = {"ns": Fraction(1, 10**9), "us": Fraction(1, 10**6), "µs": Fraction(1, 10**6)}
    scale |= {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "h": Fraction(3600)}
    return Fraction(match.group(1)) * scale[match.group(2)]


def prometheus_name(otel_name: str, unit: str, kind: str = "histogram") -> str:
    """The Prometheus translator's name for an OTel metric (exporter default suffixes).

    Invalid characters become ``_``; a unit maps to a suffix (``s`` -> ``seconds``) unless the
    name already ends with it; counters get ``_total``. Braced units are dropped.
    """
    units = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}
    name = re.sub(r"[^a-zA-Z0-9_:]", "_", otel_name)
    suffix = units.get(unit, "") if not unit.startswith("{") else ""
    if suffix and not name.endswith(f"_{suffix}"):
        name = f"{name}_{suffix}"
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    return name


# -- every collector config ---------------------------------------------------------------


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_every_pipeline_names_defined_components(name: str) -> None:
    config = load(name)
    defined = {kind: set(config.get(kind) or {}) for kind in KINDS}
    for pipeline_id, pipeline in pipelines(config).items():
        assert component_type(pipeline_id) in ("traces", "metrics", "logs"), pipeline_id
        assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_id
        for receiver in pipeline["receivers"]:
            assert receiver in defined["receivers"] | defined["connectors"], (pipeline_id, receiver)
        for processor in pipeline.get("processors", []):
            assert processor in defined["processors"], (pipeline_id, processor)
        for exporter in pipeline["exporters"]:
            assert exporter in defined["exporters"] | defined["connectors"], (pipeline_id, exporter)
    for extension in config["service"].get("extensions", []):
        assert extension in defined["extensions"], extension


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_every_defined_component_is_used(name: str) -> None:
    """A defined-but-unused component is dead config that misleads readers."""
    config = load(name)
    used: set[str] = set(config["service"].get("extensions", []))
    for pipeline in pipelines(config).values():
        for kind in ("receivers", "processors", "exporters"):
            used |= set(pipeline.get(kind, []))
    for kind in KINDS:
        for component in config.get(kind) or {}:
            assert component in used, f"{kind}.{component} is defined but never used"


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_connectors_are_exporter_in_traces_and_receiver_in_metrics(name: str) -> None:
    config = load(name)
    for connector in config.get("connectors") or {}:
        as_exporter = [p for p, v in pipelines(config).items() if connector in v["exporters"]]
        as_receiver = [p for p, v in pipelines(config).items() if connector in v["receivers"]]
        assert as_exporter and as_receiver, connector
        if component_type(connector) == "span_metrics":
            assert all(component_type(p) == "traces" for p in as_exporter), as_exporter
            assert all(component_type(p) == "metrics" for p in as_receiver), as_receiver


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_memory_limiter_first_and_batch_last(name: str) -> None:
    for pipeline_id, pipeline in pipelines(load(name)).items():
        types = [component_type(p) for p in pipeline.get("processors", [])]
        assert types[0] == "memory_limiter", (pipeline_id, types)
        assert types[-1] == "batch", (pipeline_id, types)
        assert types.count("memory_limiter") == 1 and types.count("batch") == 1


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_memory_limiter_is_bounded_and_checked(name: str) -> None:
    limiter = load(name)["processors"]["memory_limiter"]
    assert "limit_mib" in limiter or "limit_percentage" in limiter
    assert go_duration_seconds(limiter["check_interval"]) > 0


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_otlp_receivers_listen_on_all_interfaces(name: str) -> None:
    """Since v0.104 an unset endpoint binds localhost, unreachable from other containers."""
    protocols = load(name)["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    if "http" in protocols:
        assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


# -- the single-tier collector --------------------------------------------------------------


def test_collector_receives_grpc_and_http() -> None:
    assert set(load("otelcol-config.yaml")["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}


def test_collector_sends_traces_to_jaeger_over_otlp() -> None:
    config = load("otelcol-config.yaml")
    traces = pipelines(config)["traces"]
    # otlp_grpc, not the deprecated alias ``otlp`` (which logs a warning at every start).
    jaeger = [e for e in traces["exporters"] if component_type(e) == "otlp_grpc"]
    assert len(jaeger) == 1
    exporter = config["exporters"][jaeger[0]]
    assert exporter["endpoint"] == "jaeger:4317"
    assert exporter["tls"]["insecure"] is True
    assert "span_metrics" in traces["exporters"]


def spanmetrics_configs() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in COLLECTOR_CONFIGS:
        for cid, cfg in (load(name).get("connectors") or {}).items():
            # span_metrics, not the deprecated alias ``spanmetrics``.
            if component_type(cid) == "span_metrics":
                yield name, cfg


def test_spanmetrics_is_configured_in_the_collector_and_the_gateway() -> None:
    assert sorted(name for name, _ in spanmetrics_configs()) == [
        "otelcol-config.yaml",
        "otelcol-gateway.yaml",
    ]


@pytest.mark.parametrize("cfg", [c for _, c in spanmetrics_configs()])
def test_spanmetrics_buckets_equal_the_in_app_buckets(cfg: dict[str, Any]) -> None:
    """Same durations; the connector writes them in ms, the unit its histogram is in."""
    written = cfg["histogram"]["explicit"]["buckets"]
    assert [go_duration_seconds(b) for b in written] == [
        Fraction(str(b)) for b in semconv.DURATION_BUCKETS_S
    ]
    # As the exported le values: the in-app bounds (s) times 1000 (ms), exactly.
    assert all(b.endswith("ms") for b in written), written
    assert [Fraction(b.removesuffix("ms")) for b in written] == [
        Fraction(str(b)) * 1000 for b in semconv.DURATION_BUCKETS_S
    ]
    assert "exponential" not in cfg["histogram"]


@pytest.mark.parametrize("cfg", [c for _, c in spanmetrics_configs()])
def test_spanmetrics_unit_dimensions_exemplars_namespace(cfg: dict[str, Any]) -> None:
    # Pinned to ms: Jaeger's Monitor tab shows the values as ms whatever its latency_unit.
    assert cfg["histogram"]["unit"] == "ms"
    assert [d["name"] for d in cfg["dimensions"]] == [
        semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_REQUEST_MODEL,
        semconv.RAG_RERANK_SHADOW,
    ]
    assert cfg["exemplars"]["enabled"] is True
    assert cfg["namespace"] == "traces.span.metrics"


def test_both_metric_sources_reach_the_prometheus_exporter() -> None:
    config = load("otelcol-config.yaml")
    by_receiver = {tuple(p["receivers"]): p for p in pipelines(config).values()}
    app_metrics = [p for pid, p in pipelines(config).items() if component_type(pid) == "metrics"]
    assert by_receiver[("otlp",)]  # the app's OTLP metrics have a pipeline
    assert by_receiver[("span_metrics",)]["exporters"] == ["prometheus"]
    assert all("prometheus" in p["exporters"] for p in app_metrics)
    assert config["exporters"]["prometheus"]["endpoint"] == "0.0.0.0:8889"
    # Exemplars only travel in OpenMetrics.
    assert config["exporters"]["prometheus"]["enable_open_metrics"] is True


# -- the two-tier (agent -> gateway) variant -----------------------------------------------


def test_agent_load_balances_traces_by_trace_id_to_the_gateways() -> None:
    agent = load("otelcol-agent.yaml")
    lb = agent["exporters"]["load_balancing"]
    assert lb["routing_key"] == "traceID"
    assert "endpoint" not in lb["protocol"]["otlp"]  # the resolver supplies endpoints
    assert lb["resolver"]["dns"]["hostname"] == "otel-gateway"
    # A Go string field: an int does not decode (tests/test_backend_validate.py proves it).
    assert lb["resolver"]["dns"]["port"] == "4317"
    agent_pipes = pipelines(agent)
    assert agent_pipes["traces"]["exporters"] == ["load_balancing"]
    # Metrics are never routed by trace id.
    assert "load_balancing" not in agent_pipes["metrics"]["exporters"]
    gateway = load("otelcol-gateway.yaml")
    assert gateway["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_gateway_computes_span_metrics_before_sampling() -> None:
    gateway = load("otelcol-gateway.yaml")
    pipes = pipelines(gateway)
    to_spanmetrics = [p for p in pipes.values() if "span_metrics" in p["exporters"]]
    sampled = [p for p in pipes.values() if "tail_sampling" in p.get("processors", [])]
    assert len(to_spanmetrics) == 1 and len(sampled) == 1
    # Same receiver, fanned out: span metrics see every span, sampling only decides storage.
    assert to_spanmetrics[0]["receivers"] == sampled[0]["receivers"] == ["otlp"]
    assert "tail_sampling" not in to_spanmetrics[0].get("processors", [])
    assert "span_metrics" not in sampled[0]["exporters"]
    assert sampled[0]["exporters"] == ["otlp_grpc/jaeger"]


def test_gateway_keeps_errors_slow_reranks_and_a_share_of_the_rest() -> None:
    policies = load("otelcol-gateway.yaml")["processors"]["tail_sampling"]["policies"]
    by_type = {p["type"]: p for p in policies}
    assert set(by_type) == {"status_code", "ottl_condition", "probabilistic"}
    assert by_type["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert 0 < by_type["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    (condition,) = by_type["ottl_condition"]["ottl_condition"]["span"]
    assert f'attributes["{semconv.GEN_AI_OPERATION_NAME}"] == "{semconv.OPERATION_RERANK}"' in (
        condition
    )
    threshold_ns = int(re.search(r"> (\d+)$", condition).group(1))  # type: ignore[union-attr]
    assert Fraction(threshold_ns, 10**9) == Fraction(str(render_rules.BUDGET_S))


def test_gateway_series_stay_apart_across_replicas() -> None:
    """Several gateways emit span metrics for one service; a per-gateway label keeps them apart."""
    exporter = load("otelcol-gateway.yaml")["exporters"]["prometheus"]
    assert exporter["const_labels"]["gateway"] == "${env:HOSTNAME}"
    # The connector's collector.instance.id dimension is not excluded either.
    for _, cfg in spanmetrics_configs():
        assert "collector.instance.id" not in cfg.get("exclude_dimensions", [])


# -- metric names: what the rules query is what the sources produce --------------------------


def test_prometheus_names_of_both_sources() -> None:
    app = prometheus_name(semconv.METRIC_OPERATION_DURATION, "s")
    assert f"{app}_bucket" == semconv.PROMETHEUS_DURATION_BUCKET == render_rules.APP_BUCKET
    assert f"{app}_count" == semconv.PROMETHEUS_DURATION_COUNT == render_rules.APP_COUNT
    for _, cfg in spanmetrics_configs():
        span = prometheus_name(f"{cfg['namespace']}.duration", cfg["histogram"]["unit"])
        assert span == "traces_span_metrics_duration_milliseconds"
        assert f"{span}_bucket" == render_rules.SPAN_BUCKET
        assert f"{span}_count" == render_rules.SPAN_COUNT
        calls = prometheus_name(f"{cfg['namespace']}.calls", "", kind="counter")
        assert calls == "traces_span_metrics_calls_total"


def test_translator_follows_the_documented_examples() -> None:
    assert prometheus_name("traces.span.metrics.duration", "ms") == (
        "traces_span_metrics_duration_milliseconds"
    )
    assert prometheus_name("a.b_seconds", "s") == "a_b_seconds"
    assert prometheus_name("rag.rerank.candidates", "{candidate}") == "rag_rerank_candidates"


def test_python_prometheus_reader_produces_the_names_the_rules_use(otel: Any) -> None:
    """The real PrometheusMetricReader, fed by a decorated rerank, spells the rule's names."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import REGISTRY, generate_latest

    import otel_rerank

    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    try:
        otel_rerank.instrument(tracer_provider=otel.tracer_provider, meter_provider=meter_provider)

        @otel_rerank.rerank(model="bge")
        def rerank(query: str, documents: list[str]) -> list[float]:
            return [0.5 for _ in documents]

        rerank("q", ["a", "b"])
        text = generate_latest(REGISTRY).decode()
    finally:
        meter_provider.shutdown()  # unregisters the reader's collector from REGISTRY
    le = f'le="{render_rules.BUDGET_S!r}"'
    bucket = re.search(rf"^{render_rules.APP_BUCKET}{{([^}}]*)}} ", text, re.M)
    assert bucket, text
    assert f'gen_ai_operation_name="{semconv.OPERATION_RERANK}"' in text
    assert any(le in line for line in text.splitlines() if line.startswith(render_rules.APP_BUCKET))
    assert re.search(rf"^{render_rules.APP_COUNT}{{", text, re.M)


def test_rules_query_only_names_the_sources_produce() -> None:
    rules = yaml.safe_load((COLLECTOR / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    produced = {
        render_rules.APP_BUCKET,
        render_rules.APP_COUNT,
        render_rules.SPAN_BUCKET,
        render_rules.SPAN_COUNT,
    }
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for expr in exprs:
        for name in re.findall(r"\b([a-z_:][a-z0-9_:]*)(?=\{|\[)", expr):
            assert name in produced | recorded, (name, expr)
    # Both the in-app and the span-metrics alert exist, on their own source each.
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert render_rules.APP_BUCKET in alerts["RerankLatencyP95OverBudget"]
    assert render_rules.SPAN_BUCKET in alerts["RerankLatencyP95OverBudgetSpanMetrics"]


# -- the one budget ---------------------------------------------------------------------------


def test_committed_files_equal_what_the_budget_renders() -> None:
    for path, text in render_rules.rendered_files().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run python collector/render_rules.py"
        )
    assert render_rules.main(["--check"]) == 0


def test_render_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("alerts.yml.in", "alerts.yml", "alerts.test.yml", "otelcol-gateway.yaml"):
        shutil.copy(COLLECTOR / name, tmp_path / name)
    (tmp_path / "alerts.yml").write_text("groups: []\n", encoding="utf-8")
    monkeypatch.setattr(render_rules, "HERE", tmp_path)
    assert render_rules.main(["--check"]) == 1
    assert render_rules.main([]) == 0
    assert (tmp_path / "alerts.yml").read_text(encoding="utf-8") == render_rules.render_alerts()


def test_budget_is_a_documented_bucket_boundary() -> None:
    assert render_rules.BUDGET_S in semconv.DOCUMENTED_BUDGETS_S
    assert render_rules.BUDGET_S in semconv.DURATION_BUCKETS_S
    assert tuple(render_rules.DURATION_BUCKETS_S) == semconv.DURATION_BUCKETS_S


def test_a_budget_off_the_boundaries_is_refused() -> None:
    with pytest.raises(ValueError, match="not a bucket boundary"):
        render_rules.render_alerts(render_rules.RuleParams(budget_s=1.6))


def test_budget_and_window_reach_every_expression() -> None:
    text = render_rules.render_alerts(
        render_rules.RuleParams(budget_s=2.0, rate_window="30s", alert_for="1m")
    )
    rules = yaml.safe_load(text)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) == 2
    for alert in alerts:
        assert alert["for"] == "1m"
        # The in-app histogram is in seconds, the span metrics in milliseconds.
        le = "2000" if render_rules.SPAN_BUCKET in alert["expr"] else "2"
        assert f'le=~"{le}(\\\\.0)?"' in alert["expr"]
        assert "[30s]" in alert["expr"] and "[5m]" not in alert["expr"]
        assert alert["expr"].rstrip().endswith("> 0.05")
    assert "@{" not in text


@pytest.mark.parametrize(
    ("bound", "matches", "misses"),
    [
        (1.5, ["1.5"], ["1.50", "15", "1x5"]),
        (2.0, ["2", "2.0"], ["20", "2.5"]),
        (0.25, ["0.25"], ["0.250001"]),
        (60.0, ["60", "60.0"], ["6"]),
    ],
)
def test_le_matcher_accepts_every_spelling_of_the_bound(
    bound: float, matches: list[str], misses: list[str]
) -> None:
    # PromQL string body -> regex: "\\." in the PromQL string is "\." in the regex.
    pattern = render_rules.le_matcher(bound).replace("\\\\", "\\")
    for text in matches:
        assert re.fullmatch(pattern, text), (pattern, text)
    for text in misses:
        assert not re.fullmatch(pattern, text), (pattern, text)


# -- Prometheus, Jaeger and compose wiring --------------------------------------------------


def test_jaeger_reads_the_span_metrics_the_collector_writes() -> None:
    jaeger = load("jaeger-config.yaml")
    query = jaeger["extensions"]["jaeger_query"]["storage"]
    storage = jaeger["extensions"]["jaeger_storage"]
    assert query["traces"] in storage["backends"]
    prom = storage["metric_backends"][query["metrics"]]["prometheus"]
    (_, spanmetrics), *_ = spanmetrics_configs()
    assert prom["metric_namespace"] == prometheus_name(spanmetrics["namespace"], "")
    # The exporter adds _total and the unit suffix, so Jaeger must add them too.
    assert prom["normalize_calls"] is True and prom["normalize_duration"] is True
    # Jaeger passes values through unscaled and the Monitor tab reads them as ms: both ms.
    assert prom["latency_unit"] == spanmetrics["histogram"]["unit"] == "ms"
    assert prom["endpoint"] == "http://prometheus:9090"
    assert jaeger["exporters"]["jaeger_storage_exporter"]["trace_storage"] == query["traces"]
    assert jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert set(jaeger["service"]["extensions"]) == {"jaeger_storage", "jaeger_query"}


def test_prometheus_scrapes_the_collector_and_alerts_alertmanager() -> None:
    prom = load("prometheus.yml")
    assert prom["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    collector = jobs["otel-collector"]
    assert collector["static_configs"][0]["targets"] == ["collector:8889"]
    assert collector["honor_labels"] is True  # job = the app's service.name
    targets = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


def compose() -> dict[str, Any]:
    return load("compose.yaml")


def test_compose_brings_up_the_whole_stack() -> None:
    services = compose()["services"]
    assert {"collector", "jaeger", "prometheus", "alertmanager", "app"} <= set(services)
    assert services["collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", services["jaeger"]["image"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (COLLECTOR / source).exists(), (name, volume)


def test_compose_mounts_each_config_where_its_program_reads_it() -> None:
    services = compose()["services"]

    def mounts(service: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in services[service]["volumes"] if ":" in v}

    assert mounts("collector")["/etc/otelcol-contrib/config.yaml"] == "./otelcol-config.yaml"
    assert "--config=/etc/otelcol-contrib/config.yaml" in services["collector"]["command"]
    jaeger_cmd = services["jaeger"]["command"]
    assert mounts("jaeger")[jaeger_cmd[jaeger_cmd.index("--config") + 1]] == "./jaeger-config.yaml"
    assert mounts("prometheus")["/etc/prometheus/prometheus.yml"] == "./prometheus.yml"
    # prometheus.yml names its rule file relative to itself.
    assert mounts("prometheus")["/etc/prometheus/alerts.yml"] == "./alerts.yml"
    assert mounts("alertmanager")["/etc/alertmanager/alertmanager.yml"] == "./alertmanager.yml"
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]


def test_compose_points_the_app_at_the_collector_by_the_endpoint_variable_only() -> None:
    services = compose()["services"]
    env = services["app"]["environment"]
    exporter_vars = [k for k in env if k.startswith("OTEL_EXPORTER_")]
    assert exporter_vars == ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname == "collector"
    # No protocol variable: otel-rerank's default is http/protobuf, the collector's :4318.
    collector = load("otelcol-config.yaml")["receivers"]["otlp"]["protocols"]
    assert collector["http"]["endpoint"].endswith(f":{endpoint.port}")
    command = " ".join(services["app"]["command"])
    assert "collector" not in command.replace("collector/loadgen.py", "")
    # The collector's exporter and Jaeger's receiver agree on where traces go.
    assert load("otelcol-config.yaml")["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"


def go_requirement(module_dir: str, module: str) -> str:
    """The version of ``module`` that collector/<module_dir>/go.mod builds."""
    text = (COLLECTOR / module_dir / "go.mod").read_text(encoding="utf-8")
    match = re.search(rf"^\s*{re.escape(module)} (v\S+)", text, re.M)
    assert match, (module_dir, module)
    return match.group(1)


def test_compose_pins_the_releases_the_tests_build() -> None:
    """What the tests run from Go modules is what compose runs from images."""
    images = {name: s["image"].rsplit(":", 1)[1] for name, s in compose()["services"].items()}
    contrib = "github.com/open-telemetry/opentelemetry-collector-contrib"
    collector = go_requirement("distribution", f"{contrib}/connector/spanmetricsconnector")
    assert images["collector"] == collector.removeprefix("v")
    # Jaeger v2 releases are tagged v1.(63 + minor) as Go modules: v1.76.0 is Jaeger 2.13.0.
    jaeger = go_requirement("jaeger", "github.com/jaegertracing/jaeger")
    major, minor, patch = (int(x) for x in jaeger.removeprefix("v").split("."))
    assert (major, images["jaeger"]) == (1, f"2.{minor - 63}.{patch}")
    # Prometheus 3.x.y is the Go module v0.3xx.y.
    prometheus = go_requirement("prometheus", "github.com/prometheus/prometheus")
    _, minor, patch = (int(x) for x in prometheus.removeprefix("v").split("."))
    assert images["prometheus"] == f"v3.{minor - 300}.{patch}"
    alertmanager = go_requirement("prometheus", "github.com/prometheus/alertmanager")
    assert images["alertmanager"] == alertmanager


def test_loadgen_names_the_endpoint_compose_gives_it() -> None:
    """The demo app's docstring tells users the endpoint compose really sets."""
    endpoint = compose()["services"]["app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    doc = load_script("loadgen.py").__doc__
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}" in doc
    assert re.findall(r"OTEL_EXPORTER_OTLP_ENDPOINT=(\S+?)``", doc) == [endpoint]


def test_docs_list_every_span_metrics_label() -> None:
    """docs/collector.md's series table names every dimension, and collector_instance_id."""
    docs = (ROOT / "docs" / "collector.md").read_text(encoding="utf-8")
    (row,) = [line for line in docs.splitlines() if line.startswith("| span metrics |")]
    for _, cfg in spanmetrics_configs():
        for dimension in cfg["dimensions"]:
            assert f"`{re.sub(r'[^a-zA-Z0-9_]', '_', dimension['name'])}`" in row, dimension
    assert "`collector_instance_id`" in row
    assert "traces_span_metrics_duration_milliseconds_" in row


# -- Grafana dashboard ------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    path = COLLECTOR / "grafana" / "dashboards" / "otel-rerank-stages.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_dashboard_queries_only_series_that_exist() -> None:
    rules = yaml.safe_load((COLLECTOR / "alerts.yml").read_text(encoding="utf-8"))
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    produced = {
        render_rules.APP_COUNT,
        render_rules.SPAN_COUNT,
        prometheus_name("traces.span.metrics.calls", "", kind="counter"),
    }
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    assert len(exprs) >= 6
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)(?=\{|\[)", expr))
        assert names and names <= recorded | produced, (names - recorded - produced, expr)
        used |= names
    # Every per-stage p50/p95 recording rule is on the dashboard.
    assert {r for r in recorded if ":p50_" in r or ":p95_" in r} <= used


def test_dashboard_uses_the_provisioned_data_source() -> None:
    provisioning = COLLECTOR / "grafana" / "provisioning"
    (source,) = load_any(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for panel in dashboard()["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    (provider,) = load_any(provisioning / "dashboards" / "otel-rerank.yaml")["providers"]
    mounts = dict(reversed(v.split(":")[:2]) for v in compose()["services"]["grafana"]["volumes"])
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"


def load_any(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))
