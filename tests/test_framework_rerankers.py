"""rerankers: ``Reranker(..., model_type="cross-encoder").rank`` makes one rerank span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rerankers")

from opentelemetry.trace import StatusCode
from rerankers import Reranker

from otel_rerank._span import rerank_top_n

from . import _framework_app as app
from .conftest import Otel

pytestmark = pytest.mark.slow

QUERY = "How do I copy a nested object?"


@pytest.fixture(scope="module")
def ranker(tiny_cross_encoder_path: Path) -> Any:
    return Reranker(str(tiny_cross_encoder_path), model_type="cross-encoder", verbose=0)


def test_rank_is_one_rerank_span(
    otel: Otel, ranker: Any, tiny_cross_encoder: Any, tiny_cross_encoder_path: Path
) -> None:
    docs = app.PASSAGES[:6]
    with rerank_top_n(3):  # what a framework's rerank step around it sets
        results = ranker.rank(QUERY, docs)
    (span,) = otel.spans()
    assert span.name == f"rerank {tiny_cross_encoder_path.name}"
    assert span.attributes["gen_ai.provider.name"] == "rerankers"
    assert span.attributes["rag.batch_size"] == 16
    # independent: sentence-transformers' CrossEncoder over the same pairs (same model)
    scores = [float(s) for s in tiny_cross_encoder.predict([(QUERY, d) for d in docs])]
    app.check_rerank(span, tiny_cross_encoder_path.name, scores, 3)
    assert results.results[0].document.text == docs[scores.index(max(scores))]


def test_doc_ids_given_by_the_caller(otel: Otel, ranker: Any, tiny_cross_encoder: Any) -> None:
    docs = app.PASSAGES[:5]
    ranker.rank(QUERY, docs, doc_ids=["e", "d", "c", "b", "a"])
    (span,) = otel.spans()
    scores = [float(s) for s in tiny_cross_encoder.predict([(QUERY, d) for d in docs])]
    assert span.attributes["gen_ai.rerank.candidate.count"] == 5
    assert "gen_ai.rerank.top_n" not in span.attributes
    best = scores.index(max(scores))
    assert span.attributes["rag.rerank.top1_changed"] is (best != 0)


def test_an_error_is_recorded_and_reraised(otel: Otel, ranker: Any) -> None:
    with pytest.raises(TypeError):
        ranker.rank(QUERY, [object()])
    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
