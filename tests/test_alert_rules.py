"""The shipped Prometheus/Alertmanager files, checked by the real promtool and amtool.

``make test`` builds promtool and amtool of the Prometheus 3 and Alertmanager releases that
compose.yaml pins, from Go modules (scripts/build-backend.sh), so these run in CI; without
the binaries they skip and say which is missing. Besides ``check config``/``check rules``/
``test rules`` on the committed files, mutation tests prove the promtool unit tests can
fail: a wrong threshold and an ``le`` matcher that matches nothing both break them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests._backend import COLLECTOR
from tests._backend import binary as tool


def run(*args: str, cwd: Path = COLLECTOR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_config() -> None:
    result = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = run(tool("promtool"), "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_check_config() -> None:
    result = run(tool("amtool"), "check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _mutated_rules(tmp_path: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    promtool = tool("promtool")
    text = (COLLECTOR / "alerts.yml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    (tmp_path / "alerts.yml").write_text(text.replace(old, new), encoding="utf-8")
    shutil.copy(COLLECTOR / "alerts.test.yml", tmp_path / "alerts.test.yml")
    return run(promtool, "test", "rules", "alerts.test.yml", cwd=tmp_path)


def test_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    result = _mutated_rules(tmp_path, ") > 0.05", ") > 0.5")
    assert result.returncode != 0
    assert "RerankLatencyP95OverBudget" in result.stdout + result.stderr


def test_unit_tests_catch_a_threshold_that_fires_too_early(tmp_path: Path) -> None:
    result = _mutated_rules(tmp_path, ") > 0.05", ") > 0.01")
    assert result.returncode != 0


def test_unit_tests_catch_an_le_matcher_that_matches_nothing(tmp_path: Path) -> None:
    """A plain ``le="1.50"`` is the silent failure the facts sheet warns about."""
    result = _mutated_rules(tmp_path, 'le=~"1\\\\.5"', 'le="1.50"')
    assert result.returncode != 0


def test_unit_tests_catch_a_missing_no_traffic_guard(tmp_path: Path) -> None:
    """Without the ratio (0/0 -> NaN), an idle service would look 100 % slow."""
    result = _mutated_rules(
        tmp_path,
        "/\n              sum by (job) (rate(gen_ai_client_operation_duration_seconds_count"
        '{gen_ai_operation_name="rerank", rag_rerank_shadow!="true"}[5m]))',
        "/\n              1",
    )
    assert result.returncode != 0
