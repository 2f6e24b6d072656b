"""``otel-rerank report``'s input: whatever the file or Jaeger holds, it works or says one line.

The OTLP-JSON and Jaeger readers are fuzzed with arbitrary nested JSON and odd numbers
(hypothesis): every input either gives a report or exit status 2 with one line on stderr,
never a traceback. The cases the red team found are pinned one by one.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_rerank import report
from otel_rerank.cli import main

T0 = 1_700_000_000_000_000_000


def _span(**overrides: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "POST /ask",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 5_000_000),
    }
    span.update(overrides)
    return span


def _request(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_one_line_error(status: int, err: str, message: str = "") -> None:
    assert status == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err


def test_deeply_nested_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 200_000 + "]" * 200_000 + "\n")
    status, _, err = _run(capsys, ["report", str(path)])
    _assert_one_line_error(status, err, f"{path}, line 1: JSON nested too deeply")


def test_a_deeply_nested_pretty_printed_document_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"resourceSpans":\n' + "[" * 100_000 + "]" * 100_000 + "}\n")
    status, _, err = _run(capsys, ["report", str(path)])
    _assert_one_line_error(status, err, "nested too deeply")


def test_deeply_nested_attribute_values_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth = 2000
    value = '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth
    line = json.dumps(_request(_span(attributes=[{"key": "k", "value": "VALUE"}])))
    path = tmp_path / "nested.jsonl"
    path.write_text(line.replace('"VALUE"', value) + "\n")
    status, _, err = _run(capsys, ["report", str(path)])
    _assert_one_line_error(status, err)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("1e400", str(T0), "malformed span"),  # JSON number too large for a float: inf
        ("Infinity", str(T0), "malformed span"),
        ("-Infinity", str(T0), "malformed span"),
        ("NaN", str(T0), "malformed span"),
        ('"1e400"', str(T0), "not a whole number"),
        ("1.5", "3", "not a whole number"),
        ("-1", str(T0), "outside 0..2^64"),
        (str(2**64), str(2**64 + 5), "outside 0..2^64"),
        ('"' + "9" * 5000 + '"', str(T0), "not a whole number"),
        (str(T0 + 10), str(T0), "ends before it starts"),
        ("true", str(T0), "malformed span"),
        ("null", str(T0), "malformed span"),
        ('{"a": 1}', str(T0), "malformed span"),
    ],
)
def test_odd_timestamps_are_one_line(
    start: str, end: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Written by hand: json.dumps cannot produce 1e400, and the point is what a file holds.
    line = (
        '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"a","spanId":"b","name":"x",'
        f'"startTimeUnixNano":{start},"endTimeUnixNano":{end}}}]}}]}}]}}'
    )
    assert json.loads(line)  # the file is JSON; only its numbers are odd
    path = tmp_path / "odd.jsonl"
    path.write_text(line + "\n")
    status, _, err = _run(capsys, ["report", str(path)])
    _assert_one_line_error(status, err, message)
    assert f"{path}, line 1" in err


@pytest.mark.parametrize("start", [T0, str(T0), float(2**60)])
def test_whole_numbers_in_any_json_form_are_read(start: Any) -> None:
    spans = report.parse_otlp_json(
        _request(_span(startTimeUnixNano=start, endTimeUnixNano=str(int(start) + 2_000_000)))
    )
    assert [s.duration_ms for s in spans] == [2.0]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "not a valid URL: http://[::1"),
        ("http://localhost:99999", "not a valid URL"),
        ("http://localhost:port", "not a valid URL"),
        ("ftp://127.0.0.1", "not an http(s) URL"),
        ("http://", "not an http(s) URL"),
    ],
)
def test_bad_jaeger_urls_are_one_line(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, ["report", "--jaeger", url, "--service", "svc"])
    _assert_one_line_error(status, err, message)


def test_odd_jaeger_numbers_are_malformed_not_a_crash() -> None:
    answer = {
        "data": [
            {
                "processes": {"p1": {"serviceName": "svc"}},
                "spans": [
                    {
                        "traceID": "1",
                        "spanID": "2",
                        "operationName": "x",
                        "startTime": math.inf,
                        "duration": 5,
                        "processID": "p1",
                    }
                ],
            }
        ]
    }
    with pytest.raises(report.TraceFileError, match="malformed Jaeger span"):
        report.parse_jaeger(answer)


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf", "0", "-5"])
def test_budget_must_be_positive_and_finite(
    budget: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_request(_span())) + "\n")
    status, out, err = _run(capsys, ["report", str(path), f"--budget-ms={budget}"])
    _assert_one_line_error(status, err, "--budget-ms must be positive and finite")
    assert "nan %" not in out


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--plot", "waterfall.xyz", "unknown image format '.xyz'"),
        ("--plot", "waterfall", "unknown image format"),
        ("--plot", "/proc/self/x.png", "cannot write /proc/self/x.png"),
        ("--json", "/proc/self/x.json", "cannot write /proc/self/x.json"),
        ("--json", ".", "cannot write .: it is a directory"),
    ],
)
def test_outputs_are_checked_before_reading(
    option: str,
    target: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_reading(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the spans were read before the output was checked")

    monkeypatch.setattr(report, "load_spans", no_reading)
    status, _, err = _run(capsys, ["report", str(tmp_path / "t.jsonl"), option, target])
    _assert_one_line_error(status, err, message)


def test_an_svg_waterfall_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_request(_span())) + "\n")
    status, _, err = _run(capsys, ["report", str(path), "--plot", str(tmp_path / "w.svg")])
    assert status == 0, err
    assert (tmp_path / "w.svg").read_text().lstrip().startswith("<?xml")


# -- fuzz ------------------------------------------------------------------------------------
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([T0, T0 + 1_000_000, 0, 2**64 - 1, 2**64, -1]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    _NUMBERS,
    st.text(max_size=20),
    _NUMBERS.map(str),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
_OTLP_KEYS = st.sampled_from(
    [
        "traceId", "spanId", "parentSpanId", "name", "startTimeUnixNano", "endTimeUnixNano",
        "attributes", "links", "status", "kind",
    ]
)  # fmt: skip


@st.composite
def _otlp_lines(draw: st.DrawFn) -> Any:
    """OTLP-shaped documents with arbitrary JSON in arbitrary places, or arbitrary JSON."""
    if draw(st.integers(0, 4)) == 0:
        return draw(_JSON)
    span = _span()
    for key in draw(st.lists(_OTLP_KEYS, max_size=4)):
        span[key] = draw(_JSON)
    if draw(st.booleans()):
        span["attributes"] = [
            {"key": draw(st.text(max_size=5)), "value": {kind: draw(_JSON)}}
            for kind in draw(
                st.lists(
                    st.sampled_from(
                        ["stringValue", "intValue", "doubleValue", "boolValue", "arrayValue"]
                    ),
                    max_size=3,
                )
            )
        ]
    document = _request(span)
    if draw(st.booleans()):
        document["resourceSpans"][0]["resource"] = {"attributes": draw(_JSON)}
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_otlp_lines())
def test_fuzzed_trace_files_report_or_fail_in_one_line(document: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.jsonl"
        # allow_nan: the file may hold NaN and Infinity, as Python's own json writes them.
        path.write_text(json.dumps(document) + "\n", encoding="utf-8")
        status, err = _main_capturing(["report", str(path)])
    assert status in (0, 2), err
    if status == 2:
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err


@st.composite
def _jaeger_answers(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 4)) == 0:
        return draw(_JSON)
    span: dict[str, Any] = {
        "traceID": "1f",
        "spanID": "2a",
        "operationName": "rerank m",
        "startTime": 1_700_000_000_000_000,
        "duration": 1500,
        "processID": "p1",
        "tags": [{"key": "gen_ai.operation.name", "type": "string", "value": "rerank"}],
    }
    for key in draw(st.lists(st.sampled_from([*span, "references"]), max_size=4)):
        span[key] = draw(_JSON)
    processes = draw(st.one_of(st.just({"p1": {"serviceName": "svc"}}), _JSON))
    return {"data": [{"processes": processes, "spans": [span]}]}


@settings(max_examples=150, deadline=None)
@given(answer=_jaeger_answers())
def test_fuzzed_jaeger_answers_parse_or_raise_trace_file_error(answer: Any) -> None:
    try:
        spans = report.parse_jaeger(answer)
    except report.TraceFileError as exc:
        assert "\n" not in str(exc)
        return
    # What the CLI does next with them must not fail either.
    table = report.stage_table(spans)
    report.format_table(table)
    report.verdict(table, 1500.0).text()


def _main_capturing(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, err.getvalue()
