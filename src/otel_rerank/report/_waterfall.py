"""The waterfall picture of a typical request: its spans as bars on a time axis.

"Typical" is the median request by end-to-end latency (the lower median for an even
count), so the picture shows what most users wait for rather than an outlier. Spans are
drawn in start order, indented by depth like a trace view, each bar labelled with its
duration. matplotlib is imported only here and only when a plot is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from otel_rerank.report._spans import SpanRecord
from otel_rerank.report._stats import request_roots

_COLORS = {
    "embeddings": "#4c72b0",
    "retrieval": "#55a868",
    "rerank": "#c44e52",
    "chat": "#8172b2",
}


def median_trace(spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    """Spans of the median request by root duration, in start order; empty if none.

    Shadow runs linked to one of the request's spans come last: they ran beside the
    request, in traces of their own.
    """
    roots = sorted(request_roots(spans), key=lambda r: (r.duration_ms, r.trace_id))
    if not roots:
        return []
    chosen = roots[(len(roots) - 1) // 2]
    members = [s for s in spans if s.trace_id == chosen.trace_id]
    ids = {(s.trace_id, s.span_id) for s in members}
    linked = [
        s
        for s in spans
        if s.trace_id != chosen.trace_id and s.is_shadow and any(k in ids for k in s.links)
    ]
    order = sorted(members, key=lambda s: (s.start_ns, -s.end_ns))
    return order + sorted(linked, key=lambda s: s.start_ns)


def _depths(spans: Sequence[SpanRecord]) -> dict[str, int]:
    parents = {s.span_id: s.parent_id for s in spans}
    depths: dict[str, int] = {}
    for span in spans:
        depth, current, seen = 0, span.parent_id, set()
        while current is not None and current in parents and current not in seen:
            seen.add(current)
            depth += 1
            current = parents[current]
        depths[span.span_id] = depth
    return depths


def plot_waterfall(
    spans: Sequence[SpanRecord], out_png: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Draw the median request's waterfall to ``out_png``; returns the path written.

    Raises:
        ValueError: there is no request (root span) to draw.
    """
    trace_spans = median_trace(spans)
    if not trace_spans:
        raise ValueError("no request (root span) to draw")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = min(s.start_ns for s in trace_spans)
    depths = _depths(trace_spans)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(trace_spans) + 1.5))
    try:
        labels = []
        for i, span in enumerate(trace_spans):
            start = (span.start_ns - origin) / 1e6
            color = _COLORS.get(span.stage or "", "#8c8c8c")
            shadow = span.trace_id != trace_spans[0].trace_id
            ax.barh(
                i,
                span.duration_ms,
                left=start,
                color=color,
                height=0.6,
                alpha=0.45 if shadow else 1.0,
                hatch="//" if shadow else None,
            )
            ax.text(
                start + span.duration_ms,
                i,
                f" {span.duration_ms:.1f} ms",
                va="center",
                fontsize=8,
            )
            # Tick labels are right-aligned, so depth shows as a marker, not as indentation.
            depth = depths[span.span_id]
            prefix = "(shadow) " if shadow else ("·" * (depth - 1) + "└ " if depth else "")
            labels.append(prefix + span.name)
        ax.set_yticks(range(len(trace_spans)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()  # first span on top, as trace views draw it
        ax.set_xlabel("ms since request start")
        total = trace_spans[0].duration_ms if trace_spans[0].parent_id is None else None
        default = f"median request ({total:.1f} ms)" if total else "median request"
        ax.set_title(title or default)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = Path(out_png)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
