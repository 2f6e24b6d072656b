"""wrapt wrappers for anthropic's ``messages.create`` and ``messages.stream``, sync and async.

One span per user call. ``create(stream=True)`` returns the SDK's stream inside a proxy
(see ``otel_rerank.instrumentation._llm``) that ends the span when the stream is exhausted,
closed, broken out of or dropped. ``messages.stream(...)`` sends its request itself (not
through ``create``) when its context manager is entered, so the span starts there: the
manager is proxied, and the raw event stream inside the ``MessageStream`` it yields is
swapped for the proxy, which every way of reading it (iteration, ``text_stream``,
``get_final_message()``) goes through. The span is current while the request is sent,
so HTTP client spans, and the SDK's own call span where it has one, nest under it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import wrapt
from opentelemetry import context

from otel_rerank import _span, semconv
from otel_rerank._safe import guarded
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._common import bind_arguments
from otel_rerank.instrumentation._llm import AsyncStreamProxy, SyncStreamProxy
from otel_rerank.instrumentation.anthropic import _attributes as attrs

_Wrapped = Callable[..., Any]


def _arguments(wrapped: _Wrapped, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # The SDK's methods are keyword-only, so kwargs *are* the bound arguments; binding
    # through the signature is kept for a positional call.
    return bind_arguments(wrapped, args, kwargs) if args else kwargs


def _begin(instance: Any, arguments: Any, stream: bool) -> StageSpan | None:
    call = _span.begin(
        _span.CHAT,
        provider=attrs.PROVIDER,
        model=attrs.model(arguments),
        attributes=attrs.server(instance),
    )
    if call is not None and call.recording:
        call.extract(attrs.request, arguments, stream)
        if call.capturing:
            _record_input(call, arguments)
    return call


@guarded
def _record_input(call: StageSpan, arguments: Any) -> None:
    call.record_messages(semconv.LLM_INPUT_MESSAGES, attrs.input_messages(arguments))


@guarded
def _record_result(call: StageSpan, result: Any) -> None:
    call.extract(attrs.response, result)
    call.record_tokens(*attrs.usage(result))
    if call.capturing:
        call.record_messages(semconv.LLM_OUTPUT_MESSAGES, attrs.output_messages(result))


def _finish(call: StageSpan, result: Any) -> None:
    _record_result(call, result)  # token usage is a metric: recorded even if sampled out
    call.end()


def messages_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    stream = attrs.streaming(arguments)
    call = _begin(instance, arguments, stream)
    if call is None:
        return wrapped(*args, **kwargs)
    started = time.perf_counter()
    token = context.attach(call.context)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error)
        raise
    finally:
        context.detach(token)
    if stream and isinstance(result, Iterator):
        return SyncStreamProxy(result, call, attrs.MessageStreamState(call.capturing), started)
    _finish(call, result)
    return result


async def amessages_create(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = _arguments(wrapped, args, kwargs)
    stream = attrs.streaming(arguments)
    call = _begin(instance, arguments, stream)
    if call is None:
        return await wrapped(*args, **kwargs)
    started = time.perf_counter()
    token = context.attach(call.context)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        call.end(error)
        raise
    finally:
        context.detach(token)
    if stream and isinstance(result, AsyncIterator):
        return AsyncStreamProxy(result, call, attrs.MessageStreamState(call.capturing), started)
    _finish(call, result)
    return result


class _StreamManager(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """``messages.stream(...)``'s context manager: the span runs from enter to stream end."""

    def __init__(self, manager: Any, instance: Any, arguments: Any) -> None:
        super().__init__(manager)
        self._self_instance = instance
        self._self_arguments = arguments
        self._self_call: StageSpan | None = None
        self._self_proxy: Any = None

    def _self_begin(self) -> StageSpan | None:
        call = _begin(self._self_instance, self._self_arguments, True)
        self._self_call = call
        return call

    def _self_watch(self, stream: Any, call: StageSpan, started: float, proxy_type: Any) -> Any:
        raw = getattr(stream, "_raw_stream", None)
        if raw is not None:
            state = attrs.MessageStreamState(call.capturing)
            self._self_proxy = proxy_type(raw, call, state, started)
            stream._raw_stream = self._self_proxy
        return stream  # without a raw stream to watch, the span ends on exit

    def _self_finish(self) -> None:
        proxy, self._self_proxy = self._self_proxy, None
        call, self._self_call = self._self_call, None
        if proxy is not None:
            proxy._self_finish()
        elif call is not None:
            call.end()

    def __enter__(self) -> Any:
        call = self._self_begin()
        if call is None:
            return self.__wrapped__.__enter__()
        started = time.perf_counter()
        token = context.attach(call.context)
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as error:
            self._self_call = None
            call.end(error)
            raise
        finally:
            context.detach(token)
        return self._self_watch(stream, call, started, SyncStreamProxy)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_finish()

    async def __aenter__(self) -> Any:
        call = self._self_begin()
        if call is None:
            return await self.__wrapped__.__aenter__()
        started = time.perf_counter()
        token = context.attach(call.context)
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as error:
            self._self_call = None
            call.end(error)
            raise
        finally:
            context.detach(token)
        return self._self_watch(stream, call, started, AsyncStreamProxy)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_finish()


def messages_stream(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Messages.stream`` and ``AsyncMessages.stream`` (both return a manager at once)."""
    manager = wrapped(*args, **kwargs)
    return _StreamManager(manager, instance, _arguments(wrapped, args, kwargs))
