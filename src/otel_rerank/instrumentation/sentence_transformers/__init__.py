"""OpenTelemetry instrumentation for sentence-transformers: embeddings and cross-encoder reranks.

Usage::

    from otel_rerank.instrumentation.sentence_transformers import (
        SentenceTransformersInstrumentor,
    )

    SentenceTransformersInstrumentor().instrument()
    model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
    model.rank(query, documents, top_k=3)   # one span: "rerank ms-marco-MiniLM-L6-v2"

What becomes a span:

* ``SentenceTransformer.encode`` (and ``encode_query`` / ``encode_document``, which call it)
  → ``embeddings {model}`` with input count, batch size, device and vector dimension.
* ``CrossEncoder.predict`` and ``CrossEncoder.rank`` → ``rerank {model}`` with candidate
  count, ``top_n`` (rank's ``top_k``), batch size, max length, device, top score, whether
  the best candidate moved, and Kendall's tau between the given and the scored order. A
  ``rank`` makes one span, not two.

Query and document text are recorded only when content capture is on.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.sentence_transformers import _wrappers

_CROSS_ENCODER = "sentence_transformers.cross_encoder.model"
_SENTENCE_TRANSFORMER = "sentence_transformers.sentence_transformer.model"


class SentenceTransformersInstrumentor(RagInstrumentor):
    """Instruments ``SentenceTransformer.encode``, ``CrossEncoder.predict`` and ``.rank``."""

    package = "sentence_transformers"
    supported = "sentence-transformers >= 5.0"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_SENTENCE_TRANSFORMER, "SentenceTransformer", "encode", _wrappers.encode),
            Target(_CROSS_ENCODER, "CrossEncoder", "predict", _wrappers.predict),
            Target(_CROSS_ENCODER, "CrossEncoder", "rank", _wrappers.rank),
        )
