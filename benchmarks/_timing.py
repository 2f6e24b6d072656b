"""The estimator the overhead benchmarks share: per-call CPU times and a low quantile.

On a shared machine the same call's CPU time is bimodal (neighbours slow it down by up to
2x for stretches of time), which moves means, medians and whole-block minimums by more
than the overheads being compared. What stays put is a low quantile of individually timed
calls, provided the cases being compared alternate often enough to see the quiet moments
alike; the benchmarks alternate them every few dozen calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def time_calls(fn: Callable[[], object], calls: int, into: list[int]) -> None:
    """Call ``fn`` ``calls`` times, appending each call's process CPU time (ns) to ``into``.

    CPU time of this process, not wall time: wall time also counts the moments another
    process held the core. The clock's own cost is in every case alike, the bare one
    included, so it cancels out of every overhead.
    """
    clock = time.process_time_ns
    for _ in range(calls):
        start = clock()
        fn()
        into.append(clock() - start)


def quantile_us(samples: list[int], q: float) -> float:
    """The ``q`` quantile (0..1, lower order statistic) of nanosecond samples, in µs."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000
