"""with_raw_response: the raw-response path records exactly what the plain call records.

LangChain's ``ChatOpenAI`` calls ``chat.completions.with_raw_response.create()``; before
issue 14 that span had no response model, id, finish reasons or token usage. Each case
runs the plain call and the raw one against the same mock transport and compares the
chat span's attributes and the token usage histogram.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from otel_rerank import semconv

from . import test_anthropic as anth
from . import test_openai as oai
from .conftest import Otel


def _recorded(otel: Otel) -> tuple[dict[str, Any], dict[str, float], int]:
    (span,) = [s for s in otel.spans() if s.name.startswith("chat ")]
    tokens = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum
        for p in otel.metric_points(semconv.METRIC_TOKEN_USAGE)
    }
    durations = sum(p.count for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION))
    otel.exporter.clear()
    return dict(span.attributes), tokens, durations


def _openai_plain(client: Any, **kw: Any) -> Any:
    return client.chat.completions.create(model=oai.MODEL, messages=oai.MESSAGES, **kw)


def _openai_raw(client: Any, **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=oai.MODEL, messages=oai.MESSAGES, **kw
    )


def _compare(plain: tuple[Any, ...], raw: tuple[Any, ...]) -> None:
    (plain_attrs, plain_tokens, _), (raw_attrs, raw_tokens, raw_durations) = plain, raw
    timing = "gen_ai.response.time_to_first_chunk"  # a measurement: on both, never equal
    assert (timing in raw_attrs) == (timing in plain_attrs)
    raw_attrs.pop(timing, None)
    plain_attrs.pop(timing, None)
    assert raw_attrs == plain_attrs
    assert semconv.GEN_AI_RESPONSE_MODEL in raw_attrs
    assert raw_durations == 2  # both calls timed
    # the histogram is cumulative: the raw call added as much as the plain one
    assert raw_tokens == {k: 2 * v for k, v in plain_tokens.items()}


def test_openai_raw_response_records_what_the_plain_call_records(otel: Otel) -> None:
    server = oai._MockOpenAI()
    client = server.client()
    completion = _openai_plain(client)
    plain = _recorded(otel)
    raw = _openai_raw(client)
    assert raw.parse() is raw.parse()  # the SDK's cached parse: we hand back the same object
    assert raw.parse().model_dump() == completion.model_dump()
    assert raw.headers is not None
    _compare(plain, _recorded(otel))
    assert plain[0][semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-123"


async def test_openai_async_raw_response(otel: Otel) -> None:
    server = oai._MockOpenAI()
    client = server.async_client()
    await client.chat.completions.create(model=oai.MODEL, messages=oai.MESSAGES)
    plain = _recorded(otel)
    raw = await client.chat.completions.with_raw_response.create(
        model=oai.MODEL, messages=oai.MESSAGES
    )
    assert raw.parse().choices[0].message.content == oai.ANSWER
    _compare(plain, _recorded(otel))


def test_openai_raw_response_stream(otel: Otel) -> None:
    server = oai._MockOpenAI()
    client = server.client()
    options = {"stream": True, "stream_options": {"include_usage": True}}
    text = "".join(
        c.choices[0].delta.content or "" for c in _openai_plain(client, **options) if c.choices
    )
    plain = _recorded(otel)
    raw = _openai_raw(client, **options)
    assert otel.spans() == []  # open until the stream is read
    raw_text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert raw_text == text == "".join(oai.STREAM_PIECES)
    _compare(plain, _recorded(otel))


async def test_openai_async_raw_response_stream(otel: Otel) -> None:
    server = oai._MockOpenAI()
    client = server.async_client()
    options = {"stream": True, "stream_options": {"include_usage": True}}
    stream = await client.chat.completions.create(model=oai.MODEL, messages=oai.MESSAGES, **options)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    plain = _recorded(otel)
    raw = await client.chat.completions.with_raw_response.create(
        model=oai.MODEL, messages=oai.MESSAGES, **options
    )
    raw_text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert raw_text == text
    _compare(plain, _recorded(otel))


def test_openai_raw_stream_dropped_unread_still_ends_its_span(otel: Otel) -> None:
    server = oai._MockOpenAI()
    raw = _openai_raw(server.client(), stream=True)
    del raw
    gc.collect()
    (span,) = otel.spans()
    assert span.name == f"chat {oai.MODEL}"


def test_openai_raw_response_error_is_recorded_once(otel: Otel) -> None:
    server = oai._MockOpenAI(status=500)
    with pytest.raises(oai.openai.InternalServerError):
        _openai_raw(server.client())
    (span,) = otel.spans()
    assert span.attributes[semconv.ERROR_TYPE].endswith("InternalServerError")


def _anthropic(client: Any, raw: bool, **kw: Any) -> Any:
    messages = client.messages.with_raw_response if raw else client.messages
    return messages.create(model=anth.MODEL, max_tokens=64, messages=anth.MESSAGES, **kw)


def test_anthropic_raw_response(otel: Otel) -> None:
    client = anth._MockAnthropic().client()
    message = _anthropic(client, raw=False)
    plain = _recorded(otel)
    raw = _anthropic(client, raw=True)
    assert raw.parse().model_dump() == message.model_dump()
    _compare(plain, _recorded(otel))


async def test_anthropic_async_raw_response(otel: Otel) -> None:
    client = anth._MockAnthropic().async_client()
    await _anthropic(client, raw=False)
    plain = _recorded(otel)
    raw = await _anthropic(client, raw=True)
    assert (await raw.parse()).content[0].text == anth.ANSWER
    _compare(plain, _recorded(otel))


def test_anthropic_raw_response_stream(otel: Otel) -> None:
    client = anth._MockAnthropic().client()
    list(_anthropic(client, raw=False, stream=True))
    plain = _recorded(otel)
    events = list(_anthropic(client, raw=True, stream=True).parse())
    assert events
    _compare(plain, _recorded(otel))
