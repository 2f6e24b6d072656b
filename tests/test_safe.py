"""The one internal-error helper: ``guard`` as a context manager and as a decorator."""

from __future__ import annotations

import pytest

from otel_rerank import _safe
from otel_rerank._safe import guard, guarded


def _fails() -> int:
    raise KeyError("ours")


def test_guard_swallows_and_logs_in_production(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)
    reached = []
    with caplog.at_level("DEBUG", logger="otel_rerank"):
        with guard("block"):
            _fails()
            reached.append("after")  # skipped
        assert guard("decorated")(_fails)() is None
        assert guarded(_fails)() is None
    assert reached == []
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "otel-rerank: internal error in block (ignored)",
        "otel-rerank: internal error in decorated (ignored)",
        f"otel-rerank: internal error in {_fails.__qualname__} (ignored)",
    ]
    assert all(r.exc_info is not None for r in caplog.records)


def test_guard_reraises_under_the_test_suites_strict_mode() -> None:
    assert _safe.STRICT  # conftest
    with pytest.raises(KeyError), guard("block"):
        _fails()
    with pytest.raises(KeyError):
        guard("decorated")(_fails)()


def test_guard_passes_results_and_interrupts_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)
    assert guard("ok")(lambda x: x + 1)(1) == 2
    with pytest.raises(KeyboardInterrupt), guard("interrupt"):
        raise KeyboardInterrupt
