"""Python bytecodes executed per instrumented call: ours, the floor and a peer, counted exactly.

``library_overhead.py`` times each call; on a 2-core machine shared with other work its
A/A spread is often as large as the difference between two instrumentations. This script
counts instead: with ``sys.settrace`` opcode events on, it runs each case ``--calls`` times
and reports the bytecodes executed per call on top of the bare call (the count is the same
on every run and under any load). It counts the Python work each instrumentation adds
(ours, the OpenTelemetry SDK's, the library's), not time: the work done in C (numpy, the
dict and lock operations inside the SDK) is one opcode per call into it. Read it beside the
timings, as the load-free half of the picture. Cases:

* ``floor``   the hand-written span and histogram records of ``library_overhead.py``;
* ``ours``    ``otel_rerank.instrument(...)`` with the same SDK;
* ``no SDK``  ours with no SDK configured (no provider given, none global): what ours'
  patched methods add to a call in an app without one (not run beside a peer, whose run
  makes the SDK the global providers);
* ``--peer``  a peer's instrumentation (run with that peer's venv's Python, which
  ``library_overhead.py`` makes: ``.venv-bench-<peer>/bin/python``).

For each case it also prints what one call recorded (spans, attributes, histogram records), so
that a reader can tell less work from less recording (counters' adds are not counted).
``--by-function N`` also lists, per row, the N functions of otel-rerank that execute the
most bytecodes per call in ours (where to cut). Run::

    .venv/bin/python benchmarks/opcode_counts.py [--rows faiss,qdrant] [--calls 50] [--traces-only]
    .venv/bin/python benchmarks/opcode_counts.py --rows predict-50,rank-50 --by-function 15
    .venv-bench-traceverde/bin/python benchmarks/opcode_counts.py --rows qdrant --peer traceverde
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import library_overhead as lo  # benchmarks/ is on sys.path as a script

DEFAULT_ROWS = ("faiss", "qdrant", "chroma", "cohere", "openai-chat", "anthropic")


def count_opcodes(
    fn: Callable[[], object], calls: int, by_function: Counter[str] | None = None
) -> float:
    """Bytecodes executed per call of ``fn`` (after warm-up calls that fill the caches);
    ``by_function`` also gets the bytecodes of each of otel-rerank's functions, in total."""
    for _ in range(5):
        fn()
    executed = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal executed
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed += 1
            if by_function is not None:
                code = frame.f_code
                if _OURS in code.co_filename:
                    where = code.co_filename.rsplit(_OURS, 1)[1]
                    by_function[f"{where}:{code.co_qualname}"] += 1
        return tracer

    sys.settrace(tracer)
    try:
        for _ in range(calls):
            fn()
    finally:
        sys.settrace(None)
    return executed / calls


_OURS = "/otel_rerank/"


def _recorded(fn: Callable[[], object], sdk: lo.Sdk) -> str:
    """What one call of ``fn`` recorded: spans, their attributes, histogram records (any scope)."""
    sdk.tracer_provider.force_flush()
    before = _points(sdk)
    sdk.exporter.keep = []
    fn()
    sdk.tracer_provider.force_flush()
    spans, sdk.exporter.keep = sdk.exporter.keep, None
    points = _points(sdk) - before
    attributes = sum(len(span.attributes or {}) for span in spans)
    return f"{len(spans)} span(s), {attributes} attributes, {points} histogram record(s)"


def _points(sdk: lo.Sdk) -> int:
    data = sdk.reader.get_metrics_data()
    total = 0
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    total += getattr(point, "count", 0)  # histograms (a counter's sum is not)
    return total


def measure(
    row_keys: Sequence[str],
    calls: int,
    peer: str | None,
    by_function: dict[str, Counter[str]] | None = None,
    traces_only: bool = False,
) -> list[tuple[str, str, float, str]]:
    """``(row label, case, opcodes over bare per call, what one call recorded)`` rows;
    ``by_function`` (when given) gets each row's per-function counts of ours, in total;
    ``traces_only``: a TracerProvider alone, as ``library_overhead.py --traces-only``."""
    import otel_rerank

    found: list[tuple[str, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="otel-rerank-opcodes-") as workdir:
        fx = lo.Fixtures(Path(workdir))
        rows = [lo.ROWS[key] for key in row_keys]
        # With a peer the SDK is also made the global providers (peers record to those).
        sdk, ours_with_sdk = lo.sdk_and_ours(
            sorted({row.library for row in rows}), peer, traces_only
        )
        bare_counts: dict[str, float] = {}
        for row in rows:
            bare = row.make(fx)
            bare()
            base = bare_counts[row.key] = count_opcodes(bare, calls)
            ours_with_sdk()
            ours = row.make(fx)
            recording = lo._record_once(ours, sdk)
            functions: Counter[str] | None = None
            if by_function is not None:
                functions = by_function[row.label] = Counter()
            opcodes = count_opcodes(ours, calls, functions) - base
            found.append((row.label, "ours", opcodes, _recorded(ours, sdk)))
            if peer is None:  # (a peer's run makes the SDK global: there is no "no SDK")
                otel_rerank.instrument(capture_content=False, libraries=[row.library])
                unconfigured = row.make(fx)
                opcodes = count_opcodes(unconfigured, calls) - base
                found.append((row.label, "no SDK", opcodes, _recorded(unconfigured, sdk)))
            otel_rerank.uninstrument()
            floor = lo._floor(bare, recording, sdk)
            found.append(
                (row.label, "floor", count_opcodes(floor, calls) - base, _recorded(floor, sdk))
            )
        if peer is not None:
            label = lo.PEERS[peer].label
            lo._instrument_peer(peer, rows)
            for row in rows:
                if row.key not in lo.PEERS[peer].rows:
                    continue
                call = row.make(fx)  # some peers patch each client as it is built
                opcodes = count_opcodes(call, calls) - bare_counts[row.key]
                found.append((row.label, label, opcodes, _recorded(call, sdk)))
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = lo._Parser(prog="opcode_counts.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=_rows, default=list(DEFAULT_ROWS))
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--peer", choices=sorted(lo.PEERS))
    parser.add_argument(
        "--by-function",
        type=_count,
        default=0,
        metavar="N",
        help="also list the N functions of otel-rerank with the most bytecodes per call in ours",
    )
    parser.add_argument(
        "--traces-only",
        action="store_true",
        help="give ours and the peer a TracerProvider only (no metric point; the floor "
        "records none either), as library_overhead.py --traces-only",
    )
    args = parser.parse_args(argv)
    by_function: dict[str, Counter[str]] | None = {} if args.by_function else None
    found = measure(args.rows, args.calls, args.peer, by_function, args.traces_only)
    floors = {label: opcodes for label, case, opcodes, _ in found if case == "floor"}
    print(f"Python bytecodes per call over the bare call ({args.calls} calls each)")
    print(f"{'call':38} {'case':12} {'opcodes':>8} {'/floor':>7}  recorded per call")
    for label, case, opcodes, recorded in sorted(found, key=lambda r: list(floors).index(r[0])):
        ratio = f"{opcodes / floors[label]:7.2f}" if floors[label] > 0 else " " * 7
        print(f"{label:38} {case:12} {opcodes:8.0f} {ratio}  {recorded}")
    for label, functions in (by_function or {}).items():
        print(f"\n{label}: otel-rerank's functions in ours, bytecodes per call")
        for where, executed in functions.most_common(args.by_function):
            print(f"{executed / args.calls:8.0f}  {where}")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count of functions, got {text!r}")
    return value


def _rows(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in lo.ROWS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}; choose from {sorted(lo.ROWS)}")
    return keys


if __name__ == "__main__":
    main()
