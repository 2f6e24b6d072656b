"""The package's layers hold (docs/architecture.md): a small AST check over ``src/otel_rerank``.

core (the top-level modules) imports neither instrumentation internals nor tools;
instrumentation imports core and itself only; tools (bench, report, demo, cli, models,
_toolkit) import core, and each other only through the documented small APIs: every tool
may use ``models`` (local model loading, the cache) and ``_toolkit`` (the text table, the
standard-library docstrings, atomic writes), and ``cli`` (the front end) may use every tool.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "otel_rerank"
TOOLS = frozenset({"bench", "report", "demo", "cli", "models", "_toolkit"})
#: what every tool shares
SHARED = ("models", "_toolkit")
#: sideways imports between tools that are part of the design: (importer, imported)
TOOL_APIS = frozenset(
    {(tool, shared) for tool in TOOLS for shared in SHARED} | {("cli", tool) for tool in TOOLS}
)
#: violations not fixed yet, each with why (none today; a fixed one leaves the list)
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every otel_rerank module ``path`` imports (lazily inside functions too)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                as_path = SRC / candidate.replace(".", "/")
                is_module = as_path.with_suffix(".py").exists() or as_path.is_dir()
                found.add(candidate if is_module else base)
    return {name for name in found if name.split(".")[0] == "otel_rerank"}


def layer(module: str) -> tuple[str, str]:
    """(layer, unit): ``core``/``instrumentation``/``tools`` and, for tools, which one."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] == "instrumentation":
        return "instrumentation", "instrumentation"
    if len(parts) > 1 and parts[1] in TOOLS:
        return "tools", parts[1]
    return "core", "core"


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or ``None`` when it may."""
    (source, source_unit), (target, target_unit) = layer(importer), layer(imported)
    if source == "core":
        if target == "tools":
            return "core imports a tool"
        if target == "instrumentation" and imported != "otel_rerank.instrumentation":
            return "core imports instrumentation internals (only the registry package)"
    elif source == "instrumentation":
        if target == "tools":
            return "instrumentation imports a tool"
    elif target == "tools" and source_unit != target_unit:
        if (source_unit, target_unit) not in TOOL_APIS:
            return f"tool {source_unit} imports tool {target_unit} sideways"
    elif target == "instrumentation" and imported != "otel_rerank.instrumentation":
        return "a tool imports instrumentation internals"
    return None


def edges() -> set[tuple[str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        found.update((module, imported) for imported in _imports(path, module))
    return found


def test_the_layers_hold() -> None:
    broken = sorted(
        f"{a} -> {b}: {why}"
        for a, b in edges()
        if (why := violation(a, b)) is not None and (a, b) not in KNOWN_EXCEPTIONS
    )
    assert broken == []


def test_every_known_exception_still_exists() -> None:
    # Fixed exceptions leave the list, so it never hides a new import of the same kind.
    assert edges() >= KNOWN_EXCEPTIONS


def test_the_check_catches_each_kind_of_violation() -> None:
    assert violation("otel_rerank.budget", "otel_rerank.instrumentation._common")
    assert violation("otel_rerank.shadow", "otel_rerank.report._stats")
    assert violation("otel_rerank.instrumentation.cohere._attributes", "otel_rerank.bench")
    assert violation("otel_rerank.bench._harness", "otel_rerank.report._stats")
    assert violation("otel_rerank._span", "otel_rerank._toolkit")  # a tool, to the core
    assert violation("otel_rerank._toolkit", "otel_rerank.bench")
    assert violation("otel_rerank.bench._bundled", "otel_rerank._toolkit") is None
    assert violation("otel_rerank.report", "otel_rerank.instrumentation._common")
    assert violation("otel_rerank", "otel_rerank.instrumentation") is None
    assert violation("otel_rerank.bench._harness", "otel_rerank._values") is None
    assert violation("otel_rerank.demo.pipeline", "otel_rerank.models") is None
    assert violation("otel_rerank.cli._report", "otel_rerank.report") is None


def test_importing_the_core_loads_no_tool_and_nothing_beyond_the_base_dependencies() -> None:
    # A fresh interpreter: `import otel_rerank` (and its auto-instrumenting twin) must load
    # no tool module and none of the cli extra's packages (numpy, matplotlib, tqdm).
    probe = (
        "import sys, otel_rerank, otel_rerank.auto\n"
        "tools = sorted(m for m in sys.modules if m.split('.')[:2] in "
        f"[['otel_rerank', t] for t in {sorted(TOOLS)!r}])\n"
        "extras = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'matplotlib', 'tqdm', 'torch', 'sentence_transformers'})\n"
        "print(tools, extras)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[] []", done.stdout
