"""qdrant-client: query calls on the sync and async clients are retrieval spans (``:memory:``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

import otel_rerank
from otel_rerank import semconv
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.qdrant_client import QUERY, QdrantInstrumentor, _attributes

from .conftest import Otel

qdrant_client = pytest.importorskip("qdrant_client")
from qdrant_client import AsyncQdrantClient, QdrantClient, models  # noqa: E402
from qdrant_client.http import models as rest  # noqa: E402
from qdrant_client.local.async_qdrant_local import AsyncQdrantLocal  # noqa: E402

COLLECTION = "wiki"
POINTS = [
    ([1.0, 0.0, 0.0], {"text": "Wind tunnels measure lift."}),
    ([0.0, 1.0, 0.0], {"text": "Boundary layers separate."}),
    ([0.7, 0.7, 0.0], {"title": "Lift", "page": 3}),  # no text field: JSON of the payload
    ([0.0, 0.0, 1.0], {"text": "Heat transfer."}),
]


def _points() -> list[Any]:
    return [
        models.PointStruct(id=i, vector=vector, payload=payload)
        for i, (vector, payload) in enumerate(POINTS)
    ]


def _vectors_config() -> Any:
    return models.VectorParams(size=3, distance=models.Distance.COSINE)


@pytest.fixture
def client() -> Iterator[Any]:
    c = QdrantClient(":memory:")
    c.create_collection(COLLECTION, vectors_config=_vectors_config())
    c.upsert(COLLECTION, points=_points())
    yield c
    c.close()


@pytest.fixture
async def async_client() -> Any:
    c = AsyncQdrantClient(":memory:")
    await c.create_collection(COLLECTION, vectors_config=_vectors_config())
    await c.upsert(COLLECTION, points=_points())
    yield c
    await c.close()


def test_query_points_attributes(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    response = client.query_points(COLLECTION, query=[0.9, 0.1, 0.0], limit=3)

    span = otel.span()  # exactly one span for the user's call
    assert span.name == "retrieval wiki"
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "qdrant"
    assert attrs[semconv.DB_SYSTEM_NAME] == "qdrant"
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == COLLECTION
    assert attrs["gen_ai.retrieval.top_k"] == 3
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 1
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 3
    assert response.points[0].id == 0
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(response.points[0].score)
    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.attributes[semconv.GEN_AI_PROVIDER_NAME] == "qdrant"


def test_positional_arguments_and_default_limit(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    client.query_points(COLLECTION, [0.0, 0.0, 1.0])
    attrs = otel.span().attributes
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == COLLECTION
    assert attrs["gen_ai.retrieval.top_k"] == 10
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 4


def test_batch(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    client.query_batch_points(
        COLLECTION,
        requests=[
            models.QueryRequest(query=[1, 0, 0], limit=2),
            models.QueryRequest(query=[0, 1, 0], limit=2),
            models.QueryRequest(query=[0, 0, 1], limit=2),
        ],
    )
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 3
    assert attrs["gen_ai.retrieval.top_k"] == 2
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 6
    assert semconv.RAG_RETRIEVAL_TOP_SCORE not in attrs


def test_error_is_recorded_and_reraised_unchanged(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    with pytest.raises(ValueError, match="not found") as raised:
        client.query_points("missing", query=[1.0, 0.0, 0.0])
    assert raised.type is ValueError
    span = otel.span("retrieval missing")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ValueError"


def test_suppressed(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    with suppress_instrumentation():
        response = client.query_points(COLLECTION, query=[1, 0, 0], limit=1)
    assert response.points[0].id == 0
    assert otel.spans() == []


def test_content_off_by_default(otel: Otel, client: Any) -> None:
    otel.exporter.clear()
    client.query_points(COLLECTION, query=[1, 0, 0], limit=2)
    attrs = otel.span().attributes
    assert not any(k.startswith("retrieval.documents") for k in attrs)
    assert not any("Wind" in str(v) for v in attrs.values())


def test_content_on(otel: Otel, client: Any) -> None:
    otel.instrument(capture_content=True)
    otel.exporter.clear()
    response = client.query_points(COLLECTION, query=[0.8, 0.6, 0.0], limit=3, with_vectors=True)
    attrs = otel.span().attributes
    ids = [p.id for p in response.points]
    assert ids[0] == 2
    assert attrs["retrieval.documents.0.document.id"] == "2"
    assert attrs["retrieval.documents.0.document.content"] == '{"page": 3, "title": "Lift"}'
    assert attrs["retrieval.documents.0.document.score"] == pytest.approx(response.points[0].score)
    second = POINTS[ids[1]][1]["text"]
    assert attrs["retrieval.documents.1.document.content"] == second
    # Vectors are never recorded, even when the user asked qdrant for them.
    assert response.points[0].vector is not None
    assert not any(isinstance(v, tuple) and len(v) == 3 for v in attrs.values())


def test_query_text_table() -> None:
    assert _attributes.query_text({"query": models.Document(text="lift", model="m")}) == "lift"
    assert _attributes.query_text({"query_text": "drag"}) == "drag"
    assert _attributes.query_text({"query": [1.0, 0.0]}) is None


def test_one_span_when_a_wrapped_method_calls_another(otel: Otel, client: Any) -> None:
    # Older clients built ``search``/``query`` on other wrapped methods; this is that shape.
    class Legacy(QdrantClient):
        def search(self, collection_name: str, query_vector: Any, limit: int = 10) -> Any:
            return self.query_points(collection_name, query=query_vector, limit=limit).points

    QdrantInstrumentor()._patcher.patch_class(Legacy, "search", QUERY.wrapper)
    legacy = Legacy(":memory:")
    legacy.create_collection(COLLECTION, vectors_config=_vectors_config())
    legacy.upsert(COLLECTION, points=_points())
    otel.exporter.clear()
    found = legacy.search(COLLECTION, [0, 1, 0], limit=2)
    span = otel.span()
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2  # list-shaped result
    assert span.attributes[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(found[0].score)
    legacy.close()


def test_methods_missing_in_this_version_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    assert "search" not in QdrantClient.__dict__  # removed from the client (library drift)
    otel_rerank.uninstrument()
    with caplog.at_level(logging.DEBUG, logger="otel_rerank"):
        assert "qdrant_client" in otel_rerank.instrument(libraries=["qdrant_client"])
    try:
        patched = {(cls.__name__, name) for cls, name in QdrantInstrumentor()._patcher.patched}
        assert patched == {
            ("QdrantClient", "query_points"),
            ("QdrantClient", "query_batch_points"),
            ("AsyncQdrantClient", "query_points"),
            ("AsyncQdrantClient", "query_batch_points"),
        }
        assert all(r.levelno < logging.WARNING for r in caplog.records)
    finally:
        otel_rerank.uninstrument()


async def test_async_span_covers_the_await(
    otel: Otel, async_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AsyncQdrantLocal.query_points

    async def slow_query_points(self: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncQdrantLocal, "query_points", slow_query_points)
    otel.exporter.clear()
    started = time.perf_counter()
    response = await async_client.query_points(COLLECTION, query=[0, 1, 0], limit=2)
    elapsed = time.perf_counter() - started
    span = otel.span("retrieval wiki")
    duration_s = (span.end_time - span.start_time) / 1e9
    assert 0.05 <= duration_s <= elapsed
    assert response.points[0].id == 1
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2
    assert span.attributes[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(1.0)


async def test_async_batch_and_error(otel: Otel, async_client: Any) -> None:
    otel.exporter.clear()
    await async_client.query_batch_points(
        COLLECTION, requests=[models.QueryRequest(query=[1, 0, 0], limit=1)]
    )
    assert otel.span().attributes[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 1
    otel.exporter.clear()
    with pytest.raises(ValueError, match="not found"):
        await async_client.query_points("missing", query=[1, 0, 0])
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ValueError"


async def test_concurrent_async_queries_get_their_own_spans(otel: Otel, async_client: Any) -> None:
    otel.exporter.clear()
    await asyncio.gather(
        *(async_client.query_points(COLLECTION, query=[1, 0, 0], limit=n) for n in (1, 2, 3))
    )
    limits = sorted(s.attributes["gen_ai.retrieval.top_k"] for s in otel.spans())
    assert limits == [1, 2, 3]


def test_uninstrument_restores_the_originals(otel: Otel) -> None:
    originals = {}
    for cls in (QdrantClient, AsyncQdrantClient):
        for name in ("query_points", "query_batch_points"):
            patched = cls.__dict__[name]
            assert is_replacement(patched)
            originals[cls, name] = patched.__wrapped__
    otel_rerank.uninstrument()
    for (cls, name), original in originals.items():
        assert cls.__dict__[name] is original
        assert not hasattr(cls.__dict__[name], "__wrapped__")


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            rest.QueryResponse(points=[rest.ScoredPoint(id=5, version=0, score=0.8)]),
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 1, semconv.RAG_RETRIEVAL_TOP_SCORE: 0.8},
        ),
        (rest.QueryResponse(points=[]), {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 0}),
        (
            [rest.ScoredPoint(id=1, version=0, score=2.5)],  # ``search``'s shape
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 1, semconv.RAG_RETRIEVAL_TOP_SCORE: 2.5},
        ),
        (
            [  # the fastembed ``query`` helper's shape (older clients)
                models.QueryResponse(id=1, embedding=None, metadata={}, document="d", score=0.4),
                models.QueryResponse(id=2, embedding=None, metadata={}, document="e", score=0.1),
            ],
            {
                "rag.retrieval.returned_count": 2,
                "rag.retrieval.top_score": 0.4,
                "rag.retrieval.score_kind": "similarity",  # scores fall down the list
            },
        ),
        (
            [  # Euclid: a distance, smallest (best) first
                rest.ScoredPoint(id=1, version=0, score=0.5),
                rest.ScoredPoint(id=2, version=0, score=0.5),
                rest.ScoredPoint(id=3, version=0, score=1.5),
            ],
            {
                "rag.retrieval.returned_count": 3,
                "rag.retrieval.top_score": 0.5,
                "rag.retrieval.score_kind": "distance",
            },
        ),
        (
            rest.QueryResponse(  # Euclid, told by the first two scores
                points=[
                    rest.ScoredPoint(id=1, version=0, score=0.2),
                    rest.ScoredPoint(id=2, version=0, score=0.7),
                ]
            ),
            {
                "rag.retrieval.returned_count": 2,
                "rag.retrieval.top_score": 0.2,
                "rag.retrieval.score_kind": "distance",
            },
        ),
        (
            [SimpleNamespace(score=3), SimpleNamespace(score=1)],  # ints: the general path
            {
                "rag.retrieval.returned_count": 2,
                "rag.retrieval.top_score": 3.0,
                "rag.retrieval.score_kind": "similarity",
            },
        ),
        (
            [SimpleNamespace(score=0.9), SimpleNamespace(score=None), SimpleNamespace(score=0.3)],
            {
                "rag.retrieval.returned_count": 3,
                "rag.retrieval.top_score": 0.9,
                "rag.retrieval.score_kind": "similarity",  # the point without a score skipped
            },
        ),
        (None, {}),
    ],
)
def test_query_response_table(result: Any, expected: dict[str, Any]) -> None:
    assert {k: v for k, v in _attributes.query_response(result) if v is not None} == expected


_SCORES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.just("0.5"),
)


@given(st.lists(_SCORES, max_size=6))
def test_query_response_reads_the_score_kind_score_kind_reads(scores: list[Any]) -> None:
    # query_response answers from the first two scores where they are differing floats;
    # that must be score_kind's answer on every list of scores.
    hits = [SimpleNamespace(score=score) for score in scores]
    written = dict(_attributes.query_response(hits))
    if hits:
        assert written[semconv.RAG_RETRIEVAL_SCORE_KIND] == _attributes.score_kind(hits)


class _Local:
    """A client in local mode's shape: no remote ``_client`` (weakly referenceable)."""


def test_start_reads_the_collection_argument() -> None:
    local = _Local()
    start = _attributes.start(local, {"collection_name": "wiki"})
    assert start.detail == "wiki" and start.leaf is True
    assert _attributes.start(local, {"collection_name": "wiki"}) is start
    for unnamed in ({"collection_name": ""}, {"collection_name": 7}, {}):
        assert _attributes.start(local, unnamed).detail is None


def test_hits_read_every_result_shape() -> None:
    fastembed = [models.QueryResponse(id=7, embedding=None, metadata={}, document="d", score=0.4)]
    assert _attributes.hits(fastembed) == (["d"], [0.4], ["7"])
    response = rest.QueryResponse(
        points=[
            rest.ScoredPoint(id=1, version=0, score=0.9, payload={"page_content": "p"}),
            rest.ScoredPoint(id="u-1", version=0, score=0.5, payload=None),
        ]
    )
    assert _attributes.hits(response) == (["p", None], [0.9, 0.5], ["1", "u-1"])


def test_not_installed_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sys
    import warnings

    from .conftest import make_otel

    otel_rerank.uninstrument()
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # what an absent package looks like
    sdk = make_otel()
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG):
        warnings.simplefilter("error")
        done = sdk.instrument(libraries=["qdrant_client"])
    try:
        assert done == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        otel_rerank.uninstrument()
