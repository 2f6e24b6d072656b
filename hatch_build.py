"""Hatch build hook: compiles otel-rerank's optional C speed-ups, ``otel_rerank._speedups``.

The patcher's replacement of a library method and three pure functions every reranker call
runs have compiled versions in ``src/otel_rerank/_speedups.c`` (the Python ones stay the
reference and run wherever the module is missing). This hook compiles it with the
interpreter's own compiler settings (``sysconfig``): into the source tree for an editable
install, which imports from ``src/``, and into a temporary folder whose file the wheel then
carries, as a platform wheel. Without a C compiler, or with ``OTEL_RERANK_PURE_PYTHON=1``,
it prints why and the package builds as pure Python: it records the same attributes, only
slower.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src", "otel_rerank", "_speedups.c")


class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compiles ``_speedups.c`` for a wheel or an editable install (never for an sdist)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("OTEL_RERANK_PURE_PYTHON") == "1":
            _say("OTEL_RERANK_PURE_PYTHON=1: built as pure Python")
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        source = Path(self.root, SOURCE)
        if version == "editable":  # imported from src/: the module goes beside the source
            target = source.with_name(f"_speedups{suffix}")
        else:
            self._folder = tempfile.mkdtemp(prefix="otel-rerank-speedups-")
            target = Path(self._folder, f"_speedups{suffix}")
        failure = _compile(source, target)
        if failure is not None:
            _say(f"{failure}; built as pure Python (the same attributes, only slower)")
            return
        if version != "editable":
            build_data["force_include"][str(target)] = f"otel_rerank/_speedups{suffix}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        folder = getattr(self, "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _compile(source: Path, target: Path) -> str | None:
    """Compile and link ``source`` into the extension module ``target`` as the interpreter
    builds its own (its ``CC``, ``CFLAGS``, ``CCSHARED`` and ``LDSHARED``); the reason it
    could not, else ``None``."""
    compiler = sysconfig.get_config_var("CC")
    linker = sysconfig.get_config_var("LDSHARED")
    if not compiler or not linker:
        return "no C compiler configured for this Python"
    flags = shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    flags += shlex.split(sysconfig.get_config_var("CCSHARED") or "")
    include = sysconfig.get_paths()["include"]
    obj = target.with_suffix(".o")
    steps = (
        [*shlex.split(compiler), *flags, "-I", include, "-c", str(source), "-o", str(obj)],
        [*shlex.split(linker), str(obj), "-o", str(target)],
    )
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                return f"{shlex.join(step[:1])} failed: {last}"
    except OSError as error:  # the compiler named is not installed
        return f"cannot run the C compiler: {error}"
    finally:
        obj.unlink(missing_ok=True)
    return None


def _say(message: str) -> None:
    print(f"otel-rerank build: {message}", file=sys.stderr)
