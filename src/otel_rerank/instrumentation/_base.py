"""What every otel-rerank instrumentor shares: exact patching, lazy targets, version ranges.

An instrumentor lists its targets as ``(module, "Class.method", wrapper)``. Patching puts a
``wrapt.FunctionWrapper`` into the ``__dict__`` of the class that *defines* the method and
remembers the exact object it replaced, so ``uninstrument()`` puts back the very same
object (staticmethod and classmethod descriptors included) and no ``__wrapped__`` is left
behind. A target whose library is installed but not yet imported is patched by a
post-import hook when the application imports it, so ``import otel_rerank.auto`` does not
import torch. A target missing in the installed library version is skipped with one debug
line (library drift), never an exception.

Subclasses of :class:`RagInstrumentor` are ``opentelemetry-instrumentation``
``BaseInstrumentor`` s, so ``opentelemetry-instrument`` can load them from the
``opentelemetry_instrumentor`` entry-point group.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from otel_rerank import _telemetry
from otel_rerank._safe import logger

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Target:
    """One method to wrap: ``module`` holds ``owner`` (a dotted class path) with ``method``."""

    module: str
    owner: str
    method: str
    wrapper: Wrapper


@dataclass(slots=True)
class _Patch:
    owner: type
    name: str
    original: Any
    replacement: Any


class Patcher:
    """Applies targets and undoes them exactly; safe to call from post-import hooks."""

    def __init__(self) -> None:
        self._patches: list[_Patch] = []
        self._lock = threading.Lock()
        self._wanted = False
        #: the instrumentor's own providers / content setting, applied to every patch
        self.settings: _telemetry.LibrarySettings | None = None

    def apply(self, targets: Sequence[Target]) -> None:
        """Patch every target whose module is imported; defer the rest to post-import hooks."""
        self._wanted = True
        for module_name in dict.fromkeys(t.module for t in targets):
            group = [t for t in targets if t.module == module_name]
            if module_name in sys.modules:
                self._apply_module(sys.modules[module_name], group)
            else:
                wrapt.register_post_import_hook(self._hook(group), module_name)

    def _hook(self, group: list[Target]) -> Callable[[Any], None]:
        # wrapt cannot unregister a post-import hook, so the hook checks that it is still
        # wanted: an uninstrument() before the import leaves it doing nothing.
        def on_import(module: Any) -> None:
            if self._wanted:
                self._apply_module(module, group)

        return on_import

    def _apply_module(self, module: Any, group: list[Target]) -> None:
        with self._lock:
            for target in group:
                try:
                    owner = _resolve(module, target.owner)
                except AttributeError:
                    logger.debug(
                        "otel-rerank: %s.%s not found; skipped", target.module, target.owner
                    )
                    continue
                self._patch_one(owner, target.method, target.wrapper)

    def patch_class(self, owner: type, method: str, wrapper: Wrapper) -> None:
        """Patch one method on a class found at run time (faiss's per-class methods)."""
        with self._lock:
            self._patch_one(owner, method, wrapper)

    def _patch_one(self, owner: type, method: str, wrapper: Wrapper) -> None:
        if method not in owner.__dict__:
            logger.debug(
                "otel-rerank: %s.%s not defined in this version; skipped",
                owner.__qualname__,
                method,
            )
            return
        original = owner.__dict__[method]
        if isinstance(original, wrapt.FunctionWrapper) and any(
            p.replacement is original for p in self._patches
        ):
            return  # already ours
        if self.settings is not None:
            wrapper = _with_settings(wrapper, self.settings)
        replacement = wrapt.FunctionWrapper(original, wrapper)
        setattr(owner, method, replacement)
        self._patches.append(_Patch(owner, method, original, replacement))

    def undo(self) -> None:
        """Put back every original object, newest patch first."""
        with self._lock:
            self._wanted = False
            while self._patches:
                patch = self._patches.pop()
                if patch.owner.__dict__.get(patch.name) is patch.replacement:
                    setattr(patch.owner, patch.name, patch.original)

    @property
    def patched(self) -> list[tuple[type, str]]:
        """(class, method) pairs currently patched; for tests and debugging."""
        return [(p.owner, p.name) for p in self._patches]


def _with_settings(wrapper: Wrapper, settings: _telemetry.LibrarySettings) -> Wrapper:
    """``wrapper``, run with its instrumentor's own settings (awaited work included)."""

    def scoped(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        with _telemetry.library_scope(settings):
            result = wrapper(wrapped, instance, args, kwargs)
        if inspect.iscoroutine(result):  # an async wrapper begins its span when awaited
            return _awaited(settings, result)
        return result

    return scoped


async def _awaited(settings: _telemetry.LibrarySettings, coroutine: Any) -> Any:
    with _telemetry.library_scope(settings):
        return await coroutine


def _resolve(module: Any, dotted: str) -> type:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


class RagInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base class of every otel-rerank instrumentor.

    Subclasses set ``name`` (what ``instrument(libraries=[...])`` calls it), ``package``
    (the importable module whose presence means "installed"), ``supported`` (the pip
    requirement range tested) and implement :meth:`targets`.
    """

    name: str = ""
    package: str = ""
    supported: str = ""

    _patcher: Patcher

    def __init__(self) -> None:
        # BaseInstrumentor hands out one instance per class and __init__ runs on every
        # ``Instrumentor()``; keep the patch record of the first.
        if not hasattr(self, "_patcher"):
            self._patcher = Patcher()

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.supported,)

    @classmethod
    def is_installed(cls) -> bool:
        """True when the library can be imported (checked without importing it)."""
        try:
            return importlib.util.find_spec(cls.package) is not None
        except (ImportError, ValueError):
            return False

    def targets(self) -> Sequence[Target]:
        """The methods to wrap."""
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        # Providers and a content setting given here are this library's only;
        # ``otel_rerank.instrument()`` sets the defaults for everything else.
        settings = _telemetry.library_settings(
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            kwargs.get("capture_content"),
        )
        self._patcher.settings = settings
        if settings is not None:
            _telemetry.hold_library_settings(True)
        self._patcher.apply(self.targets())

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patcher.undo()
        if self._patcher.settings is not None:
            self._patcher.settings = None
            _telemetry.hold_library_settings(False)
