"""The reranker benchmark: time ``predict`` over a k × batch-size grid, judge the lift.

For every candidate count k and batch size b, each query's first k candidates are scored
with ``model.predict(pairs, batch_size=b)`` — ``warmup`` untimed calls first, then
``repeats`` timed passes over the query set — so each cell holds ``repeats × queries``
latency samples. Pairs are built before the clock starts; the clock
(``time.perf_counter``) brackets the ``predict`` call alone, and the harness's own work
between calls is a list append and a progress-bar tick (``benchmarks/bench_harness.py``
measures it). When an OpenTelemetry SDK is configured and sentence-transformers is
instrumented, each timed call is also a rerank span.

Percentiles: linear interpolation between closest ranks (numpy's default, type 7). The
cost line latency ≈ a + b·k is a least-squares fit over every sample of a batch size, with
k the number of pairs actually scored, constrained to a ≥ 0 and b ≥ 0 (a fixed cost or a
cost per candidate below zero is noise, and a line with one would promise impossible
latencies at small k). Quality is judged once per k from the first timed pass (batch size
does not change scores beyond float noise). A k above the most candidates any query has
would measure the same calls as that count under a larger label, so it is measured (and
reported) at that count, with a note saying so.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from otel_rerank._toolkit import PERCENTILE_METHOD, percentile, text_table
from otel_rerank._values import float_list
from otel_rerank.bench._quality import Quality, quality
from otel_rerank.bench._queries import QuerySet


class Predictor(Protocol):
    """Anything with CrossEncoder's ``predict``."""

    def predict(self, sentences: Any, batch_size: int = ...) -> Any: ...


@dataclass(frozen=True, slots=True)
class Cell:
    """Latency of one (k, batch size) combination.

    Attributes:
        k: candidates per query asked for.
        batch_size: ``batch_size`` given to ``predict``.
        samples: timed calls.
        pairs_per_call: mean pairs scored per call (below k for queries with fewer).
        p50_ms, p95_ms, p99_ms, mean_ms: latency of one call, in milliseconds.
        pairs_per_s: pairs scored per second of ``predict`` time.
        ms_per_pair: milliseconds of ``predict`` time per pair.
    """

    k: int
    batch_size: int
    samples: int
    pairs_per_call: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    pairs_per_s: float
    ms_per_pair: float


@dataclass(frozen=True, slots=True)
class Fit:
    """Least-squares cost lines of one batch size.

    Attributes:
        batch_size: the batch size.
        a_ms, b_ms_per_pair: latency_ms ≈ a + b·k over every timed sample.
        r2: that line's coefficient of determination.
        p95_a_ms, p95_b_ms_per_pair: p95_ms ≈ a + b·k over the cells' p95s (``None`` with
            fewer than two k); the verdict extrapolates this one, since budgets are p95s.
    """

    batch_size: int
    a_ms: float
    b_ms_per_pair: float
    r2: float | None
    p95_a_ms: float | None = None
    p95_b_ms_per_pair: float | None = None

    def predict_ms(self, k: float) -> float:
        """The line's latency at ``k`` pairs."""
        return self.a_ms + self.b_ms_per_pair * k


@dataclass(frozen=True, slots=True)
class BenchVerdict:
    """The largest k whose p95 fits a budget, and what share of the budget it takes.

    Attributes:
        budget_ms: the p95 budget for the rerank call.
        k: largest tested k whose p95 fits (``None`` when none does).
        batch_size: the batch size that achieves it (lowest p95 among those fitting).
        p95_ms: that cell's p95.
        budget_share: ``p95_ms / budget_ms``.
        k_at_budget: k where that batch size's p95 line meets the budget (extrapolated
            or interpolated; ``None`` without a rising line).
    """

    budget_ms: float
    k: int | None
    batch_size: int | None
    p95_ms: float | None
    budget_share: float | None
    k_at_budget: int | None

    def text(self) -> str:
        """The verdict as one sentence."""
        if self.k is None:
            return (
                f"verdict: no tested k fits a p95 budget of {self.budget_ms:g} ms; "
                "rerank fewer candidates, use a smaller model or faster hardware."
            )
        line = ""
        if self.k_at_budget is not None:
            line = f"; extrapolating the p95 line, the budget is reached near k={self.k_at_budget}"
        return (
            f"verdict: up to k={self.k} candidates fit the {self.budget_ms:g} ms p95 budget "
            f"(batch size {self.batch_size}: p95 {self.p95_ms:.1f} ms, "
            f"{self.budget_share:.0%} of the budget){line}."
        )


@dataclass(slots=True)
class BenchResult:
    """Everything one benchmark run measured; ``to_dict`` is the ``--json`` document."""

    model: str
    proxy: bool
    query_set: str
    query_set_description: str
    queries: int
    labelled: bool
    settings: dict[str, Any]
    cells: list[Cell]
    quality: list[Quality]
    fits: list[Fit]
    verdict: BenchVerdict | None
    percentile_method: str = PERCENTILE_METHOD
    notice: str | None = None
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def cell(self, k: int, batch_size: int) -> Cell:
        """The cell of ``(k, batch_size)``."""
        return next(c for c in self.cells if c.k == k and c.batch_size == batch_size)

    def to_dict(self, include_samples: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (raw samples only when asked)."""
        out: dict[str, Any] = {
            "model": self.model,
            "proxy": self.proxy,
            "notice": self.notice,
            "query_set": {
                "name": self.query_set,
                "description": self.query_set_description,
                "queries": self.queries,
                "labelled": self.labelled,
            },
            "settings": self.settings,
            "percentile_method": self.percentile_method,
            "cells": [asdict(c) for c in self.cells],
            "quality": [asdict(q) for q in self.quality],
            "fits": [asdict(f) for f in self.fits],
            "verdict": asdict(self.verdict) if self.verdict else None,
            "notes": list(self.notes),
        }
        if self.verdict is not None:
            out["verdict"]["text"] = self.verdict.text()
        if include_samples:
            out["samples_ms"] = self.samples_ms
        return out


def fit_line(
    xs: Sequence[float], ys: Sequence[float], *, nonnegative: bool = False
) -> tuple[float, float, float | None]:
    """Least squares y ≈ a + b·x (``statistics.linear_regression``); returns (a, b, r²).

    With ``nonnegative``, the fit is constrained to a ≥ 0 and b ≥ 0 (non-negative least
    squares in two unknowns): when the unconstrained line has a negative intercept or slope,
    the line is whichever of two feasible ones has the smaller squared error — the fit
    through the origin (slope clipped at 0) or the flat line at the mean. r² is that line's
    (it can be below 0 when the constraint costs more than the mean would).

    Raises:
        ValueError: fewer than two distinct x values.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two points")
    if len(set(xs)) < 2:
        raise ValueError("need at least two distinct x values")
    b, a = statistics.linear_regression(xs, ys)
    mean_y = statistics.fmean(ys)

    def squared_error(a: float, b: float) -> float:
        return math.fsum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))

    if nonnegative and (a < 0 or b < 0):
        # The fit through the origin is linear_regression(proportional=True), Python 3.11+.
        through_origin = math.fsum(x * y for x, y in zip(xs, ys, strict=True)) / math.fsum(
            x * x for x in xs
        )
        feasible = [(0.0, max(through_origin, 0.0)), (max(mean_y, 0.0), 0.0)]
        a, b = min(feasible, key=lambda line: squared_error(*line))
    syy = math.fsum((y - mean_y) ** 2 for y in ys)
    r2 = None if syy == 0 else 1 - squared_error(a, b) / syy
    return a, b, r2


def _cell(k: int, batch_size: int, seconds: Sequence[float], pairs: Sequence[int]) -> Cell:
    ms = [s * 1000 for s in seconds]
    total_s = sum(seconds)
    total_pairs = sum(pairs)
    p50, p95, p99 = (percentile(ms, q) for q in (50, 95, 99))
    return Cell(
        k=k,
        batch_size=batch_size,
        samples=len(ms),
        pairs_per_call=total_pairs / len(pairs),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=sum(ms) / len(ms),
        pairs_per_s=total_pairs / total_s if total_s > 0 else math.inf,
        ms_per_pair=total_s * 1000 / total_pairs if total_pairs else math.nan,
    )


def bench_verdict(cells: Sequence[Cell], fits: Sequence[Fit], budget_ms: float) -> BenchVerdict:
    """The largest k whose p95 fits ``budget_ms`` (ties: the batch size with the lowest p95)."""
    fitting = [c for c in cells if c.p95_ms <= budget_ms]
    if not fitting:
        return BenchVerdict(budget_ms, None, None, None, None, None)
    best = min(fitting, key=lambda c: (-c.k, c.p95_ms))
    line = next((f for f in fits if f.batch_size == best.batch_size), None)
    k_at_budget = None
    slope = line.p95_b_ms_per_pair if line is not None else None
    if line is not None and line.p95_a_ms is not None and slope is not None and slope > 0:
        k_at_budget = max(int((budget_ms - line.p95_a_ms) / slope), 0)
    return BenchVerdict(
        budget_ms, best.k, best.batch_size, best.p95_ms, best.p95_ms / budget_ms, k_at_budget
    )


def run_bench(
    model: Predictor,
    query_set: QuerySet,
    ks: Sequence[int],
    batch_sizes: Sequence[int],
    *,
    repeats: int = 3,
    warmup: int = 2,
    budget_ms: float | None = None,
    model_name: str = "model",
    proxy: bool = False,
    notice: str | None = None,
    progress: Callable[[int], Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    settings: dict[str, Any] | None = None,
) -> BenchResult:
    """Benchmark ``model`` over every (k, batch size); see the module docstring.

    Args:
        model: anything with CrossEncoder's ``predict(pairs, batch_size=...)``.
        query_set: the queries; labels (if every query has them) give the quality lift.
        ks: candidate counts to sweep (each > 0).
        batch_sizes: batch sizes to sweep (each > 0).
        repeats: timed passes over the query set per cell.
        warmup: untimed calls per cell before timing.
        budget_ms: p95 budget for the verdict.
        model_name, proxy, notice: carried into the result.
        progress: called with the number of calls just made (a progress bar's ``update``).
        clock: the timer (seconds).
        settings: extra settings recorded in the result.

    Raises:
        ValueError: an empty query set or a non-positive k, batch size or repeat count.
    """
    queries = query_set.queries
    if not queries:
        raise ValueError("the query set is empty")
    for name, values in (("k", ks), ("batch size", batch_sizes)):
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"every {name} must be a positive integer")
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be ≥ 1 and warmup ≥ 0")
    ks, notes = clip_ks(ks, query_set.max_candidates)
    tick = progress or (lambda _n: None)
    labelled = query_set.labelled
    cells: list[Cell] = []
    scores_at_k: dict[int, list[list[float]]] = {}
    samples_ms: dict[str, list[float]] = {}
    by_batch: dict[int, tuple[list[float], list[float]]] = {b: ([], []) for b in batch_sizes}
    for k in ks:
        pair_lists = [[(q.query, c) for c in q.candidates[:k]] for q in queries]
        sizes = [len(p) for p in pair_lists]
        for b_index, batch_size in enumerate(batch_sizes):
            for w in range(warmup):
                model.predict(pair_lists[w % len(pair_lists)], batch_size=batch_size)
            tick(warmup)
            seconds: list[float] = []
            judge = b_index == 0 and labelled
            kept: list[list[float]] = []
            for r in range(repeats):
                for pairs in pair_lists:
                    start = clock()
                    result = model.predict(pairs, batch_size=batch_size)
                    seconds.append(clock() - start)
                    if judge and r == 0:
                        kept.append(_scores(result, len(pairs)))
                tick(len(pair_lists))
            if judge:
                scores_at_k[k] = kept
            cells.append(_cell(k, batch_size, seconds, sizes * repeats))
            samples_ms[f"{k}x{batch_size}"] = [s * 1000 for s in seconds]
            xs, ys = by_batch[batch_size]
            xs.extend(sizes * repeats)
            ys.extend(s * 1000 for s in seconds)
    fits = []
    for batch_size, (xs, ys) in by_batch.items():
        try:
            a, b, r2 = fit_line(xs, ys, nonnegative=True)
        except ValueError:
            continue  # one k only: no line
        batch_cells = [c for c in cells if c.batch_size == batch_size]
        a95: float | None
        b95: float | None
        try:
            a95, b95, _ = fit_line(
                [c.pairs_per_call for c in batch_cells],
                [c.p95_ms for c in batch_cells],
                nonnegative=True,
            )
        except ValueError:  # every k gave the same number of pairs
            a95 = b95 = None
        fits.append(Fit(batch_size, a, b, r2, a95, b95))
    judged = []
    if labelled:
        for k, scores in scores_at_k.items():
            labels = [list(q.labels or ())[:k] for q in queries]
            judged.append(quality(k, labels, scores))
    return BenchResult(
        model=model_name,
        proxy=proxy,
        query_set=query_set.name,
        query_set_description=query_set.description,
        queries=len(queries),
        labelled=labelled,
        settings={
            "k": list(ks),
            "batch_size": list(batch_sizes),
            "repeats": repeats,
            "warmup": warmup,
            "budget_ms": budget_ms,
            **(settings or {}),
        },
        cells=cells,
        quality=judged,
        fits=fits,
        verdict=bench_verdict(cells, fits, budget_ms) if budget_ms is not None else None,
        notice=notice,
        samples_ms=samples_ms,
        notes=notes,
    )


def clip_ks(ks: Sequence[int], max_candidates: int) -> tuple[list[int], list[str]]:
    """The k values to measure, none above ``max_candidates``, and a note for each clipped.

    Scoring "the first 100,000 candidates" of queries that have 4 is scoring 4: measured
    under the larger label, the verdict would claim a k that was never run.
    """
    too_large = sorted({k for k in ks if k > max_candidates})
    if not too_large:
        return sorted(set(ks)), []
    kept = sorted({min(k, max_candidates) for k in ks})
    asked = ", ".join(str(k) for k in too_large)
    note = (
        f"k={asked} is more than the most candidates any query has ({max_candidates}): "
        f"measured at k={max_candidates} instead"
    )
    return kept, [note]


def _scores(result: Any, expected: int) -> list[float]:
    scores = float_list(result)
    if scores is None or len(scores) != expected:
        raise ValueError(f"predict returned {result!r:.80}, not one score per pair")
    return scores


def format_result(result: BenchResult) -> str:
    """The benchmark as readable text: latency table, quality lift, cost lines, verdict."""
    lines = [f"model: {result.model}"]
    if result.notice:
        lines.append(f"NOTE: {result.notice}")
    lines.extend(f"note: {note}" for note in result.notes)
    lines.append(f"query set: {result.query_set_description}")
    lines.append(
        f"settings: repeats={result.settings['repeats']} warmup={result.settings['warmup']} "
        + " ".join(
            f"{k}={v}"
            for k, v in result.settings.items()
            if k not in ("k", "batch_size", "repeats", "warmup", "budget_ms")
        )
    )
    lines.append("")
    header = ("k", "batch", "n", "pairs", "p50 ms", "p95 ms", "p99 ms", "pairs/s", "ms/pair")
    rows = [
        (
            str(c.k),
            str(c.batch_size),
            str(c.samples),
            f"{c.pairs_per_call:.1f}",
            f"{c.p50_ms:.2f}",
            f"{c.p95_ms:.2f}",
            f"{c.p99_ms:.2f}",
            f"{c.pairs_per_s:.1f}",
            f"{c.ms_per_pair:.3f}",
        )
        for c in result.cells
    ]
    lines.extend(text_table(header, rows))
    lines.append(f"percentiles: {result.percentile_method}")
    if result.quality:
        lines.append("")
        meaning = " (NOT meaningful for this model: see the NOTE above)" if result.notice else ""
        lines.append(f"quality (original first-stage order → reranked), labelled queries{meaning}:")
        q_header = ("k", "queries", "top-1", "lift", "NDCG@5", "lift", "MRR@10", "lift")
        q_rows = [
            (
                str(q.k),
                f"{q.queries} ({q.with_relevant} with a relevant)",
                f"{q.top1_original:.3f}→{q.top1_reranked:.3f}",
                f"{q.top1_lift:+.3f}",
                f"{q.ndcg5_original:.3f}→{q.ndcg5_reranked:.3f}",
                f"{q.ndcg5_lift:+.3f}",
                f"{q.mrr10_original:.3f}→{q.mrr10_reranked:.3f}",
                f"{q.mrr10_lift:+.3f}",
            )
            for q in result.quality
        ]
        lines.extend(text_table(q_header, q_rows))
    if result.fits:
        lines.append("")
        lines.append("cost line (least squares over every sample, a and b ≥ 0): latency ≈ a + b·k")
        for f in result.fits:
            r2 = "n/a" if f.r2 is None else f"{f.r2:.3f}"
            p95 = ""
            if f.p95_a_ms is not None and f.p95_b_ms_per_pair is not None:
                p95 = f"; p95 ≈ {f.p95_a_ms:.2f} + {f.p95_b_ms_per_pair:.3f}·k ms"
            lines.append(
                f"  batch {f.batch_size}: a = {f.a_ms:.2f} ms, b = {f.b_ms_per_pair:.3f} ms "
                f"per candidate (R² {r2}){p95}"
            )
    if result.verdict is not None:
        lines.append("")
        lines.append(result.verdict.text())
    return "\n".join(lines)
