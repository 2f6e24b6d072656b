"""The bundled example RAG pipeline behind ``otel-rerank demo`` and ``examples/``.

* :mod:`otel_rerank.demo.pipeline` — :class:`RagPipeline`: embed with all-MiniLM-L6-v2,
  search a faiss index, rerank through :class:`otel_rerank.ShadowReranker`, answer with the
  ``openai`` client. Ordinary application code: ``import otel_rerank.auto`` traces it.
* :mod:`otel_rerank.demo.corpus` — passages from the standard library's docstrings,
  embedded once and cached.
* :mod:`otel_rerank.demo.llm_standin` — a loopback OpenAI-compatible server that quotes
  the top passage, used when no real endpoint is configured.
* :mod:`otel_rerank.demo.queries` — the questions the demo asks.

It lives in the package so that ``otel-rerank demo`` works from an installed wheel; the
service around it (a FastAPI app with one root span per request) and the load generator
are in the repository's ``examples/``.
"""

from __future__ import annotations

from otel_rerank.demo.corpus import Corpus, Passage, build_passages, load_corpus
from otel_rerank.demo.llm_standin import LLMStandIn, is_loopback
from otel_rerank.demo.pipeline import (
    Answer,
    RagPipeline,
    Setup,
    build_pipeline,
    flat_index,
    prompt_messages,
)
from otel_rerank.demo.queries import DEMO_QUERIES

__all__ = [
    "DEMO_QUERIES",
    "Answer",
    "Corpus",
    "LLMStandIn",
    "Passage",
    "RagPipeline",
    "Setup",
    "build_passages",
    "build_pipeline",
    "flat_index",
    "is_loopback",
    "load_corpus",
    "prompt_messages",
]
