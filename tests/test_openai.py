"""openai: chat completions (sync, async, streams, the stream helper) and embeddings (offline).

Every call goes to an in-process mock transport given to the client through
``http_client=``; nothing touches the network. The tests run against whichever openai is
installed: 3.x speaks ``httpx2``, 2.x ``httpx``, and the mock uses the same library the
client does (``make test-openai2`` runs this file against openai 2.x).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

import otel_rerank
from otel_rerank import _safe, _span, _telemetry, semconv
from otel_rerank.instrumentation import _llm
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.openai import OpenAIInstrumentor
from otel_rerank.instrumentation.openai import _attributes as attrs
from otel_rerank.instrumentation.openai._wrappers import _ChatCompletions

from ._mock_llm import MockLLMServer
from .conftest import Otel, make_otel

openai = pytest.importorskip("openai")
_base_client = importlib.import_module("openai._base_client")
#: The HTTP library this openai version is built on (httpx2 for 3.x, httpx for 2.x).
http: Any = getattr(_base_client, "httpx2", None) or _base_client.httpx

API_KEY = "sk-test-SECRET-never-recorded-1234"
MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
MESSAGES = [
    {"role": "system", "content": "You answer from the documents."},
    {"role": "user", "content": "What is the lift of a wing?"},
]
ANSWER = "Lift is the force that holds the wing up."
STREAM_PIECES = ["Lift ", "is ", "the ", "force."]


def _completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1,
        "model": RESPONSE_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
    }


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-456",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": RESPONSE_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def _stream_body(include_usage: bool, error: bool = False) -> bytes:
    chunks = [_chunk({"role": "assistant", "content": STREAM_PIECES[0]})]
    chunks += [_chunk({"content": piece}) for piece in STREAM_PIECES[1:-1]]
    if error:
        chunks.append({"error": {"message": "the model overloaded", "type": "server_error"}})
    chunks.append(_chunk({"content": STREAM_PIECES[-1]}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25}
        chunks.append({**_chunk({}), "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _embeddings(count: int) -> dict[str, Any]:
    return {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4]}
            for i in range(count)
        ],
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


class _MockOpenAI(MockLLMServer):
    """A fake OpenAI API: chat completions (plain and SSE) and embeddings."""

    http = http
    client_class = openai.OpenAI
    async_client_class = openai.AsyncOpenAI
    base_url = "https://llm.example.test:8443/v1"
    api_key = API_KEY

    def _respond(self, request: Any) -> Any:
        if self.status != 200:
            body = {"error": {"message": "boom", "type": "server_error", "code": None}}
            return http.Response(self.status, json=body)
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            inputs = body["input"]
            return http.Response(
                200, json=_embeddings(1 if isinstance(inputs, str) else len(inputs))
            )
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return http.Response(
                200,
                content=_stream_body(include_usage, self.stream_error),
                headers={"content-type": "text/event-stream"},
            )
        return http.Response(200, json=_completion())


@pytest.fixture
def server() -> _MockOpenAI:
    return _MockOpenAI()


def _chat(client: Any, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)


def _chat_spans(otel: Otel) -> list[Any]:
    return [s for s in otel.spans() if s.name == f"chat {MODEL}"]


def _one_chat_span(otel: Otel) -> Any:
    spans = _chat_spans(otel)
    assert len(spans) == 1, [s.name for s in otel.spans()]
    return spans[0]


def _duration_count(otel: Otel) -> int:
    return sum(p.count for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION))


def _content_keys(span: Any) -> list[str]:
    return [k for k in span.attributes if k.startswith(("llm.input_messages", "llm.output"))]


# -- chat completions --------------------------------------------------------------------
def test_chat_success_attributes(otel: Otel, server: _MockOpenAI) -> None:
    result = _chat(server.client(), max_tokens=64, temperature=0.2, top_p=0.9)

    assert result.choices[0].message.content == ANSWER
    span = _one_chat_span(otel)
    a = span.attributes
    assert span.kind is SpanKind.CLIENT
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[semconv.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert a[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert a[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-123"
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[semconv.SERVER_ADDRESS] == "llm.example.test"
    assert a[semconv.SERVER_PORT] == 8443
    assert semconv.GEN_AI_REQUEST_STREAM not in a
    assert span.status.status_code is StatusCode.UNSET

    tokens = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum
        for p in otel.metric_points(semconv.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": 21, "output": 9}
    duration = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert [p.attributes[semconv.GEN_AI_PROVIDER_NAME] for p in duration] == ["openai"]
    assert duration[0].attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL


@pytest.mark.parametrize(
    ("status", "error_name"), [(500, "InternalServerError"), (400, "BadRequestError")]
)
def test_chat_http_error_is_recorded_and_reraised(otel: Otel, status: int, error_name: str) -> None:
    server = _MockOpenAI(status=status)
    with pytest.raises(getattr(openai, error_name)) as caught:
        _chat(server.client())

    assert caught.value.status_code == status
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE].endswith(error_name)
    exception_events = [e for e in span.events if e.name == "exception"]
    assert exception_events[0].attributes["exception.type"].endswith(error_name)
    (point,) = otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    assert point.attributes[semconv.ERROR_TYPE].endswith(error_name)


def test_suppressed_calls_make_no_span(otel: Otel, server: _MockOpenAI) -> None:
    client = server.client()
    with suppress_instrumentation():
        _chat(client)
        stream = _chat(client, stream=True)
        assert not isinstance(stream, wrapt.ObjectProxy)
        list(stream)
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert otel.spans() == []
    assert len(server.requests) == 3


def test_sampled_out_call_still_works_and_is_timed(server: _MockOpenAI) -> None:
    sdk = make_otel(sampler=ALWAYS_OFF)
    sdk.instrument()
    try:
        assert _chat(server.client()).choices[0].message.content == ANSWER
        assert "".join(
            c.choices[0].delta.content or ""
            for c in _chat(server.client(), stream=True)
            if c.choices
        ) == "".join(STREAM_PIECES)
    finally:
        otel_rerank.uninstrument()
    assert sdk.spans() == []
    assert _duration_count(sdk) == 2
    # Token usage is a metric, kept whatever the sampler decides about the span.
    tokens = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum
        for p in sdk.metric_points(semconv.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": 21, "output": 9}


class _RecordingSampler(Sampler):
    """Drops every span, keeping the attributes each one was offered to the sampler with."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any
    ) -> SamplingResult:
        attributes = kwargs.get("attributes", args[1] if len(args) > 1 else None)
        self.seen[name] = dict(attributes or {})
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "recording"


def test_request_attributes_reach_the_sampler_and_sampled_out_embeddings_count_tokens(
    server: _MockOpenAI,
) -> None:
    sampler = _RecordingSampler()
    sdk = make_otel(sampler=sampler)
    sdk.instrument()
    try:
        _chat(server.client(), max_tokens=64, temperature=0.2)
        server.client().embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    finally:
        otel_rerank.uninstrument()
    chat = sampler.seen[f"chat {MODEL}"]
    assert chat[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert chat[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert chat[semconv.SERVER_ADDRESS] == "llm.example.test"
    embeddings = sampler.seen["embeddings text-embedding-3-small"]
    assert embeddings[semconv.RAG_EMBEDDING_INPUT_COUNT] == 2
    assert embeddings[semconv.SERVER_PORT] == 8443
    assert sdk.spans() == []
    tokens = [
        (p.attributes[semconv.GEN_AI_OPERATION_NAME], p.sum)
        for p in sdk.metric_points(semconv.METRIC_TOKEN_USAGE)
        if p.attributes[semconv.GEN_AI_TOKEN_TYPE] == "input"
    ]
    assert sorted(tokens) == [("chat", 21), ("embeddings", 7)]


def test_each_call_starts_with_its_own_request_and_server(otel: Otel) -> None:
    # What a span starts with is cached per model, server and request parameters: calls
    # that differ in any of them must each get their own.
    first, second = _MockOpenAI(), _MockOpenAI()
    second.base_url = "http://other.example.test/v1"
    _chat(first.client(), temperature=0.2)
    _chat(first.client(), temperature=0.7)
    _chat(second.client(), temperature=0.2)
    _chat(first.client())
    _chat(first.client(), temperature=0.2, max_tokens=8)
    seen = [
        (
            s.attributes[semconv.SERVER_ADDRESS],
            s.attributes.get(semconv.GEN_AI_REQUEST_TEMPERATURE),
            s.attributes.get(semconv.GEN_AI_REQUEST_MAX_TOKENS),
        )
        for s in sorted(_chat_spans(otel), key=lambda s: s.start_time or 0)
    ]
    assert seen == [
        ("llm.example.test", 0.2, None),
        ("llm.example.test", 0.7, None),
        ("other.example.test", 0.2, None),
        ("llm.example.test", None, None),
        ("llm.example.test", 0.2, 8),
    ]
    servers = {
        (p.attributes[semconv.SERVER_ADDRESS], p.attributes.get(semconv.SERVER_PORT), p.count)
        for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION)
    }
    assert servers == {("llm.example.test", 8443, 4), ("other.example.test", 80, 1)}


def test_opening_of_an_unhashable_request_is_not_cached() -> None:
    operation = _llm.Operation(_span.CHAT, "openai")
    request: Any = ((semconv.GEN_AI_REQUEST_STOP_SEQUENCES, ["a"]),)  # a list: unhashable
    opened = operation.opening(MODEL, None, request)
    assert opened.span_attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ["a"]
    assert opened.name == f"chat {MODEL}"
    assert operation._openings == {}
    assert operation.opening(MODEL, None, ()) is operation.opening(MODEL, None, ())


def test_content_is_off_by_default(otel: Otel, server: _MockOpenAI) -> None:
    _chat(server.client())
    list(_chat(server.client(), stream=True))
    for span in _chat_spans(otel):
        assert _content_keys(span) == []


def test_content_is_recorded_when_enabled(otel: Otel, server: _MockOpenAI) -> None:
    otel.instrument(capture_content=True)
    _chat(server.client())
    list(_chat(server.client(), stream=True))

    plain, streamed = _chat_spans(otel)
    for span in (plain, streamed):
        a = span.attributes
        assert a["llm.input_messages.0.message.role"] == "system"
        assert a["llm.input_messages.1.message.content"] == MESSAGES[1]["content"]
    assert plain.attributes["llm.output_messages.0.message.content"] == ANSWER
    assert streamed.attributes["llm.output_messages.0.message.content"] == "".join(STREAM_PIECES)


def test_api_key_is_never_recorded(otel: Otel, server: _MockOpenAI) -> None:
    otel.instrument(capture_content=True)
    client = server.client()
    _chat(client)
    list(_chat(client, stream=True))
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    with pytest.raises(openai.InternalServerError):
        _chat(_MockOpenAI(status=500).client())

    assert len(otel.spans()) == 4
    values = []
    for span in otel.spans():
        values += [str(v) for v in span.attributes.values()]
        for event in span.events:
            values += [str(v) for v in (event.attributes or {}).values()]
    assert values
    assert not [v for v in values if "SECRET" in v or API_KEY in v]
    assert all("Bearer" not in v for v in values)


async def test_async_chat_span_covers_the_await(otel: Otel) -> None:
    server = _MockOpenAI(delay_s=0.05)
    result = await server.async_client().chat.completions.create(model=MODEL, messages=MESSAGES)

    assert result.choices[0].message.content == ANSWER
    span = _one_chat_span(otel)
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert span.kind is SpanKind.CLIENT


async def test_async_chat_error(otel: Otel) -> None:
    with pytest.raises(openai.BadRequestError):
        await (
            _MockOpenAI(status=400)
            .async_client()
            .chat.completions.create(model=MODEL, messages=MESSAGES)
        )
    assert _one_chat_span(otel).status.status_code is StatusCode.ERROR


# -- streams -----------------------------------------------------------------------------
def test_stream_exhausted(otel: Otel, server: _MockOpenAI) -> None:
    stream = _chat(server.client(), stream=True, stream_options={"include_usage": True})
    assert _chat_spans(otel) == []  # still open: the answer is being read

    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == "".join(STREAM_PIECES)
    span = _one_chat_span(otel)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    ttfc = a["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc <= (span.end_time - span.start_time) / 1e9
    stream.close()  # after exhaustion: nothing more
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1
    assert _duration_count(otel) == 1


def test_stream_text_is_cut_where_the_policy_cuts_it(
    otel: Otel, server: _MockOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_CONTENT_MAX_LENGTH", "8")
    otel.instrument(capture_content=True)
    stream = _chat(server.client(), stream=True)
    list(stream)
    full = "".join(STREAM_PIECES)
    a = _one_chat_span(otel).attributes
    assert a["llm.output_messages.0.message.content"] == full[:7] + "…"
    assert json.loads(a[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Lift is…"
    # Only what the cut needs was kept ("Lift is the ": 12 characters), not the last piece.
    assert stream._self_end.state.texts[0].pieces == STREAM_PIECES[:3]


def test_stream_state_is_pure_and_bounded() -> None:
    state = attrs.ChatStreamState(limit=10)
    chunk = _Obj(
        model="m", id="c1", choices=[_Obj(index=0, delta=_Obj(content="abcd"), finish_reason=None)]
    )
    for _ in range(10_000):
        state.add(chunk)
    state.add(_Obj(choices=[_Obj(index=0, delta=_Obj(content=None), finish_reason="stop")]))
    assert len(state.texts[0].pieces) == 3
    assert state.output() == ([("assistant", "abcd" * 3)], ["stop"])
    assert state.usage() == (None, None)  # no usage chunk (stream_options not set)
    assert dict(state.attributes())[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


@pytest.mark.parametrize("nothing", ["suppressed", "no SDK"])
@pytest.mark.usefixtures("otel")
def test_nothing_of_the_call_is_read_when_nothing_records(
    server: _MockOpenAI, monkeypatch: pytest.MonkeyPatch, nothing: str
) -> None:
    read: list[str] = []
    chat_request, embeddings_request = _ChatCompletions.request, attrs.embeddings_request
    # Where each wrapper reads its extractor: chat's on its operation, embeddings' module.
    monkeypatch.setattr(
        _ChatCompletions,
        "request",
        staticmethod(lambda *a: read.append("chat_request") or chat_request(*a)),
    )
    monkeypatch.setattr(
        attrs,
        "embeddings_request",
        lambda *a: read.append("embeddings_request") or embeddings_request(*a),
    )
    current = _telemetry.current
    if nothing == "no SDK":
        monkeypatch.setattr(_telemetry, "current", lambda: None)
    client = server.client()
    with suppress_instrumentation() if nothing == "suppressed" else contextlib.nullcontext():
        assert _chat(client).choices[0].message.content == ANSWER
        assert len(list(_chat(client, stream=True))) == len(STREAM_PIECES)
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert read == []
    monkeypatch.setattr(_telemetry, "current", current)
    _chat(client)
    client.embeddings.create(model="text-embedding-3-small", input="x")
    assert read == ["chat_request", "embeddings_request"]  # the counting sees recorded calls


def test_stream_keeps_working_as_the_sdk_object(otel: Otel, server: _MockOpenAI) -> None:
    stream = _chat(server.client(), stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    first = next(stream)
    assert first.choices[0].delta.content == STREAM_PIECES[0]
    rest = list(stream)
    assert len(rest) == len(STREAM_PIECES) - 1
    assert len(_chat_spans(otel)) == 1


def test_stream_closed_early(otel: Otel, server: _MockOpenAI) -> None:
    stream = _chat(server.client(), stream=True)
    next(stream)
    stream.close()
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.UNSET
    assert "gen_ai.response.time_to_first_chunk" in span.attributes
    stream.close()
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


def test_stream_broken_out_of(otel: Otel, server: _MockOpenAI) -> None:
    stream = _chat(server.client(), stream=True)
    for _ in stream:
        break
    assert len(_chat_spans(otel)) == 1  # ended at the break, not at garbage collection
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1
    assert _duration_count(otel) == 1


def test_stream_dropped_unread(otel: Otel, server: _MockOpenAI) -> None:
    stream = _chat(server.client(), stream=True)
    assert _chat_spans(otel) == []
    del stream
    gc.collect()
    span = _one_chat_span(otel)
    assert "gen_ai.response.time_to_first_chunk" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


def test_stream_as_context_manager(otel: Otel, server: _MockOpenAI) -> None:
    with _chat(server.client(), stream=True) as stream:
        assert isinstance(stream, wrapt.ObjectProxy)  # iteration still goes through us
        next(stream)
        assert _chat_spans(otel) == []
    assert len(_chat_spans(otel)) == 1
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


def test_stream_error_mid_stream(otel: Otel) -> None:
    server = _MockOpenAI(stream_error=True)
    stream = _chat(server.client(), stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE].endswith("APIError")


def test_stream_helper_one_span(otel: Otel, server: _MockOpenAI) -> None:
    client = server.client()
    if not hasattr(client.chat.completions, "stream"):
        pytest.skip("this openai has no chat.completions.stream helper")
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "content.done" in events
    assert final.choices[0].message.content == "".join(STREAM_PIECES)
    span = _one_chat_span(otel)
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert "gen_ai.response.time_to_first_chunk" in span.attributes


def test_stream_helper_left_early(otel: Otel, server: _MockOpenAI) -> None:
    client = server.client()
    if not hasattr(client.chat.completions, "stream"):
        pytest.skip("this openai has no chat.completions.stream helper")
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for _event in stream:
            break
        keep = stream  # the user still holds the stream: the span must end at exit anyway
    assert len(_chat_spans(otel)) == 1
    del keep, stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


async def test_async_stream_exhausted_and_timed(otel: Otel) -> None:
    server = _MockOpenAI(delay_s=0.05)
    stream = await server.async_client().chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces) == "".join(STREAM_PIECES)
    span = _one_chat_span(otel)
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0.05
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


async def test_async_stream_anext_and_close(otel: Otel, server: _MockOpenAI) -> None:
    stream = await server.async_client().chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    await stream.__anext__()
    await stream.close()
    assert len(_chat_spans(otel)) == 1
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


async def test_async_stream_broken_out_of(otel: Otel, server: _MockOpenAI) -> None:
    stream = await server.async_client().chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    )
    async for _ in stream:
        break
    for _ in range(3):  # asyncio closes an abandoned async generator on a later loop turn
        gc.collect()
        await asyncio.sleep(0)
    assert len(_chat_spans(otel)) == 1
    del stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


async def test_async_stream_context_manager_and_dropped(otel: Otel, server: _MockOpenAI) -> None:
    client = server.async_client()
    async with await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    ) as stream:
        await stream.__anext__()
    assert len(_chat_spans(otel)) == 1
    dropped = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    del dropped
    gc.collect()
    assert len(_chat_spans(otel)) == 2


async def test_async_stream_helper(otel: Otel, server: _MockOpenAI) -> None:
    client = server.async_client()
    if not hasattr(client.chat.completions, "stream"):
        pytest.skip("this openai has no chat.completions.stream helper")
    async with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        async for _event in stream:
            break
    assert len(_chat_spans(otel)) == 1
    async with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "".join(STREAM_PIECES)
    assert len(_chat_spans(otel)) == 2


def test_parse_helper_one_span(otel: Otel, server: _MockOpenAI) -> None:
    completions = server.client().chat.completions
    if not hasattr(completions, "parse"):
        pytest.skip("this openai has no chat.completions.parse helper")
    parsed = completions.parse(model=MODEL, messages=MESSAGES)
    assert parsed.choices[0].message.content == ANSWER
    span = _one_chat_span(otel)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 21
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


async def test_async_parse_helper_one_span(otel: Otel, server: _MockOpenAI) -> None:
    completions = server.async_client().chat.completions
    if not hasattr(completions, "parse"):
        pytest.skip("this openai has no chat.completions.parse helper")
    await completions.parse(model=MODEL, messages=MESSAGES)
    assert _one_chat_span(otel).attributes[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL


# -- embeddings --------------------------------------------------------------------------
def test_embeddings_attributes(otel: Otel, server: _MockOpenAI) -> None:
    result = server.client().embeddings.create(
        model="text-embedding-3-small", input=["lift", "drag", "thrust"]
    )
    assert len(result.data) == 3
    span = otel.span("embeddings text-embedding-3-small")
    a = span.attributes
    assert span.kind is SpanKind.CLIENT
    assert a[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[semconv.OPENINFERENCE_SPAN_KIND] == "EMBEDDING"
    assert a[semconv.RAG_EMBEDDING_INPUT_COUNT] == 3
    assert a[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 4
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 7
    assert a[semconv.SERVER_ADDRESS] == "llm.example.test"
    assert not [k for k in a if k.startswith(semconv.EMBEDDING_EMBEDDINGS)]


def test_embeddings_content_when_enabled(otel: Otel, server: _MockOpenAI) -> None:
    otel.instrument(capture_content=True)
    server.client().embeddings.create(model="text-embedding-3-small", input="lift")
    a = otel.span("embeddings text-embedding-3-small").attributes
    assert a["embedding.embeddings.0.embedding.text"] == "lift"


async def test_async_embeddings_cover_the_await(otel: Otel) -> None:
    server = _MockOpenAI(delay_s=0.05)
    await server.async_client().embeddings.create(model="text-embedding-3-small", input="x")
    span = otel.span("embeddings text-embedding-3-small")
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes[semconv.RAG_EMBEDDING_INPUT_COUNT] == 1


def test_embeddings_error(otel: Otel) -> None:
    with pytest.raises(openai.InternalServerError):
        _MockOpenAI(status=500).client().embeddings.create(model="m", input="x")
    assert otel.span("embeddings m").status.status_code is StatusCode.ERROR


# -- patching ----------------------------------------------------------------------------
def _patched_methods() -> list[tuple[type, str]]:
    chat = importlib.import_module("openai.resources.chat.completions.completions")
    embeddings = importlib.import_module("openai.resources.embeddings")
    found = [
        (chat.Completions, "create"),
        (chat.AsyncCompletions, "create"),
        (embeddings.Embeddings, "create"),
        (embeddings.AsyncEmbeddings, "create"),
    ]
    found += [
        (cls, "stream")
        for cls in (chat.Completions, chat.AsyncCompletions)
        if "stream" in cls.__dict__
    ]
    return found


def test_uninstrument_restores_the_originals() -> None:
    otel_rerank.uninstrument()
    methods = _patched_methods()
    originals = [owner.__dict__[name] for owner, name in methods]
    sdk = make_otel()
    assert "openai" in sdk.instrument(libraries=["openai"])
    sdk.instrument(libraries=["openai"])  # twice: still one layer
    for owner, name in methods:
        patched = owner.__dict__[name]
        assert is_replacement(patched)
        assert not is_replacement(patched.__wrapped__)  # one layer
    otel_rerank.uninstrument()
    otel_rerank.uninstrument()
    for (owner, name), original in zip(methods, originals, strict=True):
        assert owner.__dict__[name] is original
        assert not is_replacement(owner.__dict__[name])
        # No layer of ours is left: a ``__wrapped__`` remains only where the SDK's own
        # decorator (``required_args``, via functools.wraps) put one on the original.
        restored = owner.__dict__[name]
        assert getattr(restored, "__wrapped__", None) is getattr(original, "__wrapped__", None)
        assert not isinstance(getattr(restored, "__wrapped__", None), wrapt.ObjectProxy)


def test_supported_range_is_declared() -> None:
    assert OpenAIInstrumentor.supported.startswith("openai")
    assert OpenAIInstrumentor().instrumentation_dependencies() == (OpenAIInstrumentor.supported,)


def test_httpx_instrumentation_does_not_duplicate_the_chat_span(
    otel: Otel, server: _MockOpenAI
) -> None:
    httpx_instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = httpx_instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        http_client = http.Client(transport=http.MockTransport(server.handler))
        if http.__name__ == "httpx":  # openai 2.x: the HTTP library the instrumentor knows
            instrumentor.instrument_client(http_client, tracer_provider=otel.tracer_provider)
        client = openai.OpenAI(api_key=API_KEY, max_retries=0, http_client=http_client)
        _chat(client)
        list(_chat(client, stream=True))
    finally:
        instrumentor.uninstrument()

    chat_spans = _chat_spans(otel)
    assert len(chat_spans) == 2
    chat_ids = {s.context.span_id for s in chat_spans}
    http_spans = [s for s in otel.spans() if s not in chat_spans]
    if http.__name__ == "httpx":
        assert len(http_spans) == 2  # one HTTP client span per call...
    for span in http_spans:  # ...each a child of its chat span
        assert span.parent is not None and span.parent.span_id in chat_ids


def test_not_installed_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otel_rerank.uninstrument()
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "openai" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    sdk = make_otel()
    with caplog.at_level(logging.DEBUG):
        assert sdk.instrument(libraries=["openai"]) == []
    otel_rerank.uninstrument()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_instrumentor_module_does_not_import_openai() -> None:
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import otel_rerank\n"
        "from otel_rerank.instrumentation.openai import OpenAIInstrumentor\n"
        "assert not OpenAIInstrumentor.is_installed()\n"
        "assert otel_rerank.instrument(libraries=['openai']) == []\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_our_failure_never_reaches_the_call(
    otel: Otel, server: _MockOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)

    def broken(*args: Any, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        raise RuntimeError("bug in extraction")
        yield  # pragma: no cover

    def broken_request(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in request extraction")

    monkeypatch.setattr(_ChatCompletions, "response", staticmethod(broken))
    monkeypatch.setattr(attrs.ChatStreamState, "add", broken)
    monkeypatch.setattr(_ChatCompletions, "request", staticmethod(broken_request))
    monkeypatch.setattr(attrs, "embeddings_request", broken_request)
    client = server.client()
    assert _chat(client, temperature=0.2).choices[0].message.content == ANSWER
    assert len(list(_chat(client, stream=True))) == len(STREAM_PIECES)
    assert len(client.embeddings.create(model="text-embedding-3-small", input=["a"]).data) == 1
    spans = _chat_spans(otel)
    assert len(spans) == 2
    # The span starts without the request's attributes and records the rest.
    assert semconv.GEN_AI_REQUEST_TEMPERATURE not in spans[0].attributes
    assert spans[0].attributes[semconv.SERVER_ADDRESS] == "llm.example.test"
    assert semconv.GEN_AI_RESPONSE_ID not in spans[0].attributes  # the broken reader's
    (embeddings,) = [s for s in otel.spans() if s.name.startswith("embeddings")]
    assert embeddings.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0


# -- pure extraction (table style) -------------------------------------------------------
class _Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"max_tokens": 10}, {semconv.GEN_AI_REQUEST_MAX_TOKENS: 10}),
        ({"max_completion_tokens": 5, "max_tokens": 10}, {semconv.GEN_AI_REQUEST_MAX_TOKENS: 5}),
        ({"temperature": True}, {}),
        (
            {"temperature": 0, "stream": True},
            {semconv.GEN_AI_REQUEST_TEMPERATURE: 0, semconv.GEN_AI_REQUEST_STREAM: True},
        ),
        ({"top_p": object()}, {}),
    ],
)
def test_chat_request_extraction(arguments: dict[str, Any], expected: dict[str, Any]) -> None:
    got = {k: v for k, v in attrs.chat_request(arguments) if v is not None}
    assert got == expected


@pytest.mark.parametrize(
    ("inputs", "count"),
    [("one", 1), (["a", "b"], 2), ([1, 2, 3], 1), ([[1, 2], [3]], 2), (iter(["a"]), None)],
)
def test_embedding_input_count(inputs: Any, count: int | None) -> None:
    got = dict(attrs.embeddings_request({"input": inputs}))
    assert got.get(semconv.RAG_EMBEDDING_INPUT_COUNT) == count


def test_input_messages_never_consume_a_generator() -> None:
    messages = (m for m in MESSAGES)
    assert attrs.input_messages({"messages": messages}) == []
    assert next(messages) == MESSAGES[0]
    parts = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]
    assert attrs.input_messages({"messages": parts}) == [("user", "a")]


def test_server_attributes_default_port_and_cache() -> None:
    url = _Obj(host="api.openai.com", port=None, scheme="https")
    resource = _Obj(_client=_Obj(_base_url=url))
    expected = {semconv.SERVER_ADDRESS: "api.openai.com", semconv.SERVER_PORT: 443}
    assert _llm.server(resource) == expected
    assert _llm.server(resource) is _llm.server(resource)  # computed once per base URL
    other = _Obj(_client=_Obj(base_url=_Obj(host="localhost", port=8000, scheme="http")))
    assert _llm.server(other) == {semconv.SERVER_ADDRESS: "localhost", semconv.SERVER_PORT: 8000}
    assert _llm.server(_Obj(_client=None)) is None


def test_response_extraction_tolerates_other_shapes() -> None:
    assert {k: v for k, v in attrs.chat_response(object()) if v is not None} == {}
    assert _llm.response_model(object()) is None
    assert attrs.usage(object()) == (None, None)
    assert attrs.output_messages("raw") == []


def test_a_stream_s_points_point_at_its_chat_span(otel: Otel, server: _MockOpenAI) -> None:
    # A stream's points are recorded as the application reads it, after the call returned
    # and its span was left: each still points at the chat span (the SDK's exemplar).
    with otel.tracer_provider.get_tracer("app").start_as_current_span("request"):
        list(_chat(server.client(), stream=True, stream_options={"include_usage": True}))
    chat = _one_chat_span(otel)
    ids = (chat.context.trace_id, chat.context.span_id)
    exemplars = otel.exemplar_ids()
    for name in (
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_TOKEN_USAGE,
        semconv.METRIC_TIME_TO_FIRST_CHUNK,
    ):
        assert exemplars[name] and set(exemplars[name]) == {ids}, name
