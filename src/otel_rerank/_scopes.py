"""Which scope objects are open in the current context (thread or asyncio task).

A scope object (``RERANK = otel_rerank.rerank(model=...)``, a request scope) is often made
once at module level and entered by many threads and tasks at once, so what each
``__enter__`` must undo at ``__exit__`` is kept per context, keyed by the object, and never
on the object itself. One context variable serves every kind of scope.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: (scope, what its ``__enter__`` left to undo) for each scope open here, innermost last.
_OPEN: ContextVar[tuple[tuple[object, Any], ...]] = ContextVar(
    "otel_rerank_open_scopes", default=()
)


def push(scope: object, entry: Any) -> None:
    """Record that ``scope`` was entered here, leaving ``entry`` (may be ``None``) to undo."""
    _OPEN.set((*_OPEN.get(), (scope, entry)))


def pop(scope: object) -> tuple[bool, Any]:
    """Remove and return ``scope``'s innermost entry here: ``(found, entry)``."""
    open_scopes = _OPEN.get()
    for i in range(len(open_scopes) - 1, -1, -1):
        if open_scopes[i][0] is scope:
            _OPEN.set(open_scopes[:i] + open_scopes[i + 1 :])
            return True, open_scopes[i][1]
    return False, None
