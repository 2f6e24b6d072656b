"""``otel_rerank.request``: one root span per query, budgets, and no second root."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_rerank
from otel_rerank import _request
from tests.conftest import Otel


def test_request_is_the_root_of_the_stage_spans(otel: Otel) -> None:
    @otel_rerank.request(name="ask")
    def ask(query: str) -> list[float]:
        with otel_rerank.embedding(model="m"):
            pass
        with otel_rerank.rerank(model="ce"):
            return [0.1, 0.9]

    assert ask("q") == [0.1, 0.9]
    root = otel.span("invoke_workflow ask")
    assert root.parent is None
    assert root.kind is SpanKind.INTERNAL
    assert root.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["openinference.span.kind"] == "CHAIN"
    children = [s for s in otel.spans() if s is not root]
    assert sorted(s.name for s in children) == ["embeddings m", "rerank ce"]
    for child in children:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id


def test_bare_decorator_names_the_span_after_the_function(otel: Otel) -> None:
    @otel_rerank.request
    def answer_question() -> int:
        return 3

    assert answer_question() == 3
    assert otel.span().name == "invoke_workflow answer_question"


async def test_async_request_and_context_manager(otel: Otel) -> None:
    @otel_rerank.request(name="a")
    async def ask() -> str:
        await asyncio.sleep(0.01)
        return "x"

    assert await ask() == "x"
    async with otel_rerank.request(name="b", budget_ms=100) as state:
        assert state is not None and state.remaining_ms() is not None
    spans = {s.name: s for s in otel.spans()}
    assert spans["invoke_workflow a"].end_time - spans["invoke_workflow a"].start_time >= 1e7
    assert spans["invoke_workflow b"].attributes["rag.request.budget_ms"] == 100.0


def test_a_current_span_stays_the_root(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /ask", kind=SpanKind.SERVER) as server:
        time.sleep(0.02)
        with otel_rerank.request(name="ask", budget_ms=1000) as state:
            assert state is not None and state.span is None
            # The budget counts from the server span's start, not from here.
            assert state.elapsed_ms() >= 20
            with otel_rerank.rerank(model="ce"):
                pass
    assert sorted(s.name for s in otel.spans()) == ["POST /ask", "rerank ce"]
    assert otel.span("rerank ce").parent.span_id == server.get_span_context().span_id


def test_nested_requests_make_one_root(otel: Otel) -> None:
    with (
        otel_rerank.request(name="outer", budget_ms=500) as outer,
        otel_rerank.request(name="inner", budget_ms=9) as inner,
    ):
        assert inner is outer
    assert [s.name for s in otel.spans()] == ["invoke_workflow outer"]
    assert _request.current() is None


def test_errors_mark_the_request_and_propagate_unchanged(otel: Otel) -> None:
    boom = KeyError("k")

    @otel_rerank.request(name="ask")
    def ask() -> None:
        raise boom

    with pytest.raises(KeyError) as raised:
        ask()
    assert raised.value is boom
    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"


def test_no_sdk_still_tracks_the_budget() -> None:
    with otel_rerank.request(budget_ms=1000) as state:
        assert state is not None and state.span is None
        assert 0 < state.remaining_ms() <= 1000  # type: ignore[operator]
        assert _request.current() is state
    assert _request.current() is None


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "100", True])
def test_bad_budget_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="budget_ms"):
        otel_rerank.request(budget_ms=bad)  # type: ignore[arg-type]


def test_one_scope_object_shared_by_threads_and_tasks(otel: Otel) -> None:
    scope = otel_rerank.request(name="shared")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with scope:
                barrier.wait()
                with otel_rerank.retrieval(data_source="d"):
                    time.sleep(0.001)
            assert _request.current() is None
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def task() -> None:
        async with scope:
            await asyncio.sleep(0.001)
            with otel_rerank.retrieval(data_source="d"):
                await asyncio.sleep(0.001)

    async def many() -> None:
        await asyncio.gather(*(task() for _ in range(20)))

    asyncio.run(many())
    assert not errors
    roots = {s.context.span_id: s for s in otel.spans() if s.name == "invoke_workflow shared"}
    children = [s for s in otel.spans() if s.name == "retrieval d"]
    assert len(roots) == 28 and len(children) == 28
    assert len({c.parent.span_id for c in children}) == 28
    assert all(c.parent.span_id in roots for c in children)


# -- streams: a framework's stream()/astream() is one request (issue 14) ---------------------
def _stream(n: int) -> object:
    def gen():  # type: ignore[no-untyped-def]
        for i in range(n):
            with otel_rerank.rerank(model="m"):
                pass
            yield i

    return gen()


def test_a_stream_is_one_request_current_only_while_it_computes(otel: Otel) -> None:
    from opentelemetry import trace

    seen = []
    for item in _request.iterate_in_request("chain", lambda: _stream(3)):  # type: ignore[arg-type, return-value]
        # the consumer holds the item outside the request: no span current here
        seen.append((item, trace.get_current_span().get_span_context().is_valid))
        assert _request.current() is None
    assert seen == [(0, False), (1, False), (2, False)]
    spans = otel.spans()
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == "invoke_workflow chain"
    assert [s.parent.span_id for s in spans if s is not root] == [root.context.span_id] * 3  # type: ignore[union-attr]


def test_a_stream_closed_early_ends_its_request_without_error(otel: Otel) -> None:
    stream = _request.iterate_in_request("chain", lambda: _stream(5))  # type: ignore[arg-type, return-value]
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    (root,) = [s for s in otel.spans() if s.parent is None]
    assert root.status.status_code is StatusCode.UNSET
    assert _request.current() is None


def test_a_failing_stream_marks_its_request(otel: Otel) -> None:
    def broken():  # type: ignore[no-untyped-def]
        yield 1
        raise KeyError("boom")

    with pytest.raises(KeyError):
        list(_request.iterate_in_request("chain", broken))
    (root,) = otel.spans()
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["error.type"] == "KeyError"


async def test_an_async_stream_is_one_request(otel: Otel) -> None:
    async def agen():  # type: ignore[no-untyped-def]
        for i in range(3):
            with otel_rerank.rerank(model="m"):
                await asyncio.sleep(0)
            yield i

    items = [i async for i in _request.aiterate_in_request("chain", agen)]
    assert items == [0, 1, 2]
    spans = otel.spans()
    (root,) = [s for s in spans if s.parent is None]
    assert len({s.context.trace_id for s in spans}) == 1 and len(spans) == 4
    assert _request.current() is None and root.name == "invoke_workflow chain"


def test_a_stream_inside_a_request_adds_no_root(otel: Otel) -> None:
    with otel_rerank.request(name="outer"):
        assert list(_request.iterate_in_request("chain", lambda: _stream(2))) == [0, 1]  # type: ignore[arg-type, return-value]
    roots = [s.name for s in otel.spans() if s.parent is None]
    assert roots == ["invoke_workflow outer"]
