"""Render the Prometheus alert and recording rules from the one rerank latency budget.

The rerank p95 budget lives here and nowhere else: ``BUDGET_S``. This script writes
``alerts.yml`` (recording rules for per-stage p50/p95 plus the ``RerankLatencyP95OverBudget``
alerts, on the in-app histogram and on span metrics), ``alerts.test.yml`` (the promtool unit
tests of those alerts) and the rerank threshold of the gateway's tail-sampling policy in
``otelcol-gateway.yaml``. A test checks that the committed files equal what this renders, so
changing the budget is: edit ``BUDGET_S``, run ``python collector/render_rules.py``, commit.

The alert is the exact form of "p95 over budget": the share of rerank calls slower than the
budget, read from the cumulative bucket whose upper bound *is* the budget, is above 5 %.
That is only exact when the budget is a bucket boundary, so the budget must be one of
``otel_rerank.semconv.DURATION_BUCKETS_S`` (the spanmetrics connector uses the same list, in
milliseconds: its alert reads the ``le`` of the budget in ms).
``histogram_quantile`` p95s are recording rules for dashboards, not the alert, because they
interpolate inside a bucket.

Usage: ``python collector/render_rules.py [--check]`` (``--check`` exits 1 when a committed
file differs from the rendering instead of writing it).
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

#: The rerank latency budget, in seconds: the p95 must stay at or under it.
BUDGET_S = 1.5

#: Share of rerank calls allowed over the budget (p95 ⇔ 5 %).
ALLOWED_SLOW_SHARE = 0.05

#: Bucket boundaries of the in-app histogram and of the spanmetrics connector, in seconds.
#: Kept equal to ``otel_rerank.semconv.DURATION_BUCKETS_S`` by tests/test_collector_configs.py
#: (this script runs without the package installed, e.g. in a bare container).
DURATION_BUCKETS_S = (
    0.01, 0.02, 0.04, 0.08, 0.1, 0.16, 0.25, 0.32, 0.5, 0.64, 1.0, 1.28, 1.5, 2.0, 2.56,
    3.0, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

HERE = Path(__file__).resolve().parent
APP_BUCKET = "gen_ai_client_operation_duration_seconds_bucket"
APP_COUNT = "gen_ai_client_operation_duration_seconds_count"
# Span metrics are in milliseconds (histogram.unit: ms), the unit Jaeger's Monitor tab
# expects; their bucket bounds are the same durations, written in ms.
SPAN_BUCKET = "traces_span_metrics_duration_milliseconds_bucket"
SPAN_COUNT = "traces_span_metrics_duration_milliseconds_count"
_GATEWAY_LINE = re.compile(r"(end_time_unix_nano - start_time_unix_nano > )\d+")


class _Template(string.Template):
    """``@{name}`` placeholders: PromQL braces and Go templates' ``$`` stay as they are."""

    delimiter = "@"


@dataclass(frozen=True)
class RuleParams:
    """What varies between the shipped rules and a test rendering of the same template."""

    budget_s: float = BUDGET_S
    rate_window: str = "5m"
    alert_for: str = "5m"


def le_matcher(bound_s: float) -> str:
    """A PromQL ``le`` regex that matches a bucket bound however it was formatted.

    The Go text exposition writes ``1`` and ``1.5``; Python's client, OpenMetrics and
    Prometheus v3 write ``1.0``. A plain ``le="1"`` silently matches nothing on the other
    side, so integral bounds get ``(\\.0)?``. The returned text is a PromQL string body
    (backslashes already doubled).
    """
    text = format(Decimal(repr(bound_s)).normalize(), "f")
    escaped = text.replace(".", "\\\\.")
    return escaped if "." in text else f"{escaped}(\\\\.0)?"


def _check_budget(budget_s: float) -> None:
    if budget_s not in DURATION_BUCKETS_S:
        raise ValueError(
            f"budget {budget_s} s is not a bucket boundary; pick one of {DURATION_BUCKETS_S}"
        )


def _budget_text(budget_s: float) -> str:
    return format(Decimal(repr(budget_s)).normalize(), "f")


def _ms(seconds: float) -> float:
    """A bound in seconds as the span metrics' ``le`` in milliseconds (exact: no float error)."""
    return float(Decimal(repr(seconds)) * 1000)


def render_alerts(params: RuleParams = RuleParams()) -> str:
    """The text of ``alerts.yml`` for these parameters, from the template ``alerts.yml.in``."""
    _check_budget(params.budget_s)
    w = params.rate_window
    le = le_matcher(params.budget_s)
    span_le = le_matcher(_ms(params.budget_s))
    budget = _budget_text(params.budget_s)
    budget_ms = format(Decimal(budget) * 1000, "f").rstrip("0").rstrip(".")
    share = f"{ALLOWED_SLOW_SHARE:g}"
    return _Template((HERE / "alerts.yml.in").read_text(encoding="utf-8")).substitute(
        w=w,
        le=le,
        span_le=span_le,
        budget=budget,
        budget_ms=budget_ms,
        share=share,
        share_pct=f"{ALLOWED_SLOW_SHARE:.0%}",
        alert_for=params.alert_for,
        APP_BUCKET=APP_BUCKET,
        APP_COUNT=APP_COUNT,
        SPAN_BUCKET=SPAN_BUCKET,
        SPAN_COUNT=SPAN_COUNT,
    )


def _series(budget_s: float) -> tuple[str, str, str]:
    """A bucket just under the budget, the budget's bucket and the +Inf bucket labels."""
    below = max(b for b in DURATION_BUCKETS_S if b < budget_s)
    return _budget_text(below), _budget_text(budget_s), "+Inf"


def render_tests(params: RuleParams = RuleParams()) -> str:
    """The text of ``alerts.test.yml``: fires over budget, quiet under it, quiet idle.

    Per minute, 100 rerank calls. Over budget: 10 of them slower than the budget (10 %),
    quiet: 2 of them (2 %), idle: the counters stop moving. In-app bucket labels are
    written as the Python client writes them (``1.5``, ``2.0``); span-metric labels are in
    milliseconds as Prometheus 3 stores the collector's ``le="1500"`` after normalising it
    (``1500.0``), so a plain ``le="1500"`` in the rule fails these tests.
    """
    _check_budget(params.budget_s)
    below, _, inf = _series(params.budget_s)
    below_ms = repr(_ms(float(below)))
    at_ms = repr(_ms(params.budget_s))
    budget = _budget_text(params.budget_s)
    budget_ms = format(Decimal(budget) * 1000, "f").rstrip("0").rstrip(".")
    w = params.rate_window
    py_at = repr(float(params.budget_s))  # Python's str(float): "1.5", "2.0"

    def series(name: str, labels: str, values: str) -> str:
        return f"      - series: '{name}{{{labels}}}'\n        values: '{values}'\n"

    def block(who: str, below_v: str, at_v: str, all_v: str) -> str:
        """The in-app and span-metric series of one service; values per bucket."""
        app_l = f'job="{who}",gen_ai_operation_name="rerank"'
        span_l = f'service_name="{who}",gen_ai_operation_name="rerank",span_name="rerank bge"'
        return "".join(
            [
                series(APP_BUCKET, f'{app_l},le="{below}"', below_v),
                series(APP_BUCKET, f'{app_l},le="{py_at}"', at_v),
                series(APP_BUCKET, f'{app_l},le="{inf}"', all_v),
                series(APP_COUNT, app_l, all_v),
                series(SPAN_BUCKET, f'{span_l},le="{below_ms}"', below_v),
                series(SPAN_BUCKET, f'{span_l},le="{at_ms}"', at_v),
                series(SPAN_BUCKET, f'{span_l},le="{inf}"', all_v),
                series(SPAN_COUNT, span_l, all_v),
            ]
        )

    summary_app = f"Rerank p95 over the {budget_ms} ms budget in rag-slow"
    summary_span = f"Rerank p95 over the {budget_ms} ms budget in rag-slow (span metrics)"
    desc = "10% of rerank {what} took longer than " + budget + " s over the last " + w
    desc += f" (more than {ALLOWED_SLOW_SHARE:.0%} means the p95 is over budget)."
    return f"""\
# GENERATED by collector/render_rules.py from BUDGET_S = {budget} s; do not edit by hand.
# promtool unit tests for alerts.yml: `promtool test rules collector/alerts.test.yml`.
rule_files:
  - alerts.yml
evaluation_interval: 1m

tests:
  # 100 rerank calls a minute; 10 % slower than the budget: p95 over budget -> fires.
  - interval: 1m
    input_series:
{block("rag-slow", "0+80x20", "0+90x20", "0+100x20")}    alert_rule_test:
      - eval_time: 3m
        alertname: RerankLatencyP95OverBudget
        exp_alerts: []  # pending: not yet `for` {params.alert_for}
      - eval_time: 15m
        alertname: RerankLatencyP95OverBudget
        exp_alerts:
          - exp_labels: {{job: rag-slow, severity: warning, source: app}}
            exp_annotations:
              summary: "{summary_app}"
              description: "{desc.format(what="calls")}"
      - eval_time: 15m
        alertname: RerankLatencyP95OverBudgetSpanMetrics
        exp_alerts:
          - exp_labels: {{service_name: rag-slow, severity: warning, source: spanmetrics}}
            exp_annotations:
              summary: "{summary_span}"
              description: "{desc.format(what="spans")}"
    promql_expr_test:
      # Rounded: the ratio of two rates is 0.1 only up to float error.
      - expr: round(job:gen_ai_rerank_slower_than_budget:ratio_rate{w}, 0.001)
        eval_time: 15m
        exp_samples:
          - labels: '{{job="rag-slow"}}'
            value: 0.1

  # 100 rerank calls a minute; 2 % slower than the budget: p95 under budget -> quiet.
  - interval: 1m
    input_series:
{block("rag-ok", "0+90x20", "0+98x20", "0+100x20")}    alert_rule_test:
      - eval_time: 15m
        alertname: RerankLatencyP95OverBudget
        exp_alerts: []
      - eval_time: 15m
        alertname: RerankLatencyP95OverBudgetSpanMetrics
        exp_alerts: []

  # Slow traffic (50 %) for 5 minutes, then none: the ratio is 0/0 (NaN) -> quiet.
  - interval: 1m
    input_series:
{block("rag-idle", "0+40x5 200x15", "0+50x5 250x15", "0+100x5 500x15")}    alert_rule_test:
      - eval_time: 20m
        alertname: RerankLatencyP95OverBudget
        exp_alerts: []
      - eval_time: 20m
        alertname: RerankLatencyP95OverBudgetSpanMetrics
        exp_alerts: []
"""


def render_gateway(text: str, budget_s: float = BUDGET_S) -> str:
    """``otelcol-gateway.yaml`` with the tail-sampling rerank threshold set to the budget."""
    _check_budget(budget_s)
    nanos = int(Decimal(repr(budget_s)) * 1_000_000_000)
    rendered, count = _GATEWAY_LINE.subn(rf"\g<1>{nanos}", text)
    if count != 1:
        raise ValueError(f"expected one rerank threshold in the gateway config, found {count}")
    return rendered


def rendered_files(params: RuleParams = RuleParams()) -> dict[Path, str]:
    """Every file this script owns, with the text it should have."""
    gateway = HERE / "otelcol-gateway.yaml"
    return {
        HERE / "alerts.yml": render_alerts(params),
        HERE / "alerts.test.yml": render_tests(params),
        gateway: render_gateway(gateway.read_text(encoding="utf-8"), params.budget_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    for path, text in rendered_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            print(f"{path.name} is out of date; run python collector/render_rules.py")
            return 1
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
