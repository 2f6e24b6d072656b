"""The command line's usage paths: bad input is one line on stderr and exit status 2.

Argparse's own complaints (an unknown option, a value of the wrong type, no subcommand) and
each subcommand's checks (``UsageError``) end the same way, never with a traceback or
argparse's usage dump; every subcommand is registered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otel_rerank.cli import EXIT_USAGE, build_parser, main


def test_every_subcommand_is_registered() -> None:
    parser = build_parser()
    for command in ("demo", "bench", "report"):
        assert parser.parse_args([command]).command == command


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], "otel-rerank: error: argument command: invalid choice: 'frobnicate'"),
        (["--no-such-option"], "otel-rerank: error: "),
        (["report", "--budget-ms", "soon"], "otel-rerank report: error: argument --budget-ms"),
        (["bench", "--repeats", "x"], "otel-rerank bench: error: argument --repeats"),
        (["demo", "--queries", "1.5"], "otel-rerank demo: error: argument --queries"),
        (["report", "--budget-ms", "0"], "otel-rerank report: error: --budget-ms must be"),
        (["report", "{missing}"], "otel-rerank report: error: "),
        (["bench", "--k", "0"], "otel-rerank bench: error: --k must be positive, got 0"),
        (["bench", "--queries", "{missing}"], "otel-rerank bench: error: no such file: "),
        (["demo", "--queries", "0"], "otel-rerank demo: error: --queries must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{missing}", str(tmp_path / "missing.jsonl")) for a in argv]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse exits from inside parse_args
        status = exit_.code  # type: ignore[assignment]
    captured = capsys.readouterr()
    assert status == EXIT_USAGE
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(message), lines[0]


def test_no_arguments_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("usage: otel-rerank")


def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "otel_rerank.cli", "report", str(tmp_path / "missing.jsonl")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("otel-rerank report: error: ")
