"""What the tools (bench, report, demo) share, so that each is written once.

The latency percentile the benchmark and the report both compute; the aligned text table
they print; the Python standard library's own docstrings, which the
benchmark's bundled query set and the demo's corpus are both cut from (every machine that
runs Python has them, under the PSF licence, so nothing is downloaded); and the atomic file
write their caches and outputs use. Part of the tools layer (docs/architecture.md): the
core never imports it, and nothing here needs more than the standard library.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

#: Pure-library modules with no import-time side effects, in a fixed order (what is built
#: from them is deterministic for a given Python version).
STDLIB_MODULES: Final = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "bz2", "calendar",
    "cmath", "codecs", "collections", "collections.abc", "colorsys", "concurrent.futures",
    "configparser", "contextlib", "contextvars", "copy", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "dis", "email", "email.message", "email.utils", "enum", "errno",
    "filecmp", "fnmatch", "fractions", "ftplib", "functools", "gc", "getpass", "gettext",
    "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "html.parser",
    "http.client", "http.cookies", "http.server", "imaplib", "importlib", "importlib.metadata",
    "inspect", "io", "ipaddress", "itertools", "json", "keyword", "linecache", "locale",
    "logging", "logging.handlers", "lzma", "mailbox", "math", "mimetypes", "mmap",
    "multiprocessing", "netrc", "numbers", "operator", "os", "os.path", "pathlib", "pickle",
    "pkgutil", "platform", "plistlib", "poplib", "pprint", "queue", "quopri", "random", "re",
    "reprlib", "sched", "secrets", "select", "selectors", "shelve", "shlex", "shutil",
    "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "stat", "statistics",
    "string", "struct", "subprocess", "sys", "sysconfig", "tarfile", "tempfile", "textwrap",
    "threading", "time", "timeit", "tokenize", "tomllib", "trace", "traceback", "types",
    "typing", "unicodedata", "unittest", "unittest.mock", "urllib.parse", "urllib.request",
    "uuid", "warnings", "wave", "weakref", "xml.dom.minidom", "xml.etree.ElementTree",
    "zipfile", "zlib", "zoneinfo", "cmd", "code", "codeop", "compileall", "copyreg",
    "doctest", "fileinput", "getopt", "modulefinder", "optparse", "pdb", "pickletools",
    "profile", "pstats", "py_compile", "pyclbr", "rlcompleter", "runpy", "symtable", "token",
    "tracemalloc", "urllib.error", "urllib.robotparser", "wsgiref.util", "xml.sax",
    "xmlrpc.client", "zipapp", "zipimport",
)  # fmt: skip


#: How :func:`percentile` computes, for the tools' output.
PERCENTILE_METHOD: Final = "linear interpolation between closest ranks (numpy default, type 7)"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation (numpy's default, type 7).

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    # Written out, not numpy's: `otel-rerank report` runs on a plain install (numpy is the
    # cli extra's), and the stdlib's statistics.quantiles gives whole-percent cut points
    # only. The test suite checks it against numpy.percentile.
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def text_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, label_column: bool = False
) -> list[str]:
    """``header``, a rule and ``rows`` as aligned lines, columns two spaces apart.

    Numbers are right-aligned; with ``label_column`` the first column holds names and is
    left-aligned (trailing blanks are cut).
    """
    rows = list(rows)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        aligned = [c.rjust(w) for c, w in zip(cells, widths, strict=True)]
        if label_column:
            aligned[0] = cells[0].ljust(widths[0])
        return "  ".join(aligned).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def stdlib_docstrings(modules: Sequence[str] = STDLIB_MODULES) -> Iterator[tuple[str, str]]:
    """``(dotted name, docstring)`` of each module, public class, function and method.

    A module that does not import on this platform or build (no ``_ssl``) is skipped. A
    package's members defined in its private submodules (asyncio, email) count as its own;
    a method whose docstring is its class's is not repeated.
    """
    for module_name in modules:
        # Importing, and even reading ``__doc__`` (typing.io), can warn about deprecations
        # that are no concern of ours; the filter must not outlive this module's walk.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = list(_module_docstrings(module_name))
        yield from found


def _module_docstrings(module_name: str) -> Iterator[tuple[str, str]]:
    try:
        module = importlib.import_module(module_name)
    except Exception:  # absent on this platform or build (e.g. no _ssl)
        return
    if module.__doc__:
        yield module_name, module.__doc__
    for name, member in _own_members(module, module.__name__):
        if member.__doc__:
            yield f"{module_name}.{name}", member.__doc__
        if inspect.isclass(member):
            for method_name, method in _own_members(member, module.__name__):
                if method.__doc__ and method.__doc__ != member.__doc__:
                    yield f"{module_name}.{name}.{method_name}", method.__doc__


def _own_members(owner: Any, module_name: str) -> Iterator[tuple[str, Any]]:
    try:
        names = sorted(vars(owner))
    except TypeError:
        return
    for name in names:
        if name.startswith("_"):
            continue
        member = vars(owner)[name]
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            yield name, member
        elif inspect.isclass(member) or inspect.isroutine(member):
            home = getattr(member, "__module__", None) or module_name
            # Packages (asyncio, email, ...) define their members in private submodules.
            if home == module_name or home.startswith(module_name + "."):
                yield name, member


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into a sibling of ``path``, then rename it into place.

    A reader never sees half a file (or directory), and an interrupted run leaves none
    behind under the real name. A directory already at ``path`` is replaced.

    Raises:
        OSError: the write or the rename failed (the temporary sibling is removed).
    """
    target = Path(path)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):  # what could not be written may not be removable
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink(missing_ok=True)
        raise
    return target
