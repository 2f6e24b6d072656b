"""One instrumentation package per supported library, and the registry that lists them.

The registry is the package's ``opentelemetry_instrumentor`` entry points (declared once, in
``pyproject.toml``): ``opentelemetry-instrument`` loads the same list. A library's name
(``instrument(libraries=[...])``) is its entry point's name without the ``otel_rerank_``
prefix. ``otel_rerank.instrument()`` walks the registry, skips libraries that are not
installed (checked without importing them) and instruments the rest.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from otel_rerank._safe import logger

if TYPE_CHECKING:
    from otel_rerank.instrumentation._base import RagInstrumentor

GROUP = "opentelemetry_instrumentor"
#: Our entry points' names start with this; the rest of the name is the library's.
PREFIX = "otel_rerank_"


@functools.cache
def _registry() -> dict[str, EntryPoint]:
    # Ours: the prefix, and a class in this package (another distribution could reuse the
    # prefix). Sorted by name: the build backend writes entry points sorted anyway.
    found = {
        ep.name.removeprefix(PREFIX): ep
        for ep in entry_points(group=GROUP)
        if ep.name.startswith(PREFIX) and ep.module.startswith(f"{__name__}.")
    }
    if not found:
        logger.warning(
            "otel-rerank: no %s entry points found (is otel-rerank installed, e.g. "
            "`pip install -e .`?); no library will be instrumented",
            GROUP,
        )
    return dict(sorted(found.items()))


def libraries() -> list[str]:
    """The name of every supported library (what ``instrument(libraries=[...])`` takes)."""
    return list(_registry())


def available() -> dict[str, type[RagInstrumentor]]:
    """Every registered instrumentor class whose module imports (the library may be absent)."""
    found: dict[str, type[RagInstrumentor]] = {}
    for name, entry_point in _registry().items():
        try:
            found[name] = load(name)
        except ModuleNotFoundError as exc:
            if exc.name != entry_point.module:
                raise
    return found


def load(name: str) -> type[RagInstrumentor]:
    """Import and return the instrumentor class registered under ``name``.

    Raises:
        KeyError: no library of that name is registered.
    """
    cls: type[RagInstrumentor] = _registry()[name].load()
    return cls
