"""The benchmark's picture: latency percentiles against k, one colour per batch size.

p50 is drawn solid, p95 dashed, p99 dotted; the budget, when given, is a horizontal line,
so the largest k under it can be read off directly. matplotlib is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path

from otel_rerank.bench._harness import BenchResult


def plot_bench(result: BenchResult, out_png: str | os.PathLike[str]) -> Path:
    """Draw ``result`` to ``out_png``; returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        batch_sizes = sorted({c.batch_size for c in result.cells})
        for i, batch_size in enumerate(batch_sizes):
            cells = sorted(
                (c for c in result.cells if c.batch_size == batch_size), key=lambda c: c.k
            )
            ks = [c.k for c in cells]
            color = colors[i % len(colors)]
            ax.plot(
                ks, [c.p50_ms for c in cells], "-o", color=color, label=f"batch {batch_size} p50"
            )
            ax.plot(
                ks, [c.p95_ms for c in cells], "--", color=color, label=f"batch {batch_size} p95"
            )
            ax.plot(
                ks, [c.p99_ms for c in cells], ":", color=color, label=f"batch {batch_size} p99"
            )
        budget = result.settings.get("budget_ms")
        highest = max((c.p99_ms for c in result.cells), default=0.0)
        off_scale = budget is not None and budget > 3 * highest
        if budget and not off_scale:
            ax.axhline(budget, color="black", linewidth=1, label=f"budget {budget:g} ms")
        ax.set_xlabel("candidates per query (k)")
        ax.set_ylabel("rerank latency per query (ms)")
        title = f"{result.model}: rerank latency vs k"
        if result.proxy:
            title += " (latency proxy)"
        if off_scale:
            # A budget far above every measurement would flatten the curves to the axis.
            title += f"\np95 budget {budget:g} ms is off the scale (> 3x the slowest p99)"
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = Path(out_png)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
