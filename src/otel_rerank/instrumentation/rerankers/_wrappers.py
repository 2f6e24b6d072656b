"""wrapt wrapper for ``TransformerRanker.rank``: one rerank span per call.

The ranker runs its model directly (transformers, not sentence-transformers), so no other
instrumentation sees this stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_rerank import _span
from otel_rerank._span import StageSpan
from otel_rerank.instrumentation._common import bind_arguments
from otel_rerank.instrumentation.rerankers import _attributes as attrs


def rank(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    call = _span.begin(_span.RERANK, provider=attrs.PROVIDER, model=attrs.model_name(instance))
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        arguments = call.safely(_before, call, wrapped, instance, args, kwargs)
        result = wrapped(*args, **kwargs)
        if arguments is not None and call.recording:
            call.record_scores(call.safely(attrs.scores_in_given_order, arguments, result))
        return result


def _before(
    call: StageSpan,
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    arguments = bind_arguments(wrapped, args, kwargs)
    call.record_candidates(attrs.candidate_count(arguments))
    call.extract(attrs.request, instance, arguments)
    return arguments
