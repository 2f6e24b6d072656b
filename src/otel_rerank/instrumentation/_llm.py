"""What the LLM client instrumentations (openai, anthropic) share: stream proxies, server address.

A streamed chat call outlives the wrapper that started its span: the span must end when the
consumer exhausts the stream, closes it, breaks out of it, or drops it, and exactly once.
:class:`SyncStreamProxy` and :class:`AsyncStreamProxy` are ``wrapt.ObjectProxy`` s, so the
user's object keeps working as before (iteration, context manager, ``close()``, every
attribute such as ``.response``); they hand each chunk to a provider-specific
:class:`ChunkAccumulator` and end the span through it. Time to first chunk is measured
from the moment the request was sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import wrapt
from opentelemetry.util.types import AttributeValue

from otel_rerank import semconv
from otel_rerank._safe import report_internal_error
from otel_rerank._span import StageSpan

Pairs = Iterator[tuple[str, Any]]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_attributes(client: Any) -> Mapping[str, AttributeValue] | None:
    """``server.address`` and ``server.port`` of an SDK client, read from its base URL.

    Given to the span at its start: the GenAI conventions name them (with the operation,
    provider and model) as the attributes a sampler may decide on. Computed once per base
    URL, so a call pays a dictionary lookup.
    """
    # Both SDKs keep the URL in ``_base_url``; their ``base_url`` property may do more work.
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    if url is None:
        return None
    cached = _servers.get(id(url))
    if cached is None or cached[0] is not url:
        cached = (url, _server_map(url))
        if len(_servers) >= 256:  # bounded: one entry per client base URL
            _servers.clear()
        _servers[id(url)] = cached
    return cached[1]


#: id(base URL object) -> (that object, its attributes); the object is kept so the id
#: stays valid.
_servers: dict[int, tuple[Any, Mapping[str, AttributeValue] | None]] = {}


def _server_map(url: Any) -> Mapping[str, AttributeValue] | None:
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return None
    port = getattr(url, "port", None)
    if not isinstance(port, int):
        port = _DEFAULT_PORTS.get(str(getattr(url, "scheme", "")))
    if port is None:
        return MappingProxyType({semconv.SERVER_ADDRESS: host})
    return MappingProxyType({semconv.SERVER_ADDRESS: host, semconv.SERVER_PORT: port})


def number(value: Any) -> int | float | None:
    """``value`` if it is a real number (not a bool, not an SDK ``omit``/``NOT_GIVEN``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def text_of(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
            if isinstance(text, str):
                texts.append(text)
        return "\n".join(texts) if texts else None
    return None


class ChunkAccumulator(Protocol):
    """Collects what a provider's stream chunks say, and writes it to the span at the end."""

    def add(self, chunk: Any) -> None:
        """Look at one chunk (cheaply: this runs on every chunk)."""

    def finish(self, call: StageSpan) -> None:
        """Write the collected attributes, token usage and content to ``call``."""


class _StreamEnd:
    """The shared ending logic of both proxies (ending once, first-chunk timing)."""

    __slots__ = ("accumulator", "call", "first_pending", "started")

    def __init__(self, call: StageSpan, accumulator: ChunkAccumulator, started: float) -> None:
        self.call: StageSpan | None = call
        self.accumulator = accumulator
        self.started = started
        self.first_pending = True

    def observe(self, chunk: Any) -> None:
        call = self.call
        if call is None:
            return
        if self.first_pending:
            self.first_pending = False
            call.set(semconv.RAG_LLM_TIME_TO_FIRST_CHUNK, time.perf_counter() - self.started)
        try:
            self.accumulator.add(chunk)
        except Exception:
            report_internal_error("stream chunk")

    def finish(self, error: BaseException | None = None) -> None:
        call = self.call
        if call is None:
            return
        self.call = None
        try:  # even when sampled out: token usage goes to the histogram
            self.accumulator.finish(call)
        except Exception:
            report_internal_error("stream finish")
        call.end(error)


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """The user's sync stream, ending its span when exhausted, closed, broken out of or dropped."""

    def __init__(
        self, stream: Any, call: StageSpan, accumulator: ChunkAccumulator, started: float
    ) -> None:
        super().__init__(stream)
        self._self_end = _StreamEnd(call, accumulator, started)

    def __iter__(self) -> Iterator[Any]:
        # A generator, so that breaking out of a ``for`` loop closes it and ends the span
        # at once (CPython drops the loop's iterator right after the loop).
        end = self._self_end
        try:
            for chunk in self.__wrapped__:
                end.observe(chunk)
                yield chunk
        except BaseException as error:  # GeneratorExit (closed early) is not an error
            end.finish(error)
            raise
        end.finish()

    def __next__(self) -> Any:
        end = self._self_end
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            end.finish()
            raise
        except BaseException as error:
            end.finish(error)
            raise
        end.observe(chunk)
        return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self  # not the bare stream: iteration must go through the proxy

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_end.finish()

    def close(self) -> Any:
        """Close the stream (the SDK's ``close``) and end the span."""
        try:
            return self.__wrapped__.close()
        finally:
            self._self_end.finish()

    def _self_finish(self) -> None:
        """End the span now (a stream helper's context manager was left)."""
        self._self_end.finish()

    def __del__(self) -> None:  # dropped before it was exhausted or closed
        end = getattr(self, "_self_end", None)
        if end is not None:
            end.finish()


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """The async twin of :class:`SyncStreamProxy`."""

    def __init__(
        self, stream: Any, call: StageSpan, accumulator: ChunkAccumulator, started: float
    ) -> None:
        super().__init__(stream)
        self._self_end = _StreamEnd(call, accumulator, started)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_iterate()

    async def _self_iterate(self) -> AsyncIterator[Any]:
        end = self._self_end
        try:
            async for chunk in self.__wrapped__:
                end.observe(chunk)
                yield chunk
        except BaseException as error:  # GeneratorExit (closed early) is not an error
            end.finish(error)
            raise
        end.finish()

    async def __anext__(self) -> Any:
        end = self._self_end
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            end.finish()
            raise
        except BaseException as error:
            end.finish(error)
            raise
        end.observe(chunk)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_end.finish()

    async def close(self) -> Any:
        """Close the stream (the SDK's ``close``) and end the span."""
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_end.finish()

    def _self_finish(self) -> None:
        """End the span now (a stream helper's context manager was left)."""
        self._self_end.finish()

    def __del__(self) -> None:
        end = getattr(self, "_self_end", None)
        if end is not None:
            end.finish()
