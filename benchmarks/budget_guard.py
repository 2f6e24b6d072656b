"""The rerank budget guard under load: end-to-end p95 without it, and with it, against 1.5 s.

Drives the example service's pipeline (``otel_rerank.demo``: all-MiniLM-L6-v2 embeddings,
a faiss index over standard-library docstrings, the reranker through ``ShadowReranker`` in
``serve`` mode, an LLM call through the ``openai`` client to the loopback stand-in)
**in-process**, at a fixed arrival rate: request i starts at t0 + i / rate on a thread pool,
each inside ``otel_rerank.request(budget_ms=1500)``. In-process rather than over HTTP
because on a 2-core shared machine the HTTP server and the load generator would compete
with the pipeline for the same cores and measure the machine, not the guard.

The reranker is a calibrated sleeper: a cross-encoder whose cost is a + b·k (default 40 ms +
25 ms per candidate — a large cross-encoder on a CPU; 50 candidates take 1.29 s), sleeping
rather than computing, so its cost does not depend on what else runs on the shared cores.
Its scores are the real proxy cross-encoder's, computed once before the load starts, so
the top-1 agreement between a guarded (cut) rerank and the full one is a real measure. The
stand-in LLM takes ``--llm-ms`` per reply. Without the guard, p95 is over the budget; with
it (reserve learned from the chat spans' p95) it should be within budget + 5 %.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/budget_guard.py              # ~3 min
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/budget_guard.py --duration 30
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any


class SleeperCrossEncoder:
    """``predict`` costs ``a_ms + b_ms * len(pairs)`` of wall time and returns real scores.

    Scores come from ``scores`` (keyed by (query, passage text)), precomputed with the
    proxy cross-encoder; sleeping instead of computing makes the cost the same whatever
    else the shared cores do.
    """

    def __init__(self, scores: dict[tuple[str, str], float], a_ms: float, b_ms: float) -> None:
        self.scores, self.a_ms, self.b_ms = scores, a_ms, b_ms

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[float]:
        time.sleep((self.a_ms + self.b_ms * len(pairs)) / 1000)
        return [self.scores[pair] for pair in pairs]


@dataclass
class Arm:
    """One load run's results."""

    name: str
    latencies_ms: list[float]
    ks: list[int]
    outcomes: list[str]
    top1_agree: list[bool]

    def p95(self) -> float:
        from otel_rerank.report import percentile

        return percentile(self.latencies_ms, 95)


def run_arm(
    name: str,
    pipeline: Any,
    queries: list[str],
    full_top1: dict[str, int],
    *,
    rate: float,
    duration_s: float,
    warmup: int,
    budget_ms: float,
) -> Arm:
    """Fire ``rate`` requests per second for ``duration_s`` (plus ``warmup`` unmeasured)."""
    import otel_rerank

    total = warmup + round(rate * duration_s)
    results: list[tuple[int, float, int | None]] = []
    lock = threading.Lock()

    def one(index: int, start_at: float) -> None:
        delay = start_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        query = queries[index % len(queries)]
        started = time.perf_counter()
        with otel_rerank.request(name="ask", budget_ms=budget_ms):
            answer = pipeline.answer(query)
        took = (time.perf_counter() - started) * 1000
        top1 = answer.passages[0].id if answer.passages else None
        with lock:
            results.append((index, took, top1))

    t0 = time.perf_counter() + 0.2
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, i, t0 + i / rate) for i in range(total)]
        for future in futures:
            future.result()
    measured = sorted(r for r in results if r[0] >= warmup)
    arm = Arm(name, [r[1] for r in measured], [], [], [])
    for index, _, top1 in measured:
        arm.top1_agree.append(top1 == full_top1[queries[index % len(queries)]])
    return arm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-ms", type=float, default=1500.0)
    parser.add_argument("--rate", type=float, default=1.5, help="requests per second")
    parser.add_argument("--duration", type=float, default=50.0, help="seconds per arm")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per arm")
    parser.add_argument("--k", type=int, default=50, help="candidates retrieved")
    parser.add_argument("--a-ms", type=float, default=40.0, help="reranker fixed cost")
    parser.add_argument("--b-ms", type=float, default=25.0, help="reranker cost per candidate")
    parser.add_argument("--llm-ms", type=float, default=250.0, help="stand-in LLM reply time")
    parser.add_argument("--passages", type=int, default=300, help="corpus size")
    args = parser.parse_args(argv)
    if min(args.rate, args.duration, args.k, args.budget_ms) <= 0:
        parser.error("--rate, --duration, --k and --budget-ms must be positive")

    import openai
    import torch
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_rerank
    from otel_rerank.demo import build_pipeline
    from otel_rerank.demo.llm_standin import LLMStandIn
    from otel_rerank.demo.queries import DEMO_QUERIES

    torch.set_num_threads(1)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_rerank.instrument(tracer_provider=provider)

    pipeline, setup = build_pipeline(k=args.k, max_passages=args.passages, use_env_llm=False)
    standin = LLMStandIn(delay_s=args.llm_ms / 1000).start()
    pipeline.llm = openai.OpenAI(base_url=standin.base_url, api_key="x", max_retries=0)
    queries = list(DEMO_QUERIES)

    # Real scores of the proxy cross-encoder for every (query, candidate), computed once.
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from sentence_transformers import CrossEncoder

    proxy = CrossEncoder(str(setup.cross_encoder_path))
    scores: dict[tuple[str, str], float] = {}
    full_top1: dict[str, int] = {}
    with suppress_instrumentation():
        for query in queries:
            candidates = pipeline.retrieve(query)
            pairs = [(query, p.content) for p in candidates]
            values = [float(v) for v in proxy.predict(pairs, batch_size=32)]
            scores.update(zip(pairs, values, strict=True))
            full_top1[query] = candidates[max(range(len(values)), key=values.__getitem__)].id
    sleeper = SleeperCrossEncoder(scores, args.a_ms, args.b_ms)
    print(
        f"pipeline: {len(setup.corpus.passages)} passages, k={pipeline.k}, reranker a + b·k = "
        f"{args.a_ms:g} + {args.b_ms:g}·k ms ({args.a_ms + args.b_ms * pipeline.k:.0f} ms "
        f"for all {pipeline.k}), LLM {args.llm_ms:g} ms; {args.rate:g} req/s for "
        f"{args.duration:g} s per arm (+{args.warmup} warm-up); budget {args.budget_ms:g} ms"
    )

    arms = []
    for name, budget in (
        ("no guard", None),
        ("guard", otel_rerank.RerankBudget(min_k=5)),
    ):
        pipeline.reranker = otel_rerank.ShadowReranker(
            sleeper, mode="serve", budget=budget, model="sleeper", text=lambda p: p.content
        )
        exporter.clear()
        arm = run_arm(
            name,
            pipeline,
            queries,
            full_top1,
            rate=args.rate,
            duration_s=args.duration,
            warmup=args.warmup,
            budget_ms=args.budget_ms,
        )
        reranks = sorted(
            (s for s in exporter.get_finished_spans() if s.name == "rerank sleeper"),
            key=lambda s: s.start_time or 0,
        )[args.warmup :]
        for span in reranks:
            attributes = span.attributes or {}
            arm.ks.append(int(attributes.get("rag.rerank.budget.k", pipeline.k)))  # type: ignore[arg-type]
            arm.outcomes.append(str(attributes.get("rag.rerank.budget.outcome", "full")))
        arms.append(arm)
        pipeline.reranker.close()

    standin.stop()
    pipeline.close()
    limit = args.budget_ms * 1.05
    print(
        f"{'arm':<9} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'full':>6} {'cut':>6} {'skip':>6} {'mean k':>7} {'top-1 =':>8}"
    )
    for arm in arms:
        n = len(arm.outcomes) or 1
        print(
            f"{arm.name:<9} {len(arm.latencies_ms):>8} "
            f"{statistics.median(arm.latencies_ms):>8.0f} {arm.p95():>8.0f} "
            f"{max(arm.latencies_ms):>8.0f} {arm.outcomes.count('full') / n:>6.0%} "
            f"{arm.outcomes.count('cut') / n:>6.0%} {arm.outcomes.count('skipped') / n:>6.0%} "
            f"{statistics.mean(arm.ks) if arm.ks else 0:>7.1f} "
            f"{sum(arm.top1_agree) / len(arm.top1_agree):>8.0%}"
        )
    unguarded, guarded = arms
    over = unguarded.p95() > args.budget_ms
    within = guarded.p95() <= limit
    print(
        f"without the guard p95 is {'OVER' if over else 'not over'} {args.budget_ms:g} ms; "
        f"with it p95 is {'WITHIN' if within else 'OVER'} {limit:g} ms (budget + 5 %). "
        "'full' = share of requests that kept the full rerank; 'top-1 =' = served top-1 is "
        "the full rerank's top-1."
    )
    return 0 if over and within else 1


if __name__ == "__main__":
    sys.exit(main())
