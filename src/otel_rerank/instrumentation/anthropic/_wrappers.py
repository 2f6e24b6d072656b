"""Wrappers for anthropic's ``messages.create`` and ``messages.stream``, sync and async.

One span per user call. ``messages.create`` goes through the wrappers the LLM clients
share (``otel_rerank.instrumentation._llm.Chat``; the subclass here only names the
extractors of ``_attributes``): ``create(stream=True)`` returns the SDK's
stream inside a proxy that ends the span when the stream is exhausted, closed, broken out
of or dropped. ``messages.stream(...)`` sends its request itself (not through ``create``)
when its context manager is entered, so the span starts there: the manager is proxied, and
the raw event stream inside the ``MessageStream`` it yields is swapped for the proxy, which
every way of reading it (iteration, ``text_stream``, ``get_final_message()``) goes through.
The span is current while the request is sent, so HTTP client spans, and the SDK's own call
span where it has one, nest under it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from otel_rerank import _span
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._llm import (
    AsyncStreamProxy,
    ManagerProxy,
    Sending,
    StreamProxy,
    SyncStreamProxy,
)
from otel_rerank.instrumentation._raw_response import RawResponseChat
from otel_rerank.instrumentation.anthropic import _attributes as attrs

_Wrapped = Callable[..., Any]


class _Messages(RawResponseChat):
    """anthropic's Messages API, read by the pure extractors in ``_attributes`` (see ``Chat``)."""

    __slots__ = ()

    request = staticmethod(attrs.request)
    response = staticmethod(attrs.response)
    usage = staticmethod(attrs.usage)
    input_messages = staticmethod(attrs.input_messages)
    system_instructions = staticmethod(attrs.system_instructions)
    output_messages = staticmethod(attrs.output_messages)
    finish_reasons = staticmethod(attrs.finish_reasons)
    stream_state = staticmethod(attrs.MessageStreamState)


_MESSAGES = _Messages(attrs.PROVIDER)
messages_create = _MESSAGES.create
amessages_create = _MESSAGES.acreate


class _StreamManager(ManagerProxy):
    """``messages.stream(...)``'s context manager: the span runs from enter to stream end."""

    def __init__(self, manager: Any, instance: Any, arguments: Any) -> None:
        super().__init__(manager)
        self._self_instance = instance
        self._self_arguments = arguments
        self._self_call: StageSpan | None = None
        self._self_proxy: StreamProxy | None = None

    def _self_begin(self) -> StageSpan | None:
        """The span (it starts in the current context), or ``None``: nothing records."""
        recording = _span.records()
        if recording is None:  # nothing records: read nothing of the call
            return None
        telemetry, parent = recording
        return _MESSAGES.begin(telemetry, parent, self._self_instance, self._self_arguments, True)

    def _self_watch(
        self, stream: Any, call: StageSpan, started: float, proxy_type: type[StreamProxy]
    ) -> Any:
        self._self_call = call
        raw = getattr(stream, "_raw_stream", None)
        if raw is not None:
            self._self_proxy = _MESSAGES.follow(raw, call, started, proxy_type)
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
        with Sending(call):
            stream = self.__wrapped__.__enter__()
        return self._self_watch(stream, call, started, SyncStreamProxy)

    async def __aenter__(self) -> Any:
        call = self._self_begin()
        if call is None:
            return await self.__wrapped__.__aenter__()
        started = time.perf_counter()
        with Sending(call):
            stream = await self.__wrapped__.__aenter__()
        return self._self_watch(stream, call, started, AsyncStreamProxy)


def messages_stream(
    wrapped: _Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``Messages.stream`` and ``AsyncMessages.stream`` (both return a manager at once)."""
    manager = wrapped(*args, **kwargs)
    return _StreamManager(manager, instance, _MESSAGES.bind(wrapped, args, kwargs))
