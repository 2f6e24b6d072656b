"""The metric points one stage call records, and the attributes they carry.

Every point of a call carries the same identity (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, the shadow flag) and, as the call goes
on, a few more: the server address and port, ``gen_ai.response.model``, ``error.type``,
``gen_ai.token.type``. :class:`MetricAttributes` builds each such combination once and
shares it between calls (the SDK copies what it keeps), so a call copies no dict to record
a point. The functions below record one call's points, from the call's telemetry and
attributes (no recorder object per call); metrics are recorded whether or not the call's
span is sampled. Each point is recorded in a context where the call's span is current
(``in_span``), whatever context is current when it is recorded: an exemplar the SDK keeps
for it (its default filter keeps them for sampled spans) points at that span, not at its
parent or at nothing.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from otel_rerank import _errors, _telemetry, semconv
from otel_rerank._safe import report_internal_error

#: Variants one set of attributes keeps (model names and server addresses are the
#: caller's); past this, the cache starts over.
_MAX_VARIANTS: Final = 64


class MetricAttributes:
    """A set of metric attributes, and the sets with one more attribute, each built once.

    Attributes:
        values: the attributes, as the SDK's ``record`` takes them; read, never written to.
    """

    __slots__ = ("_variants", "values")

    def __init__(self, values: dict[str, AttributeValue]) -> None:
        self.values = values
        self._variants: dict[tuple[str, AttributeValue], MetricAttributes] = {}

    def plus(self, key: str, value: AttributeValue) -> MetricAttributes:
        """These attributes with ``key`` set to ``value`` (a shared, cached set)."""
        variants = self._variants
        try:
            return variants[key, value]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a sequence attribute): built each time
            return MetricAttributes({**self.values, key: value})
        variant = MetricAttributes({**self.values, key: value})
        if len(variants) >= _MAX_VARIANTS:
            variants.clear()
        variants[key, value] = variant
        return variant


# One call's points. Functions of the call's telemetry and attributes rather than an object
# per call: the stage span holds both and calls these on its hot path.
def call_points(
    telemetry: _telemetry.Telemetry,
    attributes: MetricAttributes,
    seconds: float,
    failure: BaseException | None,
    in_span: Context,
    candidate_count: int | None = None,
) -> None:
    """The points a call records as it ends: a reranker's ``rag.rerank.candidates`` (when
    its count was given) and ``gen_ai.client.operation.duration``, with ``error.type`` when
    the call failed.

    One function for both, back to back: the SDK's recording code is warm for the second
    (the count is recorded as the call ends, not before its forward pass evicts that code),
    and the call pays one frame for them. The duration is recorded even if the count's
    point fails.
    """
    if candidate_count is not None:
        try:
            telemetry.candidates.record(candidate_count, attributes.values, in_span)
        except Exception:
            report_internal_error("call_points")
    if failure is not None:
        attributes = attributes.plus(semconv.ERROR_TYPE, _errors.error_type(failure))
    telemetry.duration.record(seconds, attributes.values, in_span)


def candidates(
    telemetry: _telemetry.Telemetry, attributes: MetricAttributes, count: int, in_span: Context
) -> None:
    """``rag.rerank.candidates``: how many candidates a reranker was given."""
    telemetry.candidates.record(count, attributes.values, in_span)


def tokens(
    telemetry: _telemetry.Telemetry,
    attributes: MetricAttributes,
    input_tokens: int | None,
    output_tokens: int | None,
    in_span: Context,
) -> None:
    """``gen_ai.client.token.usage``, one point per known token type."""
    histogram = telemetry.token_usage
    if input_tokens is not None:
        input_attributes = attributes.plus(semconv.GEN_AI_TOKEN_TYPE, "input").values
        histogram.record(input_tokens, input_attributes, in_span)
    if output_tokens is not None:
        output_attributes = attributes.plus(semconv.GEN_AI_TOKEN_TYPE, "output").values
        histogram.record(output_tokens, output_attributes, in_span)


def time_to_first_chunk(
    telemetry: _telemetry.Telemetry, attributes: MetricAttributes, seconds: float, in_span: Context
) -> None:
    """``gen_ai.client.operation.time_to_first_chunk`` of a stream."""
    telemetry.time_to_first_chunk.record(seconds, attributes.values, in_span)
