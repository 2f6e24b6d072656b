"""Build (or load) the demo corpus and its embeddings: ``python examples/build_corpus.py``.

The corpus is the Python standard library's docstrings (PSF licence), cut into passages and
embedded with all-MiniLM-L6-v2; both are cached under ``$OTEL_RERANK_CACHE_DIR`` (default
``~/.cache/otel-rerank``). ``otel-rerank demo`` and ``rag_service.py`` build it on first use
anyway; run this to pay that cost up front (in a Docker build step, say).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from otel_rerank import models
from otel_rerank.demo import load_corpus
from otel_rerank.demo.corpus import DEFAULT_PASSAGES
from otel_rerank.demo.pipeline import EMBEDDER_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=DEFAULT_PASSAGES, help="corpus size")
    args = parser.parse_args(argv)
    if args.passages < 10:
        parser.error("--passages must be at least 10")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    embedder = SentenceTransformer(str(models.embedding_model_path()))
    corpus = load_corpus(embedder, EMBEDDER_NAME, max_passages=args.passages, progress=True)
    state = "built" if corpus.built else "already cached"
    print(
        f"{len(corpus.passages)} passages, embeddings {corpus.embeddings.shape}, {state} in "
        f"{corpus.directory} ({time.perf_counter() - started:.1f} s)"
    )
    for passage in corpus.passages[:: max(1, len(corpus.passages) // 5)]:
        print(f"  [{passage.id}] {passage.content[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
