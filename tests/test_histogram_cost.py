"""``benchmarks/histogram_cost.py``: the duration record's cost in place, by ablation.

Its numbers are only worth reading if each case records what its name says: the ablated
cases are ours and the floor less exactly their histogram records, nothing else.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from ._benchmark_script import BENCHMARKS, run_benchmark

pytest.importorskip("faiss")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark("histogram_cost.py", *args)


def _recorded(stdout: str) -> dict[str, str]:
    """Each case's name and what one of its calls recorded, from the report's case lines."""
    return {
        line[:24].strip(): line.split("   ")[-1].strip()
        for line in stdout.splitlines()
        if line.startswith("  ") and "span(s)" in line
    }


def test_each_case_records_what_its_name_says() -> None:
    done = _run("--rows", "faiss", "--blocks", "1", "--calls", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    with_record = "1 span(s) of 10 attributes, 1 histogram record(s)"
    without = "1 span(s) of 10 attributes, 0 histogram record(s)"
    assert recorded == {
        "ours": with_record,
        "ours, no hist": without,
        "floor": with_record,
        "floor, no hist": without,
    }
    assert "histogram records in place: ours " in done.stdout


def test_the_summary_given_records_what_ours_records() -> None:
    # Given rather than computed: the same attributes and records as ours and the floor.
    done = _run("--ablate", "summary", "--rows", "cohere", "--blocks", "1", "--calls", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    assert set(recorded) == {"ours", "ours, summary given", "floor"}
    assert len(set(recorded.values())) == 1, recorded
    assert "33 attributes, 2 histogram record(s)" in recorded["ours"]
    assert "summary computed in place: " in done.stdout


def test_each_piece_given_records_what_ours_records() -> None:
    # Each piece given rather than computed: the same attributes and records as ours.
    done = _run("--ablate", "pieces", "--rows", "predict-50", "--blocks", "1", "--calls", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    assert set(recorded) == {
        "ours",
        "summary given",
        "request given",
        "candidates given",
        "one-query check given",
        "arguments given",
        "floor",
    }
    assert len(set(recorded.values())) == 1, recorded
    assert "each piece in place:" in done.stdout


def test_the_hand_written_predict_records_what_ours_records() -> None:
    # The bound: set-up compares its span and records with ours' and stops on a difference,
    # so a run that reports numbers was checked.
    done = _run("--ablate", "bound", "--rows", "predict-50", "--blocks", "1", "--calls", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    assert set(recorded) == {"ours", "hand-written", "floor"}
    assert len(set(recorded.values())) == 1, recorded
    assert "32 attributes, 2 histogram record(s)" in recorded["ours"]
    assert "hand-written/floor " in done.stdout


@pytest.mark.parametrize(
    ("extra", "recording"),
    [
        ((), "11 attributes, 1 histogram record(s)"),
        (("--traces-only",), "11 attributes, 0 histogram record(s)"),
    ],
)
def test_the_hand_written_qdrant_leaf_records_what_ours_records(
    extra: tuple[str, ...], recording: str
) -> None:
    # The leaf's bound (its span made when the call returns, as ours'), with a meter
    # provider and with tracing alone: checked against ours' recording at set-up.
    pytest.importorskip("qdrant_client")
    done = _run("--ablate", "bound", "--rows", "qdrant", "--blocks", "1", "--calls", "3", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    assert set(recorded) == {"ours", "hand-written", "floor"}
    assert len(set(recorded.values())) == 1, recorded
    assert recording in recorded["ours"]


def test_ours_pure_python_records_what_ours_records() -> None:
    # The speed-ups switched off: the Python functions they stand in for, the same recording.
    pytest.importorskip("otel_rerank._speedups")
    done = _run("--ablate", "speedups", "--rows", "rank-50", "--blocks", "1", "--calls", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = _recorded(done.stdout)
    assert set(recorded) == {"ours", "ours, pure Python", "floor"}
    assert len(set(recorded.values())) == 1, recorded
    assert "32 attributes, 2 histogram record(s)" in recorded["ours"]
    assert "compiled speed-ups save in place: " in done.stdout


def test_the_bound_check_catches_a_hand_written_predict_that_records_otherwise() -> None:
    # The check itself: a recording less one attribute is not the same recording.
    environ = os.environ.copy()
    sys.path.insert(0, str(BENCHMARKS))
    try:  # the benchmark sets its environment defaults on import: undone after
        histogram_cost = importlib.import_module("histogram_cost")
        lo = importlib.import_module("library_overhead")
    finally:
        sys.path.remove(str(BENCHMARKS))
        os.environ.clear()
        os.environ.update(environ)
    span = ("rerank m", None, {"a": 1, "b": 2}, [])
    record = {"name": "d", "times": 1, "attributes": {"x": "y"}, "value": 0.5}
    same = lo.Recording([span], [record])
    other_value = lo.Recording([span], [{**record, "value": 0.7}])  # a duration: not compared
    less = lo.Recording([("rerank m", None, {"a": 1}, [])], [record])
    recorded = histogram_cost._what_is_recorded
    assert recorded(same) == recorded(other_value)
    assert recorded(same) != recorded(less)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ablate", "summary", "--rows", "faiss"), "no rerank summary on faiss"),
        (("--ablate", "summary", "--peer", "traceverde"), "--peer goes with the histogram and"),
        (("--ablate", "pieces", "--rows", "cohere"), "takes predict-50, rank-50 only, not cohere"),
        (("--ablate", "pieces", "--peer", "traceverde"), "--peer goes with the histogram and"),
        (("--ablate", "bound", "--rows", "rank-50"), "takes predict-50, qdrant only, not rank-50"),
        (("--traces-only",), "--traces-only records no histogram: choose another --ablate"),
        (("--ablate", "speedups", "--rows", "faiss"), "takes predict-50, rank-50 only, not faiss"),
        (("--ablate", "nothing"), "invalid choice"),
        (("--rows", "faiss,nope"), "unknown rows nope"),
        (("--blocks", "0"), "expected a positive integer"),
        (("--peer", "openinference"), "openinference does not instrument chroma, qdrant"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
