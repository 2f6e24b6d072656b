"""User feedback on a served document, recorded as OpenTelemetry data joined to its request.

Shadow runs say how often a reranker would change the answer; only users say whether the
change would be better. ``otel_rerank.feedback(request, document_id, position=...)`` is
called by the app when a user clicked, cited, or rated a document it was served — often
seconds or minutes after the request ended, from another handler. It records one short
span, ``feedback {kind}``, in a trace of its own (the request's trace is long finished and
must not be stretched), carrying the request's trace id as ``rag.feedback.trace_id`` — the
join key ``otel-rerank report`` uses — and, when the request's span context is known, a
Link to the request span, so a trace view leads from one to the other. Only ids, the
served position and the feedback kind are recorded: never content.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any, Final

from opentelemetry import context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags

from otel_rerank import _telemetry, semconv
from otel_rerank._safe import report_internal_error
from otel_rerank._values import is_int

_logger = logging.getLogger("otel_rerank.feedback")

#: Kinds that say the document was *not* useful; any other kind counts as useful.
NEGATIVE_KINDS: Final = frozenset({"thumbs_down", "dislike", "skip", "not_useful"})
_MAX_ID_CHARS: Final = 256
_MAX_KIND_CHARS: Final = 32
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def feedback(
    request: SpanContext | Span | str | int,
    document_id: object,
    *,
    position: int | None = None,
    kind: str = "click",
    useful: bool | None = None,
) -> bool:
    """Record that a served document was (or was not) useful to the user of one request.

    Args:
        request: which request: its span or span context (e.g. kept from
            ``trace.get_current_span()`` while it ran), a W3C ``traceparent`` string, or
            its trace id (32 hex digits, or the int; what ``RagPipeline``'s ``Answer``
            carries and a service can return in a response header).
        document_id: the document's id, as the reranker recorded it (``str(id)``).
        position: the document's position in the order served, 0 for the first.
        kind: what happened: ``click``, ``cite``, ``thumbs_up``, ``thumbs_down``, ... (low
            cardinality; lowercased, at most 32 characters).
        useful: whether it was useful; by default, every kind but ``thumbs_down``,
            ``dislike``, ``skip`` and ``not_useful``.

    Returns:
        True when a span was recorded; False when nothing records (no SDK configured) or
        an argument cannot be used (logged). Never raises.
    """
    try:
        return _feedback(request, document_id, position, kind, useful)
    except Exception:
        report_internal_error("feedback")
        return False


def _feedback(request: Any, document_id: object, position: Any, kind: Any, useful: Any) -> bool:
    telemetry = _telemetry.current()
    if telemetry is None or not telemetry.tracing:
        return False
    parsed = request_reference(request)
    if parsed is None:
        _logger.warning("otel_rerank.feedback: cannot tell the request from %r", type(request))
        return False
    trace_id, span_context = parsed
    doc = document_key(document_id)
    if doc is None:
        _logger.warning("otel_rerank.feedback: unusable document id of type %s", type(document_id))
        return False
    name = _kind(kind)
    attributes: dict[str, Any] = {
        semconv.RAG_FEEDBACK_TRACE_ID: trace_id,
        semconv.RAG_FEEDBACK_DOCUMENT_ID: doc,
        semconv.RAG_FEEDBACK_KIND: name,
        semconv.RAG_FEEDBACK_USEFUL: bool(useful)
        if isinstance(useful, bool)
        else (name not in NEGATIVE_KINDS),
    }
    if is_int(position) and 0 <= position < 1 << 31:
        attributes[semconv.RAG_FEEDBACK_POSITION] = position
    links = [Link(span_context)] if span_context is not None else None
    # A root of its own: an empty context, whatever span is current in the caller.
    span = telemetry.tracer.start_span(
        f"{semconv.OPERATION_FEEDBACK} {name}",
        context=context.Context(),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        links=links,
    )
    span.end()
    return True


def request_reference(request: Any) -> tuple[str, SpanContext | None] | None:
    """``(trace id as 32 hex digits, span context or None)`` of a request reference."""
    if isinstance(request, Span):
        request = request.get_span_context()
    if isinstance(request, SpanContext):
        if not request.is_valid:
            return None
        return format(request.trace_id, "032x"), request
    if isinstance(request, bool):
        return None
    if isinstance(request, int):
        if 0 < request < 1 << 128:
            return format(request, "032x"), None
        return None
    if isinstance(request, str):
        text = request.strip().lower()
        match = _TRACEPARENT.match(text)
        if match:
            trace_hex, span_hex = match.groups()
            trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
            if trace_id == 0 or span_id == 0:
                return None
            return trace_hex, SpanContext(
                trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            )
        if _TRACE_ID.match(text) and int(text, 16) != 0:
            return text, None
    return None


def document_key(document_id: object) -> str | None:
    """A document id as the string the reranker records (ints and strings; capped)."""
    if isinstance(document_id, bool) or document_id is None:
        return None
    if isinstance(document_id, float) and not math.isfinite(document_id):
        return None
    if isinstance(document_id, (str, int, float)):
        text = str(document_id)
        return text[:_MAX_ID_CHARS] if text else None
    return None


def _kind(kind: Any) -> str:
    if not isinstance(kind, str):
        return "feedback"
    text = re.sub(r"[^a-z0-9_.-]+", "_", kind.strip().lower())[:_MAX_KIND_CHARS]
    return text or "feedback"


#: Document ids recorded per order on a rerank span: enough for any top-n a report uses.
MAX_RECORDED_IDS: Final = 50


def candidate_ids(candidates: list[Any], ids: Any = None) -> list[str] | None:
    """The candidates' document ids as strings, or ``None`` when not every one has one.

    ``ids`` (one per candidate) wins; otherwise a dict's ``id`` key or an object's ``id``
    attribute (LangChain and LlamaIndex documents, the demo's passages). Plain strings have
    no id. Runs off the request path (shadow) or on a span that records (serve).
    """
    if ids is not None:
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            return None
        raw = list(ids)
        if len(raw) != len(candidates):
            return None
    else:
        raw = []
        for candidate in candidates:
            if isinstance(candidate, dict):
                raw.append(candidate.get("id"))
            elif isinstance(candidate, (str, bytes)):
                return None
            else:
                raw.append(getattr(candidate, "id", None))
    keys = [document_key(value) for value in raw]
    if any(key is None for key in keys):
        return None
    return keys  # type: ignore[return-value]


def order_attributes(
    ids: list[str],
    reranked: list[int] | None,
    served_reranked: bool,
    interleaved: tuple[list[int], list[str]] | None = None,
) -> dict[str, Any]:
    """The ``rag.rerank.*.ids`` attributes of one rerank: ids of the orders, capped.

    Args:
        ids: document ids in retrieval's order.
        reranked: indices into ``ids`` in the reranker's order (may cover a top k only,
            followed by the rest in retrieval's order, as the budget guard serves);
            ``None`` when nothing was reranked (the guard skipped, the scores were unusable).
        served_reranked: the reranker's order was served (else retrieval's was).
        interleaved: ``(served indices, contributing team per position)`` when a
            team-draft interleaving of the two was served instead.
    """
    cap = MAX_RECORDED_IDS
    retrieval_ids = ids[:cap]
    out: dict[str, Any] = {}
    if reranked is not None:
        reranked_ids = [ids[i] for i in reranked[:cap]]
        out[semconv.RAG_RERANK_RERANKED_IDS] = reranked_ids
    if interleaved is not None and reranked is not None:
        merged, teams = interleaved
        out[semconv.RAG_RERANK_SERVED_ORDER] = semconv.SERVED_ORDER_INTERLEAVED
        out[semconv.RAG_RERANK_SERVED_IDS] = [ids[i] for i in merged[:cap]]
        out[semconv.RAG_RERANK_INTERLEAVE_TEAMS] = teams[:cap]
        out[semconv.RAG_RERANK_RETRIEVAL_IDS] = retrieval_ids
    elif served_reranked and reranked is not None:
        out[semconv.RAG_RERANK_SERVED_ORDER] = semconv.SERVED_ORDER_RERANKED
        out[semconv.RAG_RERANK_SERVED_IDS] = out[semconv.RAG_RERANK_RERANKED_IDS]
        out[semconv.RAG_RERANK_RETRIEVAL_IDS] = retrieval_ids
    else:
        out[semconv.RAG_RERANK_SERVED_ORDER] = semconv.SERVED_ORDER_RETRIEVAL
        out[semconv.RAG_RERANK_SERVED_IDS] = retrieval_ids
    return out
