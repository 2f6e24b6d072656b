"""Switch one instrumentation's patches in and out of a process, exactly and cheaply.

A benchmark that compares instrumentations in one process alternates them every few dozen
calls, so it needs a switch that costs nothing measurable and leaves nothing behind. Not
every instrumentation's ``uninstrument()`` is one (some, toggled repeatedly, leave wrappers
stacking up), so each instrumentation is installed once and the module and class
attributes its ``instrument()`` replaced or added are remembered and swapped in and out.
Patches on objects (a wrapped ``__init__`` that patches each client it builds) are not
module or class attributes: an object built while a case is switched on stays that case's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

_MISSING = object()


def _attributes_of(packages: frozenset[str]) -> dict[tuple[int, str], tuple[Any, str, Any]]:
    """Every attribute of those packages' modules and classes: (id(owner), name) -> value."""
    found: dict[tuple[int, str], tuple[Any, str, Any]] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] not in packages:
            continue
        owners: list[Any] = [module]
        owners += [v for v in vars(module).values() if isinstance(v, type)]
        for owner in owners:
            for name, value in list(vars(owner).items()):
                found[(id(owner), name)] = (owner, name, value)
    return found


class Patches:
    """What one ``instrument()`` call changed in ``packages``, to switch on and off at will.

    Constructing it runs ``instrument`` and leaves the patches switched off. Modules first
    imported by ``instrument`` itself are not compared (they have no "before").
    """

    def __init__(self, instrument: Callable[[], object], packages: Iterable[str]) -> None:
        wanted = frozenset(packages)
        before = _attributes_of(wanted)
        instrument()
        after = _attributes_of(wanted)
        owners_before = {key[0] for key in before}
        self._changes: list[tuple[Any, str, Any, Any]] = []
        for key, (owner, name, value) in after.items():
            old = before.get(key, (None, None, _MISSING))[2]
            if old is not value and key[0] in owners_before:
                self._changes.append((owner, name, old, value))
        self.off()

    def on(self) -> None:
        for owner, name, _, patched in self._changes:
            setattr(owner, name, patched)

    def off(self) -> None:
        for owner, name, original, _ in self._changes:
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._changes)
