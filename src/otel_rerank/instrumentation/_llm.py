"""What the LLM client instrumentations (openai, anthropic) share: wrappers, stream proxies.

Both SDKs take keyword arguments, answer with a result or a stream, and keep their base URL
on the client, so one piece of code serves both: :class:`Operation` starts the span (model
from the arguments, server from the client, the request's parameters read by a table per API
from the arguments given; what the span starts with is worked out once per model, server and
parameters, as the generic wrapper does per identity), :class:`Sending` keeps it current
while the request is sent (sync or awaited) and ends it if sending fails, and :class:`Chat`
is a chat API's sync and async wrappers; each library subclasses it with the pure extraction
methods that say what its requests and responses hold. A streamed chat call outlives the
wrapper that started its span: the span must end when the consumer exhausts the stream,
closes it, breaks out of it, or drops it, and exactly once. :class:`SyncStreamProxy` and
:class:`AsyncStreamProxy` are ``wrapt.ObjectProxy`` s, so the user's object keeps working as
before (iteration, context manager, ``close()``, every attribute such as ``.response``);
they hand each chunk to a provider-specific :class:`StreamState` (pure state: it never
touches a span) and, when the stream ends, write what it collected through the span:
attributes through ``extract``, the completion's text through the privacy gate
(``record_content``). Time to first chunk (``gen_ai.response.time_to_first_chunk`` and the
``gen_ai.client.operation.time_to_first_chunk`` histogram) is measured from the moment the
request was sent.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

import wrapt
from opentelemetry import context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_rerank import _span, _telemetry, semconv
from otel_rerank._config import DEFAULT_MAX_LENGTH
from otel_rerank._safe import guard, report_internal_error
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number
from otel_rerank.instrumentation._common import bind_arguments

Messages = list[tuple[str, object]]
#: A request's attributes as known before the call: only present values, and hashable (the
#: key its span's opening is cached under, see ``Operation.opening``), which the extractors'
#: ``_span.Attributes`` (any iterable of pairs, ``None`` values skipped) is not.
RequestAttributes = tuple[tuple[str, AttributeValue], ...]
#: How one request parameter becomes an attribute: (attribute key, value -> attribute or
#: ``None`` to write nothing); see :func:`read_parameters`.
ParameterReader = tuple[str, Callable[[Any], AttributeValue | None]]
#: A completion's (role, text) messages and their finish reasons, in choice order.
Output = tuple[Messages, Sequence[str]]
_Wrapped = Callable[..., Any]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_attributes(client: Any) -> Mapping[str, AttributeValue] | None:
    """``server.address`` and ``server.port`` of an SDK client, read from its base URL
    (``None`` when it has none, or ours fails to read it: logged, the span starts without).

    Given to the span at its start: the GenAI conventions name them (with the operation,
    provider and model) as the attributes a sampler may decide on. Computed once per base
    URL, so a call pays a dictionary lookup.
    """
    try:  # inline, not ``@guard``: every call's own path
        # Both SDKs keep the URL in ``_base_url``; their ``base_url`` property may do more.
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
    except Exception:
        report_internal_error("server attributes")
        return None


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
    return value if is_number(value) else None


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
    return value if is_int(value) else None


def strings(value: Any) -> tuple[str, ...] | None:
    """``value`` as a tuple if it is a non-empty list or tuple of strings."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(s, str) for s in value):
        return tuple(value)
    return None


def response_model(result: Any) -> str | None:
    """``gen_ai.response.model``: the response's ``model`` (openai's completions, embedding
    responses and stream chunks, anthropic's messages), if it is a non-empty string."""
    return string(getattr(result, "model", None))


def text_limit() -> int:
    """The most characters of one text the content policy in force writes."""
    telemetry = _telemetry.current()
    return telemetry.content.max_length if telemetry is not None else DEFAULT_MAX_LENGTH


class BoundedText:
    """A streamed text's pieces, kept only as far as a policy cutting at ``limit`` reads.

    Pieces are kept until more than ``limit`` characters are: the policy then cuts the text
    at the same place as it would the whole, and the rest (never written) is not kept.
    Whether it is written at all is decided by the privacy gate when the stream ends.
    """

    __slots__ = ("pieces", "room")

    def __init__(self, limit: int) -> None:
        self.pieces: list[str] = []
        self.room = limit + 1  # one past the limit: the policy must still see the cut

    def add(self, text: str) -> None:
        if self.room > 0:
            self.pieces.append(text)
            self.room -= len(text)

    def text(self) -> str:
        return "".join(self.pieces)


class StreamState(Protocol):
    """What a provider's stream said so far: pure state, fed one chunk at a time.

    Nothing in it touches a span: when the stream ends, :class:`_StreamEnd` writes what it
    collected (``response_model`` first, for the token metric).
    """

    response_model: str | None

    def add(self, chunk: Any) -> None:
        """Look at one chunk (cheaply: this runs on every chunk)."""

    def attributes(self) -> Attributes:
        """The response's attributes (not content)."""

    def usage(self) -> tuple[int | None, int | None]:
        """(input, output) tokens, as far as the stream reported them."""

    def output(self) -> Output | None:
        """The completion (content: written only when captured); ``None``: none to write."""


@guard("stream end")
def _record_stream_end(call: StageSpan, state: StreamState) -> None:
    call.record_response_model(state.response_model)  # before the token metric
    call.extract(state.attributes)
    call.record_tokens(*state.usage())  # even when sampled out: the histogram
    call.record_content(_write_stream_output, state)


def _write_stream_output(call: StageSpan, state: StreamState) -> None:
    output = state.output()
    if output is not None:
        call.record_output_messages(*output)


class _StreamEnd:
    """The shared ending logic of both proxies (ending once, first-chunk timing).

    Used as a context manager around reading the stream, it ends the span when reading
    raises: at the stream's end (``StopIteration`` / ``StopAsyncIteration``) without an
    error, on anything else (``GeneratorExit``: closed early) with it, and re-raises.
    """

    __slots__ = ("call", "first_pending", "started", "state")

    def __init__(self, call: StageSpan, state: StreamState, started: float) -> None:
        self.call: StageSpan | None = call
        self.state = state
        self.started = started
        self.first_pending = True

    def observe(self, chunk: Any) -> None:
        call = self.call
        if call is None:
            return
        if self.first_pending:
            self.first_pending = False
            call.record_time_to_first_chunk(time.perf_counter() - self.started)
        with guard("stream chunk"):
            self.state.add(chunk)

    def finish(self, error: BaseException | None = None) -> None:
        call = self.call
        if call is None:
            return
        self.call = None
        _record_stream_end(call, self.state)
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

    def __init__(self, stream: Any, call: StageSpan, state: StreamState, started: float) -> None:
        super().__init__(stream)
        self._self_end = _StreamEnd(call, state, started)

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


#: Openings one operation keeps (see ``Operation.opening``); past this, it starts over.
_MAX_OPENINGS = 256


class Operation:
    """One SDK operation: what its span starts with, and its arguments by name."""

    __slots__ = ("_openings", "kind", "provider", "stage")

    def __init__(self, stage: _span.Stage, provider: str, kind: SpanKind | None = None) -> None:
        self.stage = stage
        self.provider = provider
        self.kind = kind
        #: (model, id(server attributes), request pairs) -> (server attributes, opening)
        self._openings: dict[tuple[Any, ...], tuple[Any, _span.Opening]] = {}

    def start(
        self,
        telemetry: _telemetry.Telemetry,
        parent: context.Context,
        instance: Any,
        arguments: Mapping[str, Any],
        request: RequestAttributes = (),
    ) -> StageSpan | None:
        """The span (or ``None``: call straight through), with what a sampler may decide on.

        ``request``: the request's attributes, known before the call, so given to the span
        at its start (one write instead of one more after it, and the sampler sees them).
        The caller has checked that something records (``telemetry`` and ``parent``, the
        context the span starts in, from ``_span.records()``): not checked again.
        """
        try:
            opened = self.opening(model(arguments), server(instance), request)
            return StageSpan(telemetry, opened, None, parent)
        except Exception:  # ours, or a model that cannot be read: call straight through
            report_internal_error("begin")
            return None

    def opening(
        self,
        model_name: str | None,
        server_map: Mapping[str, AttributeValue] | None,
        request: RequestAttributes,
    ) -> _span.Opening:
        """The span's name, start and metric attributes, worked out once per model, server
        and request: an application sends the same few requests over and over, so a call
        pays one lookup rather than merging attributes and building metric attribute sets."""
        key = (model_name, id(server_map), request)
        openings = self._openings
        try:
            cached = openings.get(key)
        except TypeError:  # a reader's unhashable value: this call's own opening
            return self._open(model_name, server_map, request)
        # The entry holds the server attributes, so their id is not reused while cached.
        if cached is not None and cached[0] is server_map:
            return cached[1]
        opened = self._open(model_name, server_map, request)
        if len(openings) >= _MAX_OPENINGS:  # bounded: models and parameters are the caller's
            openings.clear()
        openings[key] = (server_map, opened)
        return opened

    def _open(
        self,
        model_name: str | None,
        server_map: Mapping[str, AttributeValue] | None,
        request: RequestAttributes,
    ) -> _span.Opening:
        attributes = _start_attributes(server_map, request)
        return _span.opening(self.stage, self.provider, model_name, None, self.kind, attributes)

    @staticmethod
    def bind(wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call's arguments by name."""
        # The SDKs' methods are keyword-only, so kwargs *are* the bound arguments; binding
        # through the signature (40-odd parameters) is kept for a positional call.
        return bind_arguments(wrapped, args, kwargs) if args else kwargs


def _start_attributes(
    server_map: Mapping[str, AttributeValue] | None, request: RequestAttributes
) -> Mapping[str, AttributeValue] | None:
    """The server attributes and the request's pairs, as one mapping."""
    if not request:
        return server_map
    merged: dict[str, AttributeValue] = dict(server_map) if server_map else {}
    merged.update(request)
    return merged


def read_parameters(
    arguments: Mapping[str, Any], readers: Mapping[str, ParameterReader]
) -> dict[str, AttributeValue]:
    """The attributes of the parameters ``readers`` knows, read from the arguments given.

    Loops over the call's arguments (most calls give two or three: the model, the
    messages, maybe a temperature), not over every parameter the API has; a reader's
    ``None`` (absent, the SDK's ``omit``, the wrong type) writes nothing.
    """
    found: dict[str, AttributeValue] = {}
    for name, value in arguments.items():
        reader = readers.get(name)
        if reader is not None:
            key, read = reader
            attribute = read(value)
            if attribute is not None:
                found[key] = attribute
    return found


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
        # On top of the context the span started in (``StageSpan.context``: not read again).
        self.token = context.attach(self.call.context)

    def __exit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        try:
            if error is not None:
                self.call.end(error)
        finally:
            context.detach(self.token)


class Chat(Operation, ABC):
    """A chat API's wrappers, shared; each library's subclass says what its calls hold.

    The subclass gives the pure extraction methods (``request`` ... ``stream_state``): each
    reads the call's arguments or its result and never touches a span. It names its
    library's readers themselves (``response = staticmethod(attrs.response)``) rather
    than methods that call them: a frame less on every call, where each is cold after the
    round trip.

    ``create`` and ``acreate`` are the sync and async wrappers of a ``create``-style
    method: one span per call; with ``stream=True`` the SDK's stream comes back inside a
    stream proxy that ends the span. What happens once the response is received is
    :meth:`received` / :meth:`areceived`, which a subclass may extend (the raw-response
    path does).
    """

    __slots__ = ()

    def __init__(self, provider: str) -> None:
        super().__init__(_span.CHAT, provider)

    # -- what the library's calls hold (pure extraction) ----------------------------------
    @abstractmethod
    def request(self, arguments: Mapping[str, Any], stream: bool) -> RequestAttributes:
        """The request's attributes (``stream``: the call streams), given at span start."""

    @abstractmethod
    def response(self, result: Any) -> Attributes:
        """A complete response's attributes (not content)."""

    #: The model that answered: the module's reader itself (a frame less per call).
    response_model = staticmethod(response_model)

    @abstractmethod
    def usage(self, result: Any) -> tuple[int | None, int | None]:
        """(input, output) tokens of a complete response."""

    @abstractmethod
    def input_messages(self, arguments: Mapping[str, Any]) -> Messages:
        """(role, text) of each request message (content)."""

    def system_instructions(self, arguments: Mapping[str, Any]) -> object:
        """Instructions given apart from the messages (content; none by default)."""
        return None

    @abstractmethod
    def output_messages(self, result: Any) -> Messages:
        """(role, text) of each returned choice (content)."""

    @abstractmethod
    def finish_reasons(self, result: Any) -> Sequence[str]:
        """The finish reason of each returned choice."""

    @abstractmethod
    def stream_state(self, limit: int) -> StreamState:
        """A new state for one stream, keeping text only as far as ``limit`` characters."""

    # -- recording ------------------------------------------------------------------------
    def begin(
        self,
        telemetry: _telemetry.Telemetry,
        parent: context.Context,
        instance: Any,
        arguments: Mapping[str, Any],
        stream: bool,
    ) -> StageSpan | None:
        """Start the span with the request's attributes (``stream``: the call streams)."""
        try:
            request = self.request(arguments, stream)
        except Exception:  # ours: the span starts without them
            report_internal_error("chat request")
            request = ()
        call = self.start(telemetry, parent, instance, arguments, request)
        if call is not None:
            call.record_content(self._write_input, arguments)
        return call

    def _write_input(self, call: StageSpan, arguments: Mapping[str, Any]) -> None:
        call.record_input_messages(
            self.input_messages(arguments), self.system_instructions(arguments)
        )

    def _write_output(self, call: StageSpan, result: Any) -> None:
        call.record_output_messages(self.output_messages(result), self.finish_reasons(result))

    def finish(self, call: StageSpan, result: Any) -> None:
        """Record a complete (not streamed) result and end the span."""
        try:  # inline, not ``@guard``: every call's own path
            call.record_response_model(self.response_model(result))  # before the token metric
            call.extract(self.response, result)
            call.record_tokens(*self.usage(result))  # even when sampled out: the histogram
            call.record_content(self._write_output, result)
        except Exception:
            report_internal_error("chat response")
        call.end()

    def follow(
        self, stream: Any, call: StageSpan, started: float, proxy_type: type[StreamProxy]
    ) -> StreamProxy:
        """``stream`` inside a proxy that records it and ends ``call`` when it ends."""
        return proxy_type(stream, call, self.stream_state(text_limit()), started)

    # -- the wrappers ---------------------------------------------------------------------
    def create(
        self, wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The sync wrapper."""
        recording = _span.records()
        if recording is None:  # nothing records: read nothing of the call
            return wrapped(*args, **kwargs)
        telemetry, parent = recording
        arguments = self.bind(wrapped, args, kwargs)
        stream = streaming(arguments)
        call = self.begin(telemetry, parent, instance, arguments, stream)
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
            return self.follow(result, call, started, SyncStreamProxy)
        self.finish(call, result)
        return result

    async def acreate(
        self, wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The async wrapper (the span covers the await)."""
        recording = _span.records()
        if recording is None:  # nothing records: read nothing of the call
            return await wrapped(*args, **kwargs)
        telemetry, parent = recording
        arguments = self.bind(wrapped, args, kwargs)
        stream = streaming(arguments)
        call = self.begin(telemetry, parent, instance, arguments, stream)
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
            return self.follow(result, call, started, AsyncStreamProxy)
        self.finish(call, result)
        return result
