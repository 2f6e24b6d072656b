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

The paired estimate is biased toward whichever order users were served — they can only
click what they see, and they look at the top first — and the report says so in words.
When some requests were served the reranker's order (a share of replicas in
``OTEL_RERANK_MODE=serve`` beside others in ``shadow``), the two groups form an A/B test
and the report adds the unbiased estimate: the difference in the served order's MRR of
the first useful document (0 for a request with no useful feedback) between the groups,
with an unpaired bootstrap interval. The verdict uses it when both groups are large
enough, and sets the lift against the p95 the reranker would add.
"""

from __future__ import annotations

import dataclasses
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
        credit: for an interleaved request, +1 when more useful documents came from the
            reranker's team, -1 when more came from retrieval's, 0 on a tie; else ``None``.
    """

    trace_id: str
    retrieval: tuple[str, ...]
    reranked: tuple[str, ...]
    served: str
    useful: frozenset[str]
    credit: int | None = None


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
class ServedSplit:
    """The A/B reading: requests served retrieval's order against those served the reranker's.

    Attributes:
        retrieval_requests: requests served retrieval's order (with recorded ids).
        reranked_requests: requests served the reranker's order.
        retrieval_mrr: mean reciprocal rank, in the served order, of the first useful
            document (0 without useful feedback), over requests served retrieval's order.
        reranked_mrr: the same over requests served the reranker's order.
        mrr_lift: reranked minus retrieval, with an unpaired bootstrap interval.
    """

    retrieval_requests: int
    reranked_requests: int
    retrieval_mrr: float
    reranked_mrr: float
    mrr_lift: Interval

    @property
    def too_thin(self) -> bool:
        """Either group is under half of :data:`MIN_REQUESTS`."""
        return min(self.retrieval_requests, self.reranked_requests) < MIN_REQUESTS // 2


@dataclass(frozen=True, slots=True)
class Interleaving:
    """Team-draft interleaving (``OTEL_RERANK_MODE=interleave``): which order users preferred.

    Attributes:
        requests: interleaved requests with useful feedback.
        reranked_wins: requests where more useful documents came from the reranker's team.
        retrieval_wins: requests where more came from retrieval's team.
        ties: the rest.
        win_rate: ``reranked_wins / (reranked_wins + retrieval_wins)``, with a bootstrap
            interval over requests; above 0.5 the reranker is preferred.
    """

    requests: int
    reranked_wins: int
    retrieval_wins: int
    ties: int
    win_rate: Interval | None

    @property
    def decided(self) -> int:
        """Requests with a winner."""
        return self.reranked_wins + self.retrieval_wins

    @property
    def preferred(self) -> str | None:
        """``reranked`` or ``retrieval`` when the interval excludes 0.5 on enough requests."""
        rate = self.win_rate
        if rate is None or self.decided < MIN_REQUESTS:
            return None
        if rate.low > 0.5:
            return semconv.SERVED_ORDER_RERANKED
        if rate.high < 0.5:
            return semconv.SERVED_ORDER_RETRIEVAL
        return None


def interleaving_of(
    joined: Sequence[JoinedRequest], *, resamples: int, confidence: float, seed: int
) -> Interleaving | None:
    """The interleaving reading of joined requests; ``None`` without interleaved ones."""
    credits = [r.credit for r in joined if r.credit is not None]
    if not credits:
        return None
    decided = [1.0 if c > 0 else 0.0 for c in credits if c != 0]
    rate = (
        paired_bootstrap(decided, resamples=resamples, confidence=confidence, seed=seed)
        if decided
        else None
    )
    return Interleaving(
        requests=len(credits),
        reranked_wins=credits.count(1),
        retrieval_wins=credits.count(-1),
        ties=credits.count(0),
        win_rate=rate,
    )


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
        split: the A/B reading when requests were served both orders, else ``None``.
        interleaving: the interleaving reading when requests were served an interleaving.
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
    split: ServedSplit | None = None
    interleaving: Interleaving | None = None

    @property
    def too_thin(self) -> bool:
        """Too few requests for the interval to be trusted."""
        return self.requests < MIN_REQUESTS

    @property
    def deciding(self) -> Interval:
        """The MRR lift the verdict rests on: the A/B one when it is usable, else the paired."""
        if self.split is not None and not self.split.too_thin:
            return self.split.mrr_lift
        return self.mrr_lift


def feedback_spans(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """The ``otel_rerank.feedback`` spans among ``spans``."""
    return [s for s in spans if isinstance(s.attributes.get(semconv.RAG_FEEDBACK_TRACE_ID), str)]


def _ids(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


_Orders = tuple[tuple[str, ...], tuple[str, ...], str, dict[str, str] | None]


def _orders(span: SpanRecord) -> _Orders | None:
    """``(retrieval ids, reranked ids, served order, team per served id or None)`` of a
    rerank span that recorded ids."""
    attributes = span.attributes
    reranked = _ids(attributes.get(semconv.RAG_RERANK_RERANKED_IDS))
    if reranked is None:
        return None
    served = attributes.get(semconv.RAG_RERANK_SERVED_ORDER)
    teams: dict[str, str] | None = None
    if served in (semconv.SERVED_ORDER_RERANKED, semconv.SERVED_ORDER_INTERLEAVED):
        retrieval = _ids(attributes.get(semconv.RAG_RERANK_RETRIEVAL_IDS))
        if served == semconv.SERVED_ORDER_INTERLEAVED:
            shown = _ids(attributes.get(semconv.RAG_RERANK_SERVED_IDS))
            credited = _ids(attributes.get(semconv.RAG_RERANK_INTERLEAVE_TEAMS))
            if shown is None or credited is None or len(shown) != len(credited):
                return None
            teams = dict(zip(shown, credited, strict=True))
    else:
        served = semconv.SERVED_ORDER_RETRIEVAL
        retrieval = _ids(attributes.get(semconv.RAG_RERANK_SERVED_IDS))
    if retrieval is None:
        return None
    return retrieval, reranked, str(served), teams


def join_feedback(spans: Sequence[SpanRecord]) -> tuple[list[JoinedRequest], int, int]:
    """Join feedback with rerank spans per request trace.

    Returns:
        ``(joined requests, feedback spans, requests with feedback but no rerank ids)``.
    """
    joined, _, feedback, unjoined = _join(spans)
    return joined, feedback, unjoined


def _join(
    spans: Sequence[SpanRecord],
) -> tuple[list[JoinedRequest], list[tuple[str, float]], int, int]:
    """Joined requests, ``(served order, served RR)`` of every request with ids, counts."""
    orders: dict[str, tuple[int, _Orders]] = {}
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
                orders[trace_id] = (span.start_ns, found)
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
    served_rr = []
    for trace_id, (_, (retrieval, reranked, served, _teams)) in sorted(orders.items()):
        if served == semconv.SERVED_ORDER_INTERLEAVED:
            continue  # not an arm of the A/B reading
        docs = frozenset(useful.get(trace_id, set()) - not_useful.get(trace_id, set()))
        shown = reranked if served == semconv.SERVED_ORDER_RERANKED else retrieval
        served_rr.append((served, reciprocal_rank(shown, docs) if docs else 0.0))
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
        retrieval, reranked, served, teams = found_orders[1]
        credit = None
        if teams is not None:
            votes = [teams.get(doc) for doc in docs]
            credit = (votes.count(semconv.SERVED_ORDER_RERANKED) > votes.count(
                semconv.SERVED_ORDER_RETRIEVAL
            )) - (votes.count(semconv.SERVED_ORDER_RETRIEVAL) > votes.count(
                semconv.SERVED_ORDER_RERANKED
            ))  # fmt: skip
        joined.append(JoinedRequest(trace_id, retrieval, reranked, served, docs, credit))
    return joined, served_rr, len(feedback), unjoined


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
    low, high = _percentiles(means, confidence)
    return Interval(mean, low, high)


def _percentiles(ordered: Sequence[float], confidence: float) -> tuple[float, float]:
    count = len(ordered)
    tail = (1.0 - confidence) / 2
    low = ordered[min(math.floor(tail * count), count - 1)]
    high = ordered[max(min(math.ceil((1.0 - tail) * count) - 1, count - 1), 0)]
    return low, high


def production_lift(
    spans: Sequence[SpanRecord],
    *,
    top_n: int = DEFAULT_TOP_N,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Lift | None:
    """The reranker's lift on user feedback; ``None`` without any joined request."""
    joined, served_rr, feedback, unjoined = _join(spans)
    if not joined:
        return None
    lift = lift_of(
        joined,
        feedback=feedback,
        unjoined=unjoined,
        top_n=top_n,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )
    split = served_split(served_rr, resamples=resamples, confidence=confidence, seed=seed + 2)
    mixed = interleaving_of(joined, resamples=resamples, confidence=confidence, seed=seed + 3)
    return dataclasses.replace(lift, split=split, interleaving=mixed)


def served_split(
    served_rr: Sequence[tuple[str, float]], *, resamples: int, confidence: float, seed: int
) -> ServedSplit | None:
    """The A/B reading of ``(served order, served-order RR)`` pairs; ``None`` unless both
    orders were served."""
    retrieval = [rr for served, rr in served_rr if served == semconv.SERVED_ORDER_RETRIEVAL]
    reranked = [rr for served, rr in served_rr if served == semconv.SERVED_ORDER_RERANKED]
    if not retrieval or not reranked:
        return None
    rng = random.Random(seed)
    differences = sorted(
        sum(rng.choices(reranked, k=len(reranked))) / len(reranked)
        - sum(rng.choices(retrieval, k=len(retrieval))) / len(retrieval)
        for _ in range(resamples)
    )
    mean_s = sum(reranked) / len(reranked)
    mean_r = sum(retrieval) / len(retrieval)
    low, high = _percentiles(differences, confidence)
    return ServedSplit(
        retrieval_requests=len(retrieval),
        reranked_requests=len(reranked),
        retrieval_mrr=mean_r,
        reranked_mrr=mean_s,
        mrr_lift=Interval(mean_s - mean_r, low, high),
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
    if lift.served == semconv.SERVED_ORDER_INTERLEAVED:
        return (
            "bias: users saw interleavings of both orders, so neither is favoured by position; "
            "the interleaving win rate below is the reading to trust."
        )
    return (
        "bias: users saw different orders on different requests; "
        "each request's feedback favours the order it was served, so the paired figures "
        "are biased both ways; the A/B and interleaving lines, where shown, are not."
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
    split = lift.split
    if split is not None:
        lines.append(
            f"  A/B: served retrieval's order {split.retrieval_requests} request(s), MRR "
            f"{split.retrieval_mrr:.3f}; served the reranker's {split.reranked_requests}, MRR "
            f"{split.reranked_mrr:.3f}; difference {_signed(split.mrr_lift)} ({level}, "
            "unbiased by position: each group is judged on the order it saw"
            + ("; too few requests in a group to decide" if split.too_thin else "")
            + ")"
        )
    mixed = lift.interleaving
    if mixed is not None:
        rate = mixed.win_rate
        rate_text = "n/a" if rate is None else (
            f"{rate.mean:.2f} [{rate.low:.2f}, {rate.high:.2f}] ({level})"
        )  # fmt: skip
        if mixed.preferred == semconv.SERVED_ORDER_RERANKED:
            reading = "users prefer the reranker's order"
        elif mixed.preferred == semconv.SERVED_ORDER_RETRIEVAL:
            reading = "users prefer retrieval's order"
        elif mixed.decided < MIN_REQUESTS:
            reading = f"too thin to decide (under {MIN_REQUESTS} requests with a winner)"
        else:
            reading = "no preference shown"
        lines.append(
            f"  interleaving: {mixed.requests} request(s) with useful feedback; the reranker's "
            f"team won {mixed.reranked_wins}, retrieval's {mixed.retrieval_wins}, "
            f"{mixed.ties} tie(s); reranker win rate {rate_text} — {reading} (unbiased: "
            "both orders shared every list)"
        )
    if lift.too_thin:
        lines.append(
            f"  too thin to decide: {lift.requests} request(s) is under {MIN_REQUESTS}; "
            "collect more feedback before reading the interval."
        )
    elif not lift.deciding.excludes_zero:
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
    deciding = lift.deciding
    source = "A/B" if deciding is not lift.mrr_lift else "paired"
    gain = f"MRR {_signed(deciding)} ({source})"
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
    if lift.too_thin or not deciding.excludes_zero:
        reading = "no lift shown yet: nothing to weigh that time against"
    elif deciding.high < 0:
        reading = "the reranker's order is worse on what users found useful: do not ship it"
    else:
        reading = "a real lift; weigh it against that time (the budget guard can cut k to fit)"
    return f"{gain} vs {cost} — {reading}."
