"""Types of the optional compiled module built from ``_speedups.c`` (see there)."""

from collections.abc import Callable, Sequence
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
def summarize(
    scores: object,
    limit: int,
    attributes: dict[str, Any],
    keys: tuple[str, str, str, tuple[str, ...], tuple[str, ...]],
    /,
) -> int | None: ...
def bind(
    plans: dict[Any, Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any, /
) -> dict[str, Any] | None: ...

class Replacement:
    """The patcher's stand-in for a library's plain synchronous function (see
    ``instrumentation._base._plain_replacement``, its Python twin)."""

    def __init__(
        self,
        function: Callable[..., Any],
        wrapper: Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any],
        bound: bool,
        trace_globals: dict[str, Any],
        metrics_globals: dict[str, Any],
        telemetry_globals: dict[str, Any],
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: type | None = None) -> Any: ...
