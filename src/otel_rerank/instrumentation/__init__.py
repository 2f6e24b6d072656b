"""One instrumentation package per supported library, and the registry that lists them.

``otel_rerank.instrument()`` walks :data:`INSTRUMENTORS`, skips libraries that are not
installed (checked without importing them) and instruments the rest. Each entry is also
an ``opentelemetry_instrumentor`` entry point in ``pyproject.toml``, so
``opentelemetry-instrument`` finds the same classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_rerank.instrumentation._base import RagInstrumentor

#: Library name -> "module:Class" of its instrumentor, in pipeline order.
INSTRUMENTORS: dict[str, str] = {
    "sentence_transformers": (
        "otel_rerank.instrumentation.sentence_transformers:SentenceTransformersInstrumentor"
    ),
    "openai": "otel_rerank.instrumentation.openai:OpenAIInstrumentor",
    "anthropic": "otel_rerank.instrumentation.anthropic:AnthropicInstrumentor",
    "faiss": "otel_rerank.instrumentation.faiss:FaissInstrumentor",
    "chromadb": "otel_rerank.instrumentation.chromadb:ChromaInstrumentor",
    "qdrant_client": "otel_rerank.instrumentation.qdrant_client:QdrantInstrumentor",
    "cohere": "otel_rerank.instrumentation.cohere:CohereInstrumentor",
    "rerankers": "otel_rerank.instrumentation.rerankers:RerankersInstrumentor",
    # Frameworks: request spans at their query entry points, and what their stages know.
    "langchain": "otel_rerank.instrumentation.langchain:LangChainInstrumentor",
    "llama_index": "otel_rerank.instrumentation.llama_index:LlamaIndexInstrumentor",
    "haystack": "otel_rerank.instrumentation.haystack:HaystackInstrumentor",
}


def available() -> dict[str, type[RagInstrumentor]]:
    """Every registered instrumentor class whose module imports (the library may be absent)."""
    found: dict[str, type[RagInstrumentor]] = {}
    for name, spec in INSTRUMENTORS.items():
        try:
            found[name] = load(name)
        except ModuleNotFoundError as exc:
            if exc.name != spec.partition(":")[0]:
                raise
    return found


def load(name: str) -> type[RagInstrumentor]:
    """Import and return the instrumentor class registered under ``name``."""
    module_name, _, class_name = INSTRUMENTORS[name].partition(":")
    cls: type[RagInstrumentor] = getattr(importlib.import_module(module_name), class_name)
    return cls
