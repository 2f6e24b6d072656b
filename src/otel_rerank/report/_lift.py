"""Production lift: did the reranker's order put what users found useful higher up?

Joins ``feedback {kind}`` spans (``otel_rerank.feedback``, keyed by
``rag.feedback.trace_id``) with the rerank spans that recorded document ids
(``rag.rerank.reranked.ids`` and the served or retrieval order's ids): a shadow run joins
through its link to the request span, a served rerank through its own trace. For each
request with useful feedback, both orders — retrieval's and the reranker's — are scored on
the documents users found useful: the share of them in the top n (hit rate) and the
reciprocal rank of the best-placed one (MRR). The lift is the mean paired difference,
reranker minus retrieval, with a percentile confidence interval from a paired bootstrap
over requests (seeded, so a report is reproducible).

The estimate is biased toward whichever order users were served — they can only click
what they see, and they look at the top first — and the report says so in words, next to
the verdict the article asks for: this lift against the p95 the reranker would add.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from otel_rerank import semconv
from otel_rerank.report._spans import SpanRecord

#: Fewer joined requests than this and the report calls the data too thin to decide.
MIN_REQUESTS = 30
DEFAULT_TOP_N = 5
DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class JoinedRequest:
    """One request with feedback and both orders' document ids.

    Attributes:
        trace_id: the request's trace id.
        retrieval: document ids in retrieval's order (capped as recorded).
        reranked: document ids in the reranker's order (capped as recorded).
        served: which order users saw: ``retrieval`` or ``reranked``.
        useful: ids of the documents users found useful.
    """

    trace_id: str
    retrieval: tuple[str, ...]
    reranked: tuple[str, ...]
    served: str
    useful: frozenset[str]


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean difference with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly above or below zero."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True, slots=True)
class Lift:
    """The reranker's production lift over retrieval's order, from user feedback.

    Attributes:
        requests: requests joined (feedback with a useful document and both orders).
        feedback: feedback spans read (all kinds, joined or not).
        unjoined: requests with feedback but no rerank span recording document ids.
        useful_documents: useful (request, document) pairs the lift rests on.
        top_n: the cut-off of the hit rate.
        retrieval_hit_rate, reranked_hit_rate: mean share of useful documents in the top n.
        retrieval_mrr, reranked_mrr: mean reciprocal rank of the best-placed useful document.
        hit_rate_lift, mrr_lift: reranker minus retrieval, with confidence intervals.
        served: ``retrieval``, ``reranked`` or ``mixed``: the order users saw.
        confidence: the intervals' confidence level.
        resamples: bootstrap resamples.
        seed: the bootstrap's seed.
    """

    requests: int
    feedback: int
    unjoined: int
    useful_documents: int
    top_n: int
    retrieval_hit_rate: float
    reranked_hit_rate: float
    retrieval_mrr: float
    reranked_mrr: float
    hit_rate_lift: Interval
    mrr_lift: Interval
    served: str
    confidence: float
    resamples: int
    seed: int

    @property
    def too_thin(self) -> bool:
        """Too few requests for the interval to be trusted."""
        return self.requests < MIN_REQUESTS


def feedback_spans(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """The ``otel_rerank.feedback`` spans among ``spans``."""
    return [s for s in spans if isinstance(s.attributes.get(semconv.RAG_FEEDBACK_TRACE_ID), str)]


def _ids(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _orders(span: SpanRecord) -> tuple[tuple[str, ...], tuple[str, ...], str] | None:
    """``(retrieval ids, reranked ids, served order)`` of a rerank span that recorded ids."""
    attributes = span.attributes
    reranked = _ids(attributes.get(semconv.RAG_RERANK_RERANKED_IDS))
    if reranked is None:
        return None
    served = attributes.get(semconv.RAG_RERANK_SERVED_ORDER)
    if served == semconv.SERVED_ORDER_RERANKED:
        retrieval = _ids(attributes.get(semconv.RAG_RERANK_RETRIEVAL_IDS))
    else:
        served = semconv.SERVED_ORDER_RETRIEVAL
        retrieval = _ids(attributes.get(semconv.RAG_RERANK_SERVED_IDS))
    if retrieval is None:
        return None
    return retrieval, reranked, str(served)


def join_feedback(spans: Sequence[SpanRecord]) -> tuple[list[JoinedRequest], int, int]:
    """Join feedback with rerank spans per request trace.

    Returns:
        ``(joined requests, feedback spans, requests with feedback but no rerank ids)``.
    """
    orders: dict[str, tuple[int, tuple[str, ...], tuple[str, ...], str]] = {}
    for span in spans:
        if span.stage != semconv.OPERATION_RERANK:
            continue
        found = _orders(span)
        if found is None:
            continue
        traces = [t for t, _ in span.links] if span.is_shadow else [span.trace_id]
        for trace_id in traces:
            known = orders.get(trace_id)
            if known is None or span.start_ns < known[0]:  # the request's first rerank
                orders[trace_id] = (span.start_ns, *found)
    useful: dict[str, set[str]] = {}
    not_useful: dict[str, set[str]] = {}
    feedback = feedback_spans(spans)
    for span in feedback:
        trace_id = str(span.attributes[semconv.RAG_FEEDBACK_TRACE_ID])
        doc = span.attributes.get(semconv.RAG_FEEDBACK_DOCUMENT_ID)
        if not isinstance(doc, str):
            continue
        target = (
            useful
            if span.attributes.get(semconv.RAG_FEEDBACK_USEFUL) is not False
            else (not_useful)
        )
        target.setdefault(trace_id, set()).add(doc)
    joined = []
    unjoined = 0
    for trace_id in sorted(useful):
        docs = frozenset(useful[trace_id] - not_useful.get(trace_id, set()))
        if not docs:
            continue
        found_orders = orders.get(trace_id)
        if found_orders is None:
            unjoined += 1
            continue
        _, retrieval, reranked, served = found_orders
        joined.append(JoinedRequest(trace_id, retrieval, reranked, served, docs))
    return joined, len(feedback), unjoined


def hit_rate(order: Sequence[str], useful: frozenset[str], top_n: int) -> float:
    """Share of ``useful`` documents within the first ``top_n`` of ``order``."""
    return len(useful.intersection(order[:top_n])) / len(useful)


def reciprocal_rank(order: Sequence[str], useful: frozenset[str]) -> float:
    """1 / rank (from 1) of the first useful document in ``order``; 0 if none is in it."""
    for rank, doc in enumerate(order, start=1):
        if doc in useful:
            return 1.0 / rank
    return 0.0


def paired_bootstrap(
    differences: Sequence[float], *, resamples: int, confidence: float, seed: int
) -> Interval:
    """Mean of per-request differences and its percentile bootstrap interval (resampling
    requests with replacement)."""
    n = len(differences)
    mean = sum(differences) / n
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(differences, k=n)) / n for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    low = means[min(math.floor(tail * resamples), resamples - 1)]
    high = means[min(math.ceil((1.0 - tail) * resamples) - 1, resamples - 1)]
    return Interval(mean, low, high)


def production_lift(
    spans: Sequence[SpanRecord],
    *,
    top_n: int = DEFAULT_TOP_N,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Lift | None:
    """The reranker's lift on user feedback; ``None`` without any joined request."""
    joined, feedback, unjoined = join_feedback(spans)
    if not joined:
        return None
    return lift_of(
        joined,
        feedback=feedback,
        unjoined=unjoined,
        top_n=top_n,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def lift_of(
    joined: Sequence[JoinedRequest],
    *,
    feedback: int = 0,
    unjoined: int = 0,
    top_n: int = DEFAULT_TOP_N,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Lift:
    """The lift of already joined requests (at least one)."""
    hit_r = [hit_rate(r.retrieval, r.useful, top_n) for r in joined]
    hit_s = [hit_rate(r.reranked, r.useful, top_n) for r in joined]
    rr_r = [reciprocal_rank(r.retrieval, r.useful) for r in joined]
    rr_s = [reciprocal_rank(r.reranked, r.useful) for r in joined]
    n = len(joined)
    served = {r.served for r in joined}
    return Lift(
        requests=n,
        feedback=feedback,
        unjoined=unjoined,
        useful_documents=sum(len(r.useful) for r in joined),
        top_n=top_n,
        retrieval_hit_rate=sum(hit_r) / n,
        reranked_hit_rate=sum(hit_s) / n,
        retrieval_mrr=sum(rr_r) / n,
        reranked_mrr=sum(rr_s) / n,
        hit_rate_lift=paired_bootstrap(
            [s - r for s, r in zip(hit_s, hit_r, strict=True)],
            resamples=resamples,
            confidence=confidence,
            seed=seed,
        ),
        mrr_lift=paired_bootstrap(
            [s - r for s, r in zip(rr_s, rr_r, strict=True)],
            resamples=resamples,
            confidence=confidence,
            seed=seed + 1,
        ),
        served=served.pop() if len(served) == 1 else "mixed",
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def _signed(interval: Interval) -> str:
    return f"{interval.mean:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}]"


def bias_sentence(lift: Lift) -> str:
    """The plain sentence on position bias for the order users were served."""
    if lift.served == semconv.SERVED_ORDER_RETRIEVAL:
        return (
            "bias: users saw retrieval's order, so their feedback favours it — a document the "
            "reranker would have promoted from below what users looked at never got the chance "
            "to be clicked. Read the lift as a lower bound for the reranker."
        )
    if lift.served == semconv.SERVED_ORDER_RERANKED:
        return (
            "bias: users saw the reranker's order, so their feedback favours it. Read the lift "
            "as an upper bound for the reranker."
        )
    return (
        "bias: users saw retrieval's order on some requests and the reranker's on others; "
        "each request's feedback favours the order it was served."
    )


def format_lift(
    lift: Lift,
    *,
    rerank_p95_ms: float | None = None,
    end_to_end_p95_ms: float | None = None,
    budget_ms: float | None = None,
) -> str:
    """The lift section of the report, ending in the verdict: lift against added p95.

    Args:
        rerank_p95_ms: the p95 the reranker adds (its shadow runs' p95, or its served p95).
        end_to_end_p95_ms: the requests' p95 today.
        budget_ms: the end-to-end budget.
    """
    level = f"{lift.confidence:.0%} CI"
    lines = [
        f"production lift ({lift.requests} request(s) with useful feedback; "
        f"{lift.useful_documents} useful document(s); {lift.feedback} feedback span(s)"
        + (f"; {lift.unjoined} request(s) with feedback but no rerank ids" if lift.unjoined else "")
        + ")",
        f"  useful in top {lift.top_n}: retrieval {lift.retrieval_hit_rate:.1%}, reranker "
        f"{lift.reranked_hit_rate:.1%}; difference {_signed(lift.hit_rate_lift)} ({level})",
        f"  MRR: retrieval {lift.retrieval_mrr:.3f}, reranker {lift.reranked_mrr:.3f}; "
        f"difference {_signed(lift.mrr_lift)} ({level}, paired bootstrap over requests, "
        f"{lift.resamples} resamples, seed {lift.seed})",
        "  " + bias_sentence(lift),
    ]
    if lift.too_thin:
        lines.append(
            f"  too thin to decide: {lift.requests} request(s) is under {MIN_REQUESTS}; "
            "collect more feedback before reading the interval."
        )
    elif not lift.mrr_lift.excludes_zero:
        lines.append(
            f"  undecided: the {level} of the MRR difference includes 0 — no lift shown at "
            f"{lift.requests} requests."
        )
    lines.append("lift verdict: " + _verdict(lift, rerank_p95_ms, end_to_end_p95_ms, budget_ms))
    return "\n".join(lines)


def _verdict(
    lift: Lift,
    rerank_p95_ms: float | None,
    end_to_end_p95_ms: float | None,
    budget_ms: float | None,
) -> str:
    gain = f"MRR {_signed(lift.mrr_lift)}"
    if rerank_p95_ms is None:
        cost = "its latency is not in these spans"
    else:
        cost = f"it adds about {rerank_p95_ms:.0f} ms at p95"
        if end_to_end_p95_ms is not None and budget_ms is not None:
            if lift.served == semconv.SERVED_ORDER_RETRIEVAL:
                total = end_to_end_p95_ms + rerank_p95_ms
                fits = "within" if total <= budget_ms else "OVER"
                cost += (
                    f" (end-to-end p95 {end_to_end_p95_ms:.0f} + {rerank_p95_ms:.0f} = "
                    f"{total:.0f} ms, {fits} the {budget_ms:g} ms budget)"
                )
            else:
                fits = "within" if end_to_end_p95_ms <= budget_ms else "OVER"
                cost += (
                    f" (end-to-end p95 with it: {end_to_end_p95_ms:.0f} ms, {fits} the "
                    f"{budget_ms:g} ms budget)"
                )
    if lift.too_thin or not lift.mrr_lift.excludes_zero:
        reading = "no lift shown yet, so it is not worth that time"
    elif lift.mrr_lift.high < 0:
        reading = "the reranker's order is worse on what users found useful: do not ship it"
    else:
        reading = "a real lift; weigh it against that time (the budget guard can cut k to fit)"
    return f"{gain} vs {cost} — {reading}."
