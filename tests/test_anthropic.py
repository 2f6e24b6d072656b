"""anthropic: ``messages.create`` (sync, async, stream=True) and ``messages.stream`` (offline).

Every call goes to an in-process mock transport given to the client through
``http_client=``, built on the HTTP library the installed SDK uses (httpx2 for 2.x).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import logging
from typing import Any

import pytest
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

import otel_rerank
from otel_rerank import _safe, _telemetry, semconv
from otel_rerank._config import ContentPolicy
from otel_rerank.instrumentation._base import is_replacement
from otel_rerank.instrumentation.anthropic import AnthropicInstrumentor
from otel_rerank.instrumentation.anthropic import _attributes as attrs
from otel_rerank.instrumentation.anthropic._wrappers import _Messages

from ._mock_llm import MockLLMServer
from .conftest import Otel, make_otel

anthropic = pytest.importorskip("anthropic")
_base_client = importlib.import_module("anthropic._base_client")
#: The HTTP library this anthropic version is built on.
http: Any = getattr(_base_client, "httpx2", None) or _base_client.httpx

API_KEY = "sk-ant-test-SECRET-never-recorded-5678"
MODEL = "claude-rag-test"
RESPONSE_MODEL = "claude-rag-test-20260101"
SYSTEM = "You answer from the documents."
MESSAGES = [{"role": "user", "content": "What is the lift of a wing?"}]
ANSWER = "Lift holds the wing up."
PIECES = ["Lift ", "holds ", "the wing up."]


def _message() -> dict[str, Any]:
    return {
        "id": "msg_123",
        "type": "message",
        "role": "assistant",
        "model": RESPONSE_MODEL,
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 7,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 0,
        },
    }


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def _stream_body(error: bool = False) -> bytes:
    start = {**_message(), "id": "msg_456", "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 20, "output_tokens": 1}
    events = [
        _event("message_start", {"message": start}),
        _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for piece in PIECES:
        delta = {"type": "text_delta", "text": piece}
        events.append(_event("content_block_delta", {"index": 0, "delta": delta}))
        if error:
            body = {"error": {"type": "overloaded_error", "message": "Overloaded"}}
            events.append(_event("error", body))
    events += [
        _event("content_block_stop", {"index": 0}),
        _event(
            "message_delta",
            {
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": {"output_tokens": 12},
            },
        ),
        _event("message_stop", {}),
    ]
    return "".join(events).encode()


class _MockAnthropic(MockLLMServer):
    """A fake Messages API: plain JSON or SSE events, with an optional delay or error."""

    http = http
    client_class = anthropic.Anthropic
    async_client_class = anthropic.AsyncAnthropic
    base_url = "https://claude.example.test"
    api_key = API_KEY

    def _respond(self, request: Any) -> Any:
        if self.status != 200:
            body = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
            return http.Response(self.status, json=body)
        if json.loads(request.content).get("stream"):
            return http.Response(
                200,
                content=_stream_body(self.stream_error),
                headers={"content-type": "text/event-stream"},
            )
        return http.Response(200, json=_message())


@pytest.fixture
def server() -> _MockAnthropic:
    return _MockAnthropic()


KWARGS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 256,
    "messages": MESSAGES,
    "system": SYSTEM,
}


def _chat_spans(otel: Otel) -> list[Any]:
    return [s for s in otel.spans() if s.name == f"chat {MODEL}"]


def _one_chat_span(otel: Otel) -> Any:
    spans = _chat_spans(otel)
    assert len(spans) == 1, [s.name for s in otel.spans()]
    return spans[0]


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def test_create_success_attributes(otel: Otel, server: _MockAnthropic) -> None:
    message = server.client().messages.create(**KWARGS)

    assert _text(message) == ANSWER
    span = _one_chat_span(otel)
    a = span.attributes
    assert span.kind is SpanKind.CLIENT
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[semconv.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert a[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert a[semconv.GEN_AI_RESPONSE_ID] == "msg_123"
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120  # 20 uncached + 100 cache reads
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert a[semconv.SERVER_ADDRESS] == "claude.example.test"
    assert a[semconv.SERVER_PORT] == 443
    tokens = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum
        for p in otel.metric_points(semconv.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": 120, "output": 7}


@pytest.mark.parametrize(
    ("status", "error_name"), [(500, "InternalServerError"), (400, "BadRequestError")]
)
def test_create_http_error(otel: Otel, status: int, error_name: str) -> None:
    with pytest.raises(getattr(anthropic, error_name)) as caught:
        _MockAnthropic(status=status).client().messages.create(**KWARGS)
    assert caught.value.status_code == status
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE].endswith(error_name)


def test_suppressed(otel: Otel, server: _MockAnthropic) -> None:
    client = server.client()
    with suppress_instrumentation():
        client.messages.create(**KWARGS)
        list(client.messages.create(stream=True, **KWARGS))
        with client.messages.stream(**KWARGS) as stream:
            stream.until_done()
    assert _chat_spans(otel) == []
    assert len(server.requests) == 3


def test_content_off_by_default_and_on_when_enabled(otel: Otel, server: _MockAnthropic) -> None:
    client = server.client()
    client.messages.create(**KWARGS)
    quiet = _one_chat_span(otel).attributes
    assert not [k for k in quiet if k.startswith(("llm.input", "llm.output", "gen_ai.input"))]
    assert not [k for k in quiet if k in ("gen_ai.output.messages", "gen_ai.system_instructions")]

    otel.instrument(capture_content=True)
    client.messages.create(**KWARGS)
    with client.messages.stream(**KWARGS) as stream:
        stream.until_done()
    _, plain, streamed = _chat_spans(otel)
    for span in (plain, streamed):
        a = span.attributes
        assert a["llm.input_messages.0.message.role"] == "system"
        assert a["llm.input_messages.0.message.content"] == SYSTEM
        assert a["llm.input_messages.1.message.content"] == MESSAGES[0]["content"]
    assert plain.attributes["llm.output_messages.0.message.content"] == ANSWER
    assert streamed.attributes["llm.output_messages.0.message.content"] == "".join(PIECES)


def test_api_key_is_never_recorded(otel: Otel, server: _MockAnthropic) -> None:
    otel.instrument(capture_content=True)
    client = server.client()
    client.messages.create(**KWARGS)
    list(client.messages.create(stream=True, **KWARGS))
    with pytest.raises(anthropic.InternalServerError):
        _MockAnthropic(status=500).client().messages.create(**KWARGS)
    values = []
    for span in otel.spans():
        values += [str(v) for v in span.attributes.values()]
        for event in span.events:
            values += [str(v) for v in (event.attributes or {}).values()]
    assert len(_chat_spans(otel)) == 3
    assert not [v for v in values if "SECRET" in v or API_KEY in v]


async def test_async_create_covers_the_await(otel: Otel) -> None:
    server = _MockAnthropic(delay_s=0.05)
    message = await server.async_client().messages.create(**KWARGS)
    assert _text(message) == ANSWER
    span = _one_chat_span(otel)
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


async def test_async_create_error(otel: Otel) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await _MockAnthropic(status=400).async_client().messages.create(**KWARGS)
    assert _one_chat_span(otel).status.status_code is StatusCode.ERROR


# -- create(stream=True) ---------------------------------------------------------------
def test_stream_exhausted(otel: Otel, server: _MockAnthropic) -> None:
    stream = server.client().messages.create(stream=True, **KWARGS)
    assert stream.response.status_code == 200  # the SDK's stream, behind the proxy
    assert _chat_spans(otel) == []
    events = [event.type for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    span = _one_chat_span(otel)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert a[semconv.GEN_AI_RESPONSE_ID] == "msg_456"
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 20
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert 0 < a["gen_ai.response.time_to_first_chunk"] <= (span.end_time - span.start_time) / 1e9


@pytest.mark.parametrize("how", ["close", "break", "drop", "with"])
def test_stream_ended_early_makes_one_span(otel: Otel, server: _MockAnthropic, how: str) -> None:
    stream = server.client().messages.create(stream=True, **KWARGS)
    if how == "close":
        next(stream)
        stream.close()
    elif how == "break":
        for _event in stream:
            break
    elif how == "with":
        with stream as entered:
            assert entered is stream
            next(entered)
    if how != "drop":
        assert len(_chat_spans(otel)) == 1
    del stream
    gc.collect()
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.UNSET
    assert sum(p.count for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION)) == 1


def test_stream_error_event(otel: Otel) -> None:
    stream = _MockAnthropic(stream_error=True).client().messages.create(stream=True, **KWARGS)
    with pytest.raises(anthropic.APIStatusError):
        list(stream)
    assert _one_chat_span(otel).status.status_code is StatusCode.ERROR


async def test_async_stream(otel: Otel) -> None:
    server = _MockAnthropic(delay_s=0.05)
    stream = await server.async_client().messages.create(stream=True, **KWARGS)
    assert stream.response.status_code == 200
    events = [event.type async for event in stream]
    assert events[-1] == "message_stop"
    span = _one_chat_span(otel)
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


async def test_async_stream_closed_early_and_dropped(otel: Otel, server: _MockAnthropic) -> None:
    client = server.async_client()
    stream = await client.messages.create(stream=True, **KWARGS)
    await stream.__anext__()
    await stream.close()
    assert len(_chat_spans(otel)) == 1
    dropped = await client.messages.create(stream=True, **KWARGS)
    del stream, dropped
    gc.collect()
    assert len(_chat_spans(otel)) == 2


# -- messages.stream(...) helper ---------------------------------------------------------
def test_stream_helper_final_message(otel: Otel, server: _MockAnthropic) -> None:
    with server.client().messages.stream(**KWARGS) as stream:
        assert _chat_spans(otel) == []
        message = stream.get_final_message()
    assert _text(message) == "".join(PIECES)
    span = _one_chat_span(otel)
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert "gen_ai.response.time_to_first_chunk" in span.attributes


def test_stream_helper_text_stream_left_early(otel: Otel, server: _MockAnthropic) -> None:
    with server.client().messages.stream(**KWARGS) as stream:
        for _text_piece in stream.text_stream:
            break
        keep = stream
    assert len(_chat_spans(otel)) == 1
    del keep, stream
    gc.collect()
    assert len(_chat_spans(otel)) == 1


def test_stream_helper_request_error(otel: Otel) -> None:
    with (
        pytest.raises(anthropic.InternalServerError),
        _MockAnthropic(status=500).client().messages.stream(**KWARGS),
    ):
        pass  # pragma: no cover - entering fails
    span = _one_chat_span(otel)
    assert span.status.status_code is StatusCode.ERROR


async def test_async_stream_helper(otel: Otel) -> None:
    server = _MockAnthropic(delay_s=0.05)
    async with server.async_client().messages.stream(**KWARGS) as stream:
        texts = [t async for t in stream.text_stream]
    assert "".join(texts) == "".join(PIECES)
    span = _one_chat_span(otel)
    assert span.end_time - span.start_time >= 50_000_000
    async with server.async_client().messages.stream(**KWARGS) as stream:
        async for _event in stream:
            break
    assert len(_chat_spans(otel)) == 2


# -- patching ----------------------------------------------------------------------------
def test_uninstrument_restores_the_originals() -> None:
    otel_rerank.uninstrument()
    module = importlib.import_module("anthropic.resources.messages")
    methods = [
        (cls, name)
        for cls in (module.Messages, module.AsyncMessages)
        for name in ("create", "stream")
    ]
    originals = [owner.__dict__[name] for owner, name in methods]
    sdk = make_otel()
    assert sdk.instrument(libraries=["anthropic"]) == ["anthropic"]
    for owner, name in methods:
        assert is_replacement(owner.__dict__[name])
    otel_rerank.uninstrument()
    for (owner, name), original in zip(methods, originals, strict=True):
        assert owner.__dict__[name] is original
        assert not is_replacement(original)
        # No layer of ours is left: a ``__wrapped__`` remains only where the SDK's own
        # decorator (``required_args``, via functools.wraps) put one on the original.
        restored = owner.__dict__[name]
        assert getattr(restored, "__wrapped__", None) is getattr(original, "__wrapped__", None)
        assert not isinstance(getattr(restored, "__wrapped__", None), wrapt.ObjectProxy)


def test_supported_range_is_declared() -> None:
    assert AnthropicInstrumentor.supported.startswith("anthropic")


def test_not_installed_is_skipped_silently(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otel_rerank.uninstrument()
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "anthropic" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with caplog.at_level(logging.DEBUG):
        assert make_otel().instrument(libraries=["anthropic", "openai"]) == ["openai"]
    otel_rerank.uninstrument()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_httpx_instrumentation_does_not_duplicate(otel: Otel, server: _MockAnthropic) -> None:
    httpx_instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = httpx_instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        server.client().messages.create(**KWARGS)
    finally:
        instrumentor.uninstrument()
    chat = _one_chat_span(otel)
    for span in otel.spans():
        if span is not chat:
            assert span.parent is not None and span.parent.span_id == chat.context.span_id


# -- pure extraction ---------------------------------------------------------------------
class _Obj:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (_Obj(input_tokens=5, output_tokens=2), (5, 2)),
        (_Obj(input_tokens=5, output_tokens=2, cache_read_input_tokens=10), (15, 2)),
        (
            _Obj(
                input_tokens=5,
                output_tokens=1,
                cache_creation_input_tokens=3,
                cache_read_input_tokens=None,
            ),
            (8, 1),
        ),
        (_Obj(), (None, None)),
    ],
)
def test_usage_extraction(usage: Any, expected: tuple[int | None, int | None]) -> None:
    assert attrs.usage(_Obj(usage=usage)) == expected


def test_request_extraction_sampling_parameters() -> None:
    # anthropic 2.x dropped temperature/top_p/top_k from create(); older clients send them.
    arguments = {"max_tokens": 9, "temperature": 0.3, "top_p": True, "top_k": 5}
    got = {k: v for k, v in attrs.request(arguments, stream=False) if v is not None}
    assert got == {
        semconv.GEN_AI_REQUEST_MAX_TOKENS: 9,
        semconv.GEN_AI_REQUEST_TEMPERATURE: 0.3,
        semconv.GEN_AI_REQUEST_TOP_K: 5,
    }


def test_input_messages_with_system_blocks() -> None:
    arguments = {
        "system": [{"type": "text", "text": "rules"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
    }
    assert attrs.input_messages(arguments) == [("user", "q")]  # the system prompt is apart
    assert attrs.system_instructions(arguments) == "rules"
    assert attrs.input_messages({"messages": iter(MESSAGES)}) == []


def test_stream_state_ignores_unknown_events() -> None:
    state = attrs.MessageStreamState(limit=1000)
    state.add(_Obj(type="ping"))
    assert state.output() is None  # no text: no output message to write
    assert state.usage() == (None, None)
    state.add(_Obj(type="content_block_delta", delta=_Obj(type="text_delta", text="x")))
    assert state.output() == ([("assistant", "x")], [""])
    assert {k: v for k, v in state.attributes() if v is not None} == {}


def test_stream_state_keeps_text_only_as_far_as_the_policy_writes() -> None:
    state = attrs.MessageStreamState(limit=10)
    for _ in range(10_000):
        state.add(_Obj(type="content_block_delta", delta=_Obj(type="text_delta", text="abcd")))
    assert len(state.text.pieces) == 3  # 12 characters: past the limit, the cut is known
    output = state.output()
    assert output is not None
    assert ContentPolicy(max_length=10).truncate(output[0][0][1]) == "abcdabcda…"


@pytest.mark.parametrize("nothing", ["suppressed", "no SDK"])
@pytest.mark.usefixtures("otel")
def test_nothing_of_the_call_is_read_when_nothing_records(
    server: _MockAnthropic, monkeypatch: pytest.MonkeyPatch, nothing: str
) -> None:
    read: list[str] = []
    for name in ("request", "input_messages"):  # read from the operation, where its wrapper does
        original = getattr(_Messages, name)
        spy = staticmethod(lambda *a, _n=name, _o=original: read.append(_n) or _o(*a))
        monkeypatch.setattr(_Messages, name, spy)
    current = _telemetry.current
    if nothing == "no SDK":
        monkeypatch.setattr(_telemetry, "current", lambda: None)
    client = server.client()
    with suppress_instrumentation() if nothing == "suppressed" else contextlib.nullcontext():
        assert _text(client.messages.create(**KWARGS)) == ANSWER
        assert list(client.messages.create(stream=True, **KWARGS))[-1].type == "message_stop"
        with client.messages.stream(**KWARGS) as stream:
            assert _text(stream.get_final_message()) == "".join(PIECES)
    assert read == []
    monkeypatch.setattr(_telemetry, "current", current)
    client.messages.create(**KWARGS)
    assert read == ["request"]  # the counting sees a recorded call's reads (content is off)


def test_sampled_out_calls_still_work_and_are_timed(server: _MockAnthropic) -> None:
    sdk = make_otel(sampler=ALWAYS_OFF)
    sdk.instrument()
    try:
        client = server.client()
        assert _text(client.messages.create(**KWARGS)) == ANSWER
        assert list(client.messages.create(stream=True, **KWARGS))[-1].type == "message_stop"
        with client.messages.stream(**KWARGS) as stream:
            assert _text(stream.get_final_message()) == "".join(PIECES)
    finally:
        otel_rerank.uninstrument()
    assert sdk.spans() == []
    assert sum(p.count for p in sdk.metric_points(semconv.METRIC_OPERATION_DURATION)) == 3
    tokens = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum
        for p in sdk.metric_points(semconv.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": 120 + 20 + 20, "output": 7 + 12 + 12}


def test_our_failure_never_reaches_the_call(
    otel: Otel, server: _MockAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug in extraction")

    monkeypatch.setattr(_Messages, "response", staticmethod(broken))
    monkeypatch.setattr(attrs.MessageStreamState, "add", broken)
    monkeypatch.setattr(attrs.MessageStreamState, "usage", broken)
    client = server.client()
    assert _text(client.messages.create(**KWARGS)) == ANSWER
    with client.messages.stream(**KWARGS) as stream:
        assert _text(stream.get_final_message()) == "".join(PIECES)
    spans = _chat_spans(otel)
    assert len(spans) == 2
    assert semconv.GEN_AI_RESPONSE_ID not in spans[0].attributes  # the broken reader's
    assert spans[0].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0  # the rest is recorded
