"""Pure value helpers shared by the core, the instrumentations and the tools.

Score containers of any common type (lists, numpy arrays, torch tensors) become plain float
lists without consuming anything the user still needs, collection sizes are read without
iterating, numbers are told from booleans (``True`` is an ``int`` to Python, never a count
or a latency to us), and model names are normalised the way users know them (a path's, a
loaded model object's). Nothing here touches a span or imports a library.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

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


def model_name_of(model: Any) -> str:
    """The name a user knows a loaded model object by (a ``CrossEncoder``, a
    ``SentenceTransformer``, a transformers model): its model card's base model (a hub id),
    else the name or path it was loaded from (see :func:`model_name_from_path`), else its
    class name. Computed on every call: cache it per instance where it runs per call.
    """
    card = getattr(model, "model_card_data", None)
    hub_id = getattr(card, "base_model", None)
    if isinstance(hub_id, str) and hub_id:
        return hub_id
    for source in (getattr(model, "config", None), _first_auto_model_config(model)):
        path = getattr(source, "_name_or_path", None) or getattr(source, "name_or_path", None)
        if isinstance(path, str) and path:
            return model_name_from_path(path)
    return type(model).__name__


def _first_auto_model_config(model: Any) -> Any:
    try:
        return model[0].auto_model.config
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def is_number(value: object) -> TypeGuard[int | float]:
    """An ``int`` or ``float`` that is not a ``bool``."""
    kind = type(value)
    if kind is float or kind is int:  # the usual answer, without two isinstance calls
        return True
    return isinstance(value, (int, float)) and kind is not bool


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    kind = type(value)
    return kind is int or (kind is not bool and isinstance(value, int))


def float_list(values: Any) -> list[float] | None:
    """Scores as a flat list of floats, or ``None`` when they are not one score per item.

    Accepts lists/tuples of numbers, numpy arrays and torch tensors of shape (n,) or
    (n, 1), and lists of 0-d tensors. Generators and other one-shot iterables are refused
    so that the user's object is never consumed.
    """
    kind: str | None
    if type(values) in ARRAY_TYPES:  # the usual result: checked once per type and dtype
        dtype = values.dtype
        kind = _kinds.get(dtype)
        if kind == "f" and values.ndim == 1:
            return values.tolist()  # type: ignore[no-any-return]
    elif type(values) is list and set(map(type, values)) <= _NUMBERS:
        return list(map(float, values))  # plain Python numbers: checked in bulk
    tolist = getattr(values, "tolist", None)
    if callable(tolist) and hasattr(values, "shape"):
        shape = tuple(values.shape)
        if len(shape) == 2 and shape[1] == 1:
            values = values.reshape(-1)
        elif len(shape) != 1:
            return None
        dtype = getattr(values, "dtype", None)
        kind = _real_kind(dtype)
        if (type(values).__module__, type(values).__name__) in _ARRAY_TYPE_NAMES:
            ARRAY_TYPES.add(type(values))  # a set: one entry per type, added again alike
            if len(_kinds) < 64:  # bounded: dtypes, not calls
                _kinds[dtype] = kind
        values = values.tolist()
        if kind is not None and type(values) is list:
            # A real-valued array's tolist() is Python ints/floats: no per-element check; a
            # float array's is floats already, a new list: no copy.
            return values if kind == "f" else list(map(float, values))
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        return None
    out: list[float] = []
    for item in values:
        value = item.item() if hasattr(item, "item") and getattr(item, "ndim", 0) == 0 else item
        if not is_number(value):
            return None
        out.append(float(value))
    return out


_NUMBERS = frozenset({float, int})
#: numpy's array and torch's tensor (exactly: a subclass may read differently), whose 1-D
#: float ``tolist()`` is the list of scores; recorded when first seen (never imported here;
#: ``_rerank.summary`` reads it too)
_ARRAY_TYPE_NAMES: Final = frozenset({("numpy", "ndarray"), ("torch", "Tensor")})
ARRAY_TYPES: set[type] = set()
#: those types' dtypes seen so far, with what ``_real_kind`` says of each
_kinds: dict[Any, str | None] = {}


def _real_kind(dtype: Any) -> str | None:
    """What a real-valued array's ``tolist()`` holds: ``"f"`` Python floats (numpy's float
    dtypes up to float64, torch's float dtypes), ``"i"`` other real numbers to convert
    (numpy's integers, its long double); ``None`` for anything else (bool, complex)."""
    kind = getattr(dtype, "kind", None)  # numpy's; torch's dtypes have none
    if kind == "f":
        return "f" if getattr(dtype, "itemsize", 16) <= 8 else "i"
    if kind is not None:
        return "i" if kind in ("i", "u") else None
    if getattr(dtype, "is_floating_point", None) is True and not getattr(
        dtype, "is_complex", False
    ):
        return "f"
    return None


def sized_length(value: Any) -> int | None:
    """``len(value)`` for real collections (not strings, bytes, or iterators); else ``None``."""
    kind = type(value)
    if kind is list or kind is tuple or kind is dict:
        return len(value)
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
