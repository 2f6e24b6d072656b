"""The one generic wrapper (``instrumentation._base.Method``) every library declares.

Tested on a made-up library, so each property is the wrapper's own: the sync and async
twins (the async span covers the awaited work), one span for nested calls of one group,
nothing at all read when nothing records (no SDK, suppressed) and almost nothing when the
span is sampled out, a failure of ours never reaching the user's call, the user's own
exception passing through unchanged with the request's attributes recorded, and content
writers never run with capture off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

import otel_rerank
from otel_rerank import _safe, _span, _telemetry, semconv
from otel_rerank._span import Attributes, StageSpan
from otel_rerank.instrumentation import _base, _common
from otel_rerank.instrumentation._base import Method, Patcher, Start

from .conftest import Otel, make_otel


class Scorer:
    """The made-up library: scores documents against a query."""

    model = "scorer-v1"

    def score(self, query: str, documents: list[str], batch_size: int = 8) -> list[float]:
        return [float(len(d)) for d in documents]

    def rank(self, query: str, documents: list[str]) -> list[int]:
        scores = self.score(query, documents)  # built on the other wrapped method
        return sorted(range(len(scores)), key=lambda i: -scores[i])

    async def ascore(
        self, query: str, documents: list[str], batch_size: int = 8, delay: float = 0.0
    ) -> list[float]:
        await asyncio.sleep(delay)
        current_spans.append(trace.get_current_span().get_span_context().span_id)
        return [float(len(d)) for d in documents]

    def fail(self, query: str, documents: list[str]) -> None:
        raise LookupError("the user's own error")


#: The current span's id inside each ``ascore`` call, after its await.
current_spans: list[int] = []


class Reads:
    """Every call of our functions, by name (to prove what was and was not read)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.raising: set[str] = set()

    def __call__(self, name: str) -> None:
        self.names.append(name)
        if name in self.raising:
            raise ZeroDivisionError(f"bug in {name}")


reads = Reads()


def _start(instance: Any, arguments: Mapping[str, Any]) -> Start:
    reads("start")
    return Start(model=instance.model, attributes={semconv.RAG_DEVICE: "cpu"})


def _request(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    reads("request")
    yield semconv.RAG_BATCH_SIZE, arguments.get("batch_size")
    yield semconv.RAG_RERANK_MAX_LENGTH, None  # None values are left out


def _response(result: Any) -> Attributes:
    reads("response")
    yield semconv.RAG_RERANK_TOP_SCORE, max(result) if result else None


def _candidates(arguments: Mapping[str, Any]) -> int | None:
    reads("candidates")
    return len(arguments["documents"])


def _content_in(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    reads("content_in")
    call.record_text(semconv.RERANKER_QUERY, arguments["query"])


def _content_out(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    reads("content_out")
    call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, arguments["documents"])


def _summary(
    call: StageSpan, arguments: Mapping[str, Any], result: Any, nested: Sequence[Any]
) -> None:
    reads("summary")
    scores = nested[0] if nested else result  # rank: the scores of the score() it ran
    call.record_scores(scores)


_DECLARED = {
    "stage": _span.RERANK,
    "provider": "scorelib",
    "start": _start,
    "candidates": _candidates,
    "request": _request,
    "response": _response,
    "content_in": _content_in,
    "content_out": _content_out,
    "summary": _summary,
}
SCORE = Method(**_DECLARED, one_span="scorelib")  # type: ignore[arg-type]
RANK = Method(**{**_DECLARED, "response": None}, one_span="scorelib")  # type: ignore[arg-type]
ASCORE = Method(**_DECLARED)  # type: ignore[arg-type]
FAIL = Method(**_DECLARED)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _patched() -> Iterator[None]:
    wrappers = {
        "score": SCORE.wrapper,
        "rank": RANK.wrapper,
        "ascore": ASCORE.async_wrapper,
        "fail": FAIL.wrapper,
    }
    patcher = Patcher()
    for name, wrapper in wrappers.items():
        patcher.patch_class(Scorer, name, wrapper)
    reads.names.clear()
    reads.raising.clear()
    current_spans.clear()
    try:
        yield
    finally:
        patcher.undo()


QUERY, DOCS = "lift", ["a", "ccc", "bb"]


def test_sync_call_records_start_request_response_and_summary(otel: Otel) -> None:
    assert Scorer().score(QUERY, DOCS, batch_size=4) == [1.0, 3.0, 2.0]
    span = otel.span()
    assert span.name == "rerank scorer-v1"
    assert span.kind is SpanKind.INTERNAL
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.model"] == "scorer-v1"
    assert attributes["gen_ai.provider.name"] == "scorelib"
    assert attributes["rag.device"] == "cpu"  # start
    assert attributes["rag.batch_size"] == 4  # request
    assert "rag.rerank.max_length" not in attributes
    assert attributes["rag.rerank.top_score"] == 3.0  # response, then the summary's
    assert attributes["gen_ai.rerank.candidate.count"] == 3
    assert attributes["rag.rerank.top1_changed"] is True
    assert not any(k.startswith("reranker.query") for k in attributes)  # capture is off
    assert sum(p.count for p in otel.metric_points("rag.rerank.candidates")) == 1
    # Read in this order, each once; the content writers never ran.
    assert reads.names == ["start", "candidates", "request", "response", "summary"]


def test_async_span_covers_the_awaited_work_and_is_current_during_it(otel: Otel) -> None:
    started = time.perf_counter_ns()
    result = asyncio.run(Scorer().ascore(QUERY, DOCS, delay=0.05))
    assert result == [1.0, 3.0, 2.0]
    rerank = otel.span()
    assert rerank.end_time is not None and rerank.start_time is not None
    assert rerank.end_time - rerank.start_time >= 50_000_000  # the sleep is inside the span
    assert rerank.start_time >= started - 1_000_000
    assert current_spans == [rerank.context.span_id]
    assert dict(rerank.attributes or {})["rag.rerank.top_score"] == 3.0


def test_concurrent_async_calls_make_one_span_each(otel: Otel) -> None:
    async def both() -> list[Any]:
        scorer = Scorer()
        return list(await asyncio.gather(scorer.ascore("q", ["a"]), scorer.ascore("q", ["bb"])))

    assert asyncio.run(both()) == [[1.0], [2.0]]
    spans = otel.spans()
    assert len(spans) == 2
    assert sorted(current_spans) == sorted(s.context.span_id for s in spans)


def test_a_nested_call_of_the_same_group_makes_no_span_of_its_own(otel: Otel) -> None:
    assert Scorer().rank(QUERY, DOCS) == [1, 2, 0]
    span = otel.span()  # exactly one: rank's
    attributes = dict(span.attributes or {})
    # rank's summary read the scores of the score() call nested in it.
    assert attributes["rag.rerank.top_score"] == 3.0
    assert attributes["gen_ai.rerank.candidate.count"] == 3
    assert sum(p.count for p in otel.metric_points("rag.rerank.candidates")) == 1
    assert reads.names.count("start") == 1
    # Out of rank, score makes its own span again (the flag was reset).
    Scorer().score(QUERY, DOCS)
    assert len(otel.spans()) == 2


@pytest.fixture
def binding_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    bind = _common.bind_arguments

    def counting(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        calls.append(fn)
        return bind(fn, args, kwargs)

    monkeypatch.setattr(_base, "bind_arguments", counting)  # the wrapper's own name for it
    return calls


@pytest.mark.usefixtures("otel")
@pytest.mark.parametrize("why", ["no SDK", "suppressed"])
def test_nothing_is_read_when_nothing_records(
    why: str, monkeypatch: pytest.MonkeyPatch, binding_calls: list[Any]
) -> None:
    class Unreadable(Scorer):
        @property
        def model(self) -> str:  # type: ignore[override]
            raise AssertionError("the instance was read")

    if why == "no SDK":
        monkeypatch.setattr(_telemetry, "current", lambda: None)
        result = Unreadable().rank(QUERY, DOCS)
        aresult = asyncio.run(Unreadable().ascore(QUERY, DOCS))
    else:
        with suppress_instrumentation():
            result = Unreadable().rank(QUERY, DOCS)
            aresult = asyncio.run(Unreadable().ascore(QUERY, DOCS))
    assert result == [1, 2, 0] and aresult == [1.0, 3.0, 2.0]
    assert reads.names == []
    assert binding_calls == []


def test_a_sampled_out_span_reads_only_what_feeds_a_metric(binding_calls: list[Any]) -> None:
    sdk = make_otel(ALWAYS_OFF)
    sdk.instrument()
    try:
        Scorer().score(QUERY, DOCS)
    finally:
        otel_rerank.uninstrument()
    assert sdk.spans() == []
    assert reads.names == ["start", "candidates"]  # the candidates histogram still counts
    assert sum(p.count for p in sdk.metric_points("rag.rerank.candidates")) == 1
    assert len(binding_calls) == 1


def test_content_writers_run_only_with_capture_on(otel: Otel) -> None:
    Scorer().score(QUERY, DOCS)
    assert "content_in" not in reads.names and "content_out" not in reads.names
    otel.instrument(capture_content=True)
    otel.exporter.clear()
    Scorer().score(QUERY, DOCS)
    attributes = dict(otel.span().attributes or {})
    assert attributes["reranker.query"] == QUERY
    assert attributes["reranker.input_documents.1.document.content"] == "ccc"
    assert reads.names.count("content_in") == reads.names.count("content_out") == 1


@pytest.mark.parametrize(
    "broken", ["start", "candidates", "request", "response", "content_in", "content_out", "summary"]
)
def test_a_failure_of_ours_never_reaches_the_user(
    broken: str, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel.instrument(capture_content=True)  # so that the content writers run too
    reads.raising.add(broken)
    with pytest.raises(ZeroDivisionError):  # under our tests, our bugs fail loudly
        Scorer().score(QUERY, DOCS)
    monkeypatch.setattr(_safe, "STRICT", False)
    otel.exporter.clear()
    assert Scorer().score(QUERY, DOCS) == [1.0, 3.0, 2.0]
    assert asyncio.run(Scorer().ascore(QUERY, DOCS)) == [1.0, 3.0, 2.0]
    spans = otel.spans()
    assert len(spans) == 2  # sync and async
    for span in spans:
        assert span.name == ("rerank scorer-v1" if broken != "start" else "rerank")
        assert span.status.status_code is StatusCode.UNSET
        attributes = dict(span.attributes or {})
        if broken != "request":  # the other phases still recorded theirs
            assert attributes["rag.batch_size"] == 8
        if broken not in ("response", "summary"):
            assert "rag.rerank.top_score" in attributes


def test_the_users_exception_passes_unchanged_with_the_request_recorded(otel: Otel) -> None:
    with pytest.raises(LookupError) as raised:
        Scorer().fail(QUERY, DOCS)
    assert str(raised.value) == "the user's own error"
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "LookupError"
    assert attributes["gen_ai.request.model"] == "scorer-v1"
    assert attributes["gen_ai.rerank.candidate.count"] == 3
    assert "response" not in reads.names and "summary" not in reads.names


def test_declarations_share_one_flag_per_group() -> None:
    assert SCORE._nested is RANK._nested is not None
    assert ASCORE._nested is None


# -- what a span starts with, worked out once per identity -----------------------------------
class Described:
    """An instance whose start the test controls (a library's per-instance cache stands in)."""

    def __init__(self, start: Start) -> None:
        self.start = start

    def run(self) -> str:
        return "done"


OPEN = Method(stage=_span.RERANK, provider="openlib", start=lambda instance, _: instance.start)


@pytest.fixture
def described() -> Iterator[None]:
    patcher = Patcher()
    patcher.patch_class(Described, "run", OPEN.wrapper)
    OPEN._openings.clear()
    try:
        yield
    finally:
        patcher.undo()


def _started(otel: Otel, instance: Described) -> tuple[str, dict[str, Any]]:
    otel.exporter.clear()
    assert instance.run() == "done"
    span = otel.span()
    return span.name, dict(span.attributes or {})


@pytest.mark.usefixtures("described")
def test_a_shared_start_is_worked_out_once_and_a_changed_one_again(otel: Otel) -> None:
    cuda = Start(model="m1", attributes={semconv.RAG_DEVICE: "cuda"})
    instance = Described(cuda)
    for _ in range(3):
        name, attributes = _started(otel, instance)
        assert name == "rerank m1" and attributes[semconv.RAG_DEVICE] == "cuda"
    assert len(OPEN._openings) == 1  # one identity, one opening
    assert OPEN._opening(cuda) is OPEN._opening(cuda)
    # The instance's facts changed (a per-instance cache computed a new start): seen at once.
    instance.start = Start(model="m1", attributes={semconv.RAG_DEVICE: "cpu"})
    assert _started(otel, instance)[1][semconv.RAG_DEVICE] == "cpu"
    instance.start = Start(model="m2", kind=SpanKind.CLIENT)
    name, attributes = _started(otel, instance)
    assert name == "rerank m2" and semconv.RAG_DEVICE not in attributes
    assert otel.span().kind is SpanKind.CLIENT
    # A start built anew on every call (equal mappings, new objects) is right every time.
    for device in ("a", "b", "a"):
        instance.start = Start(model="m1", attributes={semconv.RAG_DEVICE: device})
        assert _started(otel, instance)[1][semconv.RAG_DEVICE] == device


@pytest.mark.usefixtures("described")
def test_openings_are_bounded_and_unhashable_names_still_start(otel: Otel) -> None:
    instance = Described(Start())
    for i in range(_base._MAX_OPENINGS + 10):
        instance.start = Start(model=f"m{i}")
        instance.run()
    assert len(OPEN._openings) <= _base._MAX_OPENINGS
    instance.start = Start(detail=["not", "hashable"])  # type: ignore[arg-type]
    otel.exporter.clear()
    assert instance.run() == "done"
    assert otel.span().name == "rerank ['not', 'hashable']"


@pytest.mark.usefixtures("described")
def test_a_frameworks_top_n_is_on_its_call_only(otel: Otel) -> None:
    instance = Described(Start(model="m1", attributes={semconv.RAG_DEVICE: "cpu"}))
    assert semconv.GEN_AI_RERANK_TOP_N not in _started(otel, instance)[1]
    with _span.rerank_top_n(3):
        attributes = _started(otel, instance)[1]
    assert attributes[semconv.GEN_AI_RERANK_TOP_N] == 3
    assert attributes[semconv.RERANKER_TOP_K] == 3
    assert attributes[semconv.RAG_DEVICE] == "cpu"
    assert semconv.GEN_AI_RERANK_TOP_N not in _started(otel, instance)[1]  # not cached


# -- a leaf call: its span made when it ends ------------------------------------------------
class Shelf:
    """A made-up in-process index: nothing it runs starts a span (a leaf)."""

    def search(self, k: int, fail: bool = False) -> tuple[Any, int]:
        if fail:
            raise LookupError("the user's own error")
        time.sleep(0.002)
        return trace.get_current_span(), time.time_ns()


_SHELF_START = Start(detail="shelf", leaf=True, attributes={semconv.DB_SYSTEM_NAME: "shelf"})
SEARCH = Method(
    stage=_span.RETRIEVAL,
    provider="shelflib",
    start=lambda instance, _: _SHELF_START,
    request=lambda instance, arguments: [(semconv.GEN_AI_RETRIEVAL_TOP_K, arguments.get("k"))],
    response=lambda result: [(semconv.RAG_RETRIEVAL_RETURNED_COUNT, 1)],
)


class _SeenBySampler:
    """A sampler that keeps every span and remembers the attributes it was shown."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def should_sample(self, *args: Any, **kwargs: Any) -> Any:
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        attributes = kwargs.get("attributes", args[4] if len(args) > 4 else None)
        self.seen.append(dict(attributes or {}))
        return ALWAYS_ON.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return "seen"


@pytest.fixture
def shelf() -> Iterator[None]:
    patcher = Patcher()
    patcher.patch_class(Shelf, "search", SEARCH.wrapper)
    try:
        yield
    finally:
        patcher.undo()


@pytest.mark.usefixtures("shelf")
def test_a_leaf_span_covers_the_call_and_the_sampler_sees_every_attribute() -> None:
    sampler = _SeenBySampler()
    sdk = make_otel(sampler)
    sdk.instrument()
    try:
        tracer = sdk.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("request") as request:
            before = time.time_ns()
            current_inside, inside = Shelf().search(5)
            after = time.time_ns()
            # Never current: nothing in a leaf call would start a span under it.
            assert current_inside is request
    finally:
        otel_rerank.uninstrument()
    span = next(s for s in sdk.spans() if s.name == "retrieval shelf")
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time <= inside <= span.end_time <= after
    expected = {
        semconv.DB_SYSTEM_NAME: "shelf",
        semconv.GEN_AI_RETRIEVAL_TOP_K: 5,
        semconv.RAG_RETRIEVAL_RETURNED_COUNT: 1,
    }
    assert expected.items() <= dict(span.attributes or {}).items()
    # Made with every attribute: its sampler saw the response's pairs too.
    assert expected.items() <= sampler.seen[-1].items()
    (point,) = sdk.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.sum == pytest.approx((span.end_time - span.start_time) / 1e9, abs=2e-6)


@pytest.mark.parametrize(
    ("sampler", "leaf", "kept"),
    [
        pytest.param(None, True, True, id="the SDK's default: a root is always kept"),
        pytest.param(ALWAYS_ON, True, True, id="always on"),
        pytest.param(ParentBased(ALWAYS_OFF), False, False, id="a root sampler that drops"),
        pytest.param(ParentBased(TraceIdRatioBased(1.0)), False, True, id="a ratio"),
    ],
)
def test_a_root_leaf_call_is_read_only_once_its_sampler_keeps_it(
    sampler: Any, leaf: bool, kept: bool
) -> None:
    """A leaf's span is made when the call ends, so its reads come first; without a parent
    whose flag decides, that is right only when every root is kept. Under any other root
    sampler the span starts before the call, and a span it drops reads nothing."""
    read: list[str] = []
    counting = dataclasses.replace(
        SEARCH,
        request=lambda instance, arguments: read.append("request") or [],
        response=lambda result: read.append("response") or [],
    )
    patcher = Patcher()
    patcher.patch_class(Shelf, "search", counting.wrapper)
    sdk = make_otel(sampler)
    sdk.instrument()
    try:
        current_inside, _ = Shelf().search(5)
    finally:
        otel_rerank.uninstrument()
        patcher.undo()
    spans = [s for s in sdk.spans() if s.name == "retrieval shelf"]
    assert len(spans) == (1 if kept else 0)
    assert read == (["request", "response"] if kept else [])
    # A leaf is never current while it runs; a span started first is.
    assert current_inside.get_span_context().is_valid is (not leaf)
    (point,) = sdk.metric_points(semconv.METRIC_OPERATION_DURATION)  # timed either way
    assert point.count == 1


@pytest.mark.usefixtures("shelf")
def test_a_failed_leaf_call_records_the_error_and_the_exception_passes(otel: Otel) -> None:
    with pytest.raises(LookupError, match="the user's own error"):
        Shelf().search(3, fail=True)
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "LookupError"
    assert (span.attributes or {})[semconv.GEN_AI_RETRIEVAL_TOP_K] == 3
    assert [event.name for event in span.events] == ["exception"]
