"""Run by another Python (``tests/test_speedups.py``): ``_speedups.Replacement``, built for
that Python into the folder given, binds and calls as ``_base._plain_replacement``'s Python
twin does, on a method, a staticmethod and a classmethod of a class and its subclass.

Uses the standard library only (the other Python has none of our dependencies): plain
dicts stand in for the three modules whose globals the replacement reads. Prints ``ok``.
"""

from __future__ import annotations

import functools
import gc
import inspect
import pickle
import sys
import weakref
from typing import Any


def main(folder: str) -> None:
    sys.path.insert(0, folder)
    import _speedups  # type: ignore[import-not-found]

    trace_globals: dict[str, Any] = {"_TRACER_PROVIDER": None}
    metrics_globals: dict[str, Any] = {"_METER_PROVIDER": None}
    telemetry_globals: dict[str, Any] = {"own_providers": False}
    seen: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append((instance, args, kwargs))
        return ("wrapped", wrapped(*args, **kwargs))

    class Model:
        def predict(self, x: int, k: int = 2) -> tuple[int, int]:
            """Scores."""
            return (x, k)

        @staticmethod
        def normalize(text: str) -> str:
            return text.lower()

        @classmethod
        def load(cls, n: int) -> tuple[str, int]:
            return (cls.__name__, n)

    for name in ("predict", "normalize", "load"):
        original = Model.__dict__[name]
        kind = type(original)
        function = original.__func__ if kind in (staticmethod, classmethod) else original
        replacement = _speedups.Replacement(
            function,
            wrapper,
            kind is not staticmethod,
            trace_globals,
            metrics_globals,
            telemetry_globals,
        )
        functools.update_wrapper(replacement, function)
        setattr(Model, name, kind(replacement) if kind is not type(function) else replacement)

    class Subclass(Model):
        pass

    model = Subclass()
    # Nothing configured: the originals answer, the wrapper never runs.
    assert model.predict(1) == (1, 2)
    assert Model.normalize("A") == "a"
    assert Subclass.load(3) == ("Subclass", 3) and model.load(4) == ("Subclass", 4)
    assert seen == []
    # A provider set: the wrapper gets wrapt's arguments.
    trace_globals["_TRACER_PROVIDER"] = object()
    assert model.predict(1, k=5) == ("wrapped", (1, 5)) and seen[-1] == (model, (1,), {"k": 5})
    assert Model.predict(model, 7) == ("wrapped", (7, 2)) and seen[-1][0] is model
    assert Model.normalize("B") == ("wrapped", "b") and seen[-1][0] is None
    assert Subclass.load(9) == ("wrapped", ("Subclass", 9)) and seen[-1][0] is Subclass
    assert model.load(8) == ("wrapped", ("Subclass", 8)) and seen[-1][0] is Subclass
    # The answer kept between calls follows each of the three dicts (from 3.12 through a
    # dict watcher, before through their version tags), and no other change.
    for dict_, key, value in (
        (trace_globals, "_TRACER_PROVIDER", None),
        (metrics_globals, "_METER_PROVIDER", object()),
        (metrics_globals, "_METER_PROVIDER", None),
        (telemetry_globals, "own_providers", True),
        (telemetry_globals, "own_providers", False),
        (trace_globals, "unrelated", object()),
    ):
        dict_[key] = value
        nothing_set = trace_globals["_TRACER_PROVIDER"] is None and (
            metrics_globals["_METER_PROVIDER"] is None and not telemetry_globals["own_providers"]
        )
        assert model.predict(2) == ((2, 2) if nothing_set else ("wrapped", (2, 2))), key
    trace_globals["_TRACER_PROVIDER"] = object()
    try:
        Model.predict()  # type: ignore[call-arg]
    except TypeError:
        pass
    else:
        raise AssertionError("a call without its instance must raise TypeError")
    # What inspect, pickle and weak references read of it.
    assert str(inspect.signature(model.predict)) == "(x: 'int', k: 'int' = 2) -> 'tuple[int, int]'"
    assert Model.predict.__doc__ == "Scores." and Model.predict.__name__ == "predict"
    assert not inspect.iscoroutinefunction(model.predict) and inspect.isroutine(Model.predict)
    assert weakref.WeakMethod(model.predict)() is not None
    global Pickled
    Pickled = Model  # pickled by qualified name: found again through a module global
    Model.__qualname__ = "Pickled"
    Model.predict.__qualname__ = "Pickled.predict"
    assert pickle.loads(pickle.dumps(Model.predict)) is Model.predict
    # Collected like a function once nothing holds it.
    held = weakref.ref(Model.__dict__["predict"])
    del Model.predict
    gc.collect()
    assert held() is None
    print("ok")


Pickled: Any = None

if __name__ == "__main__":
    main(sys.argv[1])
