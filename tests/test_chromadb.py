"""chromadb: ``Collection.query`` (sync and async) is one retrieval span, in-memory store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

import otel_rerank
from otel_rerank import semconv
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.chromadb import _attributes

from .conftest import Otel

chromadb = pytest.importorskip("chromadb")
from chromadb.api.models.AsyncCollection import AsyncCollection  # noqa: E402
from chromadb.api.models.Collection import Collection  # noqa: E402
from chromadb.config import Settings  # noqa: E402

DOCS = {
    "d0": ("Wind tunnels measure lift.", [1.0, 0.0, 0.0]),
    "d1": ("Boundary layers separate.", [0.0, 1.0, 0.0]),
    "d2": ("Lift and drag on a wing.", [0.8, 0.6, 0.0]),
    "d3": ("Heat transfer at hypersonic speed.", [0.0, 0.0, 1.0]),
}


@pytest.fixture(scope="module")
def client() -> Any:
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


@pytest.fixture
def collection(client: Any) -> Iterator[Any]:
    # EphemeralClient instances share one in-memory system: give each test its own name.
    name = f"docs-{uuid.uuid4().hex[:8]}"
    col = client.create_collection(name, embedding_function=None, metadata={"hnsw:space": "l2"})
    col.add(
        ids=list(DOCS),
        documents=[text for text, _ in DOCS.values()],
        embeddings=[vector for _, vector in DOCS.values()],
    )
    yield col
    client.delete_collection(name)


def test_query_attributes(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    result = collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=3)

    span = otel.span(f"retrieval {collection.name}")
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "chroma"
    assert attrs[semconv.DB_SYSTEM_NAME] == "chroma"
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == collection.name
    assert attrs["gen_ai.retrieval.top_k"] == 3
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 1
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 3
    # The best hit's distance, unconverted (smaller is better).
    assert result["ids"][0][0] == "d0"
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(result["distances"][0][0])
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == min(result["distances"][0])
    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.attributes[semconv.GEN_AI_PROVIDER_NAME] == "chroma"


def test_a_renamed_collection_is_recorded_under_its_new_name(
    otel: Otel, client: Any, collection: Any
) -> None:
    old_name = collection.name
    collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=1)
    new_name = f"{old_name}-renamed"
    collection.modify(name=new_name)  # the same object: its identity was cached
    try:
        collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=1)
        assert [s.name for s in otel.spans()] == [
            f"retrieval {old_name}",
            f"retrieval {new_name}",
        ]
        assert otel.spans()[-1].attributes[semconv.DB_COLLECTION_NAME] == new_name
    finally:
        collection.modify(name=old_name)  # the fixture deletes it by this name


class _Local:
    """An in-process collection's shape (weakly referenceable, as chroma's are)."""

    name: object
    database = "default_database"


class _Unreadable:
    """A collection whose name cannot be read."""

    database = "default_database"

    @property
    def name(self) -> str:
        raise RuntimeError("no model")


def test_start_follows_the_name_it_reads() -> None:
    """The last name's starts are reused by identity; any other name is looked up."""
    local = _Local()
    local.name = "wiki"
    embeddings = {"query_embeddings": [[1.0, 0.0]]}
    first = _attributes.start(local, embeddings)
    assert first.detail == "wiki" and first.leaf is True
    assert _attributes.start(local, embeddings) is first
    local.name = "docs"  # what ``modify(name=...)`` does to the collection's model
    assert _attributes.start(local, embeddings).detail == "docs"
    local.name = "".join(["wi", "ki"])  # equal to the first name, another object
    assert _attributes.start(local, embeddings) is first
    current = _attributes.start(local, {"query_texts": ["lift"]})
    assert current.detail == "wiki" and current.leaf is False
    local.name = 42  # not a name: no identity, as for an unreadable one
    assert _attributes.start(local, embeddings).detail is None
    unreadable = _attributes.start(_Unreadable(), embeddings)
    assert unreadable.detail is None and unreadable.leaf is True
    assert unreadable.attributes is not None
    assert unreadable.attributes[semconv.DB_NAMESPACE] == "default_database"


def test_fewer_hits_than_asked(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    collection.query(query_embeddings=np.array([0.0, 0.0, 1.0]), n_results=10)
    attrs = otel.span().attributes
    assert attrs["gen_ai.retrieval.top_k"] == 10
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 4
    assert attrs[semconv.RAG_RETRIEVAL_TOP_SCORE] == pytest.approx(0.0, abs=1e-6)


def test_batch_of_queries(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    collection.query(query_embeddings=[[1, 0, 0], [0, 1, 0]], n_results=2)
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RETRIEVAL_QUERY_COUNT] == 2
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 4
    assert semconv.RAG_RETRIEVAL_TOP_SCORE not in attrs


def test_distances_left_out(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    collection.query(query_embeddings=[[1, 0, 0]], n_results=2, include=["documents"])
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2
    assert semconv.RAG_RETRIEVAL_TOP_SCORE not in attrs


def test_other_methods_untouched(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    collection.get(ids=["d1"])
    collection.count()
    assert otel.spans() == []


def test_error_is_recorded_and_reraised_unchanged(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    with pytest.raises(chromadb.errors.InvalidArgumentError) as raised:
        collection.query(query_embeddings=[[1.0, 0.0]], n_results=2)  # wrong dimension
    assert "dimension" in str(raised.value)
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "InvalidArgumentError"


def test_suppressed(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    with suppress_instrumentation():
        result = collection.query(query_embeddings=[[1, 0, 0]], n_results=1)
    assert result["ids"] == [["d0"]]
    assert otel.spans() == []


def test_content_off_by_default(otel: Otel, collection: Any) -> None:
    otel.exporter.clear()
    collection.query(query_embeddings=[[1, 0, 0]], n_results=2)
    attrs = otel.span().attributes
    assert not any(k.startswith("retrieval.documents") for k in attrs)
    assert semconv.INPUT_VALUE not in attrs
    assert not any("Wind tunnels" in str(v) for v in attrs.values())


def test_content_on(otel: Otel, collection: Any) -> None:
    otel.instrument(capture_content=True)
    otel.exporter.clear()
    result = collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
    attrs = otel.span().attributes
    assert attrs["retrieval.documents.0.document.id"] == "d0"
    assert attrs["retrieval.documents.0.document.content"] == DOCS["d0"][0]
    assert attrs["retrieval.documents.0.document.score"] == pytest.approx(result["distances"][0][0])
    assert attrs["retrieval.documents.1.document.id"] == result["ids"][0][1]
    assert "retrieval.documents.2.document.id" not in attrs
    assert not any("embedding" in k for k in attrs)  # vectors never recorded


class _SlowAsyncClient:
    """The async client ``AsyncCollection`` talks to, over the embedded sync one, +50 ms."""

    def __init__(self, sync_client: Any) -> None:
        self._sync = sync_client

    async def _query(self, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return self._sync._query(**kwargs)


async def test_async_query_covers_the_await(otel: Otel, collection: Any) -> None:
    async_collection = AsyncCollection(
        client=_SlowAsyncClient(collection._client),
        model=collection._model,
        embedding_function=None,
    )
    otel.exporter.clear()
    started = time.perf_counter()
    result = await async_collection.query(query_embeddings=[[0, 1, 0]], n_results=2)
    elapsed = time.perf_counter() - started
    assert result["ids"][0][0] == "d1"
    span = otel.span(f"retrieval {collection.name}")
    duration_s = (span.end_time - span.start_time) / 1e9
    assert 0.05 <= duration_s <= elapsed
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2


async def test_async_error_path(otel: Otel, collection: Any) -> None:
    async_collection = AsyncCollection(
        client=_SlowAsyncClient(collection._client),
        model=collection._model,
        embedding_function=None,
    )
    otel.exporter.clear()
    with pytest.raises(chromadb.errors.InvalidArgumentError):
        await async_collection.query(query_embeddings=[[1.0, 0.0]], n_results=2)
    assert otel.span().status.status_code is StatusCode.ERROR


def test_uninstrument_restores_the_originals(otel: Otel) -> None:
    patched = {cls: cls.__dict__["query"] for cls in (Collection, AsyncCollection)}
    assert all(is_replacement(p) for p in patched.values())
    originals = {cls: p.__wrapped__ for cls, p in patched.items()}
    otel_rerank.uninstrument()
    for cls, original in originals.items():
        assert cls.__dict__["query"] is original
        assert not hasattr(cls.__dict__["query"], "__wrapped__")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"query_embeddings": [0.1, 0.2, 0.3]}, 1),
        ({"query_embeddings": [[0.1, 0.2], [0.3, 0.4]]}, 2),
        ({"query_embeddings": np.zeros(3)}, 1),
        ({"query_embeddings": np.zeros((5, 3))}, 5),
        ({"query_embeddings": [np.zeros(3), np.zeros(3)]}, 2),
        ({"query_texts": "lift"}, 1),
        ({"query_texts": ["lift", "drag", "heat"]}, 3),
        ({"query_embeddings": None, "query_uris": ["a", "b"]}, 2),
        ({}, None),
    ],
)
def test_query_count_table(arguments: dict[str, Any], expected: int | None) -> None:
    assert _attributes.query_count(arguments) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"ids": [["a", "b"]], "distances": [[0.1, 0.4]]},
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 2, semconv.RAG_RETRIEVAL_TOP_SCORE: 0.1},
        ),
        ({"ids": [[]], "distances": [[]]}, {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 0}),
        (
            {"ids": [["a"], ["b", "c"]], "distances": None},
            {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 3},
        ),
        ({"ids": [["a", "b"]]}, {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 2}),
        ({"ids": [["a"]], "distances": []}, {semconv.RAG_RETRIEVAL_RETURNED_COUNT: 1}),
        (
            {"ids": [("a", "b")], "distances": [(0.2, 0.3)]},
            {
                semconv.RAG_RETRIEVAL_RETURNED_COUNT: 2,
                semconv.RAG_RETRIEVAL_TOP_SCORE: 0.2,
            },
        ),
        ({"ids": "oops"}, {}),
        (None, {}),
    ],
)
def test_query_response_table(result: Any, expected: dict[str, Any]) -> None:
    assert dict(_attributes.query_response(result)) == expected


def test_not_installed_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sys
    import warnings

    from .conftest import make_otel

    otel_rerank.uninstrument()
    monkeypatch.setitem(sys.modules, "chromadb", None)  # what an absent package looks like
    sdk = make_otel()
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG):
        warnings.simplefilter("error")
        done = sdk.instrument(libraries=["chromadb"])
    try:
        assert done == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        otel_rerank.uninstrument()


# -- current span or leaf -------------------------------------------------------------------
class _CurrentSpanSpy:
    """Wraps the collection's server API: records the span current while chroma queries."""

    def __init__(self, collection: Any) -> None:
        self.seen: list[Any] = []
        self._query = collection._client._query

    def __call__(self, **kwargs: Any) -> Any:
        self.seen.append(trace.get_current_span())
        return self._query(**kwargs)


@pytest.fixture
def spy(collection: Any, monkeypatch: pytest.MonkeyPatch) -> _CurrentSpanSpy:
    found = _CurrentSpanSpy(collection)
    monkeypatch.setattr(collection._client, "_query", found)  # this client instance only
    return found


@pytest.fixture
def chroma_tracing(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma's own OpenTelemetry on, as ``otel_init`` leaves it (without its exporter)."""
    from chromadb.telemetry import opentelemetry as chroma_otel

    monkeypatch.setattr(chroma_otel, "tracer", otel.tracer_provider.get_tracer("chromadb"))
    monkeypatch.setattr(chroma_otel, "granularity", chroma_otel.OpenTelemetryGranularity.OPERATION)


def test_tracing_off_by_default() -> None:
    assert _attributes.chroma_traces() is False


def test_span_is_a_leaf_when_nothing_in_the_query_can_trace(
    otel: Otel, collection: Any, spy: _CurrentSpanSpy
) -> None:
    outer_tracer = otel.tracer_provider.get_tracer("app")
    with outer_tracer.start_as_current_span("request") as outer:
        started = time.time_ns()
        collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
        ended = time.time_ns()
    (seen,) = spy.seen
    assert seen is outer  # ours was not current while chroma ran
    span = otel.span(f"retrieval {collection.name}")
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert started <= span.start_time <= span.end_time <= ended  # the call's own times
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2


def test_span_is_current_while_chroma_traces(
    otel: Otel, collection: Any, spy: _CurrentSpanSpy, chroma_tracing: None
) -> None:
    assert _attributes.chroma_traces() is True
    collection.query(query_embeddings=[[0.9, 0.1, 0.0]], n_results=2)
    (seen,) = spy.seen
    span = otel.span(f"retrieval {collection.name}")
    assert seen.get_span_context().span_id == span.context.span_id
    assert span.attributes[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 2


def test_span_is_current_while_the_embedding_function_runs(
    otel: Otel, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    class Embedder(chromadb.EmbeddingFunction[Any]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Any) -> Any:
            seen.append(trace.get_current_span())
            return [np.array([1.0, 0.0, 0.0], dtype=np.float32) for _ in input]

        @staticmethod
        def name() -> str:
            return "test-embedder"

    name = f"texts-{uuid.uuid4().hex[:8]}"
    stored = client.create_collection(name, embedding_function=None)
    try:
        stored.add(ids=["d0"], embeddings=[[1.0, 0.0, 0.0]], documents=["lift"])
        # The same collection, queried through an embedding function of the test's.
        col = Collection(client=stored._client, model=stored._model, embedding_function=Embedder())
        otel.exporter.clear()
        col.query(query_texts=["lift"], n_results=1)
    finally:
        client.delete_collection(name)
    (during,) = seen
    span = otel.span(f"retrieval {name}")
    assert during.get_span_context().span_id == span.context.span_id


def test_a_remote_collection_keeps_its_span_current() -> None:
    remote = SimpleNamespace(
        name="wiki",
        database="default_database",
        _client=SimpleNamespace(_api_url="http://chroma.internal:8000/api/v2"),
    )
    start = _attributes.start(remote, {"query_embeddings": [[1.0, 0.0]]})
    assert start.leaf is False
    assert start.attributes is not None
    assert start.attributes[semconv.SERVER_ADDRESS] == "chroma.internal"
    local = SimpleNamespace(name="wiki", database="default_database")
    assert _attributes.start(local, {"query_embeddings": [[1.0, 0.0]]}).leaf is True
    assert _attributes.start(local, {"query_texts": ["lift"]}).leaf is False
