"""``benchmarks/cold_call.py``: ours against the floor on a cross-encoder call whose caches a
real forward pass has just swept. A smoke run: every case runs, records what its name says
(checked by the script before timing), and the table has a row per case; bad input is one
line and exit 2."""

from __future__ import annotations

import subprocess

import pytest

from ._benchmark_script import run_benchmark

pytest.importorskip("sentence_transformers")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark("cold_call.py", *args)


def test_every_case_of_both_rows_runs_and_reads_against_its_floor() -> None:
    done = _run("--calls", "3", "--pieces")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for row in ("predict-50", "rank-50"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{row}: bare"))
        table = lines[start + 2 : start + 2 + 16]
        cases = {line[:26].strip(): line for line in table}
        pieces = ("no summary", "no request", "no candidates", "start only")
        assert set(cases) == {
            "bare",
            "A/A",
            "floor",
            "ours",
            "no SDK",
            "ours, pure Python",
            "ours, Python replacement",
            "no SDK, Python replacement",
            *pieces,
            *(f"floor, {p}" for p in pieces),
        }
        assert cases["bare"].split()[1:] == ["+0.0", "µs", "+0.0", "µs"]
        for label in ("ours", *pieces):  # each read against the floor recording the same
            assert float(cases[label].split()[-1]) > 0, cases[label]


def test_each_reader_is_timed_alone_against_an_empty_call() -> None:
    done = _run("--calls", "3", "--readers", "--rows", "rank-50")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank-50: ours' readers"))
    readers = [line[:26].strip() for line in lines[start + 2 : start + 12]]
    assert readers == [
        "empty call",
        "start",
        "bind arguments",
        "candidates",
        "request",
        "max length",
        "device",
        "summary (Tensor)",  # rank's predict returns a tensor
        "cache lookup: .of()",
        "cache lookup: called",
    ]
    assert lines[start + 2].split()[2:] == ["+0.0", "µs", "+0.0", "µs"]


@pytest.mark.parametrize("args", [["--rows", "nope"], ["--calls", "0"]])
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "error" in done.stderr
