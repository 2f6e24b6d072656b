"""The patcher (``instrumentation._base.Patcher``): plain replacements, exactly undone.

On made-up classes: each kind of original (method, staticmethod, classmethod; sync and
async) gets a plain Python function in the defining class's ``__dict__`` that calls the
wrapper with wrapt's arguments (also for a call through the class, a ``super()`` call and a
subclass); what ``inspect`` and a framework read of the method answers as before; a kind a
plain function does not stand in for (a generator function, someone else's wrapt
decorator) keeps a ``wrapt.FunctionWrapper``; patching twice adds no second layer and
``undo`` puts back the very same object. Then on every installed library's real targets:
what ``inspect`` answers is the same instrumented as not.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib
import inspect
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import wrapt
from opentelemetry.metrics import _internal as metrics_internal

from otel_rerank import _telemetry, instrumentation
from otel_rerank.instrumentation import _base
from otel_rerank.instrumentation._base import Patcher, Target, _resolve, is_replacement

from ._benchmark_script import run_benchmark

#: (wrapped, instance, args, kwargs) of every wrapper call, newest last
seen: list[tuple[Any, Any, tuple[Any, ...], dict[str, Any]]] = []


def record(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    seen.append((wrapped, instance, args, kwargs))
    return ("wrapped", wrapped(*args, **kwargs))


async def arecord(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    seen.append((wrapped, instance, args, kwargs))
    return ("wrapped", await wrapped(*args, **kwargs))


def _decorated(fn: Any) -> Any:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return inner


@wrapt.decorator  # type: ignore[misc]
def _foreign(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


class Model:
    """A made-up library class with one method of each kind."""

    def __init__(self, name: str = "m") -> None:
        self.name = name

    def predict(self, texts: list[str], batch_size: int = 8) -> tuple[str, int, int]:
        """Scores the texts."""
        return (self.name, len(texts), batch_size)

    async def apredict(self, texts: list[str], *, batch_size: int = 8) -> tuple[str, int]:
        """Scores the texts, awaited."""
        await asyncio.sleep(0)
        return (self.name, len(texts))

    @staticmethod
    def normalize(text: str, lower: bool = True) -> str:
        return text.lower() if lower else text

    @staticmethod
    async def anormalize(text: str) -> str:
        return text.lower()

    @classmethod
    def load(cls, name: str) -> Any:
        return cls(name)

    @classmethod
    async def aload(cls, name: str) -> Any:
        return cls(name)

    @_decorated
    def shimmed(self, x: int, scale: int = 2) -> int:  # a library decorator's __wrapped__
        return x * scale

    def stream(self, n: int) -> Iterator[int]:
        yield from range(n)

    async def astream(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @_foreign
    def traced(self, x: int) -> int:  # another library's wrapt decorator (LlamaIndex's)
        return x + 1


class Inherits(Model):
    pass


class Overrides(Model):
    def predict(self, texts: list[str], batch_size: int = 8) -> Any:
        return ("sub", super().predict(texts, batch_size))


PLAIN = ("predict", "apredict", "normalize", "anormalize", "load", "aload", "shimmed")
FALLBACK = ("stream", "astream", "traced")
ASYNC = {"apredict", "anormalize", "aload"}


@pytest.fixture(autouse=True, params=["compiled", "python"])
def replacement_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: with the compiled replacement of sync functions (``_speedups``'
    ``Replacement``, where the build had a C compiler) and with the Python one."""
    if request.param == "python":
        monkeypatch.setattr(_base, "_CompiledReplacement", None)
    elif _base._CompiledReplacement is None:
        pytest.skip("built without the compiled speed-ups")
    return str(request.param)


@pytest.fixture(autouse=True)
def _a_provider_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """So that a plain replacement calls its wrapper: with nothing configured it calls the
    original itself (``test_with_nothing_configured_a_plain_replacement_calls_the_original_
    itself``)."""
    monkeypatch.setattr(_telemetry, "own_providers", True)


@pytest.fixture
def patcher() -> Iterator[Patcher]:
    before = {name: vars(Model)[name] for name in PLAIN + FALLBACK}
    patcher = Patcher()
    for name in PLAIN + FALLBACK:
        patcher.patch_class(Model, name, arecord if name in ASYNC else record)
    seen.clear()
    try:
        yield patcher
    finally:
        patcher.undo()
        assert all(vars(Model)[name] is original for name, original in before.items())


@pytest.mark.usefixtures("patcher")
def test_each_kind_gets_a_plain_function_in_its_own_descriptor_type(replacement_kind: str) -> None:
    for name in PLAIN:
        patched = vars(Model)[name]
        assert is_replacement(patched), name
        function = getattr(patched, "__func__", patched)
        assert not isinstance(function, wrapt.ObjectProxy)
        if replacement_kind == "compiled" and name not in ASYNC:
            assert type(function) is _base._CompiledReplacement, name
        else:  # an ``async def`` stays one: ``inspect.iscoroutinefunction`` asks
            assert inspect.isfunction(function), name
    assert type(vars(Model)["normalize"]) is staticmethod
    assert type(vars(Model)["load"]) is classmethod
    for name in FALLBACK:  # a plain function would change what they answer or when we run
        assert is_replacement(vars(Model)[name]), name
        assert isinstance(vars(Model)[name], wrapt.FunctionWrapper), name


@pytest.mark.usefixtures("patcher")
def test_a_method_gets_wrapt_arguments_on_the_instance_and_through_the_class() -> None:
    model = Model("a")
    assert model.predict(["x", "y"], batch_size=4) == ("wrapped", ("a", 2, 4))
    wrapped, instance, args, kwargs = seen[-1]
    assert instance is model and args == (["x", "y"],) and kwargs == {"batch_size": 4}
    assert inspect.ismethod(wrapped) and wrapped.__self__ is model
    assert wrapped.__func__ is Model.predict.__wrapped__  # type: ignore[attr-defined]
    # Through the class, as wrapt does: the instance is the first argument, not in args.
    assert Model.predict(model, ["x"]) == ("wrapped", ("a", 1, 8))
    _, instance, args, kwargs = seen[-1]
    assert instance is model and args == (["x"],) and kwargs == {}


@pytest.mark.usefixtures("patcher")
def test_staticmethod_and_classmethod_get_wrapt_arguments() -> None:
    model = Inherits("b")
    assert model.normalize("AB", lower=False) == ("wrapped", "AB")
    wrapped, instance, args, kwargs = seen[-1]
    assert instance is None and args == ("AB",) and kwargs == {"lower": False}
    assert wrapped is Model.normalize.__wrapped__  # type: ignore[attr-defined]
    assert Model.normalize("AB") == ("wrapped", "ab")
    assert seen[-1][1] is None
    # A classmethod's instance is the class it was called on, or its instance's class.
    for caller in (Inherits, model):
        tag, loaded = caller.load("c")
        assert tag == "wrapped" and type(loaded) is Inherits and loaded.name == "c"
        wrapped, instance, args, _ = seen[-1]
        assert instance is Inherits and args == ("c",) and wrapped.__self__ is Inherits


@pytest.mark.usefixtures("patcher")
def test_async_originals_get_async_replacements() -> None:
    model = Model("d")
    assert asyncio.run(model.apredict(["x"], batch_size=2)) == ("wrapped", ("d", 1))
    _, instance, args, kwargs = seen[-1]
    assert instance is model and args == (["x"],) and kwargs == {"batch_size": 2}
    assert asyncio.run(Model.anormalize("Q")) == ("wrapped", "q")
    assert seen[-1][1] is None
    tag, loaded = asyncio.run(Inherits.aload("e"))
    assert tag == "wrapped" and type(loaded) is Inherits and seen[-1][1] is Inherits


def test_with_nothing_configured_a_plain_replacement_calls_the_original_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No SDK anywhere (the globals unset, nothing given to ``instrument()``): each plain
    kind answers as the original without its wrapper; a provider set later, globally or
    through ``instrument()``, reaches the wrapper on the next call."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    _telemetry.reset()
    assert not _telemetry.own_providers
    patcher = Patcher()
    for name in PLAIN:
        patcher.patch_class(Model, name, arecord if name in ASYNC else record)
    seen.clear()
    try:
        model = Inherits("h")
        assert model.predict(["x"], batch_size=3) == ("h", 1, 3)
        assert Model.predict(model, ["x", "y"]) == ("h", 2, 8)
        assert model.normalize("AB") == "ab" and Model.normalize("AB", lower=False) == "AB"
        assert type(model.load("i")) is Inherits and type(Inherits.load("j")) is Inherits
        assert model.shimmed(3) == 6
        assert asyncio.run(model.apredict(["x"], batch_size=2)) == ("h", 1)
        assert asyncio.run(Model.anormalize("Q")) == "q"
        assert type(asyncio.run(Inherits.aload("k"))) is Inherits
        assert seen == []
        # Set after patching, as an app that imports otel_rerank.auto first does.
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
        assert model.predict(["x"]) == ("wrapped", ("h", 1, 8))
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
        _telemetry.use(tracer_provider=TracerProvider())
        assert _telemetry.own_providers
        assert asyncio.run(Model.anormalize("Q")) == ("wrapped", "q")
        assert len(seen) == 2
    finally:
        _telemetry.reset()
        patcher.undo()
    assert not _telemetry.own_providers


def test_the_no_sdk_answer_follows_every_change_of_the_globals_it_is_read_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The compiled replacement keeps its "no SDK" answer between calls while the three
    dicts it reads are unchanged (their version tags; a dict watcher from 3.12): each
    global set, however it is set, reaches the wrapper on the next call, and unset again
    the original answers alone; a change of another name in those modules changes
    nothing."""
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.util._once import Once

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    _telemetry.reset()
    patcher = Patcher()
    patcher.patch_class(Model, "predict", record)
    patcher.patch_class(Model, "normalize", record)
    model = Inherits("h")
    seen.clear()

    def wrapped() -> bool:
        predicted, normalized = model.predict(["x"]), Model.normalize("AB")
        assert (predicted[0] == "wrapped") is (normalized[0] == "wrapped")
        return predicted[0] == "wrapped"

    try:
        assert not wrapped() and not wrapped()
        trace.set_tracer_provider(TracerProvider())  # the API's own STORE_GLOBAL
        assert wrapped()
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
        assert not wrapped()
        monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", MeterProvider())
        assert wrapped()
        monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
        assert not wrapped()
        _telemetry.use(tracer_provider=TracerProvider())  # own_providers, in _telemetry
        assert wrapped()
        _telemetry.reset()
        assert not wrapped()
        monkeypatch.setattr(trace, "_an_unrelated_name", object(), raising=False)
        assert not wrapped()
    finally:
        _telemetry.reset()
        patcher.undo()


def test_an_api_without_the_globals_read_gets_wrapt_replacements_that_always_ask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The plain replacements read the API's two globals themselves; an API version that
    # kept them elsewhere gets wrapt's layer, whose wrapper always runs (and asks).
    monkeypatch.setattr(_telemetry, "GLOBALS_READABLE", False)
    patcher = Patcher()
    patcher.patch_class(Model, "predict", record)
    seen.clear()
    try:
        assert isinstance(vars(Model)["predict"], wrapt.FunctionWrapper)
        assert Model("l").predict(["x"]) == ("wrapped", ("l", 1, 8)) and len(seen) == 1
    finally:
        patcher.undo()


def test_what_inspect_and_frameworks_read_is_unchanged() -> None:
    def described(obj: Any) -> dict[str, Any]:
        return {
            "coroutine": inspect.iscoroutinefunction(obj),
            "generator": inspect.isgeneratorfunction(obj),
            "asyncgen": inspect.isasyncgenfunction(obj),
            "signature": str(inspect.signature(obj)),
            **{a: getattr(obj, a) for a in ("__name__", "__qualname__", "__doc__", "__module__")},
        }

    def everything() -> dict[str, Any]:
        model = Inherits()
        return {
            (where, name): described(getattr(owner, name))
            for name in PLAIN + FALLBACK
            for where, owner in (("class", Model), ("subclass", Inherits), ("instance", model))
        }

    before = everything()
    assert before[("class", "apredict")]["coroutine"]
    assert before[("instance", "aload")]["coroutine"]
    assert before[("class", "astream")]["asyncgen"]
    patcher = Patcher()
    for name in PLAIN + FALLBACK:
        patcher.patch_class(Model, name, record)
    try:
        assert everything() == before
    finally:
        patcher.undo()


@pytest.mark.usefixtures("patcher")
def test_subclasses_inherit_the_patch_and_an_override_calls_it_through_super() -> None:
    assert Inherits("f").predict(["x"]) == ("wrapped", ("f", 1, 8))
    assert "predict" not in vars(Inherits)
    seen.clear()
    model = Overrides("g")
    # The override itself is untouched; its super() call is the patched one.
    assert not is_replacement(vars(Overrides)["predict"])
    assert model.predict(["x", "y"]) == ("sub", ("wrapped", ("g", 2, 8)))
    (call,) = seen
    assert call[1] is model and call[2] == (["x", "y"], 8)


@pytest.mark.usefixtures("patcher")
def test_fallback_kinds_still_run_the_wrapper() -> None:
    model = Model()
    tag, stream = model.stream(3)
    assert tag == "wrapped" and list(stream) == [0, 1, 2] and seen[-1][1] is model

    async def read() -> list[int]:
        tag, stream = model.astream(2)
        assert tag == "wrapped"
        return [i async for i in stream]

    assert asyncio.run(read()) == [0, 1]
    assert model.traced(1) == ("wrapped", 2) and seen[-1][1] is model


@pytest.mark.usefixtures("patcher")
def test_a_library_decorators_wrapped_chain_is_kept_under_ours() -> None:
    patched = vars(Model)["shimmed"]
    assert patched.__wrapped__.__wrapped__.__name__ == "shimmed"  # ours, theirs, the function
    assert str(inspect.signature(Model().shimmed)) == "(x: 'int', scale: 'int' = 2) -> 'int'"
    assert Model().shimmed(3) == ("wrapped", 6)


@pytest.mark.usefixtures("patcher")
def test_instances_methods_and_classes_still_pickle_and_copy() -> None:
    model = Model("h")
    clone = pickle.loads(pickle.dumps(model))
    assert clone.predict(["x"]) == ("wrapped", ("h", 1, 8))
    assert copy.deepcopy(model).name == "h" and copy.copy(model).name == "h"
    bound = pickle.loads(pickle.dumps(model.predict))  # by name: finds the patched method
    assert bound(["x", "y"]) == ("wrapped", ("h", 2, 8))
    assert pickle.loads(pickle.dumps(Model.predict)) is Model.predict


@pytest.mark.usefixtures("patcher")
def test_a_call_without_its_instance_raises_a_type_error_and_records_nothing() -> None:
    with pytest.raises(TypeError):
        Model.predict()  # type: ignore[call-arg]
    assert seen == []


@pytest.mark.usefixtures("patcher")
def test_a_replacement_can_be_weakly_referenced_as_a_function_can() -> None:
    import weakref

    patched = vars(Model)["predict"]
    assert weakref.ref(patched)() is patched
    model = Model("m")
    method = weakref.WeakMethod(model.predict)  # refers to the method's ``__func__``
    assert method()(["x"]) == ("wrapped", ("m", 1, 8))  # type: ignore[misc]


def test_patching_twice_adds_no_layer_and_undo_restores_the_very_objects() -> None:
    originals = {name: vars(Model)[name] for name in PLAIN + FALLBACK}
    patcher = Patcher()
    for _ in range(2):
        for name in PLAIN + FALLBACK:
            patcher.patch_class(Model, name, record)
    assert len(patcher.patched) == len(originals)
    for name, original in originals.items():  # one layer: ours is right over the original
        patched = vars(Model)[name]
        if isinstance(patched, staticmethod | classmethod):
            assert patched.__func__.__wrapped__ is original.__func__, name
        else:
            assert patched.__wrapped__ is original, name
    replacements = {name: vars(Model)[name] for name in originals}
    patcher.undo()
    for name, original in originals.items():
        assert vars(Model)[name] is original, name
        assert not is_replacement(replacements[name])
    assert not hasattr(vars(Model)["predict"], "__wrapped__")
    assert Model("i").predict(["x"]) == ("i", 1, 8)
    # Again after an undo: a new layer, undone again.
    patcher.patch_class(Model, "predict", record)
    assert Model("j").predict([]) == ("wrapped", ("j", 0, 8))
    patcher.undo()
    assert vars(Model)["predict"] is originals["predict"]


def test_a_replacement_left_by_someone_else_is_not_undone_over() -> None:
    patcher = Patcher()
    original = vars(Model)["predict"]
    patcher.patch_class(Model, "predict", record)
    theirs = vars(Model)["predict"]

    def later(self: Any, *args: Any, **kwargs: Any) -> Any:  # patched on top of ours
        return theirs(self, *args, **kwargs)

    Model.predict = later  # type: ignore[method-assign]
    try:
        patcher.undo()
        assert vars(Model)["predict"] is later  # theirs stays; it still calls ours
    finally:
        Model.predict = original  # type: ignore[method-assign]


# -- every installed library's real targets ------------------------------------------------
def _installed_targets() -> list[Any]:
    params = []
    for name, cls in instrumentation.available().items():
        if cls.is_installed():
            params.append(pytest.param(name, cls, id=name))
    return params


def _owners(target: Target) -> list[type]:
    try:
        module = importlib.import_module(target.module)
    except ImportError:  # another release's module: the patcher skips it too
        return []
    if callable(target.owner):
        return list(target.owner(module))
    try:
        return [_resolve(module, target.owner)]
    except AttributeError:
        return []


@pytest.mark.slow
@pytest.mark.parametrize(("library", "cls"), _installed_targets())
def test_real_targets_answer_inspect_as_before(library: str, cls: type) -> None:
    found = [
        (owner, target.method)
        for target in cls().targets()
        for owner in _owners(target)
        if target.method in vars(owner)
    ]
    assert found, f"no {library} target found"

    def described() -> list[Any]:
        return [
            (
                inspect.iscoroutinefunction(getattr(owner, method)),
                inspect.isgeneratorfunction(getattr(owner, method)),
                inspect.isasyncgenfunction(getattr(owner, method)),
                inspect.signature(getattr(owner, method)),
                getattr(owner, method).__qualname__,
                getattr(owner, method).__doc__,
            )
            for owner, method in found
        ]

    originals = [vars(owner)[method] for owner, method in found]
    before = described()
    patcher = Patcher()
    for owner, method in found:
        patcher.patch_class(owner, method, record)
    try:
        assert all(is_replacement(vars(owner)[method]) for owner, method in found)
        assert described() == before
    finally:
        patcher.undo()
    assert [vars(owner)[method] for owner, method in found] == originals
    assert all(vars(o)[m] is original for (o, m), original in zip(found, originals, strict=True))


# -- benchmarks/patch_layer.py -----------------------------------------------------------------
def test_the_layer_benchmark_times_every_case_and_rejects_bad_input() -> None:
    done = run_benchmark("patch_layer.py", "--blocks", "2", "--calls", "200")
    assert done.returncode == 0, done.stderr[-3000:]
    for case in ("A/A", "wrapt FunctionWrapper, pass-through", "plain + Method.wrapper (now)"):
        assert case in done.stdout
    bad = run_benchmark("patch_layer.py", "--calls", "x")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "patch_layer.py: error: argument --calls" in bad.stderr


def test_only_a_live_replacement_is_ours() -> None:
    assert not is_replacement(None)  # an absent method: ``vars(cls).get(name)``
    assert not is_replacement(vars(Model)["predict"])
    assert not is_replacement(object())
