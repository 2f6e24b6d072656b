"""OpenTelemetry instrumentation for cohere: ``rerank`` calls become rerank spans.

Usage::

    import cohere
    from otel_rerank.instrumentation.cohere import CohereInstrumentor

    CohereInstrumentor().instrument()
    co = cohere.ClientV2()
    co.rerank(model="rerank-v3.5", query=query, documents=docs, top_n=5)
    # span "rerank rerank-v3.5", kind CLIENT

What becomes a span: ``rerank`` on the v1 and v2 clients, sync and async
(``cohere.Client``, ``cohere.ClientV2``, ``cohere.AsyncClient``, ``cohere.AsyncClientV2``,
``client.v2``, and the platform clients built on them). One user call is one span; an
HTTP instrumentation active at the same time nests its request span under it.
Attributes, as for a local cross-encoder:

* ``gen_ai.request.model``, ``gen_ai.provider.name`` = ``cohere``, ``server.address``,
  ``gen_ai.response.id``.
* ``gen_ai.rerank.candidate.count`` — documents sent (also the ``rag.rerank.candidates``
  histogram); ``gen_ai.rerank.top_n`` when given; ``rag.rerank.max_length`` from v2's
  ``max_tokens_per_doc``.
* ``rag.rerank.top_score`` — the best relevance score; ``rag.rerank.top1_changed`` —
  the best result is not the first document sent.
* ``rag.rerank.kendall_tau`` — agreement between the order sent and the order by score,
  computed only when the response scores every document. With a ``top_n`` below the
  document count the order of the rest is unknown, so tau is omitted.

With content capture on, the query goes to ``reranker.query``, the documents to
``reranker.input_documents.{i}.document.content`` (with their scores when all were
returned) and the results, best first, to
``reranker.output_documents.{i}.document.content|score|id`` (id = the document's index).
The API key and auth headers are never recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, RagInstrumentor, Target
from otel_rerank.instrumentation.cohere import _attributes as attrs

__all__ = ["CohereInstrumentor"]

# The generated clients delegate to a raw client that is not wrapped: one span per call.
# The model is an argument, so the arguments are bound before the span starts.
RERANK = Method(
    stage=_span.RERANK,
    provider=attrs.PROVIDER,
    start=attrs.start,
    start_binds=True,
    candidates=attrs.candidate_count,
    request=attrs.request,
    response=attrs.response,
    content_in=attrs.write_query,
    content_out=attrs.write_documents,
    summary=attrs.summary,
)


class CohereInstrumentor(RagInstrumentor):
    """Instruments ``rerank`` on cohere's v1 and v2 clients, sync and async."""

    package = "cohere"
    supported = "cohere >= 5.0"

    def targets(self) -> Sequence[Target]:
        # ClientV2 subclasses both V2Client and Client; its ``rerank`` resolves to
        # V2Client's, so each call meets one wrapper.
        return (
            Target("cohere.base_client", "BaseCohere", "rerank", RERANK.wrapper),
            Target("cohere.base_client", "AsyncBaseCohere", "rerank", RERANK.async_wrapper),
            Target("cohere.v2.client", "V2Client", "rerank", RERANK.wrapper),
            Target("cohere.v2.client", "AsyncV2Client", "rerank", RERANK.async_wrapper),
        )
