"""What shadow reranking costs the request path, side by side with shadow mode off.

One process, one SDK (batch span processor to a no-op exporter, as an app would have),
one ShadowReranker around a real cross-encoder that takes tens of milliseconds per call
(the ms-marco-MiniLM-L-6-v2-shaped proxy by default, 1 torch thread). Requests run in
rounds: a block with ``OTEL_RERANK_MODE=off`` (after the shadow queue has drained, so it is
clean), then a block with ``OTEL_RERANK_MODE=shadow`` at ``sample_rate=1.0`` — the worst
case: every request enqueues work, the worker is busy the whole block and a full queue
drops work. For each request the clock brackets ``reranker(query, candidates)`` inside the
request's span — the served path — and, separately, the whole simulated request (the call
plus ``--work-ms`` of pure-Python work, which shows any GIL contention with the worker).

Target (issue #4): shadow mode adds < 0.2 ms at p95 to the served call. Run::

    .venv/bin/python benchmarks/shadow.py [--rounds 10] [--block 50] [--candidates 10]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import otel_rerank
from otel_rerank import semconv
from otel_rerank.report import percentile
from otel_rerank.shadow import MODE_ENV, ShadowReranker

QUERY = "how do I read a gzip-compressed json file line by line"
PASSAGE = (
    "Open the file with gzip.open in text mode and iterate over it; each line is decoded "
    "and can be handed to json.loads. Candidate passage number {i} from the first stage."
)


class _NullExporter(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def _busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        x += 1


def _stats(label: str, values_s: Sequence[float]) -> tuple[float, float, float]:
    ms = [v * 1000 for v in values_s]
    p50, p95, p99 = (percentile(ms, q) for q in (50, 95, 99))
    print(f"  {label:<34} n={len(ms):<5} p50 {p50:8.4f}  p95 {p95:8.4f}  p99 {p99:8.4f} ms")
    return p50, p95, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="cross-encoder directory (default: the proxy)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=50, help="requests per mode per round")
    parser.add_argument("--work-ms", type=float, default=2.0, help="other work per request")
    parser.add_argument("--pause-ms", type=float, default=5.0, help="idle time between requests")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import CrossEncoder

    from otel_rerank.models import PROXY_NOTICE, is_proxy, proxy_cross_encoder_path

    torch.set_num_threads(1)
    path = args.model or str(proxy_cross_encoder_path())
    model = CrossEncoder(path, device=args.device)
    candidates = [PASSAGE.format(i=i) for i in range(args.candidates)]
    pairs = [(QUERY, c) for c in candidates]
    for _ in range(3):
        model.predict(pairs, batch_size=32)
    predict_s = []
    for _ in range(10):
        start = time.perf_counter()
        model.predict(pairs, batch_size=32)
        predict_s.append(time.perf_counter() - start)

    exporter = _NullExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel_rerank.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    tracer = tracer_provider.get_tracer("app")
    completed: list[float] = []
    reranker = ShadowReranker(
        model, sample_rate=1.0, max_queue=64, on_result=lambda r: completed.append(r.latency_s)
    )

    served: dict[str, list[float]] = {"off": [], "shadow": []}
    request: dict[str, list[float]] = {"off": [], "shadow": []}
    for _ in range(args.rounds):
        for mode in ("off", "shadow"):
            if mode == "off":
                while reranker.pending:  # let the backlog drain: a clean baseline
                    time.sleep(0.01)
                time.sleep(max(predict_s) * 2)
            os.environ[MODE_ENV] = mode
            for _ in range(args.block):
                start = time.perf_counter()
                with tracer.start_as_current_span("request"):
                    call_start = time.perf_counter()
                    result = reranker(QUERY, candidates)
                    call_end = time.perf_counter()
                    _busy(args.work_ms)
                end = time.perf_counter()
                assert result is candidates
                served[mode].append(call_end - call_start)
                request[mode].append(end - start)
                time.sleep(args.pause_ms / 1000)
    reranker.close(timeout=30)
    tracer_provider.shutdown()
    dropped = 0
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == semconv.METRIC_SHADOW_DROPPED:
                    dropped += sum(int(p.value) for p in metric.data.data_points)

    print(f"model: {path} on {args.device}, 1 torch thread")
    if is_proxy(path):
        print(f"NOTE: {PROXY_NOTICE}")
    print(
        f"predict of {args.candidates} candidates: p50 {percentile(predict_s, 50) * 1000:.1f} ms"
        f" (alone); shadow runs completed {len(completed)}, dropped (queue full) {dropped}"
    )
    print("served call  reranker(query, candidates)  inside the request span:")
    _, off95, _ = _stats("OTEL_RERANK_MODE=off", served["off"])
    _, on95, _ = _stats("OTEL_RERANK_MODE=shadow (rate 1.0)", served["shadow"])
    print(f"whole simulated request (call + {args.work_ms:g} ms of Python work):")
    _, roff95, _ = _stats("OTEL_RERANK_MODE=off", request["off"])
    _, ron95, _ = _stats("OTEL_RERANK_MODE=shadow (rate 1.0)", request["shadow"])
    added = on95 - off95
    verdict = "PASS" if added < 0.2 else "FAIL"
    print(
        f"shadow adds {added * 1000:+.1f} µs at p95 to the served call (target < 200 µs): {verdict}"
    )
    print(f"shadow adds {(ron95 - roff95) * 1000:+.1f} µs at p95 to the whole request")


if __name__ == "__main__":
    main()
