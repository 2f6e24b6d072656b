"""What the LLM client instrumentations (openai, anthropic) share: wrappers, stream proxies.

Both SDKs take keyword arguments, answer with a result or a stream, and keep their base URL
on the client, so one piece of code serves both: :class:`Operation` starts the span (model
from the arguments, server from the client), :class:`Sending` keeps it current while the
request is sent (sync or awaited) and ends it if sending fails, and :class:`Chat` is a chat
API's sync and async wrappers, told what differs by the library's pure extraction
functions. A streamed chat call outlives the wrapper that started its span:
the span must end when the consumer exhausts the stream, closes it, breaks out of it, or
drops it, and exactly once. :class:`SyncStreamProxy` and :class:`AsyncStreamProxy` are
``wrapt.ObjectProxy`` s, so the user's object keeps working as before (iteration, context
manager, ``close()``, every attribute such as ``.response``); they hand each chunk to a
provider-specific :class:`ChunkAccumulator` and end the span through it. Time to first
chunk (``gen_ai.response.time_to_first_chunk`` and the
``gen_ai.client.operation.time_to_first_chunk`` histogram) is measured from the moment the
request was sent.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import wrapt
from opentelemetry import context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded, report_internal_error
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._common import bind_arguments

Pairs = Iterator[tuple[str, Any]]
Messages = list[tuple[str, object]]
_Wrapped = Callable[..., Any]

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


def model(arguments: Mapping[str, Any]) -> str | None:
    """``gen_ai.request.model``: the ``model`` argument, if it is a string."""
    value = arguments.get("model")
    return value if isinstance(value, str) else None


def streaming(arguments: Mapping[str, Any]) -> bool:
    """Whether the call asks for a stream (``stream=True``)."""
    return arguments.get("stream") is True


def server(instance: Any) -> Mapping[str, AttributeValue] | None:
    """``server.address`` / ``server.port`` of the resource's client (given at span start)."""
    return server_attributes(getattr(instance, "_client", None))


def string(value: Any) -> str | None:
    """``value`` if it is a non-empty string."""
    return value if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    """``value`` if it is an int (not a bool)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ChunkAccumulator(Protocol):
    """Collects what a provider's stream chunks say, and writes it to the span at the end."""

    def add(self, chunk: Any) -> None:
        """Look at one chunk (cheaply: this runs on every chunk)."""

    def finish(self, call: StageSpan) -> None:
        """Write the collected attributes, token usage and content to ``call``."""


class _StreamEnd:
    """The shared ending logic of both proxies (ending once, first-chunk timing).

    Used as a context manager around reading the stream, it ends the span when reading
    raises: at the stream's end (``StopIteration`` / ``StopAsyncIteration``) without an
    error, on anything else (``GeneratorExit``: closed early) with it, and re-raises.
    """

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
            call.record_time_to_first_chunk(time.perf_counter() - self.started)
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

    def __enter__(self) -> _StreamEnd:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        if exc_type is None:
            return
        if issubclass(exc_type, (StopIteration, StopAsyncIteration)):
            self.finish()
        else:
            self.finish(error)


class StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """What both stream proxies share: ending the span on demand, and when dropped."""

    def __init__(
        self, stream: Any, call: StageSpan, accumulator: ChunkAccumulator, started: float
    ) -> None:
        super().__init__(stream)
        self._self_end = _StreamEnd(call, accumulator, started)

    def _self_finish(self) -> None:
        """End the span now (a stream helper's context manager was left)."""
        self._self_end.finish()

    def __del__(self) -> None:  # dropped before it was exhausted or closed
        end = getattr(self, "_self_end", None)
        if end is not None:
            end.finish()


class SyncStreamProxy(StreamProxy):
    """The user's sync stream, ending its span when exhausted, closed, broken out of or dropped."""

    def __iter__(self) -> Iterator[Any]:
        # A generator, so that breaking out of a ``for`` loop closes it and ends the span
        # at once (CPython drops the loop's iterator right after the loop).
        end = self._self_end
        with end:
            for chunk in self.__wrapped__:
                end.observe(chunk)
                yield chunk
        end.finish()

    def __next__(self) -> Any:
        end = self._self_end
        with end:
            chunk = next(self.__wrapped__)
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


class AsyncStreamProxy(StreamProxy):
    """The async twin of :class:`SyncStreamProxy`."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_iterate()

    async def _self_iterate(self) -> AsyncIterator[Any]:
        end = self._self_end
        with end:
            async for chunk in self.__wrapped__:
                end.observe(chunk)
                yield chunk
        end.finish()

    async def __anext__(self) -> Any:
        end = self._self_end
        with end:
            chunk = await self.__wrapped__.__anext__()
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


class ManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """An SDK stream helper's context manager (``with client.<api>.stream(...)``).

    Leaving the ``with`` block early ends the span: the SDK closes the HTTP response there,
    which the stream proxy cannot see. Subclasses say how in ``_self_finish``.
    """

    def _self_finish(self) -> None:
        raise NotImplementedError

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_finish()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_finish()


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One SDK operation: what its span starts with, and its arguments by name."""

    stage: _span.Stage
    provider: str
    kind: SpanKind | None = None

    def start(
        self, instance: Any, arguments: Mapping[str, Any], request: Pairs | None = None
    ) -> StageSpan | None:
        """The span (or ``None``: call straight through), with what a sampler may decide on.

        ``request``: the request's attributes, known before the call, so given to the span
        at its start (one write instead of one more after it, and the sampler sees them).
        """
        return _span.begin(
            self.stage,
            provider=self.provider,
            model=model(arguments),
            kind=self.kind,
            attributes=_start_attributes(server(instance), request),
        )

    @staticmethod
    def bind(wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call's arguments by name."""
        # The SDKs' methods are keyword-only, so kwargs *are* the bound arguments; binding
        # through the signature (40-odd parameters) is kept for a positional call.
        return bind_arguments(wrapped, args, kwargs) if args else kwargs


def _start_attributes(
    server_map: Mapping[str, AttributeValue] | None, request: Pairs | None
) -> Mapping[str, AttributeValue] | None:
    """The server attributes and the request's non-``None`` pairs, as one mapping."""
    if request is None:
        return server_map
    merged: dict[str, AttributeValue] = dict(server_map) if server_map else {}
    try:
        for key, value in request:
            if value is not None:
                merged[key] = value
    except Exception:  # ours: the call goes on with what was read so far
        report_internal_error("request attributes")
    return merged


class Sending:
    """``with Sending(call):`` around sending the request: the span is current meanwhile.

    HTTP client spans nest under it, and it ends if sending raises (the user's exception
    goes on unchanged). On success it is left open: a stream outlives the call, and metrics
    recorded after it are not tied to the span as exemplars of every histogram point. The
    same block serves a sync call and an awaited one, so the span covers the await.
    """

    __slots__ = ("call", "token")

    def __init__(self, call: StageSpan) -> None:
        self.call = call

    def __enter__(self) -> None:
        self.token = context.attach(self.call.context)

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        try:
            if error is not None:
                self.call.end(error)
        finally:
            context.detach(self.token)


@dataclass(frozen=True, kw_only=True)
class Chat(Operation):
    """A library's chat API, told by its pure extraction functions; its wrappers are shared.

    ``create`` and ``acreate`` are the sync and async wrapt wrappers of a ``create``-style
    method: one span per call; with ``stream=True`` the SDK's stream comes back inside a
    stream proxy fed to ``stream_state``, which ends the span.
    """

    stage: _span.Stage = _span.CHAT
    request: Callable[[Mapping[str, Any], bool], Pairs]
    response: Callable[[Any], Pairs]
    response_model: Callable[[Any], str | None]
    usage: Callable[[Any], tuple[int | None, int | None]]
    input_messages: Callable[[Mapping[str, Any]], Messages]
    output_messages: Callable[[Any], Messages]
    finish_reasons: Callable[[Any], Sequence[str]]
    stream_state: Callable[[bool], ChunkAccumulator]
    #: instructions given apart from the messages (``gen_ai.system_instructions``)
    system_instructions: Callable[[Mapping[str, Any]], object] = lambda arguments: None

    def begin(self, instance: Any, arguments: Mapping[str, Any], stream: bool) -> StageSpan | None:
        """Start the span with the request's attributes (``stream``: the call streams)."""
        call = self.start(instance, arguments, self.request(arguments, stream))
        if call is not None and call.capturing:
            self._record_input(call, arguments)
        return call

    @guarded
    def _record_input(self, call: StageSpan, arguments: Mapping[str, Any]) -> None:
        call.record_input_messages(
            self.input_messages(arguments), self.system_instructions(arguments)
        )

    @guarded
    def _record_result(self, call: StageSpan, result: Any) -> None:
        call.record_response_model(self.response_model(result))  # before the token metric
        call.extract(self.response, result)
        call.record_tokens(*self.usage(result))
        if call.capturing:
            call.record_output_messages(self.output_messages(result), self.finish_reasons(result))

    def finish(self, call: StageSpan, result: Any) -> None:
        """Record a complete (not streamed) result and end the span."""
        self._record_result(call, result)  # token usage is a metric: recorded even if sampled out
        call.end()

    def create(
        self, wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The sync wrapper."""
        arguments = self.bind(wrapped, args, kwargs)
        stream = streaming(arguments)
        call = self.begin(instance, arguments, stream)
        if call is None:
            return wrapped(*args, **kwargs)
        started = time.perf_counter()
        with Sending(call):
            result = wrapped(*args, **kwargs)
        return self.received(call, result, stream, started, kwargs)

    def received(
        self, call: StageSpan, result: Any, stream: bool, started: float, kwargs: dict[str, Any]
    ) -> Any:
        """What the sync call returns, its span handed to a stream proxy or ended."""
        if stream and isinstance(result, Iterator):
            return SyncStreamProxy(result, call, self.stream_state(call.capturing), started)
        self.finish(call, result)
        return result

    async def acreate(
        self, wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The async wrapper (the span covers the await)."""
        arguments = self.bind(wrapped, args, kwargs)
        stream = streaming(arguments)
        call = self.begin(instance, arguments, stream)
        if call is None:
            return await wrapped(*args, **kwargs)
        started = time.perf_counter()
        with Sending(call):
            result = await wrapped(*args, **kwargs)
        return await self.areceived(call, result, stream, started, kwargs)

    async def areceived(
        self, call: StageSpan, result: Any, stream: bool, started: float, kwargs: dict[str, Any]
    ) -> Any:
        """The async twin of :meth:`received`."""
        if stream and isinstance(result, AsyncIterator):
            return AsyncStreamProxy(result, call, self.stream_state(call.capturing), started)
        self.finish(call, result)
        return result
