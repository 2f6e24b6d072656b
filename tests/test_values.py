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
