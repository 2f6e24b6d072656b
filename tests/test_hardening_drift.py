"""Library drift: a method or class missing in the installed version is skipped, not fatal.

Libraries rename, move and drop methods between releases. ``instrument()`` must then patch
what exists and skip the rest with one debug line per skipped target — never raise into
the application's start-up. Shown on fake modules for the patcher itself (imported before
and after ``instrument()``), and on every real instrumented library with one of its
methods, or one of its classes, taken away.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otel_rerank
from otel_rerank import _telemetry, instrumentation
from otel_rerank.instrumentation._base import Patcher, RagInstrumentor, Target, is_replacement
from tests.conftest import Otel


def _passthrough(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return ("wrapped", wrapped(*args, **kwargs))


def _debug_lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "otel_rerank" and r.levelno == logging.DEBUG and needle in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def _a_provider_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """So that a patched method reaches ``_passthrough``: with nothing configured a plain
    replacement calls the original itself (``tests/test_patcher.py``)."""
    monkeypatch.setattr(_telemetry, "own_providers", True)


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("fake_drift_lib")

    class Client:
        def present(self) -> str:
            return "present"

    class Base:
        def inherited(self) -> str:
            return "inherited"

    class Child(Base):
        pass

    module.Client = Client  # type: ignore[attr-defined]
    module.Child = Child  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def test_missing_method_and_missing_class_are_skipped_with_one_debug_line(
    fake_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_rerank")
    patcher = Patcher()
    original = fake_module.Client.__dict__["present"]
    patcher.apply(
        [
            Target("fake_drift_lib", "Client", "present", _passthrough),
            Target("fake_drift_lib", "Client", "renamed_in_v2", _passthrough),
            Target("fake_drift_lib", "RemovedClient", "present", _passthrough),
            Target("fake_drift_lib", "Client.Nested", "present", _passthrough),
            Target("fake_drift_lib", "Child", "inherited", _passthrough),
        ]
    )
    assert fake_module.Client().present() == ("wrapped", "present")
    assert patcher.patched == [(fake_module.Client, "present")]
    assert len(_debug_lines(caplog, "renamed_in_v2")) == 1
    assert len(_debug_lines(caplog, "RemovedClient")) == 1
    assert len(_debug_lines(caplog, "Client.Nested")) == 1
    # Defined on the base class, not on the one named: left alone rather than shadowed.
    assert len(_debug_lines(caplog, "Child.inherited")) == 1
    assert "inherited" not in fake_module.Child.__dict__
    assert not [r for r in caplog.records if r.name == "otel_rerank" and r.levelno > logging.DEBUG]

    patcher.undo()
    assert fake_module.Client.__dict__["present"] is original
    assert not is_replacement(fake_module.Client.__dict__["present"])


def test_drift_in_a_module_imported_after_instrument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The post-import hook meets an older version: it patches what exists, skips the rest."""
    caplog.set_level(logging.DEBUG, logger="otel_rerank")
    (tmp_path / "late_drift_lib.py").write_text(
        "class Client:\n    def search(self):\n        return 'hits'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_drift_lib", raising=False)
    patcher = Patcher()
    patcher.apply(
        [
            Target("late_drift_lib", "Client", "search", _passthrough),
            Target("late_drift_lib", "Client", "query_points", _passthrough),
            Target("late_drift_lib", "AsyncClient", "search", _passthrough),
        ]
    )
    assert "late_drift_lib" not in sys.modules  # nothing imported by instrumenting
    module = importlib.import_module("late_drift_lib")  # the hook runs here; must not raise
    try:
        assert module.Client().search() == ("wrapped", "hits")
        assert len(_debug_lines(caplog, "query_points")) == 1
        assert len(_debug_lines(caplog, "AsyncClient")) == 1
    finally:
        patcher.undo()
        sys.modules.pop("late_drift_lib", None)


class _DriftedInstrumentor(RagInstrumentor):  # type: ignore[misc]
    name = "drifted"
    package = "fake_drift_lib"
    supported = "fake-drift-lib >= 1"

    def targets(self) -> list[Target]:
        return [
            Target("fake_drift_lib", "Client", "present", _passthrough),
            Target("fake_drift_lib", "Client", "gone", _passthrough),
            Target("fake_drift_lib", "Gone", "gone", _passthrough),
        ]


def test_an_instrumentor_with_drifted_targets_instruments_and_uninstruments(
    fake_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_rerank")
    instrumentor = _DriftedInstrumentor()
    instrumentor.instrument(skip_dep_check=True)
    try:
        assert instrumentor.is_instrumented_by_opentelemetry
        assert fake_module.Client().present() == ("wrapped", "present")
        assert len(_debug_lines(caplog, "Client.gone")) == 1
        assert len(_debug_lines(caplog, "fake_drift_lib.Gone")) == 1
    finally:
        instrumentor.uninstrument()
    assert fake_module.Client().present() == "present"


# -- the real libraries, with a piece taken away ---------------------------------------------


def _real_targets() -> list[Any]:
    params = []
    for name, cls in instrumentation.available().items():
        if not cls.is_installed():
            continue
        targets = list(cls().targets())
        # faiss finds its classes in the module at import (tested in test_faiss)
        if targets and isinstance(targets[0].owner, str):
            params.append(pytest.param(name, cls, targets[0], id=name))
    return params


def _owner(target: Target) -> Any:
    obj: Any = importlib.import_module(target.module)
    assert isinstance(target.owner, str)
    for part in target.owner.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.slow
@pytest.mark.parametrize(("library", "cls", "target"), _real_targets())
def test_real_library_missing_a_method(
    library: str,
    cls: type[RagInstrumentor],
    target: Target,
    otel: Otel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    otel_rerank.uninstrument()  # the fixture instrumented the current version already
    caplog.set_level(logging.DEBUG, logger="otel_rerank")
    owner = _owner(target)
    assert target.method in owner.__dict__
    monkeypatch.delattr(owner, target.method)  # as in a version without it
    assert otel.instrument(libraries=[library]) == [library]
    patched = cls()._patcher.patched
    try:
        assert (owner, target.method) not in patched
        if len(cls().targets()) > 1:  # what exists is still patched
            assert patched, "nothing else was patched"
        assert len(_debug_lines(caplog, f"{owner.__qualname__}.{target.method}")) == 1
    finally:
        otel_rerank.uninstrument()
    assert not any(is_replacement(o.__dict__.get(m)) for o, m in patched)


@pytest.mark.slow
@pytest.mark.parametrize(("library", "cls", "target"), _real_targets())
def test_real_library_missing_a_class(
    library: str,
    cls: type[RagInstrumentor],
    target: Target,
    otel: Otel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    otel_rerank.uninstrument()
    caplog.set_level(logging.DEBUG, logger="otel_rerank")
    module = importlib.import_module(target.module)
    assert isinstance(target.owner, str)
    top = target.owner.split(".")[0]
    monkeypatch.delattr(module, top)  # as in a version that moved or renamed the class
    assert otel.instrument(libraries=[library]) == [library]
    try:
        same_class = [
            t for t in cls().targets() if t.module == target.module and t.owner == target.owner
        ]
        assert len(_debug_lines(caplog, f"{target.module}.{target.owner} not found")) == len(
            same_class
        )
    finally:
        otel_rerank.uninstrument()
