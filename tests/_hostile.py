"""Hypothesis strategies for the odd and hostile values users really pass to instrumented calls.

``odd_values`` are legal but unusual Python values: ``None``, NaN, huge strings, bytes,
numpy arrays and torch tensors of any shape and dtype, generators, sets, dicts where a list
is expected, nested mixtures. Extraction must never fail on them (tests run it with
``_safe.STRICT`` on, so a failure re-raises).

``hostile_values`` add objects whose every protocol raises (``len``, iteration, attribute
access, ``str``, comparison) — proxies and mocks gone wrong. Extraction may fail on those,
but the failure must stay ours: the user's call behaves exactly as it would without
instrumentation (tested with ``STRICT`` off).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import strategies as st

HUGE = "x" * 200_000


class Hostile:
    """Raises from every protocol a piece of extraction code might touch."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"hostile attribute {name}")

    def __len__(self) -> int:
        raise RuntimeError("hostile len")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("hostile iter")

    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("hostile getitem")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("hostile eq")

    def __hash__(self) -> int:
        raise RuntimeError("hostile hash")

    def __bool__(self) -> bool:
        raise RuntimeError("hostile bool")

    def __str__(self) -> str:
        raise RuntimeError("hostile str")

    def __repr__(self) -> str:
        return "Hostile()"

    def __float__(self) -> float:
        raise RuntimeError("hostile float")


def _array(shape: list[int], dtype: str) -> Any:
    size = int(np.prod(shape)) if shape else 1
    if dtype == "object":
        flat = np.empty(size, dtype=object)
        for i in range(size):
            flat[i] = ["a", 1, None, 2.5][i % 4]
        return flat.reshape(shape)
    if dtype == "<U5":
        return np.array(["ab"] * size, dtype=dtype).reshape(shape)
    return np.arange(size).astype(dtype).reshape(shape)


def _tensor(shape: list[int], dtype: str) -> Any:
    import torch

    size = int(np.prod(shape)) if shape else 1
    values = torch.arange(size, dtype=torch.float64).reshape(shape)
    return values.to(getattr(torch, dtype))


_shapes = st.lists(st.integers(0, 4), max_size=3)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.just(HUGE),
    st.just(HUGE.encode()),
    st.complex_numbers(allow_nan=True),
    st.just(object()),
)
arrays = st.builds(
    _array,
    _shapes,
    st.sampled_from(["float32", "float64", "int64", "bool", "object", "<U5"]),
)
tensors = st.builds(_tensor, _shapes, st.sampled_from(["float32", "float16", "int64", "bool"]))
generators = st.lists(scalars, max_size=4).map(lambda items: (x for x in items))

odd_values = st.recursive(
    st.one_of(scalars, arrays, tensors, generators),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
        st.sets(st.integers(), max_size=3),
        st.lists(children, max_size=3).map(iter),
    ),
    max_leaves=8,
)

#: Like ``odd_values`` but without one-shot iterators, for comparing two calls that must
#: each see the same input.
reusable_values = st.recursive(
    st.one_of(scalars, arrays, tensors),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)

hostile_values = st.one_of(
    odd_values,
    st.builds(Hostile),
    st.lists(st.builds(Hostile), max_size=3),
    st.builds(mock.Mock),
    st.builds(mock.MagicMock),
)

#: Names the instrumented libraries' calls take their arguments by (any of them may appear
#: in a bound-arguments mapping, holding anything).
ARGUMENT_NAMES = (
    "inputs",
    "sentences",
    "batch_size",
    "device",
    "documents",
    "query",
    "top_k",
    "top_n",
    "model",
    "messages",
    "input",
    "stream",
    "system",
    "max_tokens",
    "query_texts",
    "query_embeddings",
    "n_results",
    "collection_name",
    "query_vector",
    "limit",
    "requests",
    "k",
    "x",
    "return_documents",
    "convert_to_tensor",
    "prompt_name",
)


def arguments(values: st.SearchStrategy[Any] = odd_values) -> st.SearchStrategy[dict[str, Any]]:
    """A bound-arguments mapping: some of the known names, each holding an odd value."""
    return st.dictionaries(st.sampled_from(ARGUMENT_NAMES), values, max_size=6)


def valid_attribute_value(value: Any) -> bool:
    """What the OpenTelemetry SDK accepts as an attribute value (else it drops it)."""
    if isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        return len(kinds) <= 1 and all(isinstance(v, (str, bool, int, float)) for v in value)
    return False
