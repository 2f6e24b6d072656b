"""The reranker benchmark behind ``otel-rerank bench``: what a reranker costs and buys.

::

    from otel_rerank import bench

    queries = bench.load_jsonl("queries.jsonl")      # or bench.bundled_query_set()
    result = bench.run_bench(cross_encoder, queries, ks=[10, 50], batch_sizes=[16, 32],
                             budget_ms=1500)
    print(bench.format_result(result))
    bench.plot_bench(result, "bench.png")
"""

from __future__ import annotations

from otel_rerank.bench._bundled import bundled_query_set
from otel_rerank.bench._harness import (
    BenchResult,
    BenchVerdict,
    Cell,
    Fit,
    Predictor,
    bench_verdict,
    clip_ks,
    fit_line,
    format_result,
    run_bench,
)
from otel_rerank.bench._plot import plot_bench
from otel_rerank.bench._quality import Quality, mrr_at, ndcg_at, quality, top1
from otel_rerank.bench._queries import (
    Query,
    QuerySet,
    QuerySetError,
    TrecCollection,
    load_jsonl,
    read_trec,
    retrieve_top_k,
    trec_query_set,
)

__all__ = [
    "BenchResult",
    "BenchVerdict",
    "Cell",
    "Fit",
    "Predictor",
    "Quality",
    "Query",
    "QuerySet",
    "QuerySetError",
    "TrecCollection",
    "bench_verdict",
    "bundled_query_set",
    "clip_ks",
    "fit_line",
    "format_result",
    "load_jsonl",
    "mrr_at",
    "ndcg_at",
    "plot_bench",
    "quality",
    "read_trec",
    "retrieve_top_k",
    "run_bench",
    "top1",
    "trec_query_set",
]
