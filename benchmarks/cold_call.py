"""What ours costs on a cross-encoder call right after a forward pass, piece by piece.

``library_overhead.py`` times the real calls; there a model's forward pass runs inside
every call, so its overheads move by ±10-20 µs from block to block and ours/floor by
±0.06 from run to run. This script holds the part that matters still: each row's model
answers from its stored inference result (``_inference`` replaced by a function returning
what the real one returned for these arguments: the library's own code around it still
runs), and right before every timed call a real all-MiniLM-L6-v2 forward pass (one query)
sweeps the CPU caches, as the call's own forward pass does in production. Every timed call
thus starts where ours' code starts after a real inference: cold. Timed one by one
(``perf_counter_ns``), the cases alternating call by call in an order shuffled each round,
summed up by the 10th percentile and the median of each case's calls; overhead = case -
bare at that quantile. The A/A case is the bare call again: its "overhead" is the noise
(here a fraction of a microsecond).

Cases, per row (``predict-50``: ``CrossEncoder.predict`` of 50 pairs; ``rank-50``: ``rank``
of 50 documents; the tiny cross-encoder of the tests):

* ``bare``, ``A/A``  the uninstrumented call (the class's original methods);
* ``floor``    ``library_overhead.py``'s hand-written span and histogram records of what ours
               recorded for the same call;
* ``ours``     the instrumented call, SDK configured;
* ``no SDK``   the instrumented call with no provider anywhere (the target: ≤ 3 µs);
* with ``--pieces``: ``ours, pure Python``, the instrumented call with the compiled speed-ups
  switched off (``histogram_cost.SPEEDUPS``: what the C module saves in place); ``ours`` and
  ``no SDK`` through the patcher's Python replacement instead of the compiled one (``...,
  Python replacement``: the same wrappers on a subclass over the same model); and ours'
  wrapper with one of the method's readers taken away (``no summary``,
  ``no request``, ``no candidates``, ``start only``: none of the three), each beside the floor
  of what that variant records (``floor, ...``), so that a piece's cost to ours can be read
  against its cost to a hand-written instrumentation recording the same (the attribute
  writes and histogram records are the SDK's in both).

With ``--readers``, instead: each of the functions ours runs per call of the row, timed
alone after a forward pass (p10 and median over an empty call timed the same way), to
tell where the cold microseconds go: the reading of the instance (start, max length,
device), the binding of the arguments, the request and candidates readers, the summary of
the scores the row's model returned, and one per-instance cache lookup made both ways
(``InstanceCache.of`` and the same lookup through a ``__call__``, the call slot the
interpreter does not specialise).

Run::

    .venv/bin/python benchmarks/cold_call.py [--rows predict-50,rank-50] [--calls 300] [--pieces]
    .venv/bin/python benchmarks/cold_call.py --readers [--rows rank-50]
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MethodType
from typing import Any, NamedTuple

import library_overhead as lo  # benchmarks/ is on sys.path as a script
from histogram_cost import SPEEDUPS
from no_sdk_split import python_replacement

from otel_rerank.instrumentation._common import InstanceCache

ROWS = ("predict-50", "rank-50")
QUANTILE = 0.1


def _stub_inference(model: Any, call: Callable[[Any], object]) -> None:
    """Make ``model._inference`` return what the real one returned for ``call``'s arguments."""
    real, returned = model._inference, []

    def capture(*args: Any, **kwargs: Any) -> Any:
        returned.append(real(*args, **kwargs))
        return returned[-1]

    model._inference = capture
    call(model)
    model._inference = lambda *args, **kwargs: returned[0]


def _row_call(fx: lo.Fixtures, key: str) -> tuple[Any, Any, str, tuple[Any, ...]]:
    """Row ``key``'s call: the model, ours' declaration of the method, its name, the
    arguments (``predict`` of 50 pairs, or ``rank`` of the query and 50 documents)."""
    from otel_rerank.instrumentation.sentence_transformers import PREDICT, RANK

    model = fx.tiny_cross_encoder
    if key == "predict-50":
        return model, PREDICT, "predict", ([(lo.QUERY, d) for d in lo.DOCUMENTS_50],)
    return model, RANK, "rank", (lo.QUERY, list(lo.DOCUMENTS_50))


def _cases(
    fx: lo.Fixtures, key: str, sdk: lo.Sdk, pieces: bool, originals: dict[str, Any]
) -> dict[str, Case]:
    from sentence_transformers import CrossEncoder

    from otel_rerank import _telemetry

    model, method, name, args = _row_call(fx, key)
    original = originals[name]
    _stub_inference(model, lambda m: getattr(m, name)(*args))

    # The bare call: the same instance's state, seen through a class with the original
    # methods (rank calls predict: both must be the originals).
    bare_class = type("BareCrossEncoder", (CrossEncoder,), dict(originals))
    bare_model = object.__new__(bare_class)
    bare_model.__dict__ = model.__dict__  # shared: one model, two classes

    def bare() -> object:
        return getattr(bare_model, name)(*args)

    def ours() -> object:
        return getattr(model, name)(*args)

    settings = _telemetry._settings

    def no_sdk_on() -> None:  # the providers instrument() was given, taken away
        settings.tracer_provider = settings.meter_provider = None
        _telemetry._update_own_providers()

    def no_sdk_off() -> None:  # and put back (the same objects: nothing is rebuilt)
        settings.tracer_provider, settings.meter_provider = sdk.tracer_provider, sdk.meter_provider
        _telemetry._update_own_providers()

    cases: dict[str, Case] = {
        "bare": Case(bare),
        "A/A": Case(bare),
        "floor": Case(lo._floor(bare, lo._record_once(ours, sdk), sdk)),
        "ours": Case(ours),
        "no SDK": Case(ours, no_sdk_on, no_sdk_off),
    }
    if pieces:
        modules = [(sys.modules[module], name) for module, name in SPEEDUPS]
        compiled = [getattr(module, name) for module, name in modules]
        if any(function is None for function in compiled):
            raise SystemExit("cold_call.py: built as pure Python: no speed-ups to switch off")

        def pure_on() -> None:
            for module, name in modules:
                setattr(module, name, None)

        def pure_off() -> None:
            for (module, name), function in zip(modules, compiled, strict=True):
                setattr(module, name, function)

        cases["ours, pure Python"] = Case(ours, pure_on, pure_off)
        # The patched methods as the Python replacement (the compiled one's twin), on a
        # third class over the same model: what the compiled replacement saves in place.
        from otel_rerank.instrumentation.sentence_transformers import PREDICT, RANK

        python_class = type(
            "PythonReplacementCrossEncoder",
            (CrossEncoder,),
            {
                "predict": python_replacement(originals["predict"], PREDICT.wrapper),
                "rank": python_replacement(originals["rank"], RANK.wrapper),
            },
        )
        python_model = object.__new__(python_class)
        python_model.__dict__ = model.__dict__

        def python_ours() -> object:
            return getattr(python_model, name)(*args)

        cases["ours, Python replacement"] = Case(python_ours)
        cases["no SDK, Python replacement"] = Case(python_ours, no_sdk_on, no_sdk_off)
        variants = {
            "no summary": {"summary": None},
            "no request": {"request": None},
            "no candidates": {"candidates": None},
            "start only": {"summary": None, "request": None, "candidates": None},
        }
        for label, changes in variants.items():
            wrapper = dataclasses.replace(method, **changes).wrapper

            def variant(wrapper: Any = wrapper) -> object:
                return wrapper(MethodType(original, model), model, args, {})

            cases[label] = Case(variant)
            cases[f"floor, {label}"] = Case(lo._floor(bare, lo._record_once(variant, sdk), sdk))
    return cases


class Case(NamedTuple):
    """One case: the call timed, and what switches its setting in and out, untimed."""

    call: Callable[[], object]
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None

    def timed(self) -> int:
        """One call's wall time, ns."""
        if self.before is not None:
            self.before()
        clock = time.perf_counter_ns
        start = clock()
        self.call()
        elapsed = clock() - start
        if self.after is not None:
            self.after()
        return elapsed


def measure(key: str, calls: int, pieces: bool) -> dict[str, list[int]]:
    """Every case of row ``key``, ``calls`` times each, alternating, each after a sweep."""
    import otel_rerank

    with tempfile.TemporaryDirectory(prefix="otel-rerank-cold-") as workdir:
        fx = lo.Fixtures(Path(workdir))
        sweeper = fx.minilm
        sdk = lo._make_sdk()
        from sentence_transformers import CrossEncoder

        originals = {name: CrossEncoder.__dict__[name] for name in ("predict", "rank")}
        otel_rerank.instrument(
            tracer_provider=sdk.tracer_provider,
            meter_provider=sdk.meter_provider,
            capture_content=False,
            libraries=[lo.ST],
        )
        try:
            cases = _cases(fx, key, sdk, pieces, originals)
            _check(key, cases, sdk)
            return _alternate(cases, sweeper, calls)
        finally:
            otel_rerank.uninstrument()


def _alternate(cases: dict[str, Case], sweeper: Any, calls: int) -> dict[str, list[int]]:
    """Each case ``calls`` times, the cases alternating in an order shuffled each round (a
    fixed seed), each call right after a real forward pass of ``sweeper`` (the caches
    swept); after a warm-up that builds the plans and caches once.

    Shuffled because the sweep leaves the last level cache partly warm: in a fixed order a
    case read up to 9 µs lower when it followed one running the same code (two copies of
    ``ours``, one after ``floor``, the other after another ``ours``), more than most of
    what this script is asked to tell apart.
    """
    for case in cases.values():
        for _ in range(10):
            case.timed()
    found: dict[str, list[int]] = {label: [] for label in cases}
    order = list(cases)
    shuffle = random.Random(0).shuffle
    for _ in range(calls):
        shuffle(order)
        for label in order:
            sweeper.encode(lo.QUERY)
            found[label].append(cases[label].timed())
    return found


class _CalledCache(InstanceCache):
    """The lookup as it was before ``of``: the instance called (``--readers`` compares)."""

    __slots__ = ()
    __call__ = InstanceCache.of


def _readers(fx: lo.Fixtures, key: str) -> dict[str, Case]:
    """Each function ours runs per call of row ``key``, with that call's arguments."""
    from otel_rerank import _rerank
    from otel_rerank.instrumentation._common import bind_arguments
    from otel_rerank.instrumentation.sentence_transformers import _attributes as st_attrs

    model, method, name, args = _row_call(fx, key)
    bound = getattr(model, name)
    # The scores its summary reads: rank's predict returns a tensor, predict an array.
    pairs = [(lo.QUERY, d) for d in lo.DOCUMENTS_50]
    scores = model.predict(pairs, convert_to_tensor=name == "rank")
    arguments = bind_arguments(bound, args, {})
    request, candidates = method.request, method.candidates
    assert request is not None and candidates is not None
    of, called = InstanceCache(st_attrs._ModelFacts), _CalledCache(st_attrs._ModelFacts)
    readers: dict[str, Callable[[], object]] = {
        "empty call": lambda: None,
        "start": lambda: method.start(model, {}),
        "bind arguments": lambda: bind_arguments(bound, args, {}),
        "candidates": lambda: candidates(arguments),
        "request": lambda: dict(request(model, arguments)),
        "  max length": lambda: st_attrs._max_length(model),
        "  device": lambda: st_attrs._device(model),
        f"summary ({type(scores).__name__})": lambda: _rerank.summary(scores, 10),
        "cache lookup: .of()": lambda: of.of(model),
        "cache lookup: called": lambda: called(model),
    }
    return {label: Case(reader) for label, reader in readers.items()}


def measure_readers(key: str, calls: int) -> dict[str, list[int]]:
    """Each reader of row ``key`` alone, ``calls`` times, alternating, each after a sweep."""
    with tempfile.TemporaryDirectory(prefix="otel-rerank-cold-") as workdir:
        fx = lo.Fixtures(Path(workdir))
        return _alternate(_readers(fx, key), fx.minilm, calls)


def report_readers(key: str, found: dict[str, list[int]]) -> None:
    empty = found["empty call"]
    low, middle = _quantile(empty, QUANTILE), statistics.median(empty)
    print(f"\n{key}: ours' readers alone, {len(empty)} calls each, each after a forward pass")
    print(f"{'reader':26} {'p10 over empty':>15} {'median over empty':>18}")
    for label, values in found.items():
        over_low = (_quantile(values, QUANTILE) - low) / 1000
        over_middle = (statistics.median(values) - middle) / 1000
        print(f"{label:26} {over_low:+12.1f} µs {over_middle:+15.1f} µs")


def _check(key: str, cases: dict[str, Case], sdk: lo.Sdk) -> None:
    """Each case records what its name says, once, untimed: the bare calls and ``no SDK``
    nothing, every other case one span (rank's predict records none of its own)."""
    for label, case in cases.items():
        if case.before is not None:
            case.before()
        try:
            spans = len(lo._record_once(case.call, sdk).spans)
        finally:
            if case.after is not None:
                case.after()
        expected = 0 if label in ("bare", "A/A") or label.startswith("no SDK") else 1
        if spans != expected:
            raise SystemExit(
                f"cold_call.py: {key} {label!r} recorded {spans} spans, not {expected}"
            )


def _quantile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * q)]


def report(key: str, found: dict[str, list[int]]) -> None:
    """A row's table: each case's p10 and median over bare's, and ours' (and each variant's)
    p10 overhead over that of the floor recording the same."""
    bare = found["bare"]
    low, middle = _quantile(bare, QUANTILE), statistics.median(bare)
    over = {label: _quantile(values, QUANTILE) - low for label, values in found.items()}
    print(
        f"\n{key}: bare {low / 1000:.1f} µs (p10), {middle / 1000:.1f} µs (median); "
        f"{len(bare)} calls per case, each after a forward pass"
    )
    print(f"{'case':26} {'p10 over bare':>14} {'median over bare':>17} {'/floor (p10)':>13}")
    for label, values in found.items():
        floor = over.get("floor" if label == "ours" else f"floor, {label}")
        ratio = f"{over[label] / floor:13.2f}" if floor is not None and floor > 0 else ""
        over_middle = statistics.median(values) - middle
        print(f"{label:26} {over[label] / 1000:+11.1f} µs {over_middle / 1000:+14.1f} µs {ratio}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = lo._Parser(prog="cold_call.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=lo._csv(ROWS, "rows"), default=list(ROWS))
    parser.add_argument("--calls", type=lo._positive, default=300)
    parser.add_argument("--pieces", action="store_true", help="also ours without each reader")
    parser.add_argument(
        "--readers", action="store_true", help="instead, each of ours' readers timed alone"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    for key in args.rows:
        if args.readers:
            report_readers(key, measure_readers(key, args.calls))
        else:
            report(key, measure(key, args.calls, args.pieces))


if __name__ == "__main__":
    sys.exit(main())
