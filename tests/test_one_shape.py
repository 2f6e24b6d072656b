"""Rules of the one shape (docs/architecture.md) that a reader cannot see from one file.

An AST pass over ``src/otel_rerank``: the content decision is made in one place (the
stage span: wrappers hand content to ``StageSpan.record_content``, never ask whether
capture is on); and extractors share one pair type (``_span.Attributes``) instead of each
declaring its own alias.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "otel_rerank"
#: the one module that decides whether content is written
PRIVACY_GATE = PACKAGE / "_span.py"


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}


def _reads_capturing(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "capturing"
    ]


def _assigned_names(node: ast.stmt) -> list[str]:
    """Names a module-level statement binds by assignment (``X = ...``, ``X: T = ...``)."""
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def test_only_the_stage_span_asks_whether_content_is_captured() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): lines
        for path, tree in _trees().items()
        if path != PRIVACY_GATE and (lines := _reads_capturing(tree))
    }
    assert offenders == {}, "hand the content to StageSpan.record_content instead"


def test_no_module_declares_its_own_pair_alias() -> None:
    aliases = {
        str(path.relative_to(PACKAGE))
        for path, tree in _trees().items()
        for node in tree.body
        for target in _assigned_names(node)
        if target == "Pairs"
    }
    assert aliases == set(), "extractors yield _span.Attributes"


def test_the_checks_catch_what_they_look_for() -> None:
    tree = ast.parse("def w(call):\n    if call.capturing:\n        pass\n")
    assert _reads_capturing(tree) == [2]
    alias = ast.parse("Pairs = Iterator[tuple[str, Any]]\n").body[0]
    assert _assigned_names(alias) == ["Pairs"]
