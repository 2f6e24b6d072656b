"""``benchmarks/opcode_counts.py``: exact, load-free counts of the Python work per call.

The counts are only worth printing if they are the same on every run and if the floor and
ours record the same thing (else a smaller count could be less recording, not less work).
"""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from ._benchmark_script import run_benchmark

pytest.importorskip("faiss")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark("opcode_counts.py", *args)


def test_ours_and_the_floor_record_the_same_and_count_the_same_twice() -> None:
    first, second = _run("--rows", "faiss", "--calls", "3"), _run("--rows", "faiss", "--calls", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [
        line.replace("no SDK", "no-SDK").split()
        for line in first.stdout.splitlines()
        if "faiss" in line
    ]
    cases = {row[3]: row for row in rows}  # "faiss IndexFlatIP.search k=10 <case> ..."
    assert set(cases) == {"ours", "no-SDK", "floor"}
    recorded = {case: " ".join(row[6:]) for case, row in cases.items()}
    expected = "1 span(s), 10 attributes, 1 histogram record(s)"
    assert recorded["ours"] == recorded["floor"] == expected
    assert float(cases["floor"][5]) == 1.0 and int(cases["ours"][4]) > int(cases["floor"][4])
    # With no SDK the patched method checks and calls the original: compiled, no bytecode of
    # ours; the Python replacement (a build without a C compiler) runs its check's few.
    compiled = importlib.util.find_spec("otel_rerank._speedups") is not None
    assert int(cases["no-SDK"][4]) == 0 if compiled else int(cases["no-SDK"][4]) <= 20
    assert recorded["no-SDK"] == "0 span(s), 0 attributes, 0 histogram record(s)"
    assert first.stdout == second.stdout  # exact: no timing, no noise


def test_a_bad_row_is_one_line_and_exit_2() -> None:
    done = _run("--rows", "faiss,nope")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "unknown rows ['nope']" in done.stderr


def test_by_function_lists_our_functions_within_ours() -> None:
    # Each function's count is part of ours' (the tracer's own work is not counted), and the
    # generic wrapper is among them on every row.
    done = _run("--rows", "faiss", "--calls", "3", "--by-function", "5")
    assert done.returncode == 0, done.stderr[-3000:]
    ours = next(line.split() for line in done.stdout.splitlines() if " ours " in line)
    listed = done.stdout.split("bytecodes per call\n", 1)[1].splitlines()
    assert len(listed) == 5
    counts = [float(line.split()[0]) for line in listed]
    assert counts == sorted(counts, reverse=True) and 0 < sum(counts) <= float(ours[4])
    assert any("_base.py:Method." in line for line in listed)
    bad = _run("--rows", "faiss", "--by-function", "-1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_traces_only_records_no_metric_and_counts_less_than_with_one() -> None:
    # As library_overhead.py --traces-only: a TracerProvider alone, so neither ours nor the
    # floor records a metric point, and both count fewer bytecodes than with a MeterProvider.
    def counts(*extra: str) -> dict[str, tuple[int, str]]:
        done = _run("--rows", "faiss", "--calls", "3", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = [line.split() for line in done.stdout.splitlines() if "faiss" in line]
        return {row[3]: (int(row[4]), " ".join(row[6:])) for row in rows if row[3] != "no"}

    traces, both = counts("--traces-only"), counts()
    for case in ("ours", "floor"):
        assert traces[case][1] == "1 span(s), 10 attributes, 0 histogram record(s)"
        assert traces[case][0] < both[case][0]
