"""The ``otel-rerank`` command: ``demo``, ``bench`` and ``report``.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` function that
registers its arguments and a handler. Handlers signal bad input by raising
:class:`UsageError`; :func:`main` turns it (and argparse's own complaints) into one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from otel_rerank.version import __version__

EXIT_USAGE = 2
_SUBCOMMANDS = ("demo", "bench", "report")


class UsageError(Exception):
    """Bad input from the user: a missing file, a malformed line, a value out of range."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage dump: the message already names the problem.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every available subcommand registered."""
    parser = _Parser(
        prog="otel-rerank",
        description="Measure what a reranker costs and buys in a RAG pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(f"otel_rerank.cli._{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"otel_rerank.cli._{name}":
                raise
            continue  # subcommand not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except UsageError as exc:
        print(f"otel-rerank {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"otel-rerank {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
