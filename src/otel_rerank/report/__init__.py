"""Latency reports from exported spans: per-stage percentiles, shares, shadow lift, waterfall.

The library behind ``otel-rerank report`` (and the demo's table)::

    from otel_rerank import report

    spans = report.load_spans("otel-rerank-traces.jsonl")   # or report.load_jaeger(url, svc)
    table = report.stage_table(spans)
    print(report.format_table(table))
    print(report.verdict(table, budget_ms=1500).text())
    report.plot_waterfall(spans, "waterfall.png")
"""

from __future__ import annotations

from otel_rerank._toolkit import PERCENTILE_METHOD, percentile
from otel_rerank.report._lift import Lift, format_lift, join_feedback, production_lift
from otel_rerank.report._spans import (
    SpanRecord,
    TraceFileError,
    load_jaeger,
    load_spans,
    parse_jaeger,
    parse_otlp_json,
)
from otel_rerank.report._stats import (
    END_TO_END,
    SHADOW_ROW,
    ShadowSummary,
    StageRow,
    StageTable,
    Verdict,
    format_table,
    shadow_summary,
    stage_table,
    verdict,
)
from otel_rerank.report._waterfall import median_trace, plot_waterfall

__all__ = [
    "END_TO_END",
    "PERCENTILE_METHOD",
    "SHADOW_ROW",
    "Lift",
    "ShadowSummary",
    "SpanRecord",
    "StageRow",
    "StageTable",
    "TraceFileError",
    "Verdict",
    "format_lift",
    "format_table",
    "join_feedback",
    "load_jaeger",
    "load_spans",
    "median_trace",
    "parse_jaeger",
    "parse_otlp_json",
    "percentile",
    "plot_waterfall",
    "production_lift",
    "shadow_summary",
    "stage_table",
    "verdict",
]
