"""The benchmark harness's own overhead per timed call, against a 50-pair predict.

``otel-rerank bench`` is only trustworthy if what it adds around each ``predict`` is
negligible. Two measurements in one run, both with the same harness code path
(``otel_rerank.bench.run_bench`` with a live tqdm progress bar):

* **no-op model** — ``predict`` returns a precomputed list at once, so the whole wall time
  per call is the harness: building nothing (pairs are built before the clock starts),
  reading the clock twice, appending the sample, ticking the progress bar.
* **real model** — the proxy cross-encoder (ms-marco-MiniLM-L-6-v2 shape, 1 torch thread)
  on 50 pairs: the harness's wall time for the cell minus the sum of the timed samples,
  per call, is the overhead outside the timed region.

Target (issue #4): overhead per timed call < 1% of a 50-pair predict. Run::

    .venv/bin/python benchmarks/bench_harness.py [--queries 20] [--noop-calls 20000]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from otel_rerank import bench
from otel_rerank.bench import Query, QuerySet
from otel_rerank.report import percentile

PASSAGE = (
    "Open the file with gzip.open in text mode and iterate over it; each line is decoded "
    "and can be handed to json.loads. Candidate passage number {i} from the first stage."
)


class _NoOp:
    def __init__(self, k: int) -> None:
        self.result = [0.0] * k

    def predict(self, pairs: Sequence[Any], batch_size: int = 32) -> list[float]:
        return self.result


def _query_set(n: int, k: int) -> QuerySet:
    queries = [
        Query(f"query {i} about reading json files", tuple(PASSAGE.format(i=j) for j in range(k)))
        for i in range(n)
    ]
    return QuerySet("synthetic", f"{n} synthetic queries of {k} candidates", queries)


def _timed_run(
    model: Any, query_set: QuerySet, k: int, batch: int, repeats: int
) -> tuple[float, bench.BenchResult, int]:
    calls = repeats * len(query_set.queries)
    bar = tqdm(total=calls, file=io.StringIO(), disable=False, mininterval=0.1)
    start = time.perf_counter()
    result = bench.run_bench(
        model, query_set, ks=[k], batch_sizes=[batch], repeats=repeats, warmup=0,
        progress=bar.update,
    )  # fmt: skip
    wall = time.perf_counter() - start
    bar.close()
    return wall, result, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="cross-encoder directory (default: the proxy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--noop-calls", type=int, default=20000)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import CrossEncoder

    from otel_rerank.models import PROXY_NOTICE, is_proxy, proxy_cross_encoder_path

    torch.set_num_threads(1)
    path = args.model or str(proxy_cross_encoder_path())
    model = CrossEncoder(path, device=args.device)

    # The harness with a model that does nothing: everything measured is the harness.
    noop_set = _query_set(args.noop_calls, args.k)
    noop_wall, _, noop_calls = _timed_run(_NoOp(args.k), noop_set, args.k, args.batch_size, 1)
    # Pair building happens before the timed loop; measure it to separate it out.
    start = time.perf_counter()
    _ = [[(q.query, c) for c in q.candidates[: args.k]] for q in noop_set.queries]
    build = time.perf_counter() - start
    per_call_noop = (noop_wall - build) / noop_calls

    # The harness around the real model: wall time outside the timed region, per call.
    real_set = _query_set(args.queries, args.k)
    model.predict(
        [(q.query, c) for q in real_set.queries[:1] for c in q.candidates],
        batch_size=args.batch_size,
    )
    real_wall, result, real_calls = _timed_run(
        model, real_set, args.k, args.batch_size, args.repeats
    )
    samples_ms = result.samples_ms[f"{args.k}x{args.batch_size}"]
    outside = (
        real_wall * 1000 - sum(samples_ms)
    ) / real_calls  # ms per call, pair building included
    predict_p50 = percentile(samples_ms, 50)

    print(f"model: {path} on {args.device}, 1 torch thread")
    if is_proxy(path):
        print(f"NOTE: {PROXY_NOTICE}")
    print(
        f"{args.k}-pair predict (batch {args.batch_size}): p50 {predict_p50:.2f} ms "
        f"over {real_calls} calls"
    )
    print(
        f"no-op model: {per_call_noop * 1e6:.2f} µs of harness per timed call "
        f"({noop_calls} calls; {per_call_noop * 1000 / predict_p50:.4%} of a {args.k}-pair predict)"
    )
    print(
        f"real model:  {outside * 1000:.1f} µs per call outside the timed region, pair "
        f"building included ({outside / predict_p50:.4%} of a {args.k}-pair predict)"
    )
    worst = max(per_call_noop * 1000, outside) / predict_p50
    print(
        f"harness overhead < 1% of a {args.k}-pair predict: "
        f"{'PASS' if worst < 0.01 else 'FAIL'} ({worst:.4%})"
    )


if __name__ == "__main__":
    main()
