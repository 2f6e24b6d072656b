"""``otel-rerank report``: per-stage latency, shadow lift and a verdict from exported spans.

Reads the embedded default's OTLP-JSON lines file (or a collector ``file`` exporter's
output), or asks Jaeger's HTTP query API, and prints per-stage p50/p95/p99 with each
stage's share of end-to-end latency, the shadow-run summary and the verdict against a
budget; ``--plot`` draws the median request as a waterfall. ``--since`` keeps only the
traces that started after a moment, so runs appended to one default file can be told
apart (``--since 10m``, or ``--since 2026-12-01T22:00:00Z``).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from otel_rerank.cli import UsageError, check_budget, check_output

if TYPE_CHECKING:
    from otel_rerank.report import Lift, SpanRecord, StageTable, Verdict


def add_parser(subparsers: Any) -> None:
    """Register ``report`` and its arguments."""
    parser = subparsers.add_parser(
        "report",
        help="per-stage latency table, shadow summary and waterfall from exported spans",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="OTLP-JSON lines (default: $OTEL_RERANK_TRACES_FILE or ./otel-rerank-traces.jsonl)",
    )
    parser.add_argument("--jaeger", metavar="URL", help="Jaeger query URL instead of a file")
    parser.add_argument("--service", help="service name to ask Jaeger for (with --jaeger)")
    parser.add_argument("--limit", type=int, default=500, help="traces to fetch from Jaeger")
    parser.add_argument("--lookback", default="1h", help="how far back Jaeger looks (1h, 2d)")
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=1500.0,
        help="end-to-end p95 budget for the verdict (default 1500)",
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only traces that started at or after WHEN: a duration back from now "
        "(90s, 10m, 2h, 1d) or an ISO 8601 time (2026-12-01T22:00:00Z; UTC if no offset)",
    )
    parser.add_argument("--plot", metavar="OUT.png", help="waterfall of the median request")
    parser.add_argument("--json", metavar="OUT", help="write the table as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``otel-rerank report``."""
    from otel_rerank import report
    from otel_rerank._file_exporter import default_traces_path

    check_budget("--budget-ms", args.budget_ms)
    since_ns = parse_since(args.since) if args.since else None
    if args.json:
        check_output("--json", args.json)
    if args.plot:
        check_output("--plot", args.plot, image=True)
    try:
        if args.jaeger:
            if args.file:
                raise UsageError("give a FILE or --jaeger URL, not both")
            if not args.service:
                raise UsageError("--jaeger needs --service NAME")
            if args.limit < 1:
                raise UsageError(f"--limit must be at least 1, got {args.limit}")
            spans = report.load_jaeger(
                args.jaeger, args.service, limit=args.limit, lookback=args.lookback
            )
            source = f"{args.jaeger} (service {args.service})"
        else:
            path = args.file or str(default_traces_path())
            spans = report.load_spans(path)
            source = path
    except report.TraceFileError as exc:
        raise UsageError(str(exc)) from None
    if not spans:
        raise UsageError(f"no spans in {source}")
    if since_ns is not None:
        spans = traces_since(spans, since_ns)
        if not spans:
            raise UsageError(f"no traces in {source} started since {args.since}")
    table = report.stage_table(spans)
    if not table.rows and table.end_to_end is None:
        raise UsageError(
            f"no request (root span) and no stage span among the {len(spans)} spans in {source}"
        )
    result = report.verdict(table, args.budget_ms)
    print(f"spans: {len(spans)} from {source}")
    print(report.format_table(table))
    print(result.text())
    lift = report.production_lift(spans)
    if lift is not None:
        added = table.shadow_row or table.row("rerank")
        print(
            report.format_lift(
                lift,
                rerank_p95_ms=added.p95_ms if added else None,
                end_to_end_p95_ms=result.end_to_end_p95_ms,
                budget_ms=args.budget_ms,
            )
        )
    try:
        _write_outputs(args, spans, table, result, source, lift)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or 'output'}: {exc.strerror}") from None
    return 0


def _write_outputs(
    args: argparse.Namespace,
    spans: Sequence[SpanRecord],
    table: StageTable,
    result: Verdict,
    source: str,
    lift: Lift | None = None,
) -> None:
    from otel_rerank import report

    if args.json:
        document = {
            "source": source,
            "rows": [asdict(r) for r in table.rows],
            "end_to_end": asdict(table.end_to_end) if table.end_to_end else None,
            "shadow_row": asdict(table.shadow_row) if table.shadow_row else None,
            "shadow": asdict(table.shadow) if table.shadow else None,
            "requests": table.requests,
            "background": table.background,
            "other_share": table.other_share,
            "percentile_method": table.method,
            "verdict": {**asdict(result), "text": result.text()},
            "lift": asdict(lift) if lift is not None else None,
        }
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.json}")
    if args.plot:
        try:
            report.plot_waterfall(spans, args.plot)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"wrote {args.plot}")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ns: int | None = None) -> int:
    """``--since`` as epoch nanoseconds: a duration back from now, or an ISO 8601 time.

    Raises:
        UsageError: neither form.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    duration = _DURATION.match(text.strip())
    if duration:
        return now_ns - int(float(duration.group(1)) * _UNIT_S[duration.group(2)] * 1e9)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: give a duration (90s, 10m, 2h, 1d) or an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1e9)


def traces_since(spans: Sequence[SpanRecord], since_ns: int) -> list[SpanRecord]:
    """The spans of every trace whose first span started at or after ``since_ns``."""
    first: dict[str, int] = {}
    for span in spans:
        first[span.trace_id] = min(first.get(span.trace_id, span.start_ns), span.start_ns)
    return [s for s in spans if first[s.trace_id] >= since_ns]
