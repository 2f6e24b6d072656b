"""Kendall tau-b on large score lists: the O(n log n) count against the old O(n²) one.

A decorated rerank that returns one score per candidate has its Kendall tau computed inside
the user's call, so its cost is the user's. The old count (``bisect.insort`` into a sorted
list: quadratic element moves) added 0.18 / 0.69 / 5.2 s for 50k / 100k / 300k scores. This
script times, side by side and alternating, the current ``kendall_tau_b`` on a list, on a
numpy array, on a list with numpy not loaded (the pure-Python merge sort), the old count
(``--old``, slow), and the current one twice as an A/A control (its ratio shows the noise).

    .venv/bin/python benchmarks/kendall_tau.py --sizes 100000,300000 --rounds 3 --old
"""

from __future__ import annotations

import argparse
import bisect
import functools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from otel_rerank._ranking import kendall_tau_b


def old_kendall_tau_b(scores: Sequence[float]) -> float | None:
    """The count before issue 13: binary search, but an O(n) insert per element."""
    n = len(scores)
    n0 = n * (n - 1) // 2
    counts: dict[float, int] = {}
    for s in scores:
        counts[s] = counts.get(s, 0) + 1
    tied = sum(c * (c - 1) // 2 for c in counts.values())
    discordant = 0
    later: list[float] = []
    for score in reversed(scores):
        discordant += len(later) - bisect.bisect_right(later, score)
        bisect.insort(later, score)
    concordant = n0 - tied - discordant
    return (concordant - discordant) / math.sqrt(n0 * (n0 - tied))


def pure_python(scores: Sequence[float]) -> float | None:
    """The merge sort without numpy (what an application without numpy gets)."""
    numpy = sys.modules.pop("numpy")
    try:
        return kendall_tau_b(scores)
    finally:
        sys.modules["numpy"] = numpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="also time the old O(n²) count")
    args = parser.parse_args()
    import numpy as np

    rng = random.Random(0)
    print(f"{'n':>8} {'case':<22} {'median s':>9} {'x A/A':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        scores = [rng.random() for _ in range(n)]
        array = np.asarray(scores)
        cases: dict[str, Callable[[], object]] = {
            "list (A)": functools.partial(kendall_tau_b, scores),
            "list (A again)": functools.partial(kendall_tau_b, scores),
            "numpy array": functools.partial(kendall_tau_b, array),
            "list, no numpy": functools.partial(pure_python, scores),
        }
        if args.old:
            cases["old insort count"] = functools.partial(old_kendall_tau_b, scores)
        assert pure_python(scores) == kendall_tau_b(scores)
        timings: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, fn in cases.items():  # alternating: a busy spell hits every case alike
                start = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - start)
        base = statistics.median(timings["list (A)"])
        for name, samples in timings.items():
            median = statistics.median(samples)
            print(f"{n:>8} {name:<22} {median:>9.3f} {median / base:>7.2f}")


if __name__ == "__main__":
    main()
