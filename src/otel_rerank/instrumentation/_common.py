"""Small pure helpers shared by the per-library extraction modules.

Nothing here touches a span. Arguments are read by binding them to the wrapped function's
signature (never by position), model names are normalised the way users know them, and
score containers of any common type (lists, numpy arrays, torch tensors) are turned into
plain float lists without consuming anything the user still needs.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any

# Moved to the core (the core must not import instrumentation internals); re-exported so
# the per-library modules keep importing them from here.
from otel_rerank._values import float_list, model_name_from_path, sized_length

__all__ = ["InstanceCache", "bind_arguments", "float_list", "model_name_from_path", "sized_length"]

_signatures: dict[Any, inspect.Signature | None] = {}


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
    """
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
