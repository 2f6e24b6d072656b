"""Small pure helpers shared by the per-library extraction modules.

Nothing here touches a span. :func:`nothing_records` is the check every wrapper makes
before reading anything of the call. Arguments are read by binding them to the wrapped
function's signature (never by position; a plan made once per function, not
``Signature.bind`` per call), model names are normalised the way users know them, and
score containers of any common type (lists, numpy arrays, torch tensors) are turned into
plain float lists without consuming anything the user still needs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from otel_rerank import _telemetry
from otel_rerank._span import instrumentation_suppressed


def nothing_records() -> bool:
    """True when a span would not even start (suppressed, or no SDK configured).

    Wrappers check it before reading the call's arguments or the instance, so that a
    process without an SDK pays a context lookup per call and nothing more.
    """
    return instrumentation_suppressed() or _telemetry.current() is None


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


class _BindPlan:
    """What ``Signature.bind`` + ``apply_defaults`` work out per call, worked out once.

    Covers the calls wrappers see almost always: positional arguments that fit the named
    positional parameters, keywords the signature names (or any keyword when it takes
    ``**kwargs``), every required parameter given. Anything else goes to the general path.
    """

    __slots__ = ("_names", "defaults", "keywords", "positional", "required", "var_keyword")

    def __init__(self, sig: inspect.Signature) -> None:
        kinds = inspect.Parameter
        self.positional: tuple[str, ...] = tuple(
            name
            for name, p in sig.parameters.items()
            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        )
        self.keywords: frozenset[str] = frozenset(
            name
            for name, p in sig.parameters.items()
            if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        )
        self.required: tuple[str, ...] = tuple(
            name
            for name, p in sig.parameters.items()
            if p.default is p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        )
        # apply_defaults gives ``*args`` an empty tuple; ``**kwargs`` is flattened away.
        defaults: dict[str, Any] = {}
        self.var_keyword = False
        for name, p in sig.parameters.items():
            if p.kind is kinds.VAR_POSITIONAL:
                defaults[name] = ()
            elif p.kind is kinds.VAR_KEYWORD:
                self.var_keyword = True
            elif p.default is not p.empty:
                defaults[name] = p.default
        self.defaults = defaults
        # With ``**kwargs``, a keyword named like a positional-only parameter lands in it:
        # the general path handles that.
        self._names: frozenset[str] = frozenset(sig.parameters)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        positional = self.positional
        if len(args) > len(positional):
            return None
        named = dict(self.defaults)
        if args:
            named.update(zip(positional, args, strict=False))  # args fit (checked)
        if kwargs:
            keywords = self.keywords
            for key in kwargs:
                if key in keywords:
                    if key in positional[: len(args)]:
                        return None  # given twice: a TypeError for the call itself
                elif not self.var_keyword or key in self._names:
                    return None
            named.update(kwargs)
        for name in self.required:
            if name not in named:
                return None
        return named


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

    The usual call takes a fast path planned once per function (no ``Signature.bind``);
    the rest take the general one, with the same result.
    """
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
    plan = _BindPlan(sig) if sig is not None else None
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


_HF_CACHE_DIR = re.compile(r"models--([^/\\]+)--([^/\\]+)")
_GENERIC_DIR_NAMES = frozenset({"model", "models", "weights", "checkpoint", "snapshot", "onnx"})
_HASH = re.compile(r"^[0-9a-f]{40}$")


def model_name_from_path(name_or_path: str) -> str:
    """The name a user knows a model by: a hub id as is, else a directory's last component.

    Hugging Face cache paths (``.../models--org--name/snapshots/<hash>``) give ``org/name``;
    a generic last component such as ``model`` gives its parent's name instead.
    """
    text = name_or_path.rstrip("/\\")
    cached = _HF_CACHE_DIR.search(text)
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}"
    looks_like_path = (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or text.count("/") > 1
        or os.path.isdir(text)
    )
    if not looks_like_path:
        return text  # a hub id such as "cross-encoder/ms-marco-MiniLM-L6-v2"
    parts = [p for p in re.split(r"[/\\]", text) if p]
    while len(parts) > 1 and (parts[-1].lower() in _GENERIC_DIR_NAMES or _HASH.match(parts[-1])):
        parts.pop()
    return parts[-1] if parts else text


def float_list(values: Any) -> list[float] | None:
    """Scores as a flat list of floats, or ``None`` when they are not one score per item.

    Accepts lists/tuples of numbers, numpy arrays and torch tensors of shape (n,) or
    (n, 1), and lists of 0-d tensors. Generators and other one-shot iterables are refused
    so that the user's object is never consumed.
    """
    tolist = getattr(values, "tolist", None)
    if callable(tolist) and hasattr(values, "shape"):
        shape = tuple(values.shape)
        if len(shape) == 2 and shape[1] == 1:
            values = values.reshape(-1)
        elif len(shape) != 1:
            return None
        numeric = _real_dtype(getattr(values, "dtype", None))
        values = values.tolist()
        if numeric and type(values) is list:
            # A real-valued array's tolist() is Python ints/floats: no per-element check.
            return list(map(float, values))
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        return None
    out: list[float] = []
    for item in values:
        value = item.item() if hasattr(item, "item") and getattr(item, "ndim", 0) == 0 else item
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        out.append(float(value))
    return out


def _real_dtype(dtype: Any) -> bool:
    """True for numpy's integer/float dtypes and torch's float dtypes (not bool/complex)."""
    kind = getattr(dtype, "kind", None)
    if isinstance(kind, str):  # numpy
        return kind in ("f", "i", "u")
    return getattr(dtype, "is_floating_point", None) is True and not getattr(
        dtype, "is_complex", False
    )


def sized_length(value: Any) -> int | None:
    """``len(value)`` for real collections (not strings, bytes, or iterators); else ``None``."""
    if isinstance(value, (str, bytes)) or value is None:
        return None
    if hasattr(value, "shape") and getattr(value, "shape", None):
        try:
            return int(value.shape[0])
        except (TypeError, IndexError):
            return None
    if isinstance(value, (Sequence, Mapping)) or hasattr(value, "__len__"):
        try:
            return len(value)
        except TypeError:
            return None
    return None


class InstanceCache:
    """Per-instance memo (weakly keyed) for facts that cost more than a lookup."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute
        self._values: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __call__(self, instance: Any) -> Any:
        try:
            return self._values[instance]
        except KeyError:
            value = self._compute(instance)
            # Not weak-referenceable or unhashable: computed again next time.
            with contextlib.suppress(TypeError):
                self._values[instance] = value
            return value
        except TypeError:
            return self._compute(instance)
