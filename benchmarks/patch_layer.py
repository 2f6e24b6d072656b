"""The patcher's layer alone, warm: what a patched method costs per call over the bare one.

The patcher (``instrumentation/_base.py``) puts a plain Python function into the class that
defines a wrapped method; it used to put a ``wrapt.FunctionWrapper`` there (wrapt's C
extension), which makes a bound wrapper object on every attribute access. This script times
both on a trivial method (``obj.work(1)``, attribute access included), warm (nothing else
runs between calls), in one process with no SDK: the bare call; an A/A copy of it; each
layer around a pass-through wrapper (the plain replacement as the patcher makes it,
compiled where ``_speedups`` is built, and its Python twin); each layer around ours' generic wrapper
(``Method.wrapper``, which with no SDK asks ``_span.records()`` and calls straight through).
Per block every case runs ``--calls`` calls in a loop timed as a whole (process CPU time:
another process on a shared machine does not count), in a rotated order; overhead = case -
bare in the same block, per call; the median over blocks and the interquartile range. For
the cost after a model's forward pass (cold caches) see ``no_sdk_split.py``. Run::

    .venv/bin/python benchmarks/patch_layer.py [--blocks 15] [--calls 20000]
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import wrapt
from library_overhead import _Parser, _positive  # benchmarks/ is on sys.path as a script
from no_sdk_split import python_replacement

from otel_rerank import _span
from otel_rerank.instrumentation._base import Method, Start, _plain_replacement

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _passthrough(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


_OURS = Method(stage=_span.RERANK, provider="bench", start=lambda instance, arguments: Start())


def _instance(layer: Callable[[Any, Wrapper], Any] | None, wrapper: Wrapper) -> Any:
    """An instance of a fresh class whose ``work`` is wrapped by ``layer`` (bare: None)."""

    class Worker:
        def work(self, x: int) -> int:
            return x

    if layer is not None:
        Worker.work = layer(Worker.__dict__["work"], wrapper)  # type: ignore[method-assign]
    return Worker()


def cases() -> dict[str, Any]:
    """The case name -> the instance whose ``work`` it calls."""
    return {
        "bare": _instance(None, _passthrough),
        "A/A": _instance(None, _passthrough),
        "wrapt FunctionWrapper, pass-through": _instance(wrapt.FunctionWrapper, _passthrough),
        "plain replacement, pass-through": _instance(_plain_replacement, _passthrough),
        "  its Python twin": _instance(python_replacement, _passthrough),
        "wrapt + Method.wrapper (before)": _instance(wrapt.FunctionWrapper, _OURS.wrapper),
        "plain + Method.wrapper (now)": _instance(_plain_replacement, _OURS.wrapper),
    }


def _time_block(obj: Any, calls: int) -> float:
    """Process CPU nanoseconds per call of ``obj.work(1)`` over ``calls`` calls."""
    loop = range(calls)
    started = time.process_time_ns()
    for _ in loop:
        obj.work(1)
    return (time.process_time_ns() - started) / calls


def measure(blocks: int, calls: int) -> dict[str, tuple[float, float]]:
    """Case -> (median overhead over bare in ns per call, its IQR over blocks)."""
    if _span.records() is not None:
        raise SystemExit("patch_layer.py: an SDK is configured; this measures the layer without")
    instances = cases()
    names = list(instances)
    for obj in instances.values():
        _time_block(obj, min(calls, 1000))
    per_block: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for block in range(blocks):
            shift = block % len(names)
            for name in names[shift:] + names[:shift]:
                per_block[name].append(_time_block(instances[name], calls))
    finally:
        gc.enable()
    result = {"bare": (statistics.median(per_block["bare"]), 0.0)}
    for name in names[1:]:
        overheads = [c - b for c, b in zip(per_block[name], per_block["bare"], strict=True)]
        result[name] = (statistics.median(overheads), _iqr(overheads))
    return result


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = _Parser(prog="patch_layer.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=_positive, default=15)
    parser.add_argument("--calls", type=_positive, default=20000)
    args = parser.parse_args(argv)
    result = measure(args.blocks, args.calls)
    bare, _ = result.pop("bare")
    print(
        f"obj.work(1), warm, no SDK, process CPU time: bare {bare:.0f} ns per call; "
        f"{args.blocks} blocks of {args.calls} calls; overhead per call, median (IQR over blocks)"
    )
    for name, (overhead, iqr) in result.items():
        print(f"  {name:<36} {overhead:+8.0f} ns ({iqr:.0f})")


if __name__ == "__main__":
    main()
