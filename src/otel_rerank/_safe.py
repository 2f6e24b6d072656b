"""Keeps otel-rerank's own failures away from the user's call.

Every piece of our code that runs inside an instrumented call (attribute extraction, hooks,
metric recording) goes through :func:`guard` or :func:`guarded`. An exception there is
logged once per call site through the module logger and swallowed, so the user's call
behaves exactly as it would without instrumentation. Under the project's own tests
``STRICT`` is switched on and the exception re-raises instead, so a bug in extraction fails
a test rather than hiding (the trick Logfire uses).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger("otel_rerank")
logger.addHandler(logging.NullHandler())

#: Re-raise our own errors instead of logging them. Set by the test suite only.
STRICT = False

_P = ParamSpec("_P")
_R = TypeVar("_R")


def report_internal_error(where: str) -> None:
    """Log the exception being handled as an otel-rerank bug; re-raise it when strict.

    Must be called from an ``except`` block.
    """
    if STRICT:
        raise  # noqa: PLE0704 - re-raises the exception being handled by our caller
    logger.debug("otel-rerank: internal error in %s (ignored)", where, exc_info=True)


def guarded(fn: Callable[_P, _R | None]) -> Callable[_P, _R | None]:
    """Decorate one of our helpers so that its failure returns ``None`` instead of raising."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        try:
            return fn(*args, **kwargs)
        except Exception:
            report_internal_error(getattr(fn, "__qualname__", repr(fn)))
            return None

    return wrapper
