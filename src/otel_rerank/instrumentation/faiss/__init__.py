"""OpenTelemetry instrumentation for faiss: every index's ``search`` becomes a retrieval span.

Usage::

    import faiss
    from otel_rerank.instrumentation.faiss import FaissInstrumentor, set_data_source

    FaissInstrumentor().instrument()
    index = faiss.IndexFlatIP(384)
    index.add(doc_vectors)
    set_data_source(index, "wiki-chunks")      # optional; default: the class name
    scores, ids = index.search(query_vector, 10)   # span "retrieval wiki-chunks"

What becomes a span: ``search`` on every float and binary index class (``IndexFlatIP``,
``IndexIVFFlat``, ``IndexHNSWFlat``, ``IndexBinaryFlat``, ... — faiss gives each class its
own ``search``, and each is patched). ``range_search``, ``add``, ``train`` and the other
methods are left alone. Attributes:

* ``gen_ai.data_source.id`` — the name given with :func:`set_data_source`, else the index
  class name; ``db.system.name`` and ``gen_ai.provider.name`` are ``faiss``.
* ``gen_ai.retrieval.top_k`` — ``k``; ``rag.retrieval.query_count`` — rows of the query
  matrix.
* ``rag.retrieval.returned_count`` — hits returned over all queries, not counting the
  ``-1`` labels faiss pads short rows with.
* ``rag.retrieval.top_score`` — for a single query, the raw value of the best hit: a
  similarity for inner-product indexes (higher is better), a squared L2 distance for L2
  ones (lower is better). Not written for a batch of queries.

With content capture on, a single query's hits are written as
``retrieval.documents.{i}.document.id|score`` (faiss knows no document text). Vectors are
never recorded.

faiss may be imported before or after ``instrument()``: if it is not imported yet, the
classes are patched by a post-import hook when the application imports it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Collection, Sequence

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, RagInstrumentor, Target
from otel_rerank.instrumentation.faiss import _attributes as attrs
from otel_rerank.instrumentation.faiss._attributes import set_data_source

__all__ = ["FaissInstrumentor", "set_data_source"]

# faiss is published under several distribution names; the dependency check must name the
# one that is installed, or ``opentelemetry-instrument`` would refuse faiss-gpu users.
_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss")
_MINIMUM = ">= 1.8"

# No ``one_span`` group: only faiss's own index classes are patched, and each one's search
# goes straight to C++ (a leaf, see ``_attributes.start``), so no patched search runs
# inside another.
SEARCH = Method(
    stage=_span.RETRIEVAL,
    provider=attrs.PROVIDER,
    start=attrs.start,
    request=attrs.search_request,
    response=attrs.search_response,
    content_out=attrs.write_hits,
)


class FaissInstrumentor(RagInstrumentor):
    """Instruments ``search`` on every faiss index class."""

    package = "faiss"
    supported = f"faiss-cpu {_MINIMUM}"

    def instrumentation_dependencies(self) -> Collection[str]:
        for distribution in _DISTRIBUTIONS:
            try:
                importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                continue
            return (f"{distribution} {_MINIMUM}",)
        return ()  # importable without pip metadata (a conda or source build): no check

    def targets(self) -> Sequence[Target]:
        # The index classes are found in the module when it is imported.
        return (Target("faiss", attrs.index_classes, "search", SEARCH.wrapper),)
