"""A RAG pipeline that sends a steady stream of traced requests, for the collector bundle.

Each request is a root span with four stage spans under it, made by otel-rerank's own
decorators: ``embeddings`` → ``retrieval`` → ``rerank`` → ``chat``. The stages only sleep
(no models, no network), so the latency is whatever the flags say: the rerank takes
``--rerank-ms``, except a ``--slow-share`` of calls that take ``--slow-ms``. That makes the
``RerankLatencyP95OverBudget`` alert fire or stay quiet on demand.

Two ways to export:
  - default: ``otel_rerank.configure()`` from the standard ``OTEL_*`` variables, so
    ``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317`` is all that points it at the
    collector (compose.yaml runs it this way);
  - ``--prometheus-port N``: serve the metrics on ``127.0.0.1:N/metrics`` with the Python
    ``PrometheusMetricReader`` (no collector), as tests/test_live_prometheus.py does.

Usage: ``python collector/loadgen.py [--rate 5] [--duration 0] [--rerank-ms 200]
[--slow-ms 2000] [--slow-share 0.2] [--prometheus-port N] [--service-name rag-demo]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from opentelemetry import trace

import otel_rerank

_CORPUS = [f"passage {i} about turbulent boundary layers" for i in range(50)]


class _Stages:
    """The four stage functions, decorated once; the rerank sleeps as long as told."""

    def __init__(self) -> None:
        self.rerank_s = 0.0

    @otel_rerank.embedding(model="all-MiniLM-L6-v2", provider="loadgen")
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        time.sleep(0.005)
        return [[float(len(t)), 0.0, 1.0] for t in texts]

    @otel_rerank.retrieval(data_source="cranfield", top_k=20, provider="loadgen")
    def retrieve(self, vector: Sequence[float], k: int = 20) -> list[str]:
        time.sleep(0.002)
        return _CORPUS[:k]

    @otel_rerank.rerank(model="ms-marco-MiniLM-L-6-v2", provider="loadgen")
    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        time.sleep(self.rerank_s)
        return [1.0 / (1 + i) for i in range(len(documents))][::-1]

    @otel_rerank.llm(model="local-llm", provider="loadgen")
    def answer(self, prompt: str) -> str:
        time.sleep(0.01)
        return "an answer"


def run_request(stages: _Stages, tracer: trace.Tracer, query: str, rerank_s: float) -> None:
    """One traced RAG request: a root span and the four stages under it."""
    stages.rerank_s = rerank_s
    # SERVER: the request's entry point, which Jaeger's Monitor tab lists by default.
    with tracer.start_as_current_span("rag request", kind=trace.SpanKind.SERVER):
        vector = stages.embed([query])[0]
        documents = stages.retrieve(vector, 20)
        scores = stages.rerank(query, documents)
        best = max(range(len(documents)), key=scores.__getitem__)
        stages.answer(f"{query}\n{documents[best]}")


def is_slow(i: int, share: float) -> bool:
    """Whether call ``i`` is one of the slow ones: exactly ``share`` of them, spread evenly."""
    return int((i + 1) * share) > int(i * share)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = forever")
    p.add_argument("--rerank-ms", type=float, default=200.0, help="normal rerank latency")
    p.add_argument("--slow-ms", type=float, default=2000.0, help="latency of a slow rerank")
    p.add_argument("--slow-share", type=float, default=0.0, help="share of slow reranks, 0-1")
    p.add_argument("--prometheus-port", type=int, help="serve metrics here instead of OTLP")
    p.add_argument("--service-name", default=os.environ.get("OTEL_SERVICE_NAME", "rag-demo"))
    args = p.parse_args(argv)
    if args.rate <= 0 or not 0 <= args.slow_share <= 1 or args.rerank_ms < 0 or args.slow_ms < 0:
        p.error("--rate must be > 0, --slow-share within 0..1, latencies >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("OTEL_SERVICE_NAME", args.service_name)
    if args.prometheus_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from prometheus_client import start_http_server

        resource = Resource.create({"service.name": args.service_name})
        meter_provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
        tracer_provider = TracerProvider(resource=resource)
        start_http_server(args.prometheus_port, addr="127.0.0.1")
    else:
        configured = otel_rerank.configure()
        tracer_provider = configured.tracer_provider or trace.get_tracer_provider()  # type: ignore[assignment]
        meter_provider = configured.meter_provider  # type: ignore[assignment]
    otel_rerank.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    tracer = tracer_provider.get_tracer("otel-rerank.loadgen")
    stages = _Stages()
    print(f"loadgen: {args.rate:g} req/s, rerank {args.rerank_ms:g} ms, "
          f"{args.slow_share:.0%} at {args.slow_ms:g} ms", flush=True)  # fmt: skip
    start = time.monotonic()
    i = 0
    try:
        while args.duration <= 0 or time.monotonic() - start < args.duration:
            ms = args.slow_ms if is_slow(i, args.slow_share) else args.rerank_ms
            run_request(stages, tracer, f"query {i}", ms / 1000)
            i += 1
            time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        shutdown = getattr(tracer_provider, "shutdown", None)
        if shutdown is not None:
            shutdown()
        if meter_provider is not None:
            meter_provider.shutdown()
    print(f"loadgen: sent {i} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
