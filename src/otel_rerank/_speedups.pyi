"""Types of the optional compiled module built from ``_speedups.c`` (see there)."""

from collections.abc import Sequence
from typing import Any

def rank_summary(
    scores: object, limit: int, /
) -> tuple[float, bool, float | None, list[int], list[float]] | None: ...
def one_query(pairs: Sequence[Any], /) -> tuple[bool, Any]: ...
def output_documents(
    attributes: dict[str, Any],
    indices: Sequence[int],
    scores: Sequence[float],
    limit: int,
    id_keys: tuple[str, ...],
    score_keys: tuple[str, ...],
    /,
) -> bool: ...
