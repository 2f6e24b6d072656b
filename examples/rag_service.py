"""The example RAG service: ``python examples/rag_service.py``, then ask it questions.

The whole instrumentation is the first import below. It configures OpenTelemetry from the
``OTEL_*`` environment (no endpoint: spans go to ``./otel-rerank-traces.jsonl``; set
``OTEL_EXPORTER_OTLP_ENDPOINT`` to send them to a collector) and patches
sentence-transformers, faiss and openai, so every request yields one trace::

    POST /ask                          (FastAPI's instrumentation, else rag_app.RootSpanMiddleware)
    ├── embeddings all-MiniLM-L6-v2    (SentenceTransformer.encode)
    ├── retrieval IndexFlatIP          (faiss search)
    ├── rerank <cross-encoder>         (ShadowReranker, per OTEL_RERANK_MODE)
    └── chat <model>                   (openai chat.completions.create)

``OTEL_RERANK_MODE`` is read on every request: ``off`` serves retrieval's order with no
reranking, ``shadow`` (the default) serves retrieval's order and reranks off the request
path in a linked span, ``serve`` serves the reranked order. The LLM is the endpoint that
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (and ``OPENAI_MODEL``) configure, or a loopback
stand-in that quotes the top passage when neither is set. One server span per request,
never two, also under ``opentelemetry-instrument``; ``GET /healthz`` is not traced.

Try it::

    python examples/rag_service.py --port 8000 &
    curl -s localhost:8000/ask -H 'content-type: application/json' \
         -d '{"query": "How do I parse a date string?"}'
    python examples/load.py --url http://127.0.0.1:8000 --rate 2 --duration 30
    otel-rerank report otel-rerank-traces.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import uvicorn
from rag_app import create_app

# The one line that instruments the app: configure() + instrument(). Import order does not
# matter for the patching (libraries imported later are patched by import hooks).
import otel_rerank.auto
from otel_rerank import models
from otel_rerank.demo import build_pipeline
from otel_rerank.demo.corpus import DEFAULT_PASSAGES
from otel_rerank.demo.pipeline import DEFAULT_K

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local models only; never reach for the hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--k", type=int, default=DEFAULT_K, help="candidates retrieved and reranked"
    )
    parser.add_argument("--model", help="local cross-encoder directory (default: the proxy)")
    parser.add_argument("--passages", type=int, default=DEFAULT_PASSAGES, help="corpus size")
    parser.add_argument(
        "--sample-rate", type=float, default=1.0, help="share of requests shadow-reranked"
    )
    args = parser.parse_args(argv)
    if args.k <= 0 or args.passages < 10 or not 0.0 <= args.sample_rate <= 1.0:
        parser.error("--k must be >= 1, --passages >= 10, --sample-rate within [0, 1]")
    try:
        pipeline, setup = build_pipeline(
            k=args.k,
            cross_encoder=args.model,
            max_passages=args.passages,
            sample_rate=args.sample_rate,
            progress=True,
        )
    except models.ModelUnavailableError as exc:
        print(f"rag_service: error: {exc}", file=sys.stderr)
        return 2
    # Indexing (first run) used every core. FastAPI runs requests concurrently on its thread
    # pool: one intra-op thread each keeps them from fighting over the same cores.
    torch.set_num_threads(1)
    notice = f" ({models.PROXY_NOTICE})" if setup.proxy else ""
    print(f"reranker: {setup.cross_encoder_path.name}{notice}")
    print(f"LLM: {setup.llm_base_url} model {pipeline.llm_model}")
    print(f"traces: {otel_rerank.auto.configured and otel_rerank.auto.configured.traces_file}")
    try:
        uvicorn.run(create_app(pipeline), host=args.host, port=args.port, log_level="warning")
    finally:
        # Ctrl-C: shadow work still queued is abandoned, not waited for (a run in progress
        # stops at its next batch).
        pipeline.close(timeout=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
