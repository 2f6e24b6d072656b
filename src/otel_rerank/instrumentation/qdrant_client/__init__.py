"""OpenTelemetry instrumentation for qdrant-client: queries become retrieval spans.

Usage::

    from qdrant_client import QdrantClient
    from otel_rerank.instrumentation.qdrant_client import QdrantInstrumentor

    QdrantInstrumentor().instrument()
    client = QdrantClient(":memory:")          # or url=..., or AsyncQdrantClient(...)
    client.query_points("wiki", query=vector, limit=10)   # span "retrieval wiki"

What becomes a span, on ``QdrantClient`` and ``AsyncQdrantClient`` alike (the async span
covers the awaited call): ``query_points`` and ``query_batch_points``, and, in client
versions that still have them, ``search`` and the fastembed helper ``query`` (neither
exists in qdrant-client 1.20; a method missing from the installed version is skipped).
One user call makes one span even where the client calls another of these methods
internally. Attributes:

* ``gen_ai.data_source.id`` — the collection name; ``db.system.name`` and
  ``gen_ai.provider.name`` are ``qdrant``.
* ``gen_ai.retrieval.top_k`` — ``limit`` (for a batch, when every request has the same one);
  ``rag.retrieval.query_count`` — 1, or the number of requests in a batch.
* ``rag.retrieval.returned_count`` — points returned (over every request of a batch).
* ``rag.retrieval.top_score`` — the best point's score as qdrant returns it: a
  similarity for Cosine and Dot collections (higher is better), a distance for Euclid and
  Manhattan ones (lower is better). Not written for a batch.

With content capture on, a text query (``models.Document``) goes to ``input.value`` and
each point to ``retrieval.documents.{i}.document.id|score|content``, the content being the
payload's ``document``/``text``/``page_content``/``content``/``chunk`` field, else the
payload as JSON. Vectors are never recorded. In remote mode, an HTTP instrumentation's
spans nest under the retrieval span.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, RagInstrumentor, Target
from otel_rerank.instrumentation.qdrant_client import _attributes as attrs

__all__ = ["QdrantInstrumentor"]

_SYNC = ("qdrant_client.qdrant_client", "QdrantClient")
_ASYNC = ("qdrant_client.async_qdrant_client", "AsyncQdrantClient")
# Where older clients define the fastembed ``query`` helper.
_SYNC_FASTEMBED = ("qdrant_client.qdrant_fastembed", "QdrantFastembedMixin")
_ASYNC_FASTEMBED = ("qdrant_client.async_qdrant_fastembed", "AsyncQdrantFastembedMixin")

# Older clients build ``query`` and ``search`` on other wrapped methods (``query_points``):
# one span per user call. The collection is an argument, so the arguments are bound before
# the span starts.
QUERY = Method(
    stage=_span.RETRIEVAL,
    provider=attrs.PROVIDER,
    start=attrs.start,
    start_binds=True,
    request=attrs.query_request,
    response=attrs.query_response,
    content_in=attrs.write_query,
    content_out=attrs.write_hits,
    one_span="qdrant",
)
# ``query_points`` and ``query_batch_points`` call no other wrapped method.
QUERY_POINTS = dataclasses.replace(QUERY, innermost=True)
BATCH = Method(
    stage=_span.RETRIEVAL,
    provider=attrs.PROVIDER,
    start=attrs.start,
    start_binds=True,
    request=attrs.batch_request,
    response=attrs.batch_response,
    one_span="qdrant",
    innermost=True,
)


class QdrantInstrumentor(RagInstrumentor):
    """Instruments the query methods of ``QdrantClient`` and ``AsyncQdrantClient``."""

    package = "qdrant_client"
    supported = "qdrant-client >= 1.12"

    def targets(self) -> Sequence[Target]:
        return (
            Target(*_SYNC, "query_points", QUERY_POINTS.wrapper),
            Target(*_SYNC, "query_batch_points", BATCH.wrapper),
            Target(*_SYNC, "search", QUERY.wrapper),
            Target(*_SYNC_FASTEMBED, "query", QUERY.wrapper),
            Target(*_ASYNC, "query_points", QUERY_POINTS.async_wrapper),
            Target(*_ASYNC, "query_batch_points", BATCH.async_wrapper),
            Target(*_ASYNC, "search", QUERY.async_wrapper),
            Target(*_ASYNC_FASTEMBED, "query", QUERY.async_wrapper),
        )
