"""The core's pure value helpers (``otel_rerank._values``)."""

from __future__ import annotations

import math

import pytest

from otel_rerank._values import is_int, is_number


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
