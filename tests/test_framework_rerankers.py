"""rerankers: ``Reranker(..., model_type="cross-encoder").rank`` makes one rerank span."""

from __future__ import annotations

import math
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
    # The scores rerankers returned, back in the order the documents were given: the span's
    # summary must match an independent (scipy) computation over them.
    by_id = {r.document.doc_id: float(r.score) for r in results.results}
    scores = [by_id[i] for i in range(len(docs))]
    app.check_rerank(span, tiny_cross_encoder_path.name, scores, 3)
    assert results.results[0].document.text == docs[scores.index(max(scores))]
    # ...and they are the cross-encoder's own logits (CrossEncoder.predict applies a sigmoid;
    # the tiny model's scores are within 1e-6 of each other, so near-ties may order
    # differently between two batchings: compare values, not orders).
    direct = [float(s) for s in tiny_cross_encoder.predict([(QUERY, d) for d in docs])]
    assert [1 / (1 + math.exp(-x)) for x in scores] == pytest.approx(direct, abs=1e-5)


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
