"""Where ours' cost with no SDK goes on the model rows: the wrapper layers one by one.

With no SDK configured, ours runs the same few bytecodes per call on every row, yet
``library_overhead.py`` measured +1.6 µs on faiss and +17-28 µs on the sentence-transformers
rows, inner-timed, while the check ran in the wrapper (until stop 21; now the patched
method asks it itself, and ``cold_call.py``'s ``no SDK`` case reads 1-4 µs after a forward
pass). This script splits that cost on one model row, in a process that never
configures an SDK, with every variant called directly (nothing switched in or out between
cases, so no type or method cache is touched): the bare call; an A/A copy; a pass-through
Python function around ``encode``/``predict``; the same function asking ours' no-SDK check
(``_span.records()``) first; a trivial wrapt ``FunctionWrapper`` (what the patcher used to
install) and the patcher's plain replacement (compiled where ``_speedups`` is built, then
its Python twin), each around a pass-through wrapper; and ours (the patcher's replacement,
``Method.wrapper`` behind it). The plain replacement asks "no SDK configured?" itself and,
with nothing configured, calls the original without its wrapper, so ours and the plain
replacement are the same code here. The estimator is
``library_overhead.py``'s inner-timed one: each call's process CPU time outside the model's
``_inference``, per block its 10th percentile, overhead = case - bare in the same block, the
median over blocks. ``--stub`` replaces ``_inference`` by a function returning a precomputed
result: the same code with warm caches, which shows how much of the cost is the forward pass
sweeping the CPU caches between calls; with ``--touch-mb N`` the stub also writes an N MB
buffer, sweeping the caches without a model.
Run::

    .venv/bin/python benchmarks/no_sdk_split.py [--rows encode-query,predict-50] [--blocks 12]
        [--calls 20] [--stub [--touch-mb 64]]
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import library_overhead as lo  # benchmarks/ is on sys.path as a script
from _patches import Patches
from _timing import InnerWork, quantile_us, time_calls_net

#: The rows whose call ours wraps on a model: (fixture, method, argument).
MODEL_ROWS: dict[str, tuple[str, str, Any]] = {
    "encode-empty": ("minilm", "encode", []),
    "encode-query": ("minilm", "encode", lo.QUERY),
    "encode-32": ("minilm", "encode", lo.PASSAGES_32),
    "predict-50": ("tiny_cross_encoder", "predict", [(lo.QUERY, d) for d in lo.DOCUMENTS_50]),
}


def _cases(
    fx: lo.Fixtures, key: str, stub: bool, touch_mb: float
) -> tuple[dict[str, Callable[[], object]], Any]:
    """The variants of row ``key``, each a callable; and the model (its inference shimmed)."""
    import numpy as np
    import wrapt

    import otel_rerank
    from otel_rerank import _span
    from otel_rerank.instrumentation._base import _plain_replacement

    fixture, name, argument = MODEL_ROWS[key]
    model = getattr(fx, fixture)
    cls = type(model)
    original = cls.__dict__[name]
    if stub:  # what the real inference returned for this argument, returned again
        real, returned = model._inference, []

        def capture(*args: Any, **kwargs: Any) -> Any:
            returned.append(real(*args, **kwargs))
            return returned[-1]

        model._inference = capture
        original(model, argument)
        buffer = np.zeros(int(touch_mb * 2**20) // 8) if touch_mb else None

        def stubbed(*args: Any, **kwargs: Any) -> Any:
            if buffer is not None:
                np.add(buffer, 1.0, out=buffer)  # writes every cache line: sweeps the caches
            return returned[0]

        model._inference = stubbed  # an instance attribute
    ours = Patches(
        lambda: otel_rerank.instrument(capture_content=False, libraries=[lo.ST]),
        lo.PATCHED_PACKAGES,
    )
    ours.on()
    patched = cls.__dict__[name]
    ours.off()
    trivial: Any = wrapt.FunctionWrapper(original, lambda wrapped, _, args, kwargs: wrapped(*args))
    plain: Any = _plain_replacement(original, lambda wrapped, _, args, kwargs: wrapped(*args))
    python_plain: Any = python_replacement(
        original, lambda wrapped, _, args, kwargs: wrapped(*args)
    )
    records = _span.records

    def passthrough(*args: Any) -> Any:
        return original(*args)

    def checked(*args: Any) -> Any:
        if records() is None:
            return original(*args)
        raise RuntimeError("an SDK is configured: this script measures ours without one")

    bare: Callable[[], object] = lambda: original(model, argument)  # noqa: E731
    return {
        "bare": bare,
        "A/A": bare,
        "pass-through function": lambda: passthrough(model, argument),
        "  + _span.records()": lambda: checked(model, argument),
        "trivial wrapt wrapper": lambda: trivial.__get__(model, cls)(argument),
        "trivial plain patch": lambda: plain.__get__(model, cls)(argument),
        "  the Python one": lambda: python_plain.__get__(model, cls)(argument),
        "ours, no SDK": lambda: patched.__get__(model, cls)(argument),
    }, model


def python_replacement(original: Any, wrapper: Any) -> Any:
    """The patcher's plain replacement as its Python function, also where the compiled
    ``_speedups.Replacement`` is built (the patcher's choice there)."""
    from otel_rerank.instrumentation import _base

    compiled, _base._CompiledReplacement = _base._CompiledReplacement, None
    try:
        return _base._plain_replacement(original, wrapper)
    finally:
        _base._CompiledReplacement = compiled


def measure(key: str, blocks: int, calls: int, stub: bool, touch_mb: float) -> dict[str, Any]:
    """Per-case inner-timed overheads over ``blocks`` blocks of ``calls`` calls (µs)."""
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="otel-rerank-bench-") as workdir:
        fx = lo.Fixtures(Path(workdir))
        cases, model = _cases(fx, key, stub, touch_mb)
        inner = InnerWork()
        inner.install(model, "_inference")
        for fn in cases.values():
            fn()
        names = list(cases)
        per_block: dict[str, list[float]] = {name: [] for name in names}
        gc.collect()
        gc.freeze()
        for block in range(blocks):
            shift = block % len(names)
            for name in names[shift:] + names[:shift]:
                fn = cases[name]
                fn()  # warm-up after the previous case
                samples: list[int] = []
                net: list[int] = []
                time_calls_net(fn, calls, samples, net, inner)
                per_block[name].append(quantile_us(net, lo.QUANTILE))
            print(f"{key}: block {block + 1}/{blocks} done", file=sys.stderr, flush=True)
    overheads = {
        name: [c - b for c, b in zip(per_block[name], per_block["bare"], strict=True)]
        for name in names[1:]
    }
    return {
        "bare_us": statistics.median(per_block["bare"]),
        "overhead_us": {name: statistics.median(values) for name, values in overheads.items()},
        "iqr_us": {name: lo._iqr(values) for name, values in overheads.items()},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = lo._Parser(prog="no_sdk_split.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=lo._csv(list(MODEL_ROWS), "row"),
        default=["encode-query", "predict-50"],
        help=f"comma-separated subset of {', '.join(MODEL_ROWS)}",
    )
    parser.add_argument("--blocks", type=lo._positive, default=12)
    parser.add_argument("--calls", type=lo._positive, default=20)
    parser.add_argument("--stub", action="store_true", help="stub out the model's inference")
    parser.add_argument(
        "--touch-mb",
        type=lo._positive_float,
        help="with --stub: the stub writes a buffer this large per call (sweeps the caches)",
    )
    args = parser.parse_args(argv)
    if args.touch_mb and not args.stub:
        parser.error("--touch-mb needs --stub")
    for key in args.rows:
        result = measure(key, args.blocks, args.calls, args.stub, args.touch_mb or 0.0)
        stubbed = ""
        if args.stub:
            touched = f", writing {args.touch_mb:g} MB per call" if args.touch_mb else ""
            stubbed = f" (inference stubbed out{touched})"
        print()
        print(
            f"{key}{stubbed}: no SDK configured; "
            f"bare outside _inference {lo._us(result['bare_us'])}; {args.blocks} blocks of "
            f"{args.calls} calls; overhead outside _inference, median (IQR over blocks)"
        )
        for name, value in result["overhead_us"].items():
            print(f"  {name:<24} {lo._signed(value):>10} ({lo._us(result['iqr_us'][name])})")


if __name__ == "__main__":
    main()
