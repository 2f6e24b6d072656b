"""Wrappers for a framework's query entry points: each call is one request (one trace).

LangChain's ``invoke``/``stream``, LlamaIndex's ``query``/``chat`` and Haystack's
``Pipeline.run`` open an ``otel_rerank.request`` scope around the call: the root span
``invoke_workflow {framework}`` when no span is current, nothing when one is (a web
framework's server span stays the root; a nested chain adds no second root). Streams keep
the request open until the consumer has read, closed or dropped them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otel_rerank import _request
from otel_rerank._span import rerank_top_n
from otel_rerank.instrumentation._common import bind_arguments, nothing_records

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def request(name: str) -> Wrapper:
    """A sync wrapper that runs the call as one request named ``name``."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _request.begin_call(name)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _request.finish_call(call, error)
            raise
        _request.finish_call(call, None)
        return result

    return wrapper


def arequest(name: str) -> Wrapper:
    """The async twin of :func:`request` (the request covers the await)."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _request.begin_call(name)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            _request.finish_call(call, error)
            raise
        _request.finish_call(call, None)
        return result

    return wrapper


def request_stream(name: str) -> Wrapper:
    """A wrapper for a method returning an iterator: the whole iteration is one request."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return _request.iterate_in_request(name, lambda: wrapped(*args, **kwargs))

    return wrapper


def arequest_stream(name: str) -> Wrapper:
    """A wrapper for a method returning an async iterator (``astream``)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return _request.aiterate_in_request(name, lambda: wrapped(*args, **kwargs))

    return wrapper


def _top_n(
    top_n_of: Callable[[Any, Mapping[str, Any]], Any],
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The framework step's top_n; ``None`` (record none) when it cannot be read."""
    try:
        return top_n_of(instance, bind_arguments(wrapped, args, kwargs))
    except Exception:  # expected, not ours: an attribute renamed in another release
        return None


def with_rerank_top_n(top_n_of: Callable[[Any, Mapping[str, Any]], Any]) -> Wrapper:
    """A wrapper for a framework's rerank step: the rerank span inside records its top_n.

    ``top_n_of(instance, arguments)`` reads it from the component and the call's arguments.
    """

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if nothing_records():  # no rerank span will start: nothing to read
            return wrapped(*args, **kwargs)
        with rerank_top_n(_top_n(top_n_of, wrapped, instance, args, kwargs)):
            return wrapped(*args, **kwargs)

    return wrapper


def awith_rerank_top_n(
    top_n_of: Callable[[Any, Mapping[str, Any]], Any],
) -> Wrapper:
    """The async twin of :func:`with_rerank_top_n`."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if nothing_records():
            return await wrapped(*args, **kwargs)
        with rerank_top_n(_top_n(top_n_of, wrapped, instance, args, kwargs)):
            return await wrapped(*args, **kwargs)

    return wrapper
