"""report: spans read back from OTLP-JSON and Jaeger, stage table, shadow summary, waterfall."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link

from otel_rerank import report, semconv
from otel_rerank._file_exporter import JsonLinesSpanExporter
from otel_rerank.cli import main

MS = 1_000_000  # nanoseconds
T0 = 1_700_000_000_000_000_000


def _stage(operation: str, **extra: Any) -> dict[str, Any]:
    return {semconv.GEN_AI_OPERATION_NAME: operation, **extra}


def write_traces(path: Path, requests: list[dict[str, float]], shadow: bool = True) -> None:
    """One trace per request: a root span and stage children with exact durations (ms).

    Each request dict maps stage → duration; stages run back to back after 1 ms.
    """
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    for n, stages in enumerate(requests):
        start = T0 + n * 10_000 * MS
        total = 1 + sum(stages.values()) + 1
        root = tracer.start_span("POST /ask", start_time=start)
        parent = trace.set_span_in_context(root)
        at = start + 1 * MS
        for stage, ms in stages.items():
            child = tracer.start_span(
                f"{stage} model", context=parent, start_time=at, attributes=_stage(stage)
            )
            at += int(ms * MS)
            child.end(end_time=at)
        root.end(end_time=start + int(total * MS))
        if shadow:
            shadow_span = tracer.start_span(
                "rerank shadow-model",
                context=trace.set_span_in_context(trace.INVALID_SPAN),
                start_time=start + 5 * MS,
                links=[Link(root.get_span_context())],
                attributes=_stage(
                    "rerank",
                    **{
                        semconv.RAG_RERANK_SHADOW: True,
                        semconv.RAG_RERANK_TOP1_CHANGED: n % 2 == 0,
                        semconv.RAG_RERANK_KENDALL_TAU: 0.5 if n % 2 else -0.5,
                    },
                ),
            )
            shadow_span.end(end_time=start + (5 + 40 + n) * MS)
    provider.shutdown()


REQUESTS = [
    {"embeddings": 10, "retrieval": 5, "rerank": 100, "chat": 400},
    {"embeddings": 12, "retrieval": 6, "rerank": 120, "chat": 500},
    {"embeddings": 14, "retrieval": 7, "rerank": 140, "chat": 600},
    {"embeddings": 16, "retrieval": 8, "rerank": 160, "chat": 700},
]


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "traces.jsonl"
    write_traces(path, REQUESTS)
    return path


def test_load_spans_reads_the_embedded_exporters_file(trace_file: Path) -> None:
    spans = report.load_spans(trace_file)
    assert len(spans) == 4 * 6
    rerank = [s for s in spans if s.stage == "rerank" and not s.is_shadow]
    assert sorted(s.duration_ms for s in rerank) == [100, 120, 140, 160]
    roots = report.stage_table(spans).end_to_end
    assert roots is not None and roots.count == 4
    shadow = [s for s in spans if s.is_shadow]
    assert all(s.parent_id is None and len(s.links) == 1 for s in shadow)


def test_stage_table_matches_the_spans_durations(trace_file: Path) -> None:
    table = report.stage_table(report.load_spans(trace_file))
    assert [r.stage for r in table.rows] == ["embeddings", "retrieval", "rerank", "chat"]
    rerank = table.row("rerank")
    assert rerank is not None
    # Hand check, type 7: positions (n-1)q = 1.5, 2.85, 2.97 of [100, 120, 140, 160].
    assert rerank.p50_ms == pytest.approx(130.0)
    assert rerank.p95_ms == pytest.approx(140 + 0.85 * 20)
    assert rerank.p99_ms == pytest.approx(140 + 0.97 * 20)
    assert rerank.mean_ms == pytest.approx(130.0)
    end_to_end = [2 + sum(r.values()) for r in REQUESTS]  # 517, 640, 763, 886
    assert table.end_to_end is not None
    assert table.end_to_end.p50_ms == pytest.approx(np.percentile(end_to_end, 50))
    assert rerank.share == pytest.approx(520 / sum(end_to_end))
    assert table.requests == 4  # shadow spans are their own traces but not requests
    shadow_row = table.row(report.SHADOW_ROW)
    assert shadow_row is not None and shadow_row.count == 4
    assert shadow_row.p50_ms == pytest.approx(41.5)
    assert shadow_row.share is None


def test_shadow_summary(trace_file: Path) -> None:
    summary = report.stage_table(report.load_spans(trace_file)).shadow
    assert summary is not None
    assert summary.runs == 4
    assert summary.top1_changed == 2
    assert summary.top1_changed_rate == 0.5
    assert summary.mean_kendall_tau == pytest.approx(0.0)
    assert summary.linked == 4


def test_format_table_and_verdict(trace_file: Path) -> None:
    table = report.stage_table(report.load_spans(trace_file))
    text = report.format_table(table)
    lines = text.splitlines()
    assert lines[0].split() == [
        "stage",
        "count",
        "p50",
        "ms",
        "p95",
        "ms",
        "p99",
        "ms",
        "mean",
        "ms",
        "share",
    ]
    rerank_line = next(line for line in lines if line.startswith("rerank "))
    assert rerank_line.split()[1:4] == ["4", "130.00", "157.00"]
    assert "changed the top result in 50.0% (2)" in text
    assert "type 7" in text
    verdict = report.verdict(table, budget_ms=800)
    assert verdict.within_budget is False  # p95 of end-to-end is 867.55
    assert verdict.rerank_budget_share == pytest.approx(157 / 800)
    assert "OVER the 800 ms budget" in verdict.text()
    assert report.verdict(table, budget_ms=1000).within_budget is True


def test_a_duplicated_batch_counts_once(trace_file: Path) -> None:
    lines = trace_file.read_text().splitlines()
    trace_file.write_text("\n".join(lines + lines[:3]) + "\n")
    assert len(report.load_spans(trace_file)) == 24


def test_a_pretty_printed_single_request_is_read(trace_file: Path, tmp_path: Path) -> None:
    first = json.loads(trace_file.read_text().splitlines()[0])
    pretty = tmp_path / "one.json"
    pretty.write_text(json.dumps(first, indent=2))
    assert len(report.load_spans(pretty)) == len(report.parse_otlp_json(first))


def test_malformed_line_names_the_line(trace_file: Path) -> None:
    lines = trace_file.read_text().splitlines()
    trace_file.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(report.TraceFileError, match="line 2: not JSON"):
        report.load_spans(trace_file)
    trace_file.write_text('{"spans": []}\n')
    with pytest.raises(report.TraceFileError, match="line 1: not an OTLP/JSON"):
        report.load_spans(trace_file)


def test_missing_file() -> None:
    with pytest.raises(report.TraceFileError, match="no such file"):
        report.load_spans("/nonexistent/traces.jsonl")


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=60), st.floats(0, 100))
def test_percentile_is_numpys_linear_method(values: list[float], q: float) -> None:
    assert report.percentile(values, q) == pytest.approx(
        float(np.percentile(values, q)), rel=1e-9, abs=1e-9
    )


def test_median_trace_and_waterfall(trace_file: Path, tmp_path: Path) -> None:
    spans = report.load_spans(trace_file)
    chosen = report.median_trace(spans)
    assert chosen[0].name == "POST /ask" and chosen[0].duration_ms == 640  # lower median
    assert [s.stage for s in chosen[1:5]] == ["embeddings", "retrieval", "rerank", "chat"]
    (shadow,) = chosen[5:]  # the shadow run linked to this request, drawn beside it
    assert shadow.is_shadow and shadow.links == ((chosen[0].trace_id, chosen[0].span_id),)
    out = report.plot_waterfall(spans, tmp_path / "w.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no request"):
        report.plot_waterfall([s for s in spans if s.is_shadow], tmp_path / "x.png")


# -- Jaeger ----------------------------------------------------------------------------------
def jaeger_answer() -> dict[str, Any]:
    """A /api/traces answer in the shape Jaeger's query service returns (ids, µs, tags)."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    return {
        "data": [
            {
                "traceID": trace_id,
                "spans": [
                    {
                        "traceID": trace_id,
                        "spanID": "b7ad6b7169203331",
                        "operationName": "POST /ask",
                        "references": [],
                        "startTime": 1700000000000000,
                        "duration": 250000,
                        "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
                        "processID": "p1",
                    },
                    {
                        "traceID": trace_id,
                        "spanID": "0b1c2d3e4f506172",
                        "operationName": "rerank ms-marco-MiniLM-L-6-v2",
                        "references": [
                            {
                                "refType": "CHILD_OF",
                                "traceID": trace_id,
                                "spanID": "b7ad6b7169203331",
                            }
                        ],
                        "startTime": 1700000000010000,
                        "duration": 180000,
                        "tags": [
                            {"key": "gen_ai.operation.name", "type": "string", "value": "rerank"},
                            {"key": "gen_ai.rerank.candidate.count", "type": "int64", "value": 50},
                            {"key": "rag.rerank.kendall_tau", "type": "float64", "value": 0.25},
                            {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                        ],
                        "processID": "p1",
                    },
                ],
                "processes": {"p1": {"serviceName": "rag-api", "tags": []}},
            },
            {
                "traceID": "1f",
                "spans": [
                    {
                        "traceID": "1f",
                        "spanID": "2a",
                        "operationName": "rerank shadow",
                        "references": [
                            {
                                "refType": "FOLLOWS_FROM",
                                "traceID": trace_id,
                                "spanID": "b7ad6b7169203331",
                            }
                        ],
                        "startTime": 1700000000020000,
                        "duration": 90000,
                        "tags": [
                            {"key": "gen_ai.operation.name", "type": "string", "value": "rerank"},
                            {"key": "rag.rerank.shadow", "type": "bool", "value": True},
                            {"key": "rag.rerank.top1_changed", "type": "bool", "value": True},
                        ],
                        "processID": "p1",
                    }
                ],
                "processes": {"p1": {"serviceName": "rag-api", "tags": []}},
            },
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


@pytest.fixture
def jaeger() -> Iterator[tuple[str, list[str]]]:
    """A fake Jaeger query service on loopback; yields its URL and the paths asked for."""
    asked: list[str] = []
    body = json.dumps(jaeger_answer()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            if not self.path.startswith("/api/traces"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_load_jaeger(jaeger: tuple[str, list[str]]) -> None:
    url, asked = jaeger
    spans = report.load_jaeger(url, "rag-api", limit=20)
    assert asked == ["/api/traces?service=rag-api&limit=20&lookback=1h"]
    by_name = {s.name: s for s in spans}
    root = by_name["POST /ask"]
    rerank = by_name["rerank ms-marco-MiniLM-L-6-v2"]
    shadow = by_name["rerank shadow"]
    assert root.parent_id is None and root.duration_ms == 250
    assert rerank.parent_id == root.span_id and rerank.duration_ms == 180
    assert rerank.attributes["gen_ai.rerank.candidate.count"] == 50
    assert rerank.error and rerank.service == "rag-api"
    assert shadow.is_shadow and shadow.parent_id is None
    assert shadow.links == ((root.trace_id, root.span_id),)
    assert shadow.trace_id == "000000000000001f"  # Jaeger drops leading zeros; padded back
    table = report.stage_table(spans)
    assert table.requests == 1
    assert table.row("rerank").share == pytest.approx(180 / 250)  # type: ignore[union-attr]
    assert table.shadow is not None and table.shadow.linked == 1


def test_jaeger_unreachable_and_wrong_answers(jaeger: tuple[str, list[str]]) -> None:
    url, _ = jaeger
    with pytest.raises(report.TraceFileError, match="HTTP 404"):
        report.load_jaeger(url + "/nope", "svc")
    with pytest.raises(report.TraceFileError, match="cannot reach Jaeger"):
        report.load_jaeger("http://127.0.0.1:1", "svc", timeout=2)
    with pytest.raises(report.TraceFileError, match="no data list"):
        report.parse_jaeger({"errors": ["x"]})


# -- CLI -------------------------------------------------------------------------------------
def test_cli_report_file(
    trace_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "r.json"
    png = tmp_path / "w.png"
    status = main(
        [
            "report",
            str(trace_file),
            "--budget-ms",
            "1000",
            "--json",
            str(out_json),
            "--plot",
            str(png),
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "end-to-end p95" in out and "WITHIN the 1000 ms budget" in out
    assert "rerank (shadow)" in out
    document = json.loads(out_json.read_text())
    rerank = next(r for r in document["rows"] if r["stage"] == "rerank")
    assert rerank["p50_ms"] == pytest.approx(130.0)
    assert document["shadow"]["runs"] == 4
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_report_default_file_from_env(
    trace_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_RERANK_TRACES_FILE", str(trace_file))
    assert main(["report"]) == 0
    assert str(trace_file) in capsys.readouterr().out


def test_cli_report_jaeger(
    jaeger: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = jaeger
    assert main(["report", "--jaeger", url, "--service", "rag-api", "--budget-ms", "200"]) == 0
    out = capsys.readouterr().out
    assert "OVER the 200 ms budget" in out
    assert "1 request(s)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "/nonexistent.jsonl"], "no such file"),
        (["report", "--jaeger", "http://127.0.0.1:9"], "--jaeger needs --service"),
        (["report", "x.jsonl", "--budget-ms", "0"], "--budget-ms must be positive"),
    ],
)
def test_cli_report_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_report_malformed_line(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace_file.write_text(trace_file.read_text() + "garbage\n")
    assert main(["report", str(trace_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"line {len(trace_file.read_text().splitlines())}: not JSON" in err
    assert len(err.splitlines()) == 1


def test_cli_report_unwritable_output(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(trace_file), "--json", "/nonexistent-dir/r.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("cannot write /nonexistent-dir/r.json: no such directory")
    assert len(err.splitlines()) == 1


# -- what counts as a request (issue 14) -----------------------------------------------------
def _span(
    trace: str,
    span: str,
    parent: str | None,
    start_ms: float,
    end_ms: float,
    operation: str | None = None,
) -> report.SpanRecord:
    attributes = {"gen_ai.operation.name": operation} if operation else {}
    return report.SpanRecord(
        trace_id=trace,
        span_id=span,
        parent_id=parent,
        name=f"{operation or 'root'} {span}",
        start_ns=T0 + int(start_ms * MS),
        end_ns=T0 + int(end_ms * MS),
        attributes=attributes,
    )


def _query(trace: str, offset: float, root_operation: str | None) -> list[report.SpanRecord]:
    """A 100 ms request: embeddings 10, retrieval 30 (embedding its own query: 5 of it), rerank
    20, chat 30; 5 ms of its own work."""
    o = offset
    return [
        _span(trace, "r", None, o, o + 100, root_operation),
        _span(trace, "e", "r", o + 1, o + 11, "embeddings"),
        _span(trace, "q", "r", o + 11, o + 41, "retrieval"),
        _span(trace, "qe", "q", o + 12, o + 17, "embeddings"),
        _span(trace, "k", "r", o + 41, o + 61, "rerank"),
        _span(trace, "c", "r", o + 61, o + 91, "chat"),
    ]


def test_shares_use_exclusive_time_and_add_up_to_100_percent() -> None:
    spans = _query("t1", 0, "invoke_workflow") + _query("t2", 1000, None)
    table = report.stage_table(spans)
    shares = {row.stage: row.share for row in table.rows}
    assert shares == pytest.approx(
        {"embeddings": 0.15, "retrieval": 0.25, "rerank": 0.20, "chat": 0.30}
    )
    assert table.other_share == pytest.approx(0.10)
    assert sum(shares.values()) + table.other_share == pytest.approx(1.0)  # type: ignore[arg-type, operator]
    assert "invoke_workflow" not in shares  # the request span is not a stage
    # percentiles stay inclusive: what a caller of the retrieval call waits for
    assert table.row("retrieval").p50_ms == pytest.approx(30)  # type: ignore[union-attr]
    assert table.requests == 2 and table.end_to_end.count == 2  # type: ignore[union-attr]


def test_a_bare_stage_root_is_a_background_call_not_a_request() -> None:
    indexing = _span("idx", "b", None, -5000, -1000, "embeddings")  # 4 s start-up batch encode
    spans = [indexing, *_query("t1", 0, None), *_query("t2", 1000, "invoke_workflow")]
    table = report.stage_table(spans)
    assert table.requests == 2
    assert table.end_to_end.p95_ms == pytest.approx(100)  # type: ignore[union-attr]
    assert table.background == {"embeddings": 1}
    embeddings = table.row("embeddings")
    assert embeddings.count == 4 and embeddings.p99_ms < 11  # type: ignore[union-attr]
    assert report.verdict(table, 1500).within_budget is True
    text = report.format_table(table)
    assert "1 background stage call(s), not requests (1 embeddings)" in text


def test_without_request_spans_the_report_says_so_and_has_no_end_to_end_row(
    tmp_path: Path,
) -> None:
    spans = [  # five queries whose stages are each their own trace, plus an indexing call
        _span(f"t{n}{stage}", "s", None, n * 1000 + i * 50, n * 1000 + i * 50 + 40, stage)
        for n in range(5)
        for i, stage in enumerate(("embeddings", "retrieval", "rerank", "chat"))
    ] + [_span("idx", "b", None, -5000, -1000, "embeddings")]
    table = report.stage_table(spans)
    assert table.requests == 0 and table.end_to_end is None
    assert table.background_calls == 21
    assert table.row("embeddings").count == 6  # type: ignore[union-attr]
    text = report.format_table(table)
    assert not any(line.startswith("end-to-end") for line in text.splitlines())
    hint = [line for line in text.splitlines() if line.startswith("no request spans")]
    assert len(hint) == 1 and "otel_rerank.request" in hint[0]
    verdict = report.verdict(table, 1500)
    assert verdict.within_budget is None
    assert "WITHIN" not in verdict.text() and "OVER" not in verdict.text()


def test_a_server_span_or_any_non_stage_root_is_a_request() -> None:
    server = report.SpanRecord("t", "s", None, "GET /ask", T0, T0 + 50 * MS, {})
    child = _span("t", "c", "s", 1, 40, "chat")
    table = report.stage_table([server, child])
    assert table.requests == 1
    assert table.row("chat").share == pytest.approx(39 / 50)  # type: ignore[union-attr]


def test_cli_since_separates_runs_in_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.jsonl"
    write_traces(path, REQUESTS[:2], shadow=False)  # the first run, at T0
    monkeypatch.setitem(globals(), "T0", T0 + 86_400 * 10**9)
    write_traces(path, REQUESTS, shadow=False)  # the second, a day later, same file
    assert main(["report", str(path)]) == 0
    assert "6 request(s)" in capsys.readouterr().out
    second = "2023-11-15T22:00:00Z"  # after T0 (22:13:20 on the 14th), before T0 + 1 day
    assert main(["report", str(path), "--since", second]) == 0
    assert "4 request(s)" in capsys.readouterr().out
    assert main(["report", str(path), "--since", "1m"]) == 2
    assert "no traces" in capsys.readouterr().err
    assert main(["report", str(path), "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "--since 'yesterday'" in err and len(err.strip().splitlines()) == 1
