"""@otel_rerank.retrieval: the returned count from dicts, tuples and result objects (issue 14)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pytest

import otel_rerank
from otel_rerank._decorators import retrieved_count

from .conftest import Otel

DOCS = [f"doc {i}" for i in range(10)]


class _Hits(NamedTuple):
    documents: list[str]
    scores: list[float]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (DOCS, 10),
        ({"documents": DOCS}, 10),  # a Haystack component's output
        ({"nodes": DOCS[:3], "similarities": [0.1] * 3}, 3),
        ({"results": DOCS[:4]}, 4),
        ({"matches": DOCS[:2], "namespace": "x"}, 2),
        ({"documents": []}, 0),
        ((DOCS, [0.5] * 10), 10),  # (documents, scores)
        (tuple(DOCS[:5]), 5),  # a tuple of hits
        (_Hits(DOCS[:6], [0.1] * 6), 6),
        (SimpleNamespace(nodes=DOCS[:7]), 7),  # LlamaIndex's VectorStoreQueryResult
        (np.zeros((8, 4)), 8),
        ({"answer": "x", "meta": {}}, None),  # a dict it cannot read: nothing, not 2
        ({"documents": "not a list"}, None),
        ((DOCS[:3], [0.1] * 4), None),  # lengths disagree
        ("a string", None),
        (None, None),
        (42, None),
    ],
)
def test_retrieved_count(result: Any, expected: int | None) -> None:
    assert retrieved_count(result) == expected


def test_decorated_retrieval_counts_a_haystack_style_dict(otel: Otel) -> None:
    @otel_rerank.retrieval(data_source="docs")
    def retrieve(query: str) -> dict[str, list[str]]:
        return {"documents": DOCS}

    @otel_rerank.retrieval(data_source="other")
    def unknown(query: str) -> dict[str, int]:
        return {"a": 1, "b": 2}

    assert retrieve("q") == {"documents": DOCS}
    unknown("q")
    spans = {s.name: s for s in otel.spans()}
    assert spans["retrieval docs"].attributes["rag.retrieval.returned_count"] == 10
    assert "rag.retrieval.returned_count" not in spans["retrieval other"].attributes
