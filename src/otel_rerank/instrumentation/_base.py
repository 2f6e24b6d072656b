"""What every otel-rerank instrumentor shares: the one generic wrapper, exact patching.

A library's wrapped method is declared, not written: a :class:`Method` names the stage and
provider and lists pure functions (the span's start identity, request and response
attributes, content writers, rerank recorders), and its :meth:`Method.wrapper` /
:meth:`Method.async_wrapper` are the wrappers every library shares. Per call they do,
in this order: nothing but the call itself when a span of the same group is already open
(one span for nested calls: a context variable read, for a method in a group); nothing at
all when nothing records (no SDK, then suppressed: a few attribute reads and one context
read, no argument or instance read); bind the arguments once; start the span with its
identity (name and start attributes worked out once per ``Start``, see
:meth:`Method._opening`) in the context read for the check; read the request
(only when the span records); call; write the request and response attributes in one write
when the span ends (with the error, if the call raised; a leaf call's span, one that runs
nothing that could start a span, is made then, see :class:`Start`: a synchronous retrieval
that records nothing but pairs makes it without a ``StageSpan`` when content capture is
off, its pairs read into one dict, see :meth:`Method._leaf_call`); hand content to the
privacy gate (:meth:`StageSpan.record_content`); run the rerank recorders. A failure of ours
in any of those steps is logged (re-raised under our tests) and never reaches the user's
call; each step catches its own (a ``try``, cheaper than a ``with guard``), so the others
still record.

An instrumentor lists its targets as ``Target(module, "Class", "method", SOME.wrapper)``
(or a function that finds the classes in the imported module instead of ``"Class"``). A
wrapper takes wrapt's arguments, ``(wrapped, instance, args, kwargs)``, with wrapt's
meaning. Patching puts a plain function into the ``__dict__`` of the class that *defines*
the method (compiled, ``_speedups.Replacement``, where the install had a C compiler, else a
Python function; an ``async def`` for a coroutine function; in the same staticmethod or
classmethod descriptor as the original; see :func:`_plain_replacement`), which calls the
wrapper with the method bound to the instance: a ``wrapt.FunctionWrapper`` there cost ~0.4
µs per call warm against ~0.03 (compiled; ~0.13 in Python: ``benchmarks/patch_layer.py``)
and 10-20 µs after a model's forward pass against ~1-4 µs (``benchmarks/no_sdk_split.py``).
Originals of other kinds (generator functions, C methods, someone else's ``wrapt``
decorator: LlamaIndex's ``dispatcher.span``) get a ``wrapt.FunctionWrapper``, which keeps
what they answer to ``inspect``. Either way the patcher remembers the exact object it
replaced, so ``uninstrument()`` puts back the very same object and no ``__wrapped__`` is
left behind (:func:`is_replacement` tells a live replacement of ours). A target whose
library is installed but not yet imported is patched by a post-import hook when the
application imports it, so ``import otel_rerank.auto`` does not import torch. A target
missing in the installed library version is skipped with one debug line (library drift),
never an exception.

Subclasses of :class:`RagInstrumentor` are ``opentelemetry-instrumentation``
``BaseInstrumentor`` s, so ``opentelemetry-instrument`` can load them from the
``opentelemetry_instrumentor`` entry-point group.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FunctionType, MappingProxyType, MethodType
from typing import Any, NamedTuple

import wrapt
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_rerank import _span, _telemetry
from otel_rerank._safe import logger, report_internal_error
from otel_rerank._span import Attributes, Stage, StageSpan
from otel_rerank.instrumentation._common import bind_arguments

try:  # compiled where the install had a C compiler (see _plain_replacement)
    from otel_rerank._speedups import Replacement as _CompiledReplacement
except ImportError:  # pragma: no cover - a pure-Python build
    _CompiledReplacement = None  # type: ignore[assignment, misc]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
#: A call's arguments by parameter name (see ``_common.bind_arguments``).
Arguments = Mapping[str, Any]


# -- the one generic wrapper ---------------------------------------------------------------
class Start(NamedTuple):
    """What a span starts with: what a sampler and the metrics see.

    Computed before the span starts, from the instance (cache it per instance with
    ``_common.InstanceCache`` when it costs more than a lookup) and, for a method declared
    with ``start_binds``, the arguments.
    """

    model: str | None = None
    #: the span name's suffix instead of the model (a retrieval's data source)
    detail: str | None = None
    #: the stage's default kind when ``None`` (CLIENT for a call to a server)
    kind: SpanKind | None = None
    attributes: Mapping[str, AttributeValue] | None = None
    #: nothing the call runs can start a span (faiss's C++ search, qdrant's local mode):
    #: its span is made when it ends, never current (see ``StageSpan``'s ``leaf``)
    leaf: bool = False


_NO_START = Start()
_NO_ARGUMENTS: Arguments = MappingProxyType({})
#: Openings one method keeps (see ``Method._opening``); past this, it starts over.
_MAX_OPENINGS = 256
# One flag per group of methods whose nested calls share one span (created once, by name).
_open_spans: dict[str, ContextVar[list[Any] | None]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """One wrapped method, declared: what its span is and which pure functions read it.

    Every function is optional but ``start``; each runs only when what it feeds is
    recorded (``candidates`` also for a sampled-out span: it feeds a histogram).

    Attributes:
        stage: the RAG step (``_span.EMBEDDINGS``, ``RETRIEVAL``, ``RERANK``).
        provider: ``gen_ai.provider.name``.
        start: ``(instance, arguments) -> Start``; ``arguments`` is empty unless
            ``start_binds`` (a model or collection name given as an argument).
        start_binds: bind the arguments before the span starts, for ``start``.
        request: ``(instance, arguments) -> pairs`` read before the call.
        response: ``result -> pairs``; written with the request's pairs in one write.
        candidates: ``arguments -> count``: a reranker's candidates (attribute and histogram).
        content_in: a content writer ``(span, arguments)`` run before the call, and
        content_out: one ``(span, arguments, result)`` run after it; both are handed to
            ``StageSpan.record_content`` (the privacy gate): with capture off they never run.
        summary: ``(span, arguments, result, nested_results)`` after the call, for what is
            more than pairs (``record_scores``, ``record_ranked``); ``nested_results`` holds
            what calls nested in this one returned (``rank`` reads its inner ``predict``'s).
        one_span: a group name: a call of the group made while a span of the group is
            open in this context (a method built on another wrapped one) records nothing of
            its own; its result goes to the open span's ``nested_results``.
        innermost: this method of a group calls no other method of it (``predict``, which
            ``rank`` calls; qdrant's ``query_points``): it only looks for an open span of
            its group and opens none for its own calls, which saves a context variable's
            set and reset on each of them.
    """

    stage: Stage
    provider: str
    start: Callable[[Any, Arguments], Start]
    start_binds: bool = False
    request: Callable[[Any, Arguments], Attributes] | None = None
    response: Callable[[Any], Attributes] | None = None
    candidates: Callable[[Arguments], int | None] | None = None
    content_in: Callable[[StageSpan, Arguments], object] | None = None
    content_out: Callable[[StageSpan, Arguments, Any], object] | None = None
    summary: Callable[[StageSpan, Arguments, Any, Sequence[Any]], object] | None = None
    one_span: str | None = None
    innermost: bool = False
    _nested: ContextVar[list[Any] | None] | None = field(init=False, repr=False)
    #: the group's variable, set while a call of this method runs: ``None`` for an
    #: innermost method or one in no group
    _opens: ContextVar[list[Any] | None] | None = field(init=False, repr=False)
    _reads_arguments: bool = field(init=False, repr=False)
    #: a retrieval recording nothing but pairs (no candidates, summary or group variable of
    #: its own): a leaf call of it needs no ``StageSpan`` (see ``_leaf_call``)
    _plain_leaf: bool = field(init=False, repr=False)
    _where: str = field(init=False, repr=False)
    #: id(start) -> (start, opening): what a span starts with, worked out once per
    #: ``Start`` object (libraries cache theirs); checked by identity on each use
    _openings: dict[int, tuple[Start, _span.Opening]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nested = None
        if self.one_span is not None:
            nested = _open_spans.setdefault(
                self.one_span, ContextVar(f"otel_rerank_open_{self.one_span}", default=None)
            )
        object.__setattr__(self, "_nested", nested)
        object.__setattr__(self, "_opens", None if self.innermost else nested)
        readers = (self.request, self.content_in, self.content_out, self.summary)
        object.__setattr__(self, "_reads_arguments", any(f is not None for f in readers))
        # Only a retrieval's start can be a leaf (a search in process).
        plain = self.candidates is None and self.summary is None and self._opens is None
        object.__setattr__(self, "_plain_leaf", plain and self.stage is _span.RETRIEVAL)
        object.__setattr__(self, "_where", f"{self.provider} {self.stage.operation}")
        object.__setattr__(self, "_openings", {})

    def wrapper(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """The sync wrapper."""
        # A call nested in an open span of its group first: that span's check stands
        # (``rank``'s ``predict``), and only a method in a group pays the context read.
        nested = self._nested
        if nested is not None:
            outer = nested.get()
            if outer is not None:
                result = wrapped(*args, **kwargs)
                outer.append(result)
                return result
        recording = _span.records()
        if recording is None:
            return wrapped(*args, **kwargs)
        telemetry, parent = recording
        if self._plain_leaf and not telemetry.content.capture:
            return self._leaf_call(telemetry, parent, wrapped, instance, args, kwargs)
        call, arguments = self._begin(telemetry, parent, wrapped, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        opens = self._opens
        inner: list[Any] = []
        token = opens.set(inner) if opens is not None else None
        try:
            with call:
                result = wrapped(*args, **kwargs)
                self._after(call, telemetry, arguments, result, inner)
                return result
        finally:
            if token is not None:
                opens.reset(token)  # type: ignore[union-attr]

    def _leaf_call(
        self,
        telemetry: _telemetry.Telemetry,
        parent: Context,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """:meth:`wrapper` for a method that records only pairs (see ``_plain_leaf``), with
        content capture off: a call whose ``Start`` is a leaf, where :func:`_span.
        leaf_records` makes it one, is recorded without a ``StageSpan``: its pairs are read
        into one dict, and its span made and its duration recorded when it returns
        (:func:`_span.end_leaf`), as ``StageSpan`` would; any other call takes the
        general path."""
        arguments: Arguments | None = None
        if self.start_binds:
            arguments = bind_arguments(wrapped, args, kwargs)
        try:
            start = self.start(instance, _NO_ARGUMENTS if arguments is None else arguments)
        except Exception:  # an instance we cannot read starts a span without its identity
            report_internal_error(self._where)
            start = _NO_START
        leaf: tuple[_span.Opening, bool] | None = None
        if start.leaf:
            try:
                records = _span.leaf_records(telemetry, parent)
                if records is not None:
                    leaf = self._opening(start), records
            except Exception:  # ours: the general path
                report_internal_error("begin")
        if leaf is None:
            call, bound = self._begin(
                telemetry, parent, wrapped, instance, args, kwargs, arguments, start
            )
            if call is None:
                return wrapped(*args, **kwargs)
            with call:
                result = wrapped(*args, **kwargs)
                self._after(call, telemetry, bound, result, ())
                return result
        opened, records = leaf
        pairs: dict[str, AttributeValue] = {}
        if records and self.request is not None:
            if arguments is None:
                arguments = bind_arguments(wrapped, args, kwargs)
            _span.read_pairs(pairs, self.request, instance, arguments)
        start_ns = time.time_ns()
        began = time.perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _span.end_leaf(telemetry, opened, parent, pairs, start_ns, began, records, error)
            raise
        if records and self.response is not None:
            _span.read_pairs(pairs, self.response, result)
        _span.end_leaf(telemetry, opened, parent, pairs, start_ns, began, records)
        return result

    async def async_wrapper(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """The async twin of :meth:`wrapper`: a coroutine function, so the span covers the
        awaited work (a sync wrapper would time the creation of a coroutine object)."""
        # A call nested in an open span of its group first: that span's check stands
        # (``rank``'s ``predict``), and only a method in a group pays the context read.
        nested = self._nested
        if nested is not None:
            outer = nested.get()
            if outer is not None:
                result = await wrapped(*args, **kwargs)
                outer.append(result)
                return result
        recording = _span.records()
        if recording is None:
            return await wrapped(*args, **kwargs)
        telemetry, parent = recording
        call, arguments = self._begin(telemetry, parent, wrapped, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        opens = self._opens
        inner: list[Any] = []
        token = opens.set(inner) if opens is not None else None
        try:
            with call:
                result = await wrapped(*args, **kwargs)
                self._after(call, telemetry, arguments, result, inner)
                return result
        finally:
            if token is not None:
                opens.reset(token)  # type: ignore[union-attr]

    # Each step below guards itself with a try/except (cheaper than a ``with guard``): a
    # failure of ours skips that step's pairs only, never the call or the other steps.
    def _begin(
        self,
        telemetry: _telemetry.Telemetry,
        parent: Context,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        bound: Arguments | None = None,
        start: Start | None = None,
    ) -> tuple[StageSpan | None, Arguments]:
        """Before the call: the span, started with its identity (``None``: call straight
        through), then the arguments (bound once), the candidates and the request's pairs
        (written when the span ends, with the response's, in one write). ``bound`` and
        ``start``: the arguments and the identity where the caller has them already."""
        arguments = bound
        if start is None:
            if self.start_binds:
                arguments = bind_arguments(wrapped, args, kwargs)
            try:
                start = self.start(instance, _NO_ARGUMENTS if arguments is None else arguments)
            except Exception:  # an instance we cannot read starts a span without its identity
                report_internal_error(self._where)
                start = _NO_START
        try:
            call = StageSpan(telemetry, self._opening(start), None, parent, leaf=start.leaf)
        except Exception:  # ours: call straight through
            report_internal_error("begin")
            return None, _NO_ARGUMENTS
        recording = call.recording
        candidates = self.candidates
        if arguments is None:
            if candidates is None and not (recording and self._reads_arguments):
                return call, _NO_ARGUMENTS  # sampled out: nothing is read
            arguments = bind_arguments(wrapped, args, kwargs)
        if candidates is not None:
            try:
                count = candidates(arguments)
            except Exception:
                report_internal_error(self._where)
            else:
                call.record_candidates(count)
        if recording:
            if self.request is not None:  # read to its end before any pair joins the span's
                call.extract(self.request, instance, arguments)
            # The privacy gate's first question asked here: with capture off (the default)
            # the call pays no frame for its content writer.
            if self.content_in is not None and telemetry.content.capture:
                call.record_content(self.content_in, arguments)
        return call, arguments

    def _opening(self, start: Start) -> _span.Opening:
        """What the span starts with: worked out once per ``Start`` object (a library keeps
        one per instance, collection or model) and again for a framework's top_n."""
        # Only a rerank span takes a framework's top_n; one set makes this call's opening.
        if self.stage is _span.RERANK and _span.framework_top_n.get() is not None:
            with_top_n = _span.with_top_n(self.stage, start.attributes)
            return _span.opening(
                self.stage, self.provider, start.model, start.detail, start.kind, with_top_n
            )
        openings = self._openings
        cached = openings.get(id(start))
        if cached is not None and cached[0] is start:
            return cached[1]
        opened = _span.opening(
            self.stage, self.provider, start.model, start.detail, start.kind, start.attributes
        )
        if len(openings) >= _MAX_OPENINGS:  # bounded: a start built anew per call churns
            openings.clear()
        # The entry holds ``start``, so its id is not reused while it is cached.
        openings[id(start)] = (start, opened)
        return opened

    def _after(
        self,
        call: StageSpan,
        telemetry: _telemetry.Telemetry,
        arguments: Arguments,
        result: Any,
        inner: Sequence[Any],
    ) -> None:
        if not call.recording:
            return
        if self.response is not None:
            call.extract(self.response, result)
        if self.content_out is not None and telemetry.content.capture:
            call.record_content(self.content_out, arguments, result)
        summary = self.summary
        if summary is not None:
            try:
                summary(call, arguments, result, inner)
            except Exception:
                report_internal_error(self._where)


@dataclass(frozen=True, slots=True)
class Target:
    """One method to wrap: ``module`` holds ``owner`` with ``method``.

    ``owner`` is a dotted class path, or a function that finds the classes in the imported
    module (faiss gives every index class its own ``search``).
    """

    module: str
    owner: str | Callable[[Any], Iterable[type]]
    method: str
    wrapper: Wrapper


@dataclass(slots=True)
class _Patch:
    owner: type
    name: str
    original: Any
    replacement: Any


class Patcher:
    """Applies targets and undoes them exactly; safe to call from post-import hooks."""

    def __init__(self) -> None:
        self._patches: list[_Patch] = []
        self._lock = threading.Lock()
        self._wanted = False
        #: the instrumentor's own providers / content setting, applied to every patch
        self.settings: _telemetry.LibrarySettings | None = None

    def apply(self, targets: Sequence[Target]) -> None:
        """Patch every target whose module is imported; defer the rest to post-import hooks."""
        self._wanted = True
        for module_name in dict.fromkeys(t.module for t in targets):
            group = [t for t in targets if t.module == module_name]
            if module_name in sys.modules:
                self._apply_module(sys.modules[module_name], group)
            else:
                wrapt.register_post_import_hook(self._hook(group), module_name)

    def _hook(self, group: list[Target]) -> Callable[[Any], None]:
        # wrapt cannot unregister a post-import hook, so the hook checks that it is still
        # wanted: an uninstrument() before the import leaves it doing nothing.
        def on_import(module: Any) -> None:
            if self._wanted:
                self._apply_module(module, group)

        return on_import

    def _apply_module(self, module: Any, group: list[Target]) -> None:
        with self._lock:
            for target in group:
                if callable(target.owner):
                    owners = list(target.owner(module))
                else:
                    try:
                        owners = [_resolve(module, target.owner)]
                    except AttributeError:
                        logger.debug(
                            "otel-rerank: %s.%s not found; skipped", target.module, target.owner
                        )
                        continue
                for owner in owners:
                    self._patch_one(owner, target.method, target.wrapper)

    def patch_class(self, owner: type, method: str, wrapper: Wrapper) -> None:
        """Patch one method on one class (a subclass of a patched one, in tests)."""
        with self._lock:
            self._patch_one(owner, method, wrapper)

    def _patch_one(self, owner: type, method: str, wrapper: Wrapper) -> None:
        if method not in owner.__dict__:
            logger.debug(
                "otel-rerank: %s.%s not defined in this version; skipped",
                owner.__qualname__,
                method,
            )
            return
        original = owner.__dict__[method]
        if any(p.replacement is original for p in self._patches):
            return  # already ours
        if self.settings is not None:
            wrapper = _with_settings(wrapper, self.settings)
        replacement = _plain_replacement(original, wrapper)
        if replacement is None:  # a kind a plain function would not stand in for
            replacement = wrapt.FunctionWrapper(original, wrapper)
        setattr(owner, method, replacement)
        self._patches.append(_Patch(owner, method, original, replacement))
        _live[id(replacement)] = replacement

    def undo(self) -> None:
        """Put back every original object, newest patch first."""
        with self._lock:
            self._wanted = False
            while self._patches:
                patch = self._patches.pop()
                _live.pop(id(patch.replacement), None)
                if patch.owner.__dict__.get(patch.name) is patch.replacement:
                    setattr(patch.owner, patch.name, patch.original)

    @property
    def patched(self) -> list[tuple[type, str]]:
        """(class, method) pairs currently patched; for tests and debugging."""
        return [(p.owner, p.name) for p in self._patches]


#: id -> every replacement a patcher has installed and not undone (see ``is_replacement``);
#: by id, not in a set: a ``wrapt.FunctionWrapper`` compares and hashes as its original.
_live: dict[int, Any] = {}


def is_replacement(obj: object) -> bool:
    """True when ``obj`` (a class ``__dict__`` entry) is a replacement installed by an
    otel-rerank patcher and not yet undone: "patched by us", whatever kind of object."""
    return _live.get(id(obj), _live) is obj  # ``_live`` itself: no entry (None is a value)


def _plain_replacement(original: Any, wrapper: Wrapper) -> Any | None:
    """A plain function that calls ``wrapper`` as ``wrapt.FunctionWrapper(original, wrapper)``
    would, in ``original``'s descriptor type; ``None`` for a kind it does not stand in for.

    The wrapper gets wrapt's arguments: for a method, the method bound to the instance,
    the instance and the arguments after it (also for a call through the class,
    ``Cls.method(obj, x)``, where wrapt takes the instance from the first argument; one
    difference: a first argument that is not an instance of the class is the ``instance``
    here, ``None`` in wrapt); for a staticmethod, the function and ``None``; for a
    classmethod, the method bound to the class it was called on (or its instance's) and
    that class. A coroutine function's replacement is an ``async def`` (``inspect.
    iscoroutinefunction`` stays true: LangChain, LlamaIndex and Haystack ask) that awaits
    what the wrapper returns (so the wrapper is called when the call is awaited, as the
    original's body runs; the async wrappers do nothing before that anyway), and
    ``functools.update_wrapper`` gives it the original's name, qualname, module, doc and
    attributes and a ``__wrapped__`` (``inspect.signature`` follows it). A generator or
    async generator function, which a plain function can only stand in for by running the
    wrapper late (at the first ``next``), and anything but a Python function (a C method,
    another library's wrapt decorator) get ``None``: they keep a ``wrapt.FunctionWrapper``.

    A synchronous function's replacement is compiled where ``_speedups`` is built (the
    ``Replacement`` type: a descriptor that binds as a function does, with a ``__dict__``
    for ``update_wrapper``; ``inspect`` answers for it as for the Python one), else the
    Python function below, its reference.
    """
    kind = type(original)
    function = original.__func__ if kind is staticmethod or kind is classmethod else original
    if (
        not _telemetry.GLOBALS_READABLE  # the check below reads them (see there)
        or type(function) is not FunctionType
        or inspect.isgeneratorfunction(function)
        or inspect.isasyncgenfunction(function)
    ):
        return None
    is_async = inspect.iscoroutinefunction(function)
    # Each replacement first asks "no SDK configured?" itself, in three attribute reads (the
    # API's two global providers, then _telemetry.own_providers: with an SDK set globally,
    # the first read answers), and calls the original straight away when so: in an app
    # without an SDK that is all a call pays, and right after a model's forward pass (the
    # caches swept) each function or object it passes through costs about a microsecond,
    # so the wrapper, the bound method and the check's own call would be ~12 µs where
    # this is ~1.5 (``benchmarks/cold_call.py``, ``no_sdk_split.py``). The wrapper's own
    # check still decides everything else (a library's settings, suppression).
    replacement: Callable[..., Any]
    if not is_async and _CompiledReplacement is not None:
        # The same check and call, compiled: it calls the original with the very arguments
        # it was given, with no frame of its own (``_speedups.c``, ``Replacement``): after
        # a forward pass 2-3 µs less than the Python function, below the A/A (``cold_call.py
        # --pieces``); warm ~30 ns against ~130 (``patch_layer.py``). It also keeps its
        # answer while the three modules' dicts are unchanged, so that a call reads one
        # line of each dict instead of a key, an index and an entry: on encode of one query
        # +1.2 to +3.3 µs inner-timed over four runs, against +3.4 to +4.4
        # (``library_overhead.py``, stop 28).
        replacement = _CompiledReplacement(
            function,
            wrapper,
            kind is not staticmethod,
            vars(trace),
            vars(_metrics_internal),
            vars(_telemetry),
        )
    elif kind is staticmethod:
        if is_async:

            async def replacement(*args: Any, **kwargs: Any) -> Any:
                if (
                    trace._TRACER_PROVIDER is None
                    and _metrics_internal._METER_PROVIDER is None
                    and not _telemetry.own_providers
                ):
                    return await function(*args, **kwargs)
                return await wrapper(function, None, args, kwargs)

        else:

            def replacement(*args: Any, **kwargs: Any) -> Any:
                if (
                    trace._TRACER_PROVIDER is None
                    and _metrics_internal._METER_PROVIDER is None
                    and not _telemetry.own_providers
                ):
                    return function(*args, **kwargs)
                return wrapper(function, None, args, kwargs)

    elif is_async:  # a method or classmethod: the first argument is the instance or class

        async def replacement(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            if (
                trace._TRACER_PROVIDER is None
                and _metrics_internal._METER_PROVIDER is None
                and not _telemetry.own_providers
            ):
                return await function(self, *args, **kwargs)
            return await wrapper(MethodType(function, self), self, args, kwargs)

    else:

        def replacement(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            if (
                trace._TRACER_PROVIDER is None
                and _metrics_internal._METER_PROVIDER is None
                and not _telemetry.own_providers
            ):
                return function(self, *args, **kwargs)
            return wrapper(MethodType(function, self), self, args, kwargs)

    functools.update_wrapper(replacement, function)
    if kind is staticmethod:
        return staticmethod(replacement)
    if kind is classmethod:
        return classmethod(replacement)
    return replacement


def _with_settings(wrapper: Wrapper, settings: _telemetry.LibrarySettings) -> Wrapper:
    """``wrapper``, run with its instrumentor's own settings (awaited work included)."""

    def scoped(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        with _telemetry.library_scope(settings):
            result = wrapper(wrapped, instance, args, kwargs)
        if inspect.iscoroutine(result):  # an async wrapper begins its span when awaited
            return _awaited(settings, result)
        return result

    return scoped


async def _awaited(settings: _telemetry.LibrarySettings, coroutine: Any) -> Any:
    with _telemetry.library_scope(settings):
        return await coroutine


def _resolve(module: Any, dotted: str) -> type:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


class RagInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base class of every otel-rerank instrumentor.

    Subclasses set ``package`` (the importable module whose presence means "installed")
    and ``supported`` (the pip requirement range tested), and implement :meth:`targets`.
    The name ``instrument(libraries=[...])`` takes is the entry point's (the registry).
    """

    package: str = ""
    supported: str = ""

    _patcher: Patcher

    def __init__(self) -> None:
        # BaseInstrumentor hands out one instance per class and __init__ runs on every
        # ``Instrumentor()``; keep the patch record of the first.
        if not hasattr(self, "_patcher"):
            self._patcher = Patcher()

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.supported,)

    @classmethod
    def is_installed(cls) -> bool:
        """True when the library can be imported (checked without importing it)."""
        try:
            return importlib.util.find_spec(cls.package) is not None
        except (ImportError, ValueError):
            return False

    def targets(self) -> Sequence[Target]:
        """The methods to wrap."""
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        # Providers and a content setting given here are this library's only;
        # ``otel_rerank.instrument()`` sets the defaults for everything else.
        settings = _telemetry.library_settings(
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            kwargs.get("capture_content"),
        )
        self._patcher.settings = settings
        if settings is not None:
            _telemetry.hold_library_settings(True)
        self._patcher.apply(self.targets())

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patcher.undo()
        if self._patcher.settings is not None:
            self._patcher.settings = None
            _telemetry.hold_library_settings(False)
