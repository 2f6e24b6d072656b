"""The chat wrappers for the SDKs' ``with_raw_response`` path (openai, anthropic).

``client.chat.completions.with_raw_response.create(...)`` (how LangChain's ``ChatOpenAI``
calls the API) and anthropic's ``messages.with_raw_response.create(...)`` call the very
``create`` we wrap, with the header ``X-Stainless-Raw-Response`` set to ``true`` (openai) or
``raw`` (anthropic) in ``extra_headers``,
and get back an HTTP response object instead of the completion: the completion (or the
stream) comes from its ``parse()``. Read as is, that object carries no response model, id,
finish reasons or token usage, and a stream is never seen.

So on that path the wrapper parses the response itself — the SDKs cache what ``parse()``
returns, so the caller's own ``parse()`` returns the very same object, at no extra cost —
and records the completion exactly as the plain call does. For ``stream=True`` the parsed
stream is put in that cache inside the same stream proxy the plain call returns, so the
span ends when the caller's stream is exhausted, closed or dropped. The
``with_streaming_response`` variant (the body not read yet) is left to the plain path:
parsing there would read the body early.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from otel_rerank._safe import guard
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._llm import (
    AsyncStreamProxy,
    Chat,
    StreamProxy,
    SyncStreamProxy,
)

# The SDKs' (Stainless) marker for "return the raw response": "true" (openai) or "raw"
# (anthropic); "stream" is with_streaming_response, whose body is not read yet.
RAW_RESPONSE_HEADER = "x-stainless-raw-response"
_RAW_VALUES = frozenset({"true", "raw"})


def asks_raw_response(kwargs: Mapping[str, Any]) -> bool:
    """Whether the call came through ``with_raw_response`` (the body read eagerly)."""
    headers = kwargs.get("extra_headers")
    if headers is None:  # the usual call: the ABC check below costs more than this one
        return False
    if not isinstance(headers, Mapping):
        return False
    return any(
        isinstance(key, str) and key.lower() == RAW_RESPONSE_HEADER and value in _RAW_VALUES
        for key, value in headers.items()
    )


def _cache_parsed(raw: Any, value: Any) -> bool:
    """Make ``raw.parse()`` return ``value`` (the SDKs' parse cache); False if not possible."""
    cache = getattr(raw, "_parsed_by_type", None)
    key = getattr(raw, "_cast_to", None)
    if not isinstance(cache, dict) or key is None:
        return False
    cache[key] = value
    return True


class RawResponseChat(Chat):
    """:class:`Chat` whose wrappers also record calls made through ``with_raw_response``."""

    __slots__ = ()

    def received(
        self, call: StageSpan, result: Any, stream: bool, started: float, kwargs: dict[str, Any]
    ) -> Any:
        """The plain call's handling, unless the call asked for the raw response."""
        if not asks_raw_response(kwargs):
            return super().received(call, result, stream, started, kwargs)
        self._record_parsed(call, result, _parse(result), stream, started)
        return result

    async def areceived(
        self, call: StageSpan, result: Any, stream: bool, started: float, kwargs: dict[str, Any]
    ) -> Any:
        """The async twin of :meth:`received`."""
        if not asks_raw_response(kwargs):
            return await super().areceived(call, result, stream, started, kwargs)
        parsed = _parse(result)
        if inspect.isawaitable(parsed):  # anthropic's async response parses in a coroutine
            try:
                parsed = await parsed
            except Exception:  # the caller's own parse() raises it again
                parsed = None
        self._record_parsed(call, result, parsed, stream, started)
        return result

    def _record_parsed(
        self, call: StageSpan, raw: Any, parsed: Any, stream: bool, started: float
    ) -> None:
        if parsed is None:
            call.end()
            return
        if not stream:
            self.finish(call, parsed)
            return
        proxy_type: type[StreamProxy] | None = None
        if isinstance(parsed, Iterator):
            proxy_type = SyncStreamProxy
        elif isinstance(parsed, AsyncIterator):
            proxy_type = AsyncStreamProxy
        with guard("raw response stream"):
            if proxy_type is not None and _cache_parsed(
                raw, self.follow(parsed, call, started, proxy_type)
            ):
                return
        call.end()  # a stream we cannot follow: the span covers the request alone


def _parse(raw: Any) -> Any:
    """``raw.parse()`` (cached by the SDK), or ``None`` when it is not a raw response."""
    parse = getattr(raw, "parse", None)
    if not callable(parse) or not hasattr(raw, "http_response"):
        return None
    try:
        return parse()
    except Exception:  # the caller's own parse() raises it again: not ours to report
        return None
