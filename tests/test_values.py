"""The core's pure value helpers (``otel_rerank._values``)."""

from __future__ import annotations

import math

import pytest

from otel_rerank._values import is_int, is_number, model_name_of


@pytest.mark.parametrize(
    ("value", "number", "integer"),
    [
        (1, True, True),
        (0, True, True),
        (1.5, True, False),
        (math.nan, True, False),
        (True, False, False),
        (False, False, False),
        ("1", False, False),
        (None, False, False),
    ],
)
def test_numbers_are_told_from_booleans(value: object, number: bool, integer: bool) -> None:
    assert is_number(value) is number
    assert is_int(value) is integer


class _Config:
    def __init__(self, path: str) -> None:
        self._name_or_path = path


class _Card:
    base_model = "cross-encoder/ms-marco-MiniLM-L6-v2"


class _Carded:
    model_card_data = _Card()
    config = _Config("/tmp/whatever")


class _Configured:
    config = _Config("/home/me/.cache/huggingface/hub/models--org--ranker/snapshots/" + "a" * 40)


class _Module:
    class auto_model:  # noqa: N801 - what sentence-transformers calls it
        config = _Config("/srv/models/bge-small")


class _Sequential(list[object]):
    """A SentenceTransformer: indexable, its first module holds the transformers model."""


class _Bare:
    pass


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (_Carded(), "cross-encoder/ms-marco-MiniLM-L6-v2"),  # the model card's hub id first
        (_Configured(), "org/ranker"),  # else the path it was loaded from
        (_Sequential([_Module()]), "bge-small"),  # a SentenceTransformer's first module
        (_Bare(), "_Bare"),  # else the class name
    ],
)
def test_a_model_objects_name_is_the_one_users_know(model: object, name: str) -> None:
    assert model_name_of(model) == name


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "longdouble", "int8", "int64", "uint32"]
)
@pytest.mark.parametrize("column", [False, True])
def test_float_list_of_arrays_is_python_floats_equal_to_the_values(
    dtype: str, column: bool
) -> None:
    # A float array's tolist() is used as it is (no second copy), any other real dtype's
    # is converted: either way plain floats, equal to the array's values.
    np = pytest.importorskip("numpy")
    from otel_rerank._values import float_list

    array = np.array([3, 1, 0, 7, 7], dtype=dtype)
    # Twice: the first call learns the type and dtype, the second takes the fast path.
    for _ in range(2):
        found = float_list(array.reshape(-1, 1) if column else array)
        assert found == [float(x) for x in array]
        assert found is not None and {type(x) for x in found} == {float}


def test_float_list_reads_an_array_subclass_and_a_bool_array_as_before() -> None:
    # The per-type fast path holds the exact numpy and torch types: a subclass is read the
    # general way, and what is not a real float dtype never takes it.
    np = pytest.importorskip("numpy")
    from otel_rerank._values import float_list

    class Scores(np.ndarray):  # type: ignore[misc,type-arg]
        pass

    for _ in range(2):
        assert float_list(np.array([0.5, 1.5]).view(Scores)) == [0.5, 1.5]
        assert float_list(np.array([True, False])) is None
        assert float_list(np.array([[0.5, 1.5]])) is None  # one row of two: not one per item
        assert float_list(np.array([0.5 + 1j])) is None


def test_float_list_of_torch_tensors_is_python_floats() -> None:
    torch = pytest.importorskip("torch")
    from otel_rerank._values import float_list

    for dtype in (torch.float32, torch.bfloat16, torch.int64, torch.float32, torch.bfloat16):
        found = float_list(torch.tensor([2, 0, 5], dtype=dtype))
        assert found == [2.0, 0.0, 5.0]
        assert {type(x) for x in found} == {float}
    assert float_list(torch.tensor([True, False])) is None
    assert float_list(torch.tensor([[2.0, 0.0]])) is None
