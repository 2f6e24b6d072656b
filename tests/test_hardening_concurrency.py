"""Concurrent requests never mix up their spans: threads and asyncio tasks.

Each request opens a root span and runs embed → search → rerank → LLM. Every stage writes
its request's id on the span that is current *inside* it, so a stage whose span was parented
to another request, or that wrote onto another request's span, shows up as a mismatch.
The checks: every root has exactly its own four children, in pipeline order, in its own
trace; nothing else was recorded (no stray or duplicated spans, e.g. a second span from
``CrossEncoder.predict`` inside ``rank``); and per-request attributes (candidate counts,
which differ per request) landed on the right span.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

import otel_rerank
from otel_rerank import semconv
from tests.conftest import Otel

REQUEST = "app.request"
STAGE_ORDER = ["embeddings", "retrieval", "rerank", "chat"]


def _mark(request_id: str) -> None:
    trace.get_current_span().set_attribute(REQUEST, request_id)


def _check_trees(spans: list[ReadableSpan], expected_requests: set[str]) -> None:
    roots = {s.context.span_id: s for s in spans if s.name.startswith("request ")}
    assert {s.attributes[REQUEST] for s in roots.values()} == expected_requests
    children: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        if span.context.span_id in roots:
            continue
        assert span.parent is not None, f"orphan span {span.name}"
        assert span.parent.span_id in roots, f"{span.name} parented to a non-root"
        children[span.parent.span_id].append(span)
    assert len(spans) == len(roots) * 5, "stray or duplicated spans"
    for span_id, root in roots.items():
        kids = sorted(children[span_id], key=lambda s: s.start_time or 0)
        operations = [k.attributes[semconv.GEN_AI_OPERATION_NAME] for k in kids]
        assert operations == STAGE_ORDER, (root.name, operations)
        for kid in kids:
            assert kid.context.trace_id == root.context.trace_id
            assert kid.attributes[REQUEST] == root.attributes[REQUEST], (root.name, kid.name)


def _pipeline_functions() -> dict[str, Any]:
    @otel_rerank.embedding(model="emb")
    def embed(text: str, request_id: str) -> list[float]:
        _mark(request_id)
        time.sleep(0)  # invite a thread switch inside the span
        return [float(len(text))] * 4

    @otel_rerank.retrieval(data_source="docs", top_k=5)
    def search(vector: list[float], request_id: str, n: int) -> list[str]:
        _mark(request_id)
        time.sleep(random.random() / 2000)
        return [f"doc {request_id} {i}" for i in range(n)]

    @otel_rerank.rerank(model="ce")
    def rerank(query: str, documents: list[str], request_id: str) -> list[float]:
        _mark(request_id)
        time.sleep(0)
        return [float(i % 3) for i in range(len(documents))]

    @otel_rerank.llm(model="gpt")
    def answer(prompt: str, request_id: str) -> str:
        _mark(request_id)
        return prompt.upper()

    return {"embed": embed, "search": search, "rerank": rerank, "answer": answer}


def test_sixteen_threads_build_separate_trees(otel: Otel, tiny_cross_encoder: Any) -> None:
    """Decorated stages and the real CrossEncoder.rank, 16 threads x 8 requests each."""
    tracer = otel.tracer_provider.get_tracer("app")
    fns = _pipeline_functions()
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def worker(thread_no: int) -> None:
        try:
            barrier.wait()
            for i in range(8):
                request_id = f"t{thread_no}-{i}"
                n = 2 + (thread_no + i) % 7  # candidate count differs between requests
                with tracer.start_as_current_span(f"request {request_id}") as root:
                    root.set_attribute(REQUEST, request_id)
                    root.set_attribute("app.candidates", n)
                    vector = fns["embed"](request_id, request_id)
                    documents = fns["search"](vector, request_id, n)
                    if thread_no % 2:  # half the threads use the real cross-encoder
                        with otel_rerank.rerank(model="ce") as outer:
                            outer.set(REQUEST, request_id)
                            ranked = tiny_cross_encoder.rank(request_id, documents)
                        assert len(ranked) == n
                    else:
                        fns["rerank"](request_id, documents, request_id)
                    fns["answer"]("q", request_id)
        except BaseException as error:  # re-raised in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]

    spans = otel.spans()
    # The real rank() spans sit one level below our marker span: lift them to check the
    # marker span (the request's rerank child) and the rank span (its only child) apart.
    rank_spans = [s for s in spans if s.name.startswith("rerank ") and REQUEST not in s.attributes]
    by_id = {s.context.span_id: s for s in spans}
    roots = {s.attributes[REQUEST]: s for s in spans if s.name.startswith("request ")}
    assert len(rank_spans) == 8 * 8  # one per real rank call, none from the inner predict
    for rank_span in rank_spans:
        assert rank_span.parent is not None
        outer = by_id[rank_span.parent.span_id]
        request_id = str(outer.attributes[REQUEST])
        assert (
            rank_span.attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT]
            == (roots[request_id].attributes["app.candidates"])
        )
    _check_trees([s for s in spans if s not in rank_spans], set(roots))


def test_two_hundred_asyncio_tasks_build_separate_trees(
    otel: Otel, tiny_cross_encoder: Any
) -> None:
    """200 concurrent tasks: async stages, an async-generator LLM stream, and the real
    cross-encoder run in a worker thread (``asyncio.to_thread`` carries the context)."""
    tracer = otel.tracer_provider.get_tracer("app")

    @otel_rerank.embedding(model="emb")
    async def embed(text: str, request_id: str) -> list[float]:
        _mark(request_id)
        await asyncio.sleep(random.random() / 1000)
        return [1.0, 2.0]

    @otel_rerank.retrieval(data_source="docs")
    async def search(vector: list[float], request_id: str, n: int) -> list[str]:
        await asyncio.sleep(random.random() / 1000)
        _mark(request_id)  # after the await: still this request's span
        return [f"doc {i}" for i in range(n)]

    @otel_rerank.rerank(model="ce")
    async def rerank(query: str, documents: list[str], request_id: str) -> list[float]:
        _mark(request_id)
        if int(request_id[1:]) % 4 == 0:  # a quarter of the tasks use the real model
            await asyncio.to_thread(tiny_cross_encoder.predict, [(query, d) for d in documents])
        await asyncio.sleep(0)
        return [float(len(d)) for d in documents]

    @otel_rerank.llm(model="gpt")
    async def stream(prompt: str, request_id: str) -> AsyncIterator[str]:
        for token in ("a", "b", "c"):
            _mark(request_id)
            await asyncio.sleep(0)
            yield token

    async def request(number: int) -> None:
        request_id = f"a{number}"
        with tracer.start_as_current_span(f"request {request_id}") as root:
            root.set_attribute(REQUEST, request_id)
            vector = await embed("q", request_id)
            documents = await search(vector, request_id, 2 + number % 5)
            await rerank("q", documents, request_id)
            tokens = [t async for t in stream("q", request_id)]
            assert tokens == ["a", "b", "c"]

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(200)))

    asyncio.run(main())
    spans = otel.spans()
    # The real predict() ran inside our decorated rerank: its span is a grandchild. Check
    # it separately and the five-span trees without it.
    predict_spans = [
        s for s in spans if s.name.startswith("rerank ") and REQUEST not in s.attributes
    ]
    assert len(predict_spans) == 50
    by_id = {s.context.span_id: s for s in spans}
    for predict_span in predict_spans:
        assert predict_span.parent is not None
        parent = by_id[predict_span.parent.span_id]
        assert parent.attributes[semconv.GEN_AI_OPERATION_NAME] == "rerank"
        assert (
            predict_span.attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT]
            == (parent.attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT])
        )
    _check_trees([s for s in spans if s not in predict_spans], {f"a{n}" for n in range(200)})
