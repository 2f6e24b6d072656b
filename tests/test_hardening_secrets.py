"""No API key, bearer token or auth header ever reaches a span, an event, or a metric.

Each LLM / rerank client is built with secrets in every place an application puts them: the
``api_key`` argument, the library's environment variable, a gateway header in
``default_headers``, per-call ``extra_headers`` / ``extra_query``, and credentials in the
``base_url``. Every instrumented path is driven against an in-process mock transport —
plain, async, streaming, embeddings, and an authentication failure — with content capture
off and on. Then every string otel-rerank produced (span names, attribute keys and values,
event attributes including recorded exceptions, link attributes, status descriptions,
metric attributes) is searched for each secret, its base64 form, and auth header names.

Out of scope, and said so in ``docs/guarantees.md``: an error *message* the server sends
back is recorded as the library raises it; a server that echoed a full key in its error
text would put it in the exception event (real APIs mask keys in those messages, as the
401 responses here do).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Otel

KEY = "sk-hardening-KEY-0a1b2c3d4e5f"
ENV_KEY = "sk-hardening-ENVKEY-9z8y7x6w"
GATEWAY = "gw-hardening-GATEWAY-5566"
TOKEN = "tok-hardening-BEARER-7788"
QUERY_SECRET = "qs-hardening-QUERY-4455"
URL_PASSWORD = "pw-hardening-URL-3344"
SECRETS = (KEY, ENV_KEY, GATEWAY, TOKEN, QUERY_SECRET, URL_PASSWORD)
FORBIDDEN_KEYS = ("authorization", "api_key", "api-key", "apikey", "x-api-key", "cookie", "token")
MASKED = "sk-hard*****4e5f"  # how real APIs quote a rejected key


def _encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.b64encode(b"user:" + raw).decode()]


def _strings(otel: Otel) -> Iterator[tuple[str, str]]:
    """(where, text) for every string otel-rerank recorded."""

    def values(where: str, attributes: Any) -> Iterator[tuple[str, str]]:
        for key, value in (attributes or {}).items():
            yield f"{where} key", str(key)
            for item in value if isinstance(value, (list, tuple)) else [value]:
                yield f"{where} {key}", str(item)

    for span in otel.spans():
        yield "span name", span.name
        yield from values(f"span {span.name}", span.attributes)
        yield "status", span.status.description or ""
        for event in span.events:
            yield "event", event.name
            yield from values(f"event {event.name}", event.attributes)
        for link in span.links:
            yield from values("link", link.attributes)
    data = otel.reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    yield from values(f"metric {metric.name}", point.attributes)


def _assert_no_secrets(otel: Otel) -> None:
    found = list(_strings(otel))
    assert found, "nothing was recorded"
    for where, text in found:
        for secret in SECRETS:
            for form in _encodings(secret):
                assert form not in text, f"secret in {where}: {text[:200]}"
        if where.endswith(" key"):
            lowered = text.lower().rsplit(".", 1)[-1]
            assert lowered not in FORBIDDEN_KEYS, f"auth-like attribute key {text}"
        assert "Bearer " not in text, f"bearer token in {where}"


def _http_module(module_name: str) -> Any:
    base = importlib.import_module(module_name)
    return getattr(base, "httpx2", None) or base.httpx


def _unauthorized(http: Any, body: dict[str, Any]) -> Any:
    return http.Response(401, json=body)


# -- openai ----------------------------------------------------------------------------------


def _openai_handler(http: Any, requests: list[Any]) -> Any:
    def respond(request: Any) -> Any:
        requests.append(request)
        if ENV_KEY in request.headers.get("authorization", ""):  # the wrong key
            return _unauthorized(
                http,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {MASKED}.",
                        "code": "invalid_api_key",
                    }
                },
            )
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
            return http.Response(
                200,
                json={
                    "object": "list",
                    "model": "emb",
                    "data": data,
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                },
            )
        if body.get("stream"):
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
            }
            sse = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            return http.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return http.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            },
        )

    return respond


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
def test_openai_records_no_secret(
    capture: bool, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai = pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    otel.instrument(capture_content=capture)
    http = _http_module("openai._base_client")
    requests: list[Any] = []
    handler = _openai_handler(http, requests)

    async def async_handler(request: Any) -> Any:
        return handler(request)

    common = {
        "base_url": "https://llm.example.test/v1",
        "max_retries": 0,
        "default_headers": {"X-Gateway-Key": GATEWAY},
    }
    url_client = openai.OpenAI(
        api_key=KEY,
        base_url=f"https://user:{URL_PASSWORD}@llm.example.test/v1",  # credentials in the URL
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    url_client.embeddings.create(model="emb", input="q")
    client = openai.OpenAI(
        api_key=KEY, http_client=http.Client(transport=http.MockTransport(handler)), **common
    )
    per_call = {
        "extra_headers": {"Authorization": f"Bearer {KEY}", "X-Token": TOKEN},
        "extra_query": {"key": QUERY_SECRET},
    }
    messages = [{"role": "user", "content": "q"}]
    client.chat.completions.create(model="gpt", messages=messages, **per_call)
    for _ in client.chat.completions.create(
        model="gpt", messages=messages, stream=True, **per_call
    ):
        pass
    client.embeddings.create(model="emb", input="q", **per_call)
    env_client = openai.OpenAI(
        http_client=http.Client(transport=http.MockTransport(handler)), **common
    )
    with pytest.raises(openai.AuthenticationError):  # the key from the environment is wrong
        env_client.chat.completions.create(model="gpt", messages=messages)

    async def run_async() -> None:
        async_client = openai.AsyncOpenAI(
            api_key=KEY,
            http_client=http.AsyncClient(transport=http.MockTransport(async_handler)),
            **common,
        )
        await async_client.chat.completions.create(model="gpt", messages=messages, **per_call)

    asyncio.run(run_async())
    assert any(r.headers.get("x-gateway-key") == GATEWAY for r in requests)  # secrets were sent
    assert len(otel.spans()) == 6
    _assert_no_secrets(otel)


# -- anthropic -------------------------------------------------------------------------------


def _anthropic_handler(http: Any, requests: list[Any]) -> Any:
    message = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }

    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    def respond(request: Any) -> Any:
        requests.append(request)
        sent = request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
        if ENV_KEY in sent:  # the wrong key
            body = {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            }
            return _unauthorized(http, body)
        if json.loads(request.content).get("stream"):
            start = {**message, "content": [], "stop_reason": None}
            sse = "".join(
                [
                    event("message_start", {"message": start}),
                    event(
                        "content_block_start",
                        {"index": 0, "content_block": {"type": "text", "text": ""}},
                    ),
                    event(
                        "content_block_delta",
                        {"index": 0, "delta": {"type": "text_delta", "text": "hi"}},
                    ),
                    event("content_block_stop", {"index": 0}),
                    event(
                        "message_delta",
                        {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
                    ),
                    event("message_stop", {}),
                ]
            ).encode()
            return http.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return http.Response(200, json=message)

    return respond


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
def test_anthropic_records_no_secret(
    capture: bool, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    anthropic = pytest.importorskip("anthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    otel.instrument(capture_content=capture)
    http = _http_module("anthropic._base_client")
    requests: list[Any] = []
    handler = _anthropic_handler(http, requests)

    async def async_handler(request: Any) -> Any:
        return handler(request)

    common = {
        "base_url": "https://llm.example.test",
        "max_retries": 0,
        "default_headers": {"X-Gateway-Key": GATEWAY},
    }
    url_client = anthropic.Anthropic(
        api_key=KEY,
        base_url=f"https://user:{URL_PASSWORD}@llm.example.test",  # credentials in the URL
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    url_client.messages.create(
        model="claude", max_tokens=5, messages=[{"role": "user", "content": "q"}]
    )
    client = anthropic.Anthropic(
        api_key=KEY, http_client=http.Client(transport=http.MockTransport(handler)), **common
    )
    per_call = {
        "extra_headers": {"X-Token": TOKEN, "Proxy-Authorization": f"Bearer {TOKEN}"},
        "extra_query": {"key": QUERY_SECRET},
    }
    messages = [{"role": "user", "content": "q"}]
    client.messages.create(model="claude", max_tokens=5, messages=messages, system="s", **per_call)
    for _ in client.messages.create(
        model="claude", max_tokens=5, messages=messages, stream=True, **per_call
    ):
        pass
    with client.messages.stream(
        model="claude", max_tokens=5, messages=messages, **per_call
    ) as stream:
        for _ in stream.text_stream:
            pass
    env_client = anthropic.Anthropic(
        http_client=http.Client(transport=http.MockTransport(handler)), **common
    )
    with pytest.raises(anthropic.AuthenticationError):
        env_client.messages.create(model="claude", max_tokens=5, messages=messages)

    async def run_async() -> None:
        async_client = anthropic.AsyncAnthropic(
            api_key=KEY,
            http_client=http.AsyncClient(transport=http.MockTransport(async_handler)),
            **common,
        )
        await async_client.messages.create(
            model="claude", max_tokens=5, messages=messages, **per_call
        )

    asyncio.run(run_async())
    assert any(
        KEY in r.headers.get("x-api-key", r.headers.get("authorization", "")) for r in requests
    )
    assert len(otel.spans()) == 6
    _assert_no_secrets(otel)


# -- cohere ----------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
def test_cohere_records_no_secret(
    capture: bool, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohere = pytest.importorskip("cohere")
    import httpx

    monkeypatch.setenv("CO_API_KEY", ENV_KEY)
    otel.instrument(capture_content=capture)
    requests: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if ENV_KEY in request.headers.get("authorization", ""):  # the wrong key
            return httpx.Response(401, json={"message": f"invalid api token {MASKED}"})
        documents = json.loads(request.content)["documents"]
        results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(documents))]
        return httpx.Response(200, json={"id": "r1", "results": results, "meta": {}})

    async def async_handler(request: httpx.Request) -> httpx.Response:
        return handler(request)

    def http_client() -> httpx.Client:
        return httpx.Client(
            transport=httpx.MockTransport(handler), headers={"X-Gateway-Key": GATEWAY}
        )

    options = {
        "additional_headers": {"X-Token": TOKEN},
        "additional_query_parameters": {"key": QUERY_SECRET},
    }
    documents = ["a", "b", "c"]
    base_url = "https://rerank.example.test"
    url_with_credentials = f"https://user:{URL_PASSWORD}@rerank.example.test"
    cohere.ClientV2(api_key=KEY, base_url=url_with_credentials, httpx_client=http_client()).rerank(
        model="rerank-v3.5", query="q", documents=documents
    )
    cohere.ClientV2(api_key=KEY, base_url=base_url, httpx_client=http_client()).rerank(
        model="rerank-v3.5", query="q", documents=documents, request_options=options
    )
    cohere.Client(api_key=KEY, base_url=base_url, httpx_client=http_client()).rerank(
        model="rerank-v3.5", query="q", documents=documents, request_options=options
    )
    with pytest.raises(Exception) as raised:  # the key from the environment is wrong
        cohere.ClientV2(base_url=base_url, httpx_client=http_client()).rerank(
            model="rerank-v3.5", query="q", documents=documents
        )
    assert "401" in str(raised.value) or "status_code" in repr(raised.value)

    async def run_async() -> None:
        client = cohere.AsyncClientV2(
            api_key=KEY,
            base_url=base_url,
            httpx_client=httpx.AsyncClient(transport=httpx.MockTransport(async_handler)),
        )
        await client.rerank(
            model="rerank-v3.5", query="q", documents=documents, request_options=options
        )

    asyncio.run(run_async())
    assert any(r.headers.get("authorization") == f"Bearer {KEY}" for r in requests)
    assert len(otel.spans()) == 5
    _assert_no_secrets(otel)
