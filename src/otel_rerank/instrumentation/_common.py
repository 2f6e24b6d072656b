"""Small pure helpers shared by the per-library extraction modules.

Nothing here touches a span. :func:`nothing_records` is the check a wrapper makes before
reading anything of the call (the generic wrapper makes its two parts itself, keeping the
context it read). Arguments are read by binding them to the wrapped
function's signature (never by position; a plan made once per function, not
``Signature.bind`` per call), model names are normalised the way users know them, and
score containers of any common type (lists, numpy arrays, torch tensors) are turned into
plain float lists without consuming anything the user still needs.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from otel_rerank import semconv
from otel_rerank._span import records

try:  # the compiled binding, built when the build had a C compiler (hatch_build.py)
    from otel_rerank._speedups import bind as _compiled_bind
except ImportError:  # pure Python: the same answers, only slower
    _compiled_bind = None  # type: ignore[assignment]

# Moved to the core (the core must not import instrumentation internals); re-exported so
# the per-library modules keep importing them from here.
from otel_rerank._values import float_list, model_name_from_path, sized_length

__all__ = [
    "InstanceCache",
    "bind_arguments",
    "float_list",
    "model_name_from_path",
    "nothing_records",
    "server_from_url",
    "sized_length",
]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_from_url(url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` (the scheme's default if none is given) of a
    client's base URL; empty when it names no host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return {}
    found: dict[str, Any] = {semconv.SERVER_ADDRESS: parts.hostname}
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if port is not None:
        found[semconv.SERVER_PORT] = port
    return found


def nothing_records() -> bool:
    """True when a span would not even start (suppressed, or no SDK configured).

    Wrappers check it before reading the call's arguments or the instance, so that a
    process without an SDK pays a context lookup per call and nothing more.
    """
    return records() is None


_signatures: dict[Any, inspect.Signature | None] = {}
_plans: dict[Any, _BindPlan | None] = {}


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    key = getattr(fn, "__func__", fn)
    try:
        return _signatures[key]
    except KeyError:
        pass
    try:
        sig: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if len(_signatures) < 4096:  # bounded: keys are functions, not calls
        _signatures[key] = sig
    return sig


class _BindPlan(NamedTuple):
    """What ``Signature.bind`` + ``apply_defaults`` work out per call, worked out once
    (:func:`_plan_of`).

    Covers the calls wrappers see almost always: positional arguments that fit the named
    positional parameters, keywords the signature names (or any keyword when it takes
    ``**kwargs``), every required parameter given. Anything else goes to the general path.
    Per number of positional arguments given, the plan knows which names they took and
    which required parameters are left for the keywords, so a call checks only those.
    A tuple, so that the compiled binding (``otel_rerank._speedups.bind``, the same answers)
    reads its fields by position; :meth:`bind` is the reference it is held to.
    """

    #: the parameters positional arguments fill, in order
    positional: tuple[str, ...]
    #: for n positional arguments: the names they fill, and the required names left
    by_count: tuple[tuple[frozenset[str], tuple[str, ...]], ...]
    #: the names a keyword argument may take
    keywords: frozenset[str]
    #: every parameter's name (with ``**kwargs``, a keyword named like a positional-only
    #: parameter lands in it: the general path handles that)
    names: frozenset[str]
    var_keyword: bool
    #: apply_defaults' values (``*args`` an empty tuple; ``**kwargs`` is flattened away)
    defaults: dict[str, Any]

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        count = len(args)
        if count > len(self.positional):
            return None
        given, missing = self.by_count[count]
        if kwargs:
            # Checked on the key set, in C: a keyword given twice (or naming a positional-
            # only parameter), one the signature does not take, a required one left out.
            keys = kwargs.keys()
            if not given.isdisjoint(keys):
                return None
            unknown = keys - self.keywords
            if unknown and (not self.var_keyword or not self.names.isdisjoint(unknown)):
                return None
            if missing and not keys >= set(missing):
                return None
        elif missing:
            return None
        named = dict(self.defaults)
        if count <= 2:  # the usual calls (predict(pairs), rank(query, documents)): no zip,
            positional = self.positional  # whose C code is cold after a forward pass
            if count:
                named[positional[0]] = args[0]
                if count == 2:
                    named[positional[1]] = args[1]
        else:
            named.update(zip(self.positional, args, strict=False))  # args fit (checked)
        if kwargs:
            named.update(kwargs)
        return named


def _plan_of(sig: inspect.Signature) -> _BindPlan:
    kinds = inspect.Parameter
    parameters = sig.parameters
    positional = tuple(
        name
        for name, p in parameters.items()
        if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    )
    required = tuple(
        name
        for name, p in parameters.items()
        if p.default is p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
    )
    defaults: dict[str, Any] = {}
    var_keyword = False
    for name, p in parameters.items():
        if p.kind is kinds.VAR_POSITIONAL:
            defaults[name] = ()
        elif p.kind is kinds.VAR_KEYWORD:
            var_keyword = True
        elif p.default is not p.empty:
            defaults[name] = p.default
    return _BindPlan(
        positional=positional,
        by_count=tuple(
            (
                frozenset(positional[:n]),
                tuple(name for name in required if name not in positional[:n]),
            )
            for n in range(len(positional) + 1)
        ),
        keywords=frozenset(
            name
            for name, p in parameters.items()
            if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        ),
        names=frozenset(parameters),
        var_keyword=var_keyword,
        defaults=defaults,
    )


def bind_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults filled in, ``**kwargs`` flattened.

    ``fn`` is the callable as the caller saw it (a bound method for instance methods), so
    ``self`` is not among the names. Keywords the signature does not list (taken by a
    decorator's ``**kwargs``, as sentence-transformers' deprecation shims do with
    ``convert_to_tensor`` or ``apply_softmax``) do not stop the rest from being bound:
    they are returned by their own names. Returns only the keyword arguments when the
    signature cannot be read or the positional arguments do not fit it.

    The usual call takes a fast path planned once per function (no ``Signature.bind``;
    compiled, ``otel_rerank._speedups.bind``, for a bound method, where the build had a C
    compiler); the rest take the general one, with the same result.
    """
    if _compiled_bind is not None:
        named = _compiled_bind(_plans, fn, args, kwargs)
        if named is not None:
            return named
    try:  # the plan of a function seen before, without _plan's frame
        plan = _plans[getattr(fn, "__func__", fn)]
    except (KeyError, TypeError):
        plan = _plan(fn)
    if plan is not None:
        named = plan.bind(args, kwargs)
        if named is not None:
            return named
    return _bind_general(fn, args, kwargs)


def _plan(fn: Callable[..., Any]) -> _BindPlan | None:
    key = getattr(fn, "__func__", fn)
    try:
        return _plans[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable callable
        return None
    sig = _signature(fn)
    plan = _plan_of(sig) if sig is not None else None
    if len(_plans) < 4096:  # bounded like the signatures
        _plans[key] = plan
    return plan


def _bind_general(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    sig = _signature(fn)
    if sig is None:
        return dict(kwargs)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        parameters = sig.parameters
        known = {k: v for k, v in kwargs.items() if k in parameters}
        try:
            bound = sig.bind_partial(*args, **known)
        except TypeError:
            return dict(kwargs)
        bound.apply_defaults()
        return {**kwargs, **bound.arguments}
    bound.apply_defaults()
    named = dict(bound.arguments)
    for name, param in sig.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            named.update(named.pop(name, None) or {})
    return named


class InstanceCache:
    """Per-instance memo for facts that cost more than a lookup.

    Keyed by the instance's identity (never its ``__eq__``/``__hash__``: a pydantic model
    such as chroma's ``Collection`` defines ``__eq__`` without ``__hash__``, and two equal
    clients are still two instances), through a weak reference whose death removes the
    entry, before the id can be reused. A lookup (:meth:`of`) is an ``id`` and a dict read,
    no weak reference made per call. Objects that cannot be weakly referenced are computed
    again on every call.

    A method, not ``__call__``: an instance called goes through its type's call slot, which
    the interpreter does not specialise, and right after a model's forward pass that costs
    5-7 µs per lookup against 3-3.5 for the method (``benchmarks/cold_call.py --readers``).
    """

    __slots__ = ("_by_identity", "_compute")

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute
        self._by_identity: dict[int, tuple[weakref.ref[Any], Any]] = {}

    def of(self, instance: Any) -> Any:
        """``instance``'s value: computed on its first lookup, then kept while it lives."""
        key = id(instance)
        entry = self._by_identity.get(key)
        if entry is not None and entry[0]() is instance:
            return entry[1]
        value = self._compute(instance)
        entries = self._by_identity
        try:
            # Dies with the instance, before its id can be reused.
            ref = weakref.ref(instance, lambda _ref: entries.pop(key, None))
        except TypeError:  # not weak-referenceable: computed again next time
            return value
        entries[key] = (ref, value)
        return value

    def discard(self, instance: Any) -> None:
        """Forget ``instance``'s value (it changed): the next call computes it again."""
        entry = self._by_identity.get(id(instance))
        if entry is not None and entry[0]() is instance:
            self._by_identity.pop(id(instance), None)
