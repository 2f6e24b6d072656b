"""Stage decorators and context managers: every calling convention, real durations, errors."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, StatusCode

import otel_rerank
from otel_rerank import _safe, _span, semconv
from otel_rerank._config import ContentPolicy
from otel_rerank._span import StageSpan
from tests.conftest import Otel, make_otel

SLEEP_S = 0.05
SLEEP_NS = int(SLEEP_S * 1e9)


def _duration_ns(otel: Otel) -> int:
    span = otel.span()
    assert span.end_time is not None and span.start_time is not None
    return span.end_time - span.start_time


def test_bare_decorator_on_sync_function(otel: Otel) -> None:
    @otel_rerank.embedding
    def embed(texts: list[str]) -> list[list[float]]:
        return [[0.0] * 3 for _ in texts]

    assert embed(["a", "b"]) == [[0.0] * 3] * 2
    span = otel.span()
    assert span.name == "embeddings"
    assert dict(span.attributes or {})[semconv.GEN_AI_PROVIDER_NAME] == "custom"
    assert embed.__name__ == "embed"


def test_decorator_with_arguments_names_the_span(otel: Otel) -> None:
    @otel_rerank.retrieval(data_source="docs-index", top_k=5, provider="pgvector")
    def search(query: str) -> list[int]:
        return [1, 2, 3]

    search("q")
    attrs = dict(otel.span("retrieval docs-index").attributes or {})
    assert attrs[semconv.GEN_AI_DATA_SOURCE_ID] == "docs-index"
    assert attrs["gen_ai.retrieval.top_k"] == 5
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "pgvector"
    assert attrs[semconv.RAG_RETRIEVAL_RETURNED_COUNT] == 3
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RETRIEVER"


def test_rerank_decorator_reads_query_and_documents_without_help(otel: Otel) -> None:
    @otel_rerank.rerank(model="bge", top_n=2)
    def my_rerank(query: str, documents: list[str]) -> list[float]:
        return [0.1, 0.9, 0.5]

    my_rerank("which?", ["a", "b", "c"])
    attrs = dict(otel.span("rerank bge").attributes or {})
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 3
    assert attrs[semconv.GEN_AI_RERANK_TOP_N] == 2
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] is True
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(0.9)
    assert attrs[semconv.RAG_RERANK_KENDALL_TAU] == pytest.approx(-1 / 3)
    (candidates,) = otel.metric_points(semconv.METRIC_RERANK_CANDIDATES)
    assert candidates.sum == 3


def test_rerank_decorator_on_a_method_with_other_names(otel: Otel) -> None:
    class Reranker:
        @otel_rerank.rerank
        def run(self, question: str, passages: list[str]) -> list[str]:
            return list(reversed(passages))

    Reranker().run("q", passages=["x", "y"])
    assert dict(otel.span().attributes or {})[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 2


async def test_async_decorator_measures_the_await(otel: Otel) -> None:
    @otel_rerank.llm(model="m")
    async def answer() -> str:
        await asyncio.sleep(SLEEP_S)
        return "ok"

    assert await answer() == "ok"
    assert _duration_ns(otel) >= SLEEP_NS
    assert otel.span().name == "chat m"


def test_generator_decorator_spans_until_exhausted(otel: Otel) -> None:
    @otel_rerank.llm
    def stream() -> Iterator[int]:
        for i in range(3):
            time.sleep(SLEEP_S / 3)
            yield i

    gen = stream()
    assert otel.spans() == []  # nothing ran yet
    assert list(gen) == [0, 1, 2]
    assert _duration_ns(otel) >= SLEEP_NS


def test_generator_closed_early_ends_its_span_once_without_error(otel: Otel) -> None:
    @otel_rerank.llm
    def stream() -> Iterator[int]:
        yield from range(10)

    gen = stream()
    assert next(gen) == 0
    gen.close()
    span = otel.span()
    assert span.status.status_code is StatusCode.UNSET


def test_generator_span_is_current_only_inside_the_body(otel: Otel) -> None:
    seen_inside: list[bool] = []

    @otel_rerank.retrieval
    def gen() -> Iterator[int]:
        seen_inside.append(trace.get_current_span().is_recording())
        yield 1
        seen_inside.append(trace.get_current_span().is_recording())
        yield 2

    it = gen()
    next(it)
    assert not trace.get_current_span().is_recording()  # not leaked to the consumer
    next(it)
    list(it)
    assert seen_inside == [True, True]


def test_generator_error_is_recorded_and_reraised(otel: Otel) -> None:
    @otel_rerank.retrieval
    def gen() -> Iterator[int]:
        yield 1
        raise KeyError("gone")

    with pytest.raises(KeyError):
        list(gen())
    assert otel.span().status.status_code is StatusCode.ERROR


def test_generator_send_and_return_value_pass_through(otel: Otel) -> None:
    @otel_rerank.llm
    def echo() -> Iterator[int]:
        received = yield 0
        received = yield received * 2
        return received

    gen = echo()
    assert next(gen) == 0
    assert gen.send(5) == 10
    with pytest.raises(StopIteration) as stop:
        gen.send(7)
    assert stop.value.value == 7


async def test_async_generator_measures_iteration(otel: Otel) -> None:
    @otel_rerank.llm(model="m")
    async def stream() -> AsyncIterator[int]:
        for i in range(2):
            await asyncio.sleep(SLEEP_S / 2)
            yield i

    assert [i async for i in stream()] == [0, 1]
    assert _duration_ns(otel) >= SLEEP_NS


def test_context_manager_yields_a_span_handle(otel: Otel) -> None:
    with otel_rerank.rerank(model="bge") as span:
        span.set_attribute("app.custom", "yes")
        span.record_candidates(7)
    attrs = dict(otel.span("rerank bge").attributes or {})
    assert attrs["app.custom"] == "yes"
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 7


async def test_async_context_manager(otel: Otel) -> None:
    async with otel_rerank.embedding(model="e5"):
        await asyncio.sleep(SLEEP_S)
    assert _duration_ns(otel) >= SLEEP_NS


def test_error_is_recorded_and_the_same_exception_reraised(otel: Otel) -> None:
    error = ValueError("bad query")

    @otel_rerank.retrieval
    def search() -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        search()
    assert raised.value is error
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[semconv.ERROR_TYPE] == "ValueError"
    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.attributes[semconv.ERROR_TYPE] == "ValueError"


def test_nested_stages_form_a_tree(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")

    @otel_rerank.embedding
    def embed() -> None: ...

    @otel_rerank.rerank
    def rerank_step() -> None: ...

    with tracer.start_as_current_span("request") as root:
        embed()
        rerank_step()
    children = [s for s in otel.spans() if s.name != "request"]
    assert {s.parent.span_id for s in children if s.parent} == {root.get_span_context().span_id}


def test_providers_are_looked_up_at_call_time_not_decoration_time() -> None:
    @otel_rerank.rerank(model="late")
    def late() -> None: ...

    late()  # nothing configured yet: no span, no error
    sdk = make_otel()
    sdk.instrument()
    try:
        late()
    finally:
        otel_rerank.uninstrument()
    assert [s.name for s in sdk.spans()] == ["rerank late"]


def test_without_any_sdk_nothing_is_built() -> None:
    @otel_rerank.rerank
    def plain(query: str, documents: list[str]) -> int:
        return len(documents)

    with otel_rerank.rerank(model="x") as span:
        span.set_attribute("ignored", 1)
        assert span.recording is False
    assert plain("q", ["a"]) == 1


def _public_api(cls: type) -> dict[str, str]:
    """Public names of a class (plus the context-manager pair) and their signatures."""
    api = {}
    for name in dir(cls):
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        member = inspect.getattr_static(cls, name)
        if isinstance(member, property):
            api[name] = "property"
        elif callable(member):
            api[name] = str(inspect.signature(member))
        else:
            api[name] = "attribute"
    return api


def test_no_sdk_scope_is_a_stage_span_with_no_state() -> None:
    # One class for both forms, so the APIs cannot drift: the stand-in is a StageSpan over
    # INVALID_SPAN, shared by every caller because it keeps nothing.
    with otel_rerank.rerank(model="x") as first, otel_rerank.llm() as second:
        assert type(first) is StageSpan
        assert first is second is _span.NON_RECORDING
        assert first.span is INVALID_SPAN
    assert "record_documents" in _public_api(StageSpan)


def test_every_scope_method_runs_without_an_sdk() -> None:
    calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
        "set": (("k", 1), {}),
        "set_attribute": (("k", 1), {}),
        "extract": ((lambda: [("k", 1)],), {}),
        "safely": ((lambda x: x, 3), {}),
        "record_candidates": ((3,), {}),
        "record_scores": (([0.1, 0.9, 0.5],), {"top_n": 2}),
        "record_ranked": (([(1, 0.9)],), {}),
        "record_ranked_columns": (([1], [0.9]), {}),
        "record_tokens": ((10, 5), {"on_span": False}),
        "record_response_model": (("m",), {}),
        "record_time_to_first_chunk": ((0.1,), {}),
        "record_text": ((semconv.RERANKER_QUERY, "q"), {}),
        "record_documents": ((semconv.RERANKER_INPUT_DOCUMENTS, ["a", "b"]), {}),
        "record_messages": (("p", [("user", "hi")]), {}),
        "record_input_messages": (([("user", "hi")],), {"system_instructions": "be brief"}),
        "record_output_messages": (([("assistant", "ok")],), {"finish_reasons": ["stop"]}),
        "record_retrieval_query": (("q",), {}),
        "record_retrieved": ((["a"], [0.5], ["id"]), {}),
        "record_content": ((lambda span, text: span.record_text("k", text), "q"), {}),
        "end": ((), {}),
    }
    methods = {
        name
        for name, kind in _public_api(StageSpan).items()
        if kind not in ("property", "attribute") and not name.startswith("__")
    }
    assert methods == set(calls), "a new StageSpan method needs a no-SDK call here"
    with otel_rerank.rerank(model="x") as span:
        assert span.recording is False
        assert span.capturing is False
        assert span.span.get_span_context().is_valid is False
        assert span.context is not None
        for name, (args, kwargs) in calls.items():
            result = getattr(span, name)(*args, **kwargs)
            assert result == (3 if name == "safely" else None)


def test_unknown_stage_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="top_n"):
        otel_rerank.embedding(top_n=3)  # type: ignore[call-arg]


def test_shadow_runs_are_marked_on_their_metric_points(otel: Otel) -> None:

    served = _span.begin(_span.RERANK, provider="custom", model="m")
    shadow = _span.begin(
        _span.RERANK, provider="custom", model="m", attributes={semconv.RAG_RERANK_SHADOW: True}
    )
    assert served is not None and shadow is not None
    served.end()
    shadow.end()
    flags = sorted(
        str(p.attributes.get(semconv.RAG_RERANK_SHADOW))
        for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    )
    assert flags == ["None", "True"]


# -- hardening, round two (issue 13) --------------------------------------------------------

_GENERATOR_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(-5, 5)),
        st.tuples(st.just("throw"), st.sampled_from(["handled", "fatal"])),
        st.just(("close", None)),
    ),
    max_size=8,
)


class HandledError(Exception):
    """Thrown into a generator that catches it and yields the count of those caught."""


class FatalError(Exception):
    """Thrown into a generator that lets it propagate."""


def _user_generator(log: list[object]) -> Iterator[object]:
    caught = 0
    try:
        value = yield "start"
        while True:
            log.append(("got", value))
            try:
                value = yield ("echo", value)
            except HandledError:
                caught += 1
                value = yield ("handled", caught)
    finally:
        log.append("finally")


async def _user_async_generator(log: list[object]) -> AsyncIterator[object]:
    caught = 0
    try:
        value = yield "start"
        while True:
            log.append(("got", value))
            try:
                value = yield ("echo", value)
            except HandledError:
                caught += 1
                value = yield ("handled", caught)
    finally:
        log.append("finally")


def _drive(gen: Any, ops: list[tuple[str, Any]]) -> list[object]:
    seen: list[object] = []
    for op, arg in [("send", None), *ops]:
        try:
            if op == "send":
                seen.append(gen.send(arg))
            elif op == "throw":
                seen.append(gen.throw(HandledError() if arg == "handled" else FatalError()))
            else:
                gen.close()
                seen.append("closed")
        except (
            Exception
        ) as error:  # StopIteration, FatalError, HandledError thrown before the start
            seen.append(type(error).__name__)
            break
    gen.close()
    return seen


async def _adrive(gen: Any, ops: list[tuple[str, Any]]) -> list[object]:
    seen: list[object] = []
    for op, arg in [("send", None), *ops]:
        try:
            if op == "send":
                seen.append(await gen.asend(arg))
            elif op == "throw":
                seen.append(await gen.athrow(HandledError() if arg == "handled" else FatalError()))
            else:
                await gen.aclose()
                seen.append("closed")
        except Exception as error:
            name = type(error).__name__
            seen.append("StopIteration" if name == "StopAsyncIteration" else name)
            break
    await gen.aclose()
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_GENERATOR_OPS)
def test_generators_forward_send_throw_and_close_exactly(ops: list[tuple[str, Any]]) -> None:
    """Decorated or not, a generator sees the same sends, throws and close, in time."""
    sdk = make_otel()
    sdk.instrument()
    try:
        plain_log: list[object] = []
        traced_log: list[object] = []
        plain = _drive(_user_generator(plain_log), ops)
        traced = _drive(otel_rerank.llm(_user_generator)(traced_log), ops)
        assert traced == plain
        assert traced_log == plain_log  # "finally" ran at the same point, not later
        plain_alog: list[object] = []
        traced_alog: list[object] = []

        async def both() -> tuple[list[object], list[object]]:
            a = await _adrive(_user_async_generator(plain_alog), ops)
            b = await _adrive(otel_rerank.llm(_user_async_generator)(traced_alog), ops)
            return a, b

        aplain, atraced = asyncio.run(both())
        assert atraced == aplain
        assert traced_alog == plain_alog
    finally:
        otel_rerank.uninstrument()
    # One span per generator, ended exactly once (closed, finished or failed).
    assert [s.name for s in sdk.spans()] == ["chat", "chat"]


async def test_async_generator_aclose_runs_the_users_finally_at_once(otel: Otel) -> None:
    log: list[str] = []

    @otel_rerank.llm
    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            log.append("finally")

    gen = stream()
    assert await gen.asend(None) == 1
    await gen.aclose()
    assert log == ["finally"]
    assert otel.span().status.status_code is StatusCode.UNSET


def _check_trees(otel: Otel, roots: int) -> None:
    spans = otel.spans()
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name.split(" ")[0], []).append(span)
    assert len(by_name["rerank"]) == roots
    requests = {s.context.span_id: s for s in spans if s.name.startswith("request")}
    assert len(requests) == roots
    for span in by_name["rerank"]:
        assert span.parent is not None and span.parent.span_id in requests
        assert span.context.trace_id == requests[span.parent.span_id].context.trace_id
    # Every rerank span belongs to a different request.
    assert len({s.parent.span_id for s in by_name["rerank"] if s.parent}) == roots


def test_one_scope_object_shared_by_eight_threads(
    otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    scope = otel_rerank.rerank(model="shared")
    tracer = otel.tracer_provider.get_tracer("test")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def request(i: int) -> None:
        try:
            with tracer.start_as_current_span(f"request {i}") as root:
                barrier.wait()
                for _ in range(5):
                    with scope as call:
                        assert trace.get_current_span() is call.span  # type: ignore[union-attr]
                        time.sleep(0.001)
                    assert trace.get_current_span() is root  # restored, not another's
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert "Failed to detach context" not in caplog.text
    spans = otel.spans()
    reranks = [s for s in spans if s.name == "rerank shared"]
    assert len(reranks) == 40
    roots = {s.context.span_id: s for s in spans if s.name.startswith("request")}
    for span in reranks:
        assert span.parent is not None
        assert span.context.trace_id == roots[span.parent.span_id].context.trace_id
    per_root = {sid: 0 for sid in roots}
    for span in reranks:
        per_root[span.parent.span_id] += 1  # type: ignore[union-attr]
    assert set(per_root.values()) == {5}


async def test_one_scope_object_shared_by_twenty_tasks(
    otel: Otel, caplog: pytest.LogCaptureFixture
) -> None:
    scope = otel_rerank.rerank(model="shared")
    tracer = otel.tracer_provider.get_tracer("test")

    async def request(i: int) -> None:
        with tracer.start_as_current_span(f"request {i}") as root:
            for _ in range(3):
                async with scope as call:
                    await asyncio.sleep(0.001)  # every task is inside the scope at once
                    assert trace.get_current_span() is call.span  # type: ignore[union-attr]
                assert trace.get_current_span() is root

    await asyncio.gather(*(request(i) for i in range(20)))
    assert "Failed to detach context" not in caplog.text
    spans = otel.spans()
    reranks = [s for s in spans if s.name == "rerank shared"]
    assert len(reranks) == 60
    roots = {s.context.span_id: s for s in spans if s.name.startswith("request")}
    counts: dict[int, int] = {}
    for span in reranks:
        assert span.parent is not None and span.parent.span_id in roots
        counts[span.parent.span_id] = counts.get(span.parent.span_id, 0) + 1
    assert set(counts.values()) == {3} and len(counts) == 20


def test_nested_use_of_one_scope_object_ends_innermost_first(otel: Otel) -> None:
    scope = otel_rerank.retrieval(data_source="idx")
    with scope as outer, scope as inner:
        assert inner.span.parent.span_id == outer.span.get_span_context().span_id  # type: ignore[union-attr]
    spans = otel.spans()
    assert [s.name for s in spans] == ["retrieval idx", "retrieval idx"]
    assert spans[0].parent is not None  # the inner one ended first


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


@pytest.mark.parametrize("capture", [False, True])
def test_exception_that_cannot_print_itself_still_ends_the_span_as_error(
    capture: bool,
) -> None:
    sdk = make_otel()
    sdk.instrument(capture_content=capture)
    error = UnprintableError()
    try:

        @otel_rerank.rerank(model="m")
        def rerank(query: str, documents: list[str]) -> list[float]:
            raise error

        with pytest.raises(UnprintableError) as raised:
            rerank("q", ["a"])
        assert raised.value is error
    finally:
        otel_rerank.uninstrument()
    span = sdk.span()
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"].endswith("UnprintableError")
    event = span.events[0]
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"].endswith("UnprintableError")
    durations = sdk.metric_points("gen_ai.client.operation.duration")
    assert sum(p.count for p in durations) == 1
    assert durations[0].attributes["error.type"].endswith("UnprintableError")


class AsyncScorer:
    """An object whose ``__call__`` is a coroutine function."""

    async def __call__(self, query: str, documents: list[str]) -> list[float]:
        await asyncio.sleep(SLEEP_S)
        return [1.0 for _ in documents]


async def test_async_call_object_span_covers_the_awaited_work(otel: Otel) -> None:
    scorer = otel_rerank.rerank(model="obj")(AsyncScorer())
    assert await scorer("q", ["a", "b"]) == [1.0, 1.0]
    assert _duration_ns(otel) >= SLEEP_NS
    attributes = dict(otel.span().attributes or {})
    assert attributes["gen_ai.rerank.candidate.count"] == 2


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("false", False),
        ("False", False),
        (" 0 ", False),
        ("no", False),
        ("off", False),
        ("true", True),
        ("1", True),
        ("YES", True),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
    ],
)
def test_capture_content_strings_mean_what_they_say(
    given: object, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_RERANK_CAPTURE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    sdk = make_otel()
    sdk.instrument(capture_content=given)
    try:

        @otel_rerank.rerank(model="m")
        def rerank(query: str, documents: list[str]) -> list[float]:
            return [1.0 for _ in documents]

        rerank("secret query", ["doc"])
    finally:
        otel_rerank.uninstrument()
    recorded = dict(sdk.span().attributes or {}).get("reranker.query")
    assert recorded == ("secret query" if expected else None)


_ON = {"1", "true", "yes", "on"}


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none(), st.binary()))
def test_capture_content_never_raises_and_only_clear_yeses_turn_it_on(value: object) -> None:
    env = {k: v for k, v in os.environ.items() if "CAPTURE" not in k}
    with mock.patch.dict(os.environ, env, clear=True):
        policy = ContentPolicy.from_env(value)
    text = value.strip().lower() if isinstance(value, str) else None
    clear_yes = value is True or (type(value) is int and value == 1) or text in _ON
    assert policy.capture is clear_yes


def test_nonsense_capture_content_is_logged_and_leaves_capture_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_RERANK_CAPTURE_CONTENT", raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    with caplog.at_level("WARNING", logger="otel_rerank"):
        policy = ContentPolicy.from_env("definitely-maybe")
    assert policy.capture is False
    assert "definitely-maybe" in caplog.text


@pytest.mark.parametrize("capture", [False, True])
def test_exception_events_are_bounded_and_redacted_without_capture(
    capture: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_CONTENT_MAX_LENGTH", "300")
    sdk = make_otel()
    sdk.instrument(capture_content=capture)
    document = "CONFIDENTIAL " * 10_000
    try:

        @otel_rerank.rerank(model="m")
        def rerank(query: str, documents: list[str]) -> list[float]:
            def deep(n: int) -> None:
                if n == 0:
                    raise ValueError(f"cannot score {documents[0]}")
                deep(n - 1)

            deep(100)
            return []

        with pytest.raises(ValueError):
            rerank("q", [document])
    finally:
        otel_rerank.uninstrument()
    event = dict(sdk.span().events[0].attributes or {})
    assert event["exception.type"] == "ValueError"
    assert len(event["exception.stacktrace"]) <= 300
    assert "in deep" in event["exception.stacktrace"]  # the innermost frames are kept
    if capture:
        assert event["exception.message"].startswith("cannot score CONFIDENTIAL")
        assert len(event["exception.message"]) <= 300
    else:
        assert "exception.message" not in event
        assert "CONFIDENTIAL" not in event["exception.stacktrace"]
        assert event["exception.stacktrace"].endswith("content capture is off)")


@pytest.mark.parametrize("capture", [False, True])
def test_content_reaches_the_span_only_through_the_privacy_gate(
    capture: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = make_otel()
    sdk.instrument(capture_content=capture)
    read: list[str] = []

    def write_query(span: StageSpan, text: str) -> None:
        read.append(text)
        span.record_text(semconv.RERANKER_QUERY, text)

    def broken(span: StageSpan) -> None:
        raise ValueError("our bug")

    try:
        with otel_rerank.rerank(model="m") as span:
            span.record_content(write_query, "the query")
            monkeypatch.setattr(_safe, "STRICT", False)  # a writer's failure stays ours
            span.record_content(broken)
    finally:
        otel_rerank.uninstrument()
    attributes = dict(sdk.span().attributes or {})
    assert read == (["the query"] if capture else [])  # off: the content is never read
    assert attributes.get(semconv.RERANKER_QUERY) == ("the query" if capture else None)
