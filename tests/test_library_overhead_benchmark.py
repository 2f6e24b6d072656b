"""The library overhead benchmark's switching and its floor, on a short real run.

Every number the benchmark prints is a difference between cases switched in and out of one
process. If switching left a wrapper behind, the bare and A/A cases would be timed
instrumented; if the floor recorded less than ours, "ours / floor" would flatter or wrong
us. So a ``--quick`` run on two rows (faiss and the tiny cross-encoder) is held to
account here: no span from any uninstrumented case, exactly ours' spans from ours, and a
floor that writes the same spans, attributes and metric records. No timing is asserted
(speed targets live in the benchmark's output, not in tests); no peer venv is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "library_overhead.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "summary.json"
    done = _run(
        "--quick", "--rows", "faiss,predict-50", "--peers", "none",
        "--blocks", "2", "--calls", "5", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours/floor" in done.stdout
    summary: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return summary


EXPECTED_SPANS = {"faiss": "retrieval IndexFlatIP", "predict-50": "rerank tiny-cross-encoder"}


@pytest.mark.parametrize("row", sorted(EXPECTED_SPANS))
def test_uninstrumented_cases_make_no_span_and_ours_exactly_its_own(
    quick_run: dict[str, Any], row: str
) -> None:
    result = quick_run["rows"][row]
    spans = result["spans_per_call"]
    assert spans["bare"] == spans["A/A"] == spans["no SDK"] == 0
    assert spans["ours"] == spans["floor"] == 1
    assert result["span_names"]["ours"] == [EXPECTED_SPANS[row]]
    assert result["ours_recording"]["spans"] == [EXPECTED_SPANS[row]]


@pytest.mark.parametrize("row", sorted(EXPECTED_SPANS))
def test_floor_records_what_ours_records(quick_run: dict[str, Any], row: str) -> None:
    result = quick_run["rows"][row]
    ours, floor = result["ours_recording"], result["floor_recording"]
    assert ours["attribute_count"] > 5  # a real span of ours, not an empty one
    assert floor["attribute_count"] == ours["attribute_count"]
    assert floor["events"] == ours["events"]
    assert floor["metric_records"] == ours["metric_records"]
    assert ["gen_ai.client.operation.duration", 1] in ours["metric_records"]
    # and so did every span each case exported while timed
    assert result["attribute_counts"]["floor"] == result["attribute_counts"]["ours"]
    assert result["attribute_counts"]["ours"] == [ours["attribute_count"]]


def test_every_case_was_timed_in_every_block(quick_run: dict[str, Any]) -> None:
    assert quick_run["blocks"] == 2
    for result in quick_run["rows"].values():
        assert result["calls_per_block"] == 5
        for key in ("bare_us", "floor_us", "ours_us", "no_sdk_us", "aa_us"):
            assert isinstance(result[key], float)
        assert result["bare_us"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["--blocks", "0"],
        ["--calls", "many"],
        ["--rows", "encode-empty,nope"],
        ["--peers", "langfuse"],
        ["--budget-ms", "-1"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str]) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("library_overhead.py: error:"), lines
