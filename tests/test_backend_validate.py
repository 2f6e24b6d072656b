"""The shipped configs, checked by the programs that run them: our Collector and Jaeger v2.

``validate`` decodes a config into the components' Go structs (strictly typed: a YAML int
where Go wants a string fails), runs each component's own checks and the pipeline wiring,
without starting anything. Each shipped collector config validates as compose runs it (no
variables set: every ``${env:VAR:-default}`` takes its default) and as the live tests run it
(every port moved). Mutation tests show that validate catches the defects the structural
tests once asserted: the agent's DNS port as an int, and an unknown histogram unit. The
distribution holds exactly the component types the configs use.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import _backend as backend

pytestmark = pytest.mark.slow

COLLECTOR_CONFIGS = ["otelcol-config.yaml", "otelcol-agent.yaml", "otelcol-gateway.yaml"]
KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")


def validate(program: str, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [backend.binary(program), "validate", f"--config={config}"]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOSTNAME": "gateway-0", **env},
        check=False,
    )


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_validates_each_config_as_compose_runs_it(name: str) -> None:
    result = validate("otelcol-rerank", backend.COLLECTOR / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", COLLECTOR_CONFIGS)
def test_collector_validates_each_config_with_the_test_ports(name: str, tmp_path: Path) -> None:
    server = backend.collector(name, tmp_path, OTELCOL_JAEGER_ENDPOINT="127.0.0.1:1")
    result = validate("otelcol-rerank", backend.COLLECTOR / name, **server.env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_jaeger_validates_its_config() -> None:
    result = validate("jaeger", backend.COLLECTOR / "jaeger-config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def mutated(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (backend.COLLECTOR / name).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_validate_rejects_the_dns_port_as_an_int(tmp_path: Path) -> None:
    """The defect the structural test once asserted: ``port: 4317`` does not decode."""
    path = mutated(tmp_path, "otelcol-agent.yaml", 'port: "4317"', "port: 4317")
    result = validate("otelcol-rerank", path)
    assert result.returncode != 0
    assert "port" in result.stderr + result.stdout


def test_validate_rejects_an_unknown_span_metrics_unit(tmp_path: Path) -> None:
    path = mutated(tmp_path, "otelcol-config.yaml", "unit: ms", "unit: us")
    assert validate("otelcol-rerank", path).returncode != 0


def used_types() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for name in COLLECTOR_CONFIGS:
        config: dict[str, Any] = yaml.safe_load((backend.COLLECTOR / name).read_text("utf-8"))
        for kind in KINDS:
            used[kind] |= {cid.split("/", 1)[0] for cid in config.get(kind) or {}}
    return used


def test_distribution_has_exactly_the_components_the_configs_use() -> None:
    result = subprocess.run(
        [backend.binary("otelcol-rerank"), "components"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = yaml.safe_load(result.stdout)
    used = used_types()
    for kind in KINDS:
        built = {c["name"] for c in listed.get(kind) or []}
        assert used[kind] <= built, (kind, used[kind] - built)
    # Beyond what the configs use: only debug (for troubleshooting, docs/collector.md) and
    # the file exporter, both small.
    extra = {c["name"] for c in listed["exporters"]} - used["exporters"]
    assert extra <= {"debug", "file", "otlp_http"}, extra
