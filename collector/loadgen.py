"""A RAG pipeline that sends a steady stream of traced requests, for the collector bundle.

Each request is a root span with four stage spans under it, made by otel-rerank's own
decorators: ``embeddings`` → ``retrieval`` → ``rerank`` → ``chat``. The stages only sleep
(no models, no network), so the latency is whatever the flags say: the rerank takes
``--rerank-ms`` (or, with ``--rerank-ms-max``, a value spread evenly up to it), except a
``--slow-share`` of calls that take ``--slow-ms``. That makes the
``RerankLatencyP95OverBudget`` alert fire or stay quiet on demand. An ``--error-share`` of
requests fail in the chat stage (the root span then has status ERROR).

Two ways to export:
  - default: ``otel_rerank.configure()`` from the standard ``OTEL_*`` variables, so
    ``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318`` is all that points it at the
    collector (compose.yaml runs it this way; add ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` for
    the collector's :4317);
  - ``--prometheus-port N``: serve the metrics on ``127.0.0.1:N/metrics`` with the Python
    ``PrometheusMetricReader`` (no collector), as tests/test_live_prometheus.py does.

Usage: ``python collector/loadgen.py [--rate 5] [--duration 0] [--requests 0]
[--rerank-ms 200] [--rerank-ms-max MS] [--slow-ms 2000] [--slow-share 0.2]
[--error-share 0] [--prometheus-port N] [--service-name rag-demo]``. At the end it prints
how many requests it sent and the largest time a request took beyond its own sleeps
(exporting is never on a request's path, whatever state the collector is in).
"""

from __future__ import annotations

import argparse
import contextlib
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
        self.fail = False

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
        if self.fail:
            raise RuntimeError("the model is overloaded")
        return "an answer"


def run_request(
    stages: _Stages, tracer: trace.Tracer, query: str, rerank_s: float, fail: bool = False
) -> None:
    """One traced RAG request: a root span and the four stages under it.

    Raises:
        RuntimeError: when ``fail``: the chat stage fails, and so does the request.
    """
    stages.rerank_s = rerank_s
    stages.fail = fail
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


def spread(i: int, low: float, high: float) -> float:
    """Call ``i``'s value in ``[low, high)``: evenly spread (golden-ratio sequence)."""
    return low + (high - low) * ((i * 0.6180339887498949) % 1.0)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    p.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = forever")
    p.add_argument("--requests", type=int, default=0, help="requests to send; 0 = no limit")
    p.add_argument("--rerank-ms", type=float, default=200.0, help="normal rerank latency")
    p.add_argument(
        "--rerank-ms-max", type=float, help="spread normal reranks from --rerank-ms up to this"
    )
    p.add_argument("--slow-ms", type=float, default=2000.0, help="latency of a slow rerank")
    p.add_argument("--slow-share", type=float, default=0.0, help="share of slow reranks, 0-1")
    p.add_argument("--error-share", type=float, default=0.0, help="share of failed requests")
    p.add_argument("--prometheus-port", type=int, help="serve metrics here instead of OTLP")
    p.add_argument("--service-name", default=os.environ.get("OTEL_SERVICE_NAME", "rag-demo"))
    args = p.parse_args(argv)
    shares_ok = 0 <= args.slow_share <= 1 and 0 <= args.error_share <= 1
    if args.rate <= 0 or not shares_ok or args.rerank_ms < 0 or args.slow_ms < 0:
        p.error("--rate must be > 0, --slow-share and --error-share within 0..1, latencies >= 0")
    high = args.rerank_ms_max
    if args.requests < 0 or (high is not None and high < args.rerank_ms):
        p.error("--requests must be >= 0 and --rerank-ms-max >= --rerank-ms")
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
    overhead = 0.0
    high = args.rerank_ms if args.rerank_ms_max is None else args.rerank_ms_max
    try:
        while args.duration <= 0 or time.monotonic() - start < args.duration:
            if args.requests and i >= args.requests:
                break
            ms = args.slow_ms if is_slow(i, args.slow_share) else spread(i, args.rerank_ms, high)
            began = time.monotonic()
            with contextlib.suppress(RuntimeError):  # a failed request, recorded on its spans
                run_request(stages, tracer, f"query {i}", ms / 1000, is_slow(i, args.error_share))
            overhead = max(overhead, time.monotonic() - began - ms / 1000)
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
    print(f"loadgen: sent {i} requests, max overhead {overhead * 1000:.0f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
