"""OpenTelemetry instrumentation for the ``rerankers`` package's cross-encoder path.

Usage::

    import otel_rerank.auto
    from rerankers import Reranker

    ranker = Reranker("cross-encoder/ms-marco-MiniLM-L6-v2", model_type="cross-encoder")
    ranker.rank(query, docs)                 # one span: "rerank ms-marco-MiniLM-L6-v2"

``TransformerRanker.rank`` (what ``model_type="cross-encoder"`` builds) becomes a rerank
span with the model name, candidate count, batch size, device, top score, whether the best
candidate moved, and Kendall's tau between the given and the scored order. ``rerankers``
returns every candidate ranked; a framework's top_n around it (``with_rerank_top_n``)
is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, RagInstrumentor, Target
from otel_rerank.instrumentation.rerankers import _attributes as attrs

# The ranker runs its model directly (transformers, not sentence-transformers), so no other
# instrumentation sees this stage.
RANK = Method(
    stage=_span.RERANK,
    provider=attrs.PROVIDER,
    start=attrs.start,
    candidates=attrs.candidate_count,
    request=attrs.request,
    summary=attrs.summary,
)


class RerankersInstrumentor(RagInstrumentor):
    """Instruments ``rerankers``' ``TransformerRanker.rank`` (the cross-encoder path)."""

    package = "rerankers"
    supported = "rerankers >= 0.6, < 1"

    def targets(self) -> Sequence[Target]:
        return (
            Target(
                "rerankers.models.transformer_ranker", "TransformerRanker", "rank", RANK.wrapper
            ),
        )
