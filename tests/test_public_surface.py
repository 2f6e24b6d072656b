"""The package's public surface: a short, deliberate list, and one version."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import tomllib

import otel_rerank

ROOT = Path(__file__).resolve().parents[1]


def test_the_top_level_exports_only_the_public_api() -> None:
    assert sorted(otel_rerank.__all__) == sorted(
        [
            "instrument",
            "uninstrument",
            "configure",
            "ConfigurationError",  # what configure raises
            "Configured",  # what configure returns
            "embedding",
            "retrieval",
            "rerank",
            "llm",
            "request",
            "feedback",
            "ShadowReranker",
            "RerankBudget",
            "__version__",
        ]
    )
    for name in otel_rerank.__all__:
        assert hasattr(otel_rerank, name), name
    assert not hasattr(otel_rerank, "StageSpan")
    assert not hasattr(otel_rerank, "ContentPolicy")


def test_test_helpers_are_not_shipped() -> None:
    from otel_rerank import models

    assert not hasattr(models, "build_tiny_cross_encoder")


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/otel_rerank/version.py"
    assert importlib.metadata.version("otel-rerank") == otel_rerank.__version__
    shown = subprocess.run(
        [sys.executable, "-m", "otel_rerank.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == f"otel-rerank {otel_rerank.__version__}"
