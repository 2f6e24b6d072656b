"""The request span: one root per user query, so each query's stages form one trace.

Without a root, every stage span of a query is its own trace and no end-to-end latency
exists. ``otel_rerank.request`` (a decorator, or a sync/async context manager) starts that
root when no span is current, named and kinded as the GenAI conventions' workflow span
(``invoke_workflow {name}``, INTERNAL, ``gen_ai.operation.name=invoke_workflow``) with
OpenInference's ``CHAIN`` kind. When a span is already current (a web framework's server
span, or an outer request) it starts nothing: that span stays the root.

Either way it records the request's start and latency budget in a context variable, which
is how later stages (the rerank budget guard) learn how much time the request has left.
The framework instrumentations (LangChain, LlamaIndex, Haystack) open the same scope at
their query entry points, so one import gives one trace per query.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_rerank import _scopes, _telemetry, semconv
from otel_rerank._errors import error_type
from otel_rerank._safe import guard, report_internal_error
from otel_rerank._span import instrumentation_suppressed
from otel_rerank._values import is_number

_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_NAME = "rag"


@dataclass(frozen=True, slots=True)
class RequestState:
    """The request in flight: when it started and how long it may take.

    Attributes:
        start_ns: start time, nanoseconds since the epoch (the root span's own start when
            a span was already current, so a server span's queueing time counts too).
        budget_ms: the end-to-end latency budget, if one was given.
        span: the request span this scope started, or ``None`` (a span was already
            current, or nothing records).
    """

    start_ns: int
    budget_ms: float | None
    span: Span | None

    def elapsed_ms(self) -> float:
        """Milliseconds since the request started."""
        return (time.time_ns() - self.start_ns) / 1e6

    def remaining_ms(self) -> float | None:
        """Milliseconds left in the budget (negative once over it), or ``None`` with no budget."""
        if self.budget_ms is None:
            return None
        return self.budget_ms - self.elapsed_ms()


_CURRENT: ContextVar[RequestState | None] = ContextVar("otel_rerank_request", default=None)


def current() -> RequestState | None:
    """The request in flight in this context (thread or task), if any."""
    return _CURRENT.get()


class _RequestCall:
    """One entered request scope: the span it started (if any) and the tokens to undo."""

    __slots__ = ("_context_token", "_state_token", "_suspended", "state")

    def __init__(self, name: str, budget_ms: float | None, attributes: Mapping[str, Any]) -> None:
        self._suspended = False
        self._context_token: object | None = None
        self._state_token: Token[RequestState | None] | None = None
        outer = _CURRENT.get()
        if outer is not None:  # nested request scopes: the outermost one is the request
            self.state = outer
            return
        span = _start_root(name, budget_ms, attributes)
        if span is not None:
            self._context_token = context.attach(trace.set_span_in_context(span))
            start_ns = _start_time(span)
        else:
            start_ns = _start_time(trace.get_current_span())
        self.state = RequestState(start_ns, budget_ms, span)
        self._state_token = _CURRENT.set(self.state)

    def suspend(self) -> None:
        """Leave the request's context while a stream hands a chunk to its consumer."""
        if self._state_token is None:
            return
        _CURRENT.reset(self._state_token)
        self._state_token = None
        if self._context_token is not None:
            context.detach(self._context_token)  # type: ignore[arg-type]
            self._context_token = None
        self._suspended = True

    def resume(self) -> None:
        """Enter the request's context again when the consumer asks for the next chunk."""
        if not self._suspended:
            return
        self._suspended = False
        if self.state.span is not None:
            self._context_token = context.attach(trace.set_span_in_context(self.state.span))
        self._state_token = _CURRENT.set(self.state)

    def finish(self, error: BaseException | None) -> None:
        if self._state_token is None:
            return
        _CURRENT.reset(self._state_token)
        self._state_token = None
        span = self.state.span
        if self._context_token is not None:
            context.detach(self._context_token)  # type: ignore[arg-type]
            self._context_token = None
        if span is None:
            return
        try:
            if error is not None and not isinstance(error, GeneratorExit) and span.is_recording():
                kind = error_type(error)
                span.set_attribute(semconv.ERROR_TYPE, kind)
                span.set_status(Status(StatusCode.ERROR, kind))
        except Exception:
            report_internal_error("request.finish")
        finally:
            span.end()


def _start_root(name: str, budget_ms: float | None, attributes: Mapping[str, Any]) -> Span | None:
    """Start the request span, or ``None`` when a span is current or nothing records."""
    try:
        if trace.get_current_span().get_span_context().is_valid or instrumentation_suppressed():
            return None
        telemetry = _telemetry.current()
        if telemetry is None:
            return None
        start_attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_INVOKE_WORKFLOW,
            semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_CHAIN,
            **{k: v for k, v in attributes.items() if v is not None},
        }
        if budget_ms is not None:
            start_attributes[semconv.RAG_REQUEST_BUDGET_MS] = budget_ms
        return telemetry.tracer.start_span(
            f"{semconv.OPERATION_INVOKE_WORKFLOW} {name}",
            kind=SpanKind.INTERNAL,
            attributes=start_attributes,
        )
    except Exception:
        report_internal_error("request.start")
        return None


def _start_time(span: Span) -> int:
    """A span's start in epoch nanoseconds when the SDK exposes it, else now."""
    start = getattr(span, "start_time", None)
    return start if isinstance(start, int) and start > 0 else time.time_ns()


class RequestScope:
    """A configured request: use it as a decorator or a (sync or async) context manager.

    One scope object may be entered from many threads and tasks at once: what each entry
    must undo is kept per context, never on the object.
    """

    def __init__(self, name: str | None, budget_ms: float | None, attributes: Mapping[str, Any]):
        self._name = name
        self._budget_ms = budget_ms
        self._attributes = dict(attributes)

    def _call(self, name: str | None = None) -> _RequestCall | None:
        with guard("request"):
            return _RequestCall(
                self._name or name or DEFAULT_NAME, self._budget_ms, self._attributes
            )
        return None

    def __call__(self, fn: _F) -> _F:
        if not callable(fn):
            raise TypeError(f"otel_rerank.request: {fn!r} is not callable")
        name = getattr(fn, "__name__", None)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = self._call(name)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as error:
                    _finish(call, error)
                    raise
                _finish(call, None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call = self._call(name)
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                _finish(call, error)
                raise
            _finish(call, None)
            return result

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> RequestState | None:
        call = self._call()
        _scopes.push(self, call)  # per context: one scope object serves many threads and tasks
        return call.state if call is not None else None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _, call = _scopes.pop(self)
        _finish(call, exc)

    async def __aenter__(self) -> RequestState | None:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def begin_call(name: str) -> _RequestCall | None:
    """Enter a request scope (for the framework wrappers); ``None`` if our code failed."""
    with guard("request"):
        return _RequestCall(name, None, {})
    return None


def finish_call(call: _RequestCall | None, error: BaseException | None) -> None:
    """Leave a scope from :func:`begin_call`, ending its span (with the error, if any)."""
    _finish(call, error)


def iterate_in_request(name: str, make: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """``make()``'s items, the whole iteration one request (a framework's ``stream``).

    The request is current only while the stream computes its next item, never while the
    consumer holds one; the span ends when the stream is exhausted, fails or is closed.
    """
    yield from _iterate(begin_call(name), make)  # begun at the first next(), as a stream is


def iterate_in_call(call: _RequestCall | None, make: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """``make()``'s items inside a request begun elsewhere and suspended there.

    For a stream that the framework reads in another thread (LlamaIndex's ``stream_chat``):
    the request is resumed in the reading thread and ends when the stream is exhausted,
    fails or is closed there.
    """
    if call is not None:
        call.resume()
    yield from _iterate(call, make)


def _iterate(call: _RequestCall | None, make: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    error: BaseException | None = None
    inner: Iterator[Any] | None = None
    try:
        inner = iter(make())
        while True:
            try:
                item = next(inner)
            except StopIteration:
                return
            if call is not None:
                call.suspend()
            try:
                yield item
            finally:
                if call is not None:
                    call.resume()
    except BaseException as exc:
        error = exc
        raise
    finally:
        close = getattr(inner, "close", None)
        if error is not None and callable(close):
            close()
        _finish(call, error)


def aiterate_in_request(name: str, make: Callable[[], AsyncIterable[Any]]) -> AsyncIterator[Any]:
    """The async twin of :func:`iterate_in_request` (``astream``)."""
    return _aiterate(lambda: begin_call(name), make)  # begun at the first anext()


def aiterate_in_call(
    call: _RequestCall | None, make: Callable[[], AsyncIterable[Any]]
) -> AsyncIterator[Any]:
    """The async twin of :func:`iterate_in_call`.

    For a stream that the framework reads in a task of its own (LlamaIndex's
    ``astream_chat``): the request is resumed in that task and ends there.
    """
    return _aiterate(lambda: _resumed(call), make)


def _resumed(call: _RequestCall | None) -> _RequestCall | None:
    if call is not None:
        call.resume()
    return call


async def _aiterate(
    begin: Callable[[], _RequestCall | None], make: Callable[[], AsyncIterable[Any]]
) -> AsyncIterator[Any]:
    call = begin()
    error: BaseException | None = None
    inner: AsyncIterator[Any] | None = None
    try:
        inner = aiter(make())
        while True:
            try:
                item = await anext(inner)
            except StopAsyncIteration:
                return
            if call is not None:
                call.suspend()
            try:
                yield item
            finally:
                if call is not None:
                    call.resume()
    except BaseException as exc:
        error = exc
        raise
    finally:
        aclose = getattr(inner, "aclose", None)
        if error is not None and callable(aclose):
            await aclose()
        _finish(call, error)


def _finish(call: _RequestCall | None, error: BaseException | None) -> None:
    if call is None:
        return
    with guard("request.finish"):
        call.finish(error)


@overload
def request(fn: _F, /) -> _F: ...


@overload
def request(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    budget_ms: float | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> RequestScope: ...


def request(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    budget_ms: float | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Trace one user query as a request: a decorator (bare or with arguments) or context manager.

    Starts the query's root span when no span is current (a web framework's server span,
    when present, stays the root) and records the request's start and budget for the stages
    under it. ``with otel_rerank.request(budget_ms=1500) as req:`` gives the
    :class:`RequestState` (``req.remaining_ms()``); ``None`` only if our own code failed.

    Args:
        name: the workflow name in the span name (``invoke_workflow {name}``); a decorated
            function's name by default.
        budget_ms: the end-to-end latency budget in milliseconds (a finite number > 0).
        attributes: extra attributes for the request span (low cardinality: no query text).

    Raises:
        ValueError: ``budget_ms`` is not a finite number greater than 0.
    """
    if budget_ms is not None:
        if not is_number(budget_ms):
            raise ValueError(f"otel_rerank.request: budget_ms must be a number, not {budget_ms!r}")
        if not math.isfinite(budget_ms) or budget_ms <= 0:
            raise ValueError(f"otel_rerank.request: budget_ms must be > 0, not {budget_ms!r}")
        budget_ms = float(budget_ms)
    scope = RequestScope(name, budget_ms, attributes or {})
    return scope(fn) if fn is not None else scope
