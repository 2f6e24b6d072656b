"""What the tools share (``otel_rerank._toolkit``): the table, the docstrings, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_rerank import _toolkit, models
from otel_rerank.bench import _bundled
from otel_rerank.demo import build_passages


def test_a_table_right_aligns_numbers_and_can_left_align_a_label_column() -> None:
    header, rows = ("stage", "p95 ms"), [("rerank", "12.50"), ("end-to-end", "3.00")]
    assert _toolkit.text_table(header, rows) == [
        "     stage  p95 ms",
        "----------  ------",
        "    rerank   12.50",
        "end-to-end    3.00",
    ]
    assert _toolkit.text_table(header, rows, label_column=True) == [
        "stage       p95 ms",
        "----------  ------",
        "rerank       12.50",
        "end-to-end    3.00",
    ]


def test_the_docstrings_are_walked_once_for_the_demo_and_the_benchmark() -> None:
    found = dict(_toolkit.stdlib_docstrings(("json", "no_such_module_here")))
    assert found["json"].startswith("JSON (JavaScript Object Notation)")
    assert "json.dumps" in found and "json.JSONEncoder.encode" in found
    assert not [name for name in found if name.split(".")[-1].startswith("_")]
    # Both builders read that walk: a demo passage and a benchmark query come from it.
    assert {p.title for p in build_passages(100_000, modules=("json",))} <= set(found)
    documents = {doc for _, doc in _bundled.docstring_pairs(("json",))}
    assert documents and all(" ".join(d.split()) == d for d in documents)


def test_an_atomic_write_replaces_a_file_or_a_directory_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "entry"
    _toolkit.write_atomically(target, lambda p: p.write_text("one"))
    _toolkit.write_atomically(target, lambda p: p.write_text("two"))
    assert target.read_text() == "two"
    target.unlink()
    target.mkdir()  # a half-built directory
    (target / "stale").write_text("x")

    def directory(path: Path) -> None:
        path.mkdir()
        (path / "weights").write_text("w")

    _toolkit.write_atomically(target, directory)
    assert sorted(p.name for p in target.iterdir()) == ["weights"]

    def fail(path: Path) -> None:
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        _toolkit.write_atomically(tmp_path / "other", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry"]


def test_an_unwritable_cache_entry_is_one_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(models.ModelUnavailableError) as caught:
        models.write_cache(tmp_path / "missing-dir" / "x", lambda p: p.write_text("x"), "a set")
    message = str(caught.value)
    assert message.startswith(f"cannot write a set to {tmp_path / 'missing-dir' / 'x'} (")
    assert message.endswith("set OTEL_RERANK_CACHE_DIR to a writable directory")
    assert "\n" not in message
