"""cohere: ``rerank`` on v1/v2, sync/async clients is one rerank span (mock HTTP, offline)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode

import otel_rerank
from otel_rerank import semconv
from otel_rerank._ranking import kendall_tau_b
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.cohere import _attributes

from .conftest import Otel

cohere = pytest.importorskip("cohere")

API_KEY = "sk-test-never-recorded"
QUERY = "what is the lift of a wing?"
DOCS = ["Heat transfer at speed.", "Lift and drag on a wing.", "Boundary layers."]
# The mock server's relevance score for each document, in the order given.
SCORES = {DOCS[0]: 0.10, DOCS[1]: 0.92, DOCS[2]: 0.45}


class _MockCohere:
    """A fake rerank endpoint: scores from ``SCORES``, results best first, cut to ``top_n``."""

    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.requests: list[httpx.Request] = []

    def _respond(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"message": "invalid request: bad model"})
        body = json.loads(request.content)
        texts = [d if isinstance(d, str) else d["text"] for d in body["documents"]]
        ranked = sorted(range(len(texts)), key=lambda i: SCORES.get(texts[i], 0.0), reverse=True)
        ranked = ranked[: body.get("top_n", len(ranked))]
        return httpx.Response(
            200,
            json={
                "id": "rerank-123",
                "results": [
                    {"index": i, "relevance_score": SCORES.get(texts[i], 0.0)} for i in ranked
                ],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            },
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.delay_s:
            time.sleep(self.delay_s)
        return self._respond(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay_s)
        return self._respond(request)

    def http(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def async_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.async_handler))


def _client_v2(server: _MockCohere) -> Any:
    return cohere.ClientV2(api_key=API_KEY, httpx_client=server.http())


def _all_attribute_values(otel: Otel) -> list[str]:
    return [str(v) for s in otel.spans() for v in s.attributes.values()]


def test_v2_rerank_attributes(otel: Otel) -> None:
    server = _MockCohere()
    response = _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)

    span = otel.span()  # one span for the call
    assert span.name == "rerank rerank-v3.5"
    assert span.kind is SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "rerank"
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RERANKER"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "cohere"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "rerank-v3.5"
    assert attrs[semconv.SERVER_ADDRESS] == "api.cohere.com"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "rerank-123"
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
    assert semconv.GEN_AI_RERANK_TOP_N not in attrs
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(0.92)
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] is True
    in_document_order = [SCORES[d] for d in DOCS]
    assert attrs[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(kendall_tau_b(in_document_order))
    assert [r.index for r in response.results] == [1, 2, 0]  # the user's result untouched
    # OpenInference: the model, and the reranked list (ids are input positions) best first.
    assert attrs["reranker.model_name"] == "rerank-v3.5"
    assert attrs["server.port"] == 443
    assert [attrs[f"reranker.output_documents.{i}.document.id"] for i in range(3)] == [
        "1",
        "2",
        "0",
    ]
    output_scores = [attrs[f"reranker.output_documents.{i}.document.score"] for i in range(3)]
    assert output_scores == sorted(output_scores, reverse=True)
    assert output_scores[0] == pytest.approx(0.92)
    assert not any(k.startswith("reranker.input_documents") for k in attrs)  # content: off
    (candidates,) = otel.metric_points(semconv.METRIC_RERANK_CANDIDATES)
    assert candidates.sum == 3
    (duration,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes == {
        "gen_ai.operation.name": "rerank",
        "gen_ai.provider.name": "cohere",
        "gen_ai.request.model": "rerank-v3.5",
        "server.address": "api.cohere.com",
        "server.port": 443,
    }


def test_request_reaches_the_server_unchanged(otel: Otel) -> None:
    server = _MockCohere()
    _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
    (request,) = server.requests
    assert request.url.path == "/v2/rerank"
    assert json.loads(request.content) == {
        "model": "rerank-v3.5",
        "query": QUERY,
        "documents": DOCS,
        "top_n": 2,
    }


def test_top_n_cut_omits_kendall_tau(otel: Otel) -> None:
    server = _MockCohere()
    response = _client_v2(server).rerank(
        model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2, max_tokens_per_doc=512
    )
    assert len(response.results) == 2
    attrs = otel.span().attributes
    assert attrs[semconv.GEN_AI_RERANK_TOP_N] == 2
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
    assert attrs[semconv.RAG_RERANK_MAX_LENGTH] == 512
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(0.92)
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] is True
    assert semconv.RAG_RERANK_KENDALL_TAU not in attrs


def test_retrieval_order_kept(otel: Otel) -> None:
    server = _MockCohere()
    ordered = sorted(DOCS, key=SCORES.__getitem__, reverse=True)
    _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=ordered)
    attrs = otel.span().attributes
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] is False
    assert attrs[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(1.0)


def test_v1_client_and_its_v2_attribute(otel: Otel) -> None:
    server = _MockCohere()
    client = cohere.Client(api_key=API_KEY, httpx_client=server.http())
    documents: list[Any] = [DOCS[0], {"text": DOCS[1]}, {"text": DOCS[2], "id": "x"}]
    client.rerank(query=QUERY, documents=documents, model="rerank-english-v3.0", top_n=3)
    client.v2.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    names = [s.name for s in otel.spans()]
    assert names == ["rerank rerank-english-v3.0", "rerank rerank-v3.5"]
    v1 = otel.span("rerank rerank-english-v3.0").attributes
    assert v1[semconv.GEN_AI_RERANK_TOP_N] == 3
    assert v1[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(
        kendall_tau_b([SCORES[d] for d in DOCS])
    )
    assert [r.url.path for r in server.requests] == ["/v1/rerank", "/v2/rerank"]


def test_v1_without_model(otel: Otel) -> None:
    server = _MockCohere()
    cohere.Client(api_key=API_KEY, httpx_client=server.http()).rerank(query=QUERY, documents=DOCS)
    span = otel.span()
    assert span.name == "rerank"
    assert semconv.GEN_AI_REQUEST_MODEL not in span.attributes


def test_error_is_recorded_and_reraised_unchanged(otel: Otel) -> None:
    server = _MockCohere(status=400)
    with pytest.raises(cohere.errors.BadRequestError) as raised:
        _client_v2(server).rerank(model="nope", query=QUERY, documents=DOCS)
    assert raised.value.status_code == 400
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "BadRequestError"  # the bare class name
    assert semconv.RAG_RERANK_TOP_SCORE not in span.attributes
    (duration,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes[semconv.ERROR_TYPE].endswith("BadRequestError")


def test_suppressed(otel: Otel) -> None:
    server = _MockCohere()
    with suppress_instrumentation():
        response = _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert response.results[0].index == 1
    assert otel.spans() == []
    assert otel.metric_points(semconv.METRIC_RERANK_CANDIDATES) == []


def test_content_off_by_default(otel: Otel) -> None:
    server = _MockCohere()
    _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    attrs = otel.span().attributes
    assert semconv.RERANKER_QUERY not in attrs
    assert not any(k.startswith("reranker.input") for k in attrs)
    # The reranked ids and scores are not content: written, but never a document's text.
    assert not any(k.endswith("document.content") for k in attrs)
    assert not any(QUERY in v or DOCS[1] in v for v in _all_attribute_values(otel))


def test_content_on(otel: Otel) -> None:
    otel.instrument(capture_content=True)
    server = _MockCohere()
    _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
    attrs = otel.span().attributes
    assert attrs[semconv.RERANKER_QUERY] == QUERY
    for i, doc in enumerate(DOCS):
        assert attrs[f"reranker.input_documents.{i}.document.content"] == doc
        assert attrs[f"reranker.input_documents.{i}.document.id"] == str(i)
        assert f"reranker.input_documents.{i}.document.score" not in attrs  # scores: output
    assert attrs["reranker.top_k"] == 2
    assert attrs["reranker.output_documents.0.document.content"] == DOCS[1]
    assert attrs["reranker.output_documents.0.document.id"] == "1"
    assert attrs["reranker.output_documents.0.document.score"] == pytest.approx(0.92)
    assert attrs["reranker.output_documents.1.document.id"] == "2"
    assert "reranker.output_documents.2.document.id" not in attrs


def test_content_on_with_all_scores(otel: Otel) -> None:
    otel.instrument(capture_content=True)
    server = _MockCohere()
    cohere.Client(api_key=API_KEY, httpx_client=server.http()).rerank(
        query=QUERY, documents=[{"text": d} for d in DOCS], model="rerank-english-v3.0"
    )
    attrs = otel.span().attributes
    best_first = sorted(DOCS, key=lambda d: -SCORES[d])
    for i, doc in enumerate(DOCS):
        assert attrs[f"reranker.input_documents.{i}.document.content"] == doc
    for i, doc in enumerate(best_first):
        assert attrs[f"reranker.output_documents.{i}.document.content"] == doc
        assert attrs[f"reranker.output_documents.{i}.document.id"] == str(DOCS.index(doc))
        assert attrs[f"reranker.output_documents.{i}.document.score"] == pytest.approx(SCORES[doc])


def test_api_key_never_recorded(otel: Otel) -> None:
    otel.instrument(capture_content=True)
    server = _MockCohere()
    _client_v2(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert not any(API_KEY in v for v in _all_attribute_values(otel))


def test_no_duplicate_spans_with_httpx_instrumentation(otel: Otel) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    server = _MockCohere()
    http = server.http()
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=otel.tracer_provider)
    try:
        client = cohere.ClientV2(api_key=API_KEY, httpx_client=http)
        client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    finally:
        HTTPXClientInstrumentor.uninstrument_client(http)
    spans = otel.spans()
    rerank_spans = [s for s in spans if s.name.startswith("rerank")]
    http_spans = [s for s in spans if s not in rerank_spans]
    assert len(rerank_spans) == 1, [s.name for s in spans]
    assert len(http_spans) == 1, [s.name for s in spans]  # the HTTP span, not a second rerank
    (rerank_span,), (http_span,) = rerank_spans, http_spans
    assert http_span.parent is not None
    assert http_span.parent.span_id == rerank_span.context.span_id
    assert not any(API_KEY in v for v in _all_attribute_values(otel))


async def test_async_v2_span_covers_the_await(otel: Otel) -> None:
    server = _MockCohere(delay_s=0.05)
    client = cohere.AsyncClientV2(api_key=API_KEY, httpx_client=server.async_http())
    started = time.perf_counter()
    response = await client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=1)
    elapsed = time.perf_counter() - started
    assert [r.index for r in response.results] == [1]
    span = otel.span("rerank rerank-v3.5")
    duration_s = (span.end_time - span.start_time) / 1e9
    assert 0.05 <= duration_s <= elapsed
    assert span.attributes[semconv.GEN_AI_RERANK_TOP_N] == 1
    assert span.attributes[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(0.92)


async def test_async_v1_and_error(otel: Otel) -> None:
    server = _MockCohere(delay_s=0.05)
    client = cohere.AsyncClient(api_key=API_KEY, httpx_client=server.async_http())
    await client.rerank(query=QUERY, documents=DOCS, model="rerank-english-v3.0")
    span = otel.span()
    assert (span.end_time - span.start_time) / 1e9 >= 0.05
    assert span.attributes[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(
        kendall_tau_b([SCORES[d] for d in DOCS])
    )
    otel.exporter.clear()
    server.status = 400
    with pytest.raises(cohere.errors.BadRequestError):
        await client.rerank(query=QUERY, documents=DOCS, model="rerank-english-v3.0")
    assert otel.span().status.status_code is StatusCode.ERROR


def test_uninstrument_restores_the_originals(otel: Otel) -> None:
    from cohere.base_client import AsyncBaseCohere, BaseCohere
    from cohere.v2.client import AsyncV2Client, V2Client

    originals = {}
    for cls in (BaseCohere, AsyncBaseCohere, V2Client, AsyncV2Client):
        patched = cls.__dict__["rerank"]
        assert is_replacement(patched)
        originals[cls] = patched.__wrapped__
    otel_rerank.uninstrument()
    for cls, original in originals.items():
        assert cls.__dict__["rerank"] is original
        assert not hasattr(cls.__dict__["rerank"], "__wrapped__")


@pytest.mark.parametrize(
    ("ranked", "count", "expected"),
    [
        ([(1, 0.9), (2, 0.5), (0, 0.1)], 3, [0.1, 0.9, 0.5]),
        ([(1, 0.9), (2, 0.5)], 3, None),  # top_n cut
        ([(1, 0.9), (1, 0.5)], 2, None),  # an index twice
        ([(5, 0.9)], 1, None),  # out of range
        ([(0, 0.3)], None, None),
    ],
)
def test_scores_in_document_order_table(
    ranked: Sequence[tuple[int, float]], count: int | None, expected: list[float] | None
) -> None:
    indexes, scores = [i for i, _ in ranked], [s for _, s in ranked]
    assert _attributes._in_document_order(indexes, scores, count) == expected
    assert _scores_in_document_order(ranked, count) == expected  # the reference below


def _scores_in_document_order(
    ranked: Sequence[tuple[int, float]] | None, count: int | None
) -> list[float] | None:
    """The reference the summary is checked against: every document's score in document
    order, or ``None`` unless each of the ``count`` documents is scored exactly once."""
    if ranked is None or count is None or len(ranked) != count:
        return None
    scores: list[float | None] = [None] * count
    for index, score in ranked:
        if not 0 <= index < count or scores[index] is not None:
            return None
        scores[index] = score
    return [s for s in scores if s is not None]


def _partial_summary(ranked: Sequence[tuple[int, float]] | None) -> Any:
    """The reference for a cut list: top score and whether the best was not the first."""
    if not ranked:
        return ()
    best_index, best_score = max(ranked, key=lambda item: item[1])
    return (
        (semconv.RAG_RERANK_TOP_SCORE, best_score),
        (semconv.RAG_RERANK_TOP1_CHANGED, best_index != 0),
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"top_n": 5, "max_tokens_per_doc": 256},
            {"gen_ai.rerank.top_n": 5, "reranker.top_k": 5, "rag.rerank.max_length": 256},
        ),
        ({"top_n": ..., "max_tokens_per_doc": ...}, {}),  # cohere's OMIT sentinel
        ({"top_n": None}, {}),
    ],
)
def test_request_table(arguments: dict[str, Any], expected: dict[str, Any]) -> None:
    pairs = {k: v for k, v in _attributes.request(None, arguments) if v is not None}
    assert pairs == expected


def test_document_texts() -> None:
    texts = _attributes.document_texts({"documents": ["a", {"text": "b"}, {"title": "c"}, 3]})
    assert texts == ["a", "b", '{"title": "c"}', None]


def test_not_installed_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sys
    import warnings

    from .conftest import make_otel

    otel_rerank.uninstrument()
    monkeypatch.setitem(sys.modules, "cohere", None)  # what an absent package looks like
    sdk = make_otel()
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG):
        warnings.simplefilter("error")
        done = sdk.instrument(libraries=["cohere"])
    try:
        assert done == []
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        otel_rerank.uninstrument()


@pytest.mark.parametrize(
    "ranked",
    [
        [(1, 0.9), (0, 0.5), (2, 0.1)],  # sorted: the list is written once
        [(2, 0.5), (0, 0.5), (1, 0.1)],  # a tie the API broke against the index order
        [(0, 0.5), (2, 0.5), (1, 0.1)],  # a tie by index
        [(0, float("nan")), (1, 0.2), (2, 0.1)],
    ],
)
def test_summary_writes_the_apis_ranked_list_whether_or_not_it_skips_a_write(
    otel: Otel, ranked: list[tuple[int, float]]
) -> None:
    from types import SimpleNamespace

    from otel_rerank import _span

    response = SimpleNamespace(
        results=[SimpleNamespace(index=i, relevance_score=s) for i, s in ranked]
    )
    arguments = {"documents": ["a", "b", "c"]}
    written = []
    for summarize in (_attributes.summary, None):
        call = _span.begin(_span.RERANK, provider="cohere")
        assert call is not None
        if summarize is not None:
            summarize(call, arguments, response, ())
        else:  # what it did before: the score summary, then the API's list over it
            scores = _scores_in_document_order(ranked, 3)
            call.record_scores(scores)
            call.record_ranked(ranked)
        call.end()
        written.append(
            {k: v for k, v in (otel.spans()[-1].attributes or {}).items() if "output" in k}
        )
    assert written[0] == written[1]
    assert written[0]["reranker.output_documents.0.document.id"] == str(ranked[0][0])


@pytest.mark.parametrize(
    ("ranked", "count"),
    [
        ([(1, 0.9), (0, 0.5), (2, 0.1)], 3),  # every document: tau
        ([(1, 0.9), (0, 0.5)], 3),  # cut by top_n: no tau
        ([(1, 0.9), (1, 0.5), (2, 0.1)], 3),  # an index twice: not in document order
        ([(1, 0.9), (0, 0.5), (3, 0.1)], 3),  # an index out of range
        ([(2, 1), (0, 0.5), (1, 0)], 3),  # integer scores
        ([(2, np.float64(0.7)), (0, np.float32(0.5)), (1, 0.25)], 3),  # numpy scalars
        ([(True, 0.9), (0, 0.5)], 2),  # a bool index, read as an int, as before
        ([(1, True), (0, 0.5)], 2),  # a bool score: not a score, nothing written
        ([(1, "0.9"), (0, 0.5)], 2),  # a text score
        ([(1.0, 0.9), (0, 0.5)], 2),  # a float index
        ([(0, float("nan")), (1, 0.2)], 2),
        ([], 0),
    ],
)
def test_summary_reads_results_in_bulk_as_it_read_them_one_by_one(
    otel: Otel, ranked: list[tuple[Any, Any]], count: int
) -> None:
    from types import SimpleNamespace

    from otel_rerank import _span

    response = SimpleNamespace(
        results=[SimpleNamespace(index=i, relevance_score=s) for i, s in ranked]
    )
    arguments = {"documents": ["doc"] * count}

    def one_by_one(call: Any) -> None:  # the per-item reading the bulk one replaced
        pairs: list[tuple[int, float]] | None = []
        for i, s in ranked:
            if not isinstance(i, int) or isinstance(s, bool) or not isinstance(s, (int, float)):
                pairs = None
                break
            pairs.append((i, float(s)))  # type: ignore[union-attr]
        scores = _scores_in_document_order(pairs, count)
        if scores is not None:
            call.record_scores(scores)
        else:
            call.extract(_partial_summary, pairs)
        call.record_ranked(pairs)

    written = []
    for summarize in (
        lambda call: _attributes.summary(call, arguments, response, ()),
        one_by_one,
    ):
        call = _span.begin(_span.RERANK, provider="cohere")
        assert call is not None
        summarize(call)
        call.end()
        attributes = dict(otel.spans()[-1].attributes or {})
        written.append({k: v for k, v in attributes.items() if "rerank" in k})
    assert written[0] == written[1]


def test_start_is_built_once_per_client_and_model() -> None:
    import cohere

    client = cohere.ClientV2(api_key="sk-test", base_url="https://rerank.example:8443")
    first = _attributes.start(client, {"model": "rerank-v3.5"})
    assert first.model == "rerank-v3.5"
    assert first.attributes == {"server.address": "rerank.example", "server.port": 8443}
    assert _attributes.start(client, {"model": "rerank-v3.5"}) is first  # cached
    other = _attributes.start(client, {"model": "rerank-english-v3.0"})
    assert other.model == "rerank-english-v3.0"
    assert other.attributes == first.attributes
    assert _attributes.start(client, {}).model is None
