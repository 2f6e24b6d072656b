"""Stage decorators and context managers: every calling convention, real durations, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import otel_rerank
from otel_rerank import semconv
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


def test_unknown_stage_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="top_n"):
        otel_rerank.embedding(top_n=3)  # type: ignore[call-arg]


def test_shadow_runs_are_marked_on_their_metric_points(otel: Otel) -> None:
    from otel_rerank import _span

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
