"""The estimators the overhead benchmarks share: per-call CPU times and a low quantile.

On a shared machine the same call's CPU time is bimodal (neighbours slow it down by up to
2x for stretches of time), which moves means, medians and whole-block minimums by more
than the overheads being compared. What stays put is a low quantile of individually timed
calls, provided the cases being compared alternate often enough to see the quiet moments
alike; the benchmarks alternate them every few dozen calls.

Where the call's own work is much larger than the overhead (a model's forward pass, a
vector search), even that quantile moves by more than the overhead from block to block.
``InnerWork`` then times the library's heavy inner functions within each call, so that a
call can be summed up by its CPU time outside them (``time_calls_net``): the inner work's
noise leaves each call's number, and what remains is the library's own glue around it plus
any instrumentation wrapped around the call.
"""

from __future__ import annotations

import functools
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


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


class InnerWork:
    """Process CPU time each call spends inside chosen library functions, and how often.

    ``install(owner, name)`` replaces ``owner.name`` (a class, module or instance attribute)
    by a shim that times the original with the same clock as ``time_calls``; the time adds
    up into ``ns`` (reset per call by ``time_calls_net``) and each entry counts in
    ``entries``. A shimmed function called inside another one is not timed twice. The shim
    calls what the attribute would resolve to without it (see ``_hidden``). While
    ``watching()``, the shim also records the source file of every Python function called
    inside it, which is how a benchmark checks what runs within the inner work.
    """

    def __init__(self) -> None:
        self.ns = 0
        self.entries = 0
        self._installed: set[tuple[int, str]] = set()
        self._inside = False
        self._watch: Callable[[Any, str, Any], object] | None = None

    def install(self, owner: Any, name: str) -> str:
        """Shim ``owner.name`` (once: a second install of the same one is a no-op); its label."""
        if isinstance(owner, (type, types.ModuleType)):
            label = f"{owner.__name__}.{name}"
        else:
            label = f"{type(owner).__name__}().{name}"
        if (id(owner), name) in self._installed:
            return label
        self._installed.add((id(owner), name))
        original = _hidden(owner, name)
        clock = time.process_time_ns

        @functools.wraps(getattr(owner, name))
        def shim(*args: Any, **kwargs: Any) -> Any:
            if self._inside:
                return original(*args, **kwargs)
            self._inside = True
            watch = self._watch
            start = clock()
            try:
                if watch is None:
                    return original(*args, **kwargs)
                previous = sys.getprofile()
                sys.setprofile(watch)
                try:
                    return original(*args, **kwargs)
                finally:
                    sys.setprofile(previous)
            finally:
                self.ns += clock() - start
                self.entries += 1
                self._inside = False

        # A plain function: as a class attribute it binds like the original method, as an
        # instance or module attribute it is called as is (the original bound or plain).
        setattr(owner, name, shim)
        return label

    @contextmanager
    def watching(self) -> Iterator[set[str]]:
        """The source files of the Python functions called inside the inner work meanwhile."""
        files: set[str] = set()

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                files.add(frame.f_code.co_filename)

        self._watch = profile
        try:
            yield files
        finally:
            self._watch = None


def _hidden(owner: Any, name: str) -> Callable[..., Any]:
    """What ``owner.name`` calls, for a shim that will hide it.

    An attribute the owner holds itself is taken as it is now. One it inherits (an
    instance's method, a method a class inherits from a base) is looked up again on every
    call: an instrumentation installed later patches the class that defines it, and the
    shim, set on the instance or the subclass, would otherwise hide the patch from every
    case; looked up late, the patch runs inside the shim, where the set-up check sees it.
    """
    if isinstance(owner, types.ModuleType) or name in getattr(owner, "__dict__", {}):
        held: Callable[..., Any] = getattr(owner, name)
        return held
    if isinstance(owner, type):

        def inherited(self: Any, *args: Any, **kwargs: Any) -> Any:
            return getattr(super(owner, self), name)(*args, **kwargs)

        return inherited
    cls = type(owner)

    def method(*args: Any, **kwargs: Any) -> Any:
        return getattr(cls, name).__get__(owner, cls)(*args, **kwargs)

    return method


def time_calls_net(
    fn: Callable[[], object], calls: int, into: list[int], net_into: list[int], inner: InnerWork
) -> None:
    """``time_calls``, also appending each call's CPU time outside ``inner`` to ``net_into``.

    The timed region is ``time_calls``' own: the two samples come from the same calls.
    """
    clock = time.process_time_ns
    for _ in range(calls):
        inner.ns = 0
        start = clock()
        fn()
        elapsed = clock() - start
        into.append(elapsed)
        net_into.append(elapsed - inner.ns)


def quantile_us(samples: list[int], q: float) -> float:
    """The ``q`` quantile (0..1, lower order statistic) of nanosecond samples, in µs."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000
