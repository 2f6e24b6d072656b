"""Per-stage latency statistics from exported spans: percentiles, shares, the verdict.

A request is a trace whose root span (the span with no parent) is a request: a web
framework's server span, our ``invoke_workflow`` request span, or any other span that is
not a bare stage call. Its end-to-end latency is that root's duration. A trace whose root
*is* a stage span (an indexing batch encode at start-up, a batch job, an app whose entry
points are not instrumented) is a background stage call, not a request: it is counted
apart and never enters the end-to-end figures or the verdict.

Each stage span (``gen_ai.operation.name`` embeddings, retrieval, rerank, chat, ...)
contributes its duration to its stage's percentiles: only spans inside requests when
there are requests, every stage span when there are none. A stage's share is its
exclusive (self) time — its duration less the time its child spans cover — summed over the
requests, over the sum of end-to-end durations, so a retrieval call that embeds its own
query is not counted twice and, for sequential stages, the shares and the remainder (the
request's own work outside any stage) add up to 100 %. Shadow rerank runs
(``rag.rerank.shadow=true``) happen off the request path, in traces of their own: they are
never counted as requests or in a stage's share; they feed the shadow summary instead,
and their latency is shown in a row of its own.

Percentiles use linear interpolation between closest ranks — numpy's default, Hyndman
and Fan's "type 7" — so they agree with ``numpy.percentile`` to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from otel_rerank import semconv
from otel_rerank._toolkit import PERCENTILE_METHOD, percentile, text_table
from otel_rerank._values import is_number
from otel_rerank.report._spans import SpanRecord

END_TO_END = "end-to-end"
SHADOW_ROW = "rerank (shadow)"
NO_REQUESTS_HINT = (
    "no request spans: each stage call is its own trace, so there is no end-to-end latency; "
    "wrap each query in `with otel_rerank.request():` or run it through an instrumented "
    "framework entry point (LangChain, LlamaIndex, Haystack) or web server"
)
_STAGE_ORDER = (
    semconv.OPERATION_EMBEDDINGS,
    semconv.OPERATION_RETRIEVAL,
    semconv.OPERATION_RERANK,
    semconv.OPERATION_CHAT,
)
# Operations that name a whole request, not a stage of one.
_REQUEST_OPERATIONS = frozenset({semconv.OPERATION_INVOKE_WORKFLOW, "invoke_agent"})


@dataclass(frozen=True, slots=True)
class StageRow:
    """Latency of one stage across every request in the spans.

    Attributes:
        stage: the stage (``rerank``), ``end-to-end``, or ``rerank (shadow)``.
        count: spans measured.
        p50_ms, p95_ms, p99_ms, mean_ms: latency statistics in milliseconds.
        share: the stage's total time over the total end-to-end time (``None`` for the
            end-to-end row itself and for shadow runs, which are not on the request path).
        errors: spans whose status is ERROR.
    """

    stage: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    share: float | None
    errors: int = 0


@dataclass(frozen=True, slots=True)
class ShadowSummary:
    """What shadow reranking found: how often and how much the reranker disagreed.

    Attributes:
        runs: shadow rerank spans.
        top1_changed: runs where the reranker would have put another candidate first.
        top1_changed_rate: ``top1_changed / runs`` (over runs that recorded it).
        mean_kendall_tau: mean tau-b between retrieval's and the reranker's order.
        linked: runs linked to a request span present in the spans.
    """

    runs: int
    top1_changed: int
    top1_changed_rate: float | None
    mean_kendall_tau: float | None
    linked: int


@dataclass(frozen=True, slots=True)
class StageTable:
    """The per-stage table of a set of traces.

    Attributes:
        rows: one row per stage present, in pipeline order, then any other stage names.
        end_to_end: the end-to-end row (request roots), or ``None`` without requests.
        requests: traces counted as requests (their root is a request, not a stage call).
        shadow_row: latency of shadow rerank runs, if any.
        shadow: the shadow summary, or ``None`` without shadow runs.
        background: traces whose root is a bare stage span (indexing, batch jobs, apps
            without request spans), by stage; never part of the end-to-end figures.
        other_share: the requests' time outside every stage's self time (the request's
            own work), over the end-to-end total; ``None`` without requests.
    """

    rows: list[StageRow]
    end_to_end: StageRow | None
    requests: int
    shadow_row: StageRow | None = None
    shadow: ShadowSummary | None = None
    method: str = field(default=PERCENTILE_METHOD)
    background: dict[str, int] = field(default_factory=dict)
    other_share: float | None = None

    @property
    def background_calls(self) -> int:
        """Traces whose root is a bare stage span: stage calls that are not requests."""
        return sum(self.background.values())

    def row(self, stage: str) -> StageRow | None:
        """The row of ``stage`` (``end-to-end`` and ``rerank (shadow)`` included)."""
        if stage == END_TO_END:
            return self.end_to_end
        if stage == SHADOW_ROW:
            return self.shadow_row
        return next((r for r in self.rows if r.stage == stage), None)


def _row(stage: str, spans: Sequence[SpanRecord], share: float | None) -> StageRow:
    durations = [s.duration_ms for s in spans]
    return StageRow(
        stage=stage,
        count=len(durations),
        p50_ms=percentile(durations, 50),
        p95_ms=percentile(durations, 95),
        p99_ms=percentile(durations, 99),
        mean_ms=sum(durations) / len(durations),
        share=share,
        errors=sum(1 for s in spans if s.error),
    )


def stage_of(span: SpanRecord) -> str | None:
    """The stage a span measures (embeddings, retrieval, rerank, chat, ...), or ``None``.

    A span naming a whole request (``invoke_workflow``, ``invoke_agent``) is not a stage.
    """
    stage = span.stage
    return None if stage in _REQUEST_OPERATIONS else stage


def request_roots(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Root spans of requests: parentless, and not shadow runs, feedback or bare stages."""
    return [s for s in spans if _unprompted_root(s) and stage_of(s) is None]


def background_roots(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Parentless stage spans (not shadow runs): stage calls made outside any request."""
    return [s for s in spans if _unprompted_root(s) and stage_of(s) is not None]


def _unprompted_root(span: SpanRecord) -> bool:
    """A root not of our own follow-ups: a shadow run belongs to the request it links to, and
    feedback is a trace of its own about a request."""
    return (
        span.parent_id is None
        and not span.is_shadow
        and semconv.RAG_FEEDBACK_TRACE_ID not in span.attributes
    )


def self_times_ms(spans: Sequence[SpanRecord]) -> dict[tuple[str, str], float]:
    """Each span's exclusive time: its duration less the union of its children's intervals.

    Children are clipped to their parent's interval; overlapping (concurrent) children are
    counted once.
    """
    children: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for span in spans:
        if span.parent_id is not None:
            children.setdefault((span.trace_id, span.parent_id), []).append(
                (span.start_ns, span.end_ns)
            )
    out: dict[tuple[str, str], float] = {}
    for span in spans:
        key = (span.trace_id, span.span_id)
        covered = 0
        cursor = span.start_ns
        for child_start, child_end in sorted(children.get(key, ())):
            start, end = max(child_start, cursor), min(child_end, span.end_ns)
            if end > start:
                covered += end - start
                cursor = end
        out[key] = max(0, span.end_ns - span.start_ns - covered) / 1e6
    return out


def stage_table(spans: Sequence[SpanRecord]) -> StageTable:
    """Per-stage p50/p95/p99 and exclusive share of end-to-end latency, plus the shadow summary."""
    roots = request_roots(spans)
    request_traces = {r.trace_id for r in roots}
    background: dict[str, int] = {}
    for root in background_roots(spans):
        name = stage_of(root) or ""
        background[name] = background.get(name, 0) + 1
    total_ms = sum(r.duration_ms for r in roots)
    in_requests = [s for s in spans if s.trace_id in request_traces]
    self_ms = self_times_ms(in_requests)
    by_stage: dict[str, list[SpanRecord]] = {}
    shadow_spans: list[SpanRecord] = []
    for span in spans:
        stage = stage_of(span)
        if stage is None:
            continue
        if span.is_shadow:
            shadow_spans.append(span)
        elif not request_traces or span.trace_id in request_traces:
            by_stage.setdefault(stage, []).append(span)
    order = [s for s in _STAGE_ORDER if s in by_stage]
    order += sorted(s for s in by_stage if s not in _STAGE_ORDER)
    rows = []
    staged_ms = 0.0
    for stage in order:
        members = by_stage[stage]
        exclusive = sum(
            self_ms.get((s.trace_id, s.span_id), 0.0)
            for s in members
            if s.trace_id in request_traces
        )
        staged_ms += exclusive
        share = exclusive / total_ms if total_ms > 0 else None
        rows.append(_row(stage, members, share))
    return StageTable(
        rows=rows,
        end_to_end=_row(END_TO_END, roots, None) if roots else None,
        requests=len(request_traces),
        shadow_row=_row(SHADOW_ROW, shadow_spans, None) if shadow_spans else None,
        shadow=shadow_summary(spans),
        background=background,
        other_share=max(0.0, 1 - staged_ms / total_ms) if total_ms > 0 else None,
    )


def shadow_summary(spans: Sequence[SpanRecord]) -> ShadowSummary | None:
    """Summarize shadow rerank runs; ``None`` when there are none."""
    shadow = [s for s in spans if s.is_shadow and s.stage == semconv.OPERATION_RERANK]
    if not shadow:
        return None
    known = {(s.trace_id, s.span_id) for s in spans}
    changed = [s.attributes.get(semconv.RAG_RERANK_TOP1_CHANGED) for s in shadow]
    flags = [c for c in changed if isinstance(c, bool)]
    taus = [
        float(t)
        for t in (s.attributes.get(semconv.RAG_RERANK_KENDALL_TAU) for s in shadow)
        if is_number(t)
    ]
    return ShadowSummary(
        runs=len(shadow),
        top1_changed=sum(flags),
        top1_changed_rate=sum(flags) / len(flags) if flags else None,
        mean_kendall_tau=sum(taus) / len(taus) if taus else None,
        linked=sum(1 for s in shadow if any(link in known for link in s.links)),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """End-to-end and rerank p95 against a latency budget.

    Attributes:
        budget_ms: the budget.
        end_to_end_p95_ms: end-to-end p95, if there are requests.
        within_budget: end-to-end p95 fits the budget.
        rerank_p95_ms: rerank p95 on the request path, if reranking is served.
        rerank_budget_share: rerank p95 over the budget.
        shadow_p95_ms: shadow runs' p95: what serving the reranker would cost.
        shadow_budget_share: shadow p95 over the budget.
    """

    budget_ms: float
    end_to_end_p95_ms: float | None
    within_budget: bool | None
    rerank_p95_ms: float | None
    rerank_budget_share: float | None
    shadow_p95_ms: float | None
    shadow_budget_share: float | None

    def text(self) -> str:
        """One or two sentences a person can act on."""
        parts = []
        if self.end_to_end_p95_ms is None:
            parts.append(
                f"no request spans, so no end-to-end latency to compare with the "
                f"{self.budget_ms:g} ms budget."
            )
        else:
            fits = "WITHIN" if self.within_budget else "OVER"
            parts.append(
                f"end-to-end p95 {self.end_to_end_p95_ms:.1f} ms is {fits} the "
                f"{self.budget_ms:g} ms budget."
            )
        if self.rerank_p95_ms is not None and self.rerank_budget_share is not None:
            parts.append(
                f"rerank p95 {self.rerank_p95_ms:.1f} ms takes "
                f"{self.rerank_budget_share:.0%} of the budget."
            )
        if self.shadow_p95_ms is not None and self.shadow_budget_share is not None:
            parts.append(
                f"serving the shadowed reranker would add about {self.shadow_p95_ms:.1f} ms "
                f"at p95 ({self.shadow_budget_share:.0%} of the budget)."
            )
        return "verdict: " + " ".join(parts)


def verdict(table: StageTable, budget_ms: float) -> Verdict:
    """Compare the table's p95s with a latency budget in milliseconds."""
    e2e = table.end_to_end
    rerank = table.row(semconv.OPERATION_RERANK)
    shadow = table.shadow_row
    return Verdict(
        budget_ms=budget_ms,
        end_to_end_p95_ms=e2e.p95_ms if e2e else None,
        within_budget=(e2e.p95_ms <= budget_ms) if e2e else None,
        rerank_p95_ms=rerank.p95_ms if rerank else None,
        rerank_budget_share=rerank.p95_ms / budget_ms if rerank else None,
        shadow_p95_ms=shadow.p95_ms if shadow else None,
        shadow_budget_share=shadow.p95_ms / budget_ms if shadow else None,
    )


def format_table(table: StageTable) -> str:
    """The stage table as aligned text, with the shadow summary below it."""
    header = ("stage", "count", "p50 ms", "p95 ms", "p99 ms", "mean ms", "share")
    lines_data: list[tuple[str, ...]] = []
    rows = list(table.rows)
    if table.end_to_end is not None:
        rows.append(table.end_to_end)
    if table.shadow_row is not None:
        rows.append(table.shadow_row)
    for row in rows:
        if row.stage == END_TO_END:
            share = "100%"
        elif row.share is None:
            share = "-"
        else:
            share = f"{row.share:.1%}"
        lines_data.append(
            (
                row.stage,
                str(row.count),
                f"{row.p50_ms:.2f}",
                f"{row.p95_ms:.2f}",
                f"{row.p99_ms:.2f}",
                f"{row.mean_ms:.2f}",
                share,
            )
        )
    out = text_table(header, lines_data, label_column=True)
    if table.requests:
        out.append(f"{table.requests} request(s); percentiles: {table.method}")
        if table.other_share is not None:
            out.append(
                f"shares are exclusive (self) time; {table.other_share:.1%} is the requests' "
                "own work outside any stage"
            )
    else:
        out.append(f"percentiles: {table.method}")
        out.append(NO_REQUESTS_HINT)
    if table.background:
        detail = ", ".join(f"{n} {stage}" for stage, n in sorted(table.background.items()))
        out.append(
            f"{table.background_calls} background stage call(s), not requests ({detail}): "
            "left out of the end-to-end figures"
        )
    shadow = table.shadow
    if shadow is not None:
        rate = "n/a" if shadow.top1_changed_rate is None else f"{shadow.top1_changed_rate:.1%}"
        tau = "n/a" if shadow.mean_kendall_tau is None else f"{shadow.mean_kendall_tau:+.3f}"
        out.append(
            f"shadow: {shadow.runs} run(s); the reranker would have changed the top result "
            f"in {rate} ({shadow.top1_changed}); mean Kendall tau {tau}; "
            f"{shadow.linked} linked to a request in these spans"
        )
    return "\n".join(out)
