"""Keeps otel-rerank's own failures away from the user's call: the one internal-error path.

Every piece of our code that runs inside an instrumented call (attribute extraction, hooks,
metric recording, the shadow worker) goes through :class:`guard` (a decorator and a context
manager) or, from an ``except`` block, :func:`report_internal_error`. An exception there is
logged at debug level through the ``otel_rerank`` logger and swallowed, so the user's call
behaves exactly as it would without instrumentation. Under the project's own tests
``STRICT`` is switched on and the exception re-raises instead, so a bug in extraction fails
a test rather than hiding (the trick Logfire uses).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import TracebackType
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


class guard:  # noqa: N801 - used like a function: ``with guard("x"):``, ``@guard("x")``
    """Our code's failure is logged and swallowed (re-raised when strict).

    ``with guard("where"): ...`` skips the rest of the block; ``@guard("where")`` makes the
    function return ``None``. ``BaseException`` s that are not ``Exception`` s (a
    ``KeyboardInterrupt``) always pass through.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception) or STRICT:
            return False
        logger.debug("otel-rerank: internal error in %s (ignored)", self.where, exc_info=exc)
        return True

    def __call__(self, fn: Callable[_P, _R | None]) -> Callable[_P, _R | None]:
        where = self.where

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R | None:
            try:
                return fn(*args, **kwargs)
            except Exception:
                report_internal_error(where)
                return None

        return wrapper


def guarded(fn: Callable[_P, _R | None]) -> Callable[_P, _R | None]:
    """``@guard(<the function's name>)``: its failure returns ``None`` instead of raising."""
    return guard(getattr(fn, "__qualname__", repr(fn)))(fn)
