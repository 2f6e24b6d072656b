"""OpenTelemetry instrumentation for chromadb: ``Collection.query`` becomes a retrieval span.

Usage::

    import chromadb
    from otel_rerank.instrumentation.chromadb import ChromaInstrumentor

    ChromaInstrumentor().instrument()
    collection = chromadb.EphemeralClient().get_or_create_collection("wiki")
    collection.query(query_embeddings=[vector], n_results=10)   # span "retrieval wiki"

What becomes a span: ``Collection.query`` and ``AsyncCollection.query`` (the async span
covers the awaited call). ``get``, ``add`` and the other collection methods are left
alone. A query given its embeddings, on an in-process client, with chroma's own
OpenTelemetry off (the default) runs nothing that could start a span: its span is made
when it ends and is never current (a leaf, as faiss's); a query that embeds texts (an
embedding function may be instrumented), one on an ``HttpClient``, or one made while
chroma's own tracing is on keeps its span current, so their spans nest in it. Attributes:

* ``gen_ai.data_source.id`` — the collection name; ``db.system.name`` and
  ``gen_ai.provider.name`` are ``chroma``.
* ``gen_ai.retrieval.top_k`` — ``n_results``; ``rag.retrieval.query_count`` — how many
  queries the call asked (embeddings, texts, images or URIs).
* ``rag.retrieval.returned_count`` — hits returned over all queries.
* ``rag.retrieval.top_score`` — for a single query, the best hit's **distance** as chroma
  returns it, unconverted: smaller is better (``cosine`` distance is 1 − similarity,
  ``l2`` is squared Euclidean, ``ip`` is 1 − inner product). Not written for a batch of
  queries, nor when ``include`` leaves distances out.

With content capture on, a single query's text goes to ``input.value`` and its hits to
``retrieval.documents.{i}.document.content|id|score`` (score = distance). Embeddings are
never recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, RagInstrumentor, Target
from otel_rerank.instrumentation.chromadb import _attributes as attrs

__all__ = ["ChromaInstrumentor"]

QUERY = Method(
    stage=_span.RETRIEVAL,
    provider=attrs.PROVIDER,
    start=attrs.start,
    start_binds=True,  # whether the span can be a leaf depends on the query's kind
    request=attrs.query_request,
    response=attrs.query_response,
    content_in=attrs.write_query,
    content_out=attrs.write_hits,
)


class ChromaInstrumentor(RagInstrumentor):
    """Instruments ``Collection.query`` and ``AsyncCollection.query``."""

    package = "chromadb"
    supported = "chromadb >= 1.0"

    def targets(self) -> Sequence[Target]:
        return (
            Target("chromadb.api.models.Collection", "Collection", "query", QUERY.wrapper),
            Target(
                "chromadb.api.models.AsyncCollection",
                "AsyncCollection",
                "query",
                QUERY.async_wrapper,
            ),
        )
