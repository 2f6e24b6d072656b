"""The rerank budget guard: rerank only as many candidates as the request's time left allows.

The article's rule "if your p95 budget is under 1.5 s and you can't batch effectively, do
not ship a reranker" becomes a control instead of a dashboard reading. :class:`RerankBudget`
keeps a live cost model of one reranker on this machine — latency ≈ a + b·k for k
candidates, fitted online by exponentially weighted least squares from the reranker's own
recent calls (six running sums: O(1) per call, no history kept) with a safety margin from
the fit's residuals — and, before each rerank, reads the time the request has left: the
``budget_ms`` of the current :func:`otel_rerank.request` scope, an explicit ``deadline``,
or the smaller of the two. From that it takes a reserve for what follows the rerank (an
explicit ``reserve_ms``, or the p95 of recent chat spans), picks the largest k whose
predicted cost fits, reranks the top k of retrieval's order (the rest keep their order
below them) and, below ``min_k``, skips the rerank and serves retrieval's order.

Each decision is written on the rerank span (``rag.rerank.budget.*``) and counted in
``rag.rerank.budget.decisions`` by outcome (``full``, ``cut``, ``skipped``). One guard is
shared by every thread and task of a process: the cost model is behind a lock and each
request's deadline lives in its own context, never on the guard. The guard's own failures
never reach the call: it then reranks everything, as if it were not there.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from otel_rerank import _request, _span, _telemetry, semconv
from otel_rerank._safe import guard, report_internal_error
from otel_rerank._values import float_list, is_int, is_number

_T = TypeVar("_T")

#: Residual standard deviations added to a prediction (one-sided ~97.7 % for normal noise).
DEFAULT_SAFETY_SIGMAS: Final = 2.0
#: Calls after which an observation's weight has halved.
DEFAULT_HALFLIFE: Final = 20.0
#: Observations before the fitted line is trusted; until then the guard reranks in full.
MIN_OBSERVATIONS: Final = 3
#: Recent durations the learned reserve's p95 is taken over.
RESERVE_WINDOW: Final = 128
#: Observations beyond these are nonsense (a broken clock, a caller's bug), not costs: a
#: rerank of a billion candidates or one lasting eleven days never informs the next one.
MAX_PLAUSIBLE_MS: Final = 1e9
MAX_PLAUSIBLE_K: Final = 10**9
#: What the history keeps of its weight when a new observation is far off the line.
SURPRISE_SHRINK: Final = 0.5
#: Durations needed before the learned reserve is used.
RESERVE_MIN_SAMPLES: Final = 8
#: After this many skips in a row that only the cost model (not a spent budget) decided,
#: the next call probes with ``min_k`` candidates: a guard that only skips learns nothing,
#: and would never notice that the reranker got fast again.
DEFAULT_PROBE_EVERY: Final = 8


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """The fitted cost line of a reranker: latency_ms ≈ a_ms + b_ms · k (± sigma_ms).

    Attributes:
        a_ms: fixed cost per call (milliseconds), never negative.
        b_ms: cost per candidate (milliseconds), never negative.
        sigma_ms: standard deviation of the fit's residuals.
        observations: calls the fit rests on.
    """

    a_ms: float
    b_ms: float
    sigma_ms: float
    observations: int

    def predict_ms(self, k: int, safety_sigmas: float = DEFAULT_SAFETY_SIGMAS) -> float:
        """Predicted latency of ``k`` candidates, with ``safety_sigmas`` of margin."""
        return self.a_ms + self.b_ms * k + safety_sigmas * self.sigma_ms

    def max_k(self, available_ms: float, safety_sigmas: float = DEFAULT_SAFETY_SIGMAS) -> int:
        """The most candidates whose predicted latency (margin included) fits ``available_ms``."""
        room = available_ms - self.a_ms - safety_sigmas * self.sigma_ms
        if room < 0:
            return 0
        if self.b_ms <= 0:
            return 1 << 30
        return int(min(room / self.b_ms + 1e-6, 1 << 30))  # 1e-6: float noise, not a cut


class CostModel:
    """latency ≈ a + b·k, fitted online by exponentially weighted least squares.

    Keeps six decayed sums (weight, k, latency, k², k·latency, latency²): an observation is
    O(1) and an old one fades with ``halflife`` calls, so a model that slows down (a
    noisy neighbour, a bigger batch, thermal throttling) is followed within a few
    half-lives. The fit is constrained to a, b ≥ 0; with every observation at (nearly) one
    k the line goes through the origin (latency proportional to k), the conservative
    reading for smaller k.

    Args:
        halflife: calls after which an observation's weight has halved.
        prior: ``(a_ms, b_ms)``, e.g. the fitted line of ``otel-rerank bench``: seeds the
            model with two pseudo-observations (k = 1 and k = 100) that fade like any other.
    """

    def __init__(
        self, halflife: float = DEFAULT_HALFLIFE, prior: tuple[float, float] | None = None
    ) -> None:
        if not (isinstance(halflife, (int, float)) and math.isfinite(halflife) and halflife > 0):
            raise ValueError(f"halflife must be a finite number > 0, got {halflife!r}")
        self._decay = 0.5 ** (1.0 / float(halflife))
        self._lock = threading.Lock()
        self._sums = [0.0] * 6  # w, x, y, xx, xy, yy
        self._count = 0
        self._estimate: CostEstimate | None = None
        if prior is not None:
            a_ms, b_ms = (float(v) for v in prior)
            if not (math.isfinite(a_ms) and math.isfinite(b_ms) and a_ms >= 0 and b_ms >= 0):
                raise ValueError(f"prior must be two finite numbers >= 0, got {prior!r}")
            for k in (1, 100):
                self.observe(k, a_ms + b_ms * k)

    def observe(self, k: int, latency_ms: float) -> None:
        """Add one call: ``k`` candidates took ``latency_ms``. Nonsense values are ignored."""
        if not is_int(k) or k < 1:
            return
        if not is_number(latency_ms):
            return
        y = float(latency_ms)
        if not math.isfinite(y) or y < 0 or y > MAX_PLAUSIBLE_MS or k > MAX_PLAUSIBLE_K:
            return  # beyond these, the sums' squares would overflow to inf
        x = float(k)
        with self._lock:
            d = self._decay
            s = self._sums
            known = self._estimate
            if known is not None:
                center = known.a_ms + known.b_ms * x
                miss = abs(y - center)
                if center > 0 and miss > 4.0 * known.sigma_ms and miss > 0.5 * center:
                    # A regime change (a slower model, a noisy neighbour), not noise. Left
                    # alone, the old line would hold the fit, and its residuals the margin,
                    # for many half-lives — while the margin makes the guard skip and so
                    # learn nothing. A slower machine slows the fixed and the per-candidate
                    # cost alike: rescale the history to the new level, and halve its
                    # weight so the calls that follow correct what the rescale got wrong.
                    ratio = y / center
                    s[2] *= ratio
                    s[4] *= ratio
                    s[5] *= ratio * ratio
                    d *= SURPRISE_SHRINK
            s[0] = s[0] * d + 1.0
            s[1] = s[1] * d + x
            s[2] = s[2] * d + y
            s[3] = s[3] * d + x * x
            s[4] = s[4] * d + x * y
            s[5] = s[5] * d + y * y
            self._count += 1
            self._estimate = _fit(s, self._count) if self._count >= MIN_OBSERVATIONS else None

    def estimate(self) -> CostEstimate | None:
        """The current fit, or ``None`` before :data:`MIN_OBSERVATIONS` calls."""
        return self._estimate  # an immutable object swapped whole: no lock needed to read


def _fit(s: Sequence[float], count: int) -> CostEstimate:
    w, sx, sy, sxx, sxy, syy = s
    mean_x = sx / w
    var_x = sxx / w - mean_x * mean_x
    a: float
    b: float
    if var_x > 0.25:  # k varies by more than ~half a candidate: a real slope is estimable
        b = (w * sxy - sx * sy) / (w * sxx - sx * sx)
        a = (sy - b * sx) / w
        if b < 0:  # more candidates never cost less: flat line at the mean
            b, a = 0.0, sy / w
        elif a < 0:  # no negative fixed cost: the line through the origin instead
            a, b = 0.0, sxy / sxx
    else:
        a, b = 0.0, sxy / sxx if sxx > 0 else 0.0
    sse = syy - 2 * a * sy - 2 * b * sxy + a * a * w + 2 * a * b * sx + b * b * sxx
    variance = max(sse, 0.0) / w
    if count > 2:
        variance *= count / (count - 2)  # two fitted parameters
    return CostEstimate(a_ms=a, b_ms=b, sigma_ms=math.sqrt(variance), observations=count)


class RecentP95:
    """The p95 of the last ``window`` durations (ms): a ring buffer, sorted only when read.

    Used for the time kept back after the rerank. Adding is O(1); the p95 is recomputed
    (a sort of at most ``window`` numbers) at most once per added value.
    """

    def __init__(self, window: int = RESERVE_WINDOW) -> None:
        self._values = [0.0] * max(int(window), 1)
        self._next = 0
        self._count = 0
        self._lock = threading.Lock()
        self._cached: float | None = None

    def add(self, value_ms: float) -> None:
        """Add one duration in milliseconds; nonsense values are ignored."""
        if not is_number(value_ms):
            return
        value = float(value_ms)
        if not math.isfinite(value) or value < 0:
            return
        with self._lock:
            self._values[self._next] = value
            self._next = (self._next + 1) % len(self._values)
            self._count += 1
            self._cached = None

    def add_seconds(self, seconds: float) -> None:
        """Add one duration in seconds (what span ends report)."""
        self.add(seconds * 1000.0)

    @property
    def count(self) -> int:
        """Durations added so far (not capped by the window)."""
        return self._count

    def p95(self) -> float | None:
        """The p95 of the values in the window, or ``None`` with none."""
        cached = self._cached
        if cached is not None:
            return cached
        with self._lock:
            filled = min(self._count, len(self._values))
            if filled == 0:
                return None
            ordered = sorted(self._values[:filled])
            position = (filled - 1) * 0.95
            low = math.floor(position)
            high = min(low + 1, filled - 1)
            value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
            self._cached = value
            return value


#: Durations of this process's recent chat spans, fed by every chat span otel-rerank ends
#: once a guard that learns its reserve exists (:func:`_learn_chat_latency`); before
#: that no chat call pays for it.
CHAT_LATENCY = RecentP95()


def _learn_chat_latency() -> None:
    """Feed :data:`CHAT_LATENCY` from every chat span that ends from now on (idempotent)."""
    _span.chat_duration_listener = CHAT_LATENCY.add_seconds


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """What the guard decided for one rerank.

    Attributes:
        candidates: candidates offered.
        k: candidates to rerank (the top ``k`` of retrieval's order); 0 skips the rerank.
        outcome: ``full`` (every candidate), ``cut`` (the top ``k`` only) or ``skipped``.
        time_left_ms: time the request had left when the guard decided, before the
            reserve; ``None`` with neither a request budget nor a deadline.
        reserve_ms: time kept back for what follows the rerank.
        predicted_ms: the cost model's prediction for ``k`` (margin included), if it has one.
    """

    candidates: int
    k: int
    outcome: str
    time_left_ms: float | None
    reserve_ms: float
    predicted_ms: float | None

    @property
    def skipped(self) -> bool:
        """The rerank is skipped: retrieval's order is served."""
        return self.k == 0


def decision_attributes(
    decision: BudgetDecision, actual_ms: float | None
) -> Iterator[tuple[str, AttributeValue | None]]:
    """The ``rag.rerank.budget.*`` attributes of one decision (``None`` values are skipped)."""
    yield semconv.RAG_RERANK_BUDGET_TIME_LEFT_MS, decision.time_left_ms
    yield semconv.RAG_RERANK_BUDGET_RESERVE_MS, decision.reserve_ms
    yield semconv.RAG_RERANK_BUDGET_K, decision.k
    yield semconv.RAG_RERANK_BUDGET_PREDICTED_MS, decision.predicted_ms
    yield semconv.RAG_RERANK_BUDGET_ACTUAL_MS, actual_ms
    yield semconv.RAG_RERANK_BUDGET_SKIPPED, decision.skipped
    yield semconv.RAG_RERANK_BUDGET_OUTCOME, decision.outcome


def guarded_order(count: int, k: int, top_scores: Sequence[float]) -> list[int]:
    """Indices of the served order: the top ``k`` by descending score, then the rest as given.

    Ties keep retrieval's order (a stable sort).
    """
    head = sorted(range(k), key=lambda i: -top_scores[i])
    return [*head, *range(k, count)]


class RerankBudget:
    """Keep a rerank inside the request's latency budget; see the module docstring.

    ::

        budget = otel_rerank.RerankBudget(reserve_ms=400, min_k=5)
        shadow = otel_rerank.ShadowReranker(cross_encoder, mode="serve", budget=budget)

        @otel_rerank.request(budget_ms=1500)
        def answer(query):
            return shadow(query, retrieve(query))   # reranks the top k that fit

    or around any reranker of your own: ``budget.rerank(candidates, score_fn)``.

    Args:
        reserve_ms: time kept back for what follows the rerank (the LLM call). ``None``
            (the default) learns it: the p95 of the last 128 durations given to
            :meth:`observe_reserve`, else of this process's recent chat spans, never less
            than ``min_reserve_ms``.
        min_reserve_ms: the learned reserve's floor (and its value until it has data).
        min_k: below this many candidates the rerank is skipped (a cut to 2 of 50 buys
            little and still costs the model's fixed overhead).
        max_k: never rerank more than this many candidates (``None``: all offered).
        safety_sigmas: residual standard deviations of margin added to each prediction.
        halflife: calls after which a cost observation's weight has halved.
        prior: ``(a_ms, b_ms)`` to start the cost model from (``otel-rerank bench``'s
            fitted line); without it the first :data:`MIN_OBSERVATIONS` calls rerank in
            full, to learn.
        probe_every: after this many skips in a row decided by the cost model alone
            (time was left, but too little for ``min_k`` by the prediction), rerank
            ``min_k`` once to keep learning; 0 never probes.
        clock: seconds from a monotonic clock; the reference of ``deadline`` arguments
            and of measured rerank latency (tests pass a fake one).
    """

    def __init__(
        self,
        reserve_ms: float | None = None,
        *,
        min_reserve_ms: float = 0.0,
        min_k: int = 3,
        max_k: int | None = None,
        safety_sigmas: float = DEFAULT_SAFETY_SIGMAS,
        halflife: float = DEFAULT_HALFLIFE,
        prior: tuple[float, float] | None = None,
        probe_every: int = DEFAULT_PROBE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("reserve_ms", reserve_ms), ("min_reserve_ms", min_reserve_ms)):
            if value is not None and not _non_negative(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not is_int(min_k) or min_k < 1:
            raise ValueError(f"min_k must be an int >= 1, got {min_k!r}")
        if max_k is not None and (not is_int(max_k) or max_k < min_k):
            raise ValueError(f"max_k must be an int >= min_k, got {max_k!r}")
        if not _non_negative(safety_sigmas):
            raise ValueError(f"safety_sigmas must be a finite number >= 0, got {safety_sigmas!r}")
        self.reserve_ms = None if reserve_ms is None else float(reserve_ms)
        if reserve_ms is None:  # learned: from the chat spans ending from now on
            _learn_chat_latency()
        self.min_reserve_ms = float(min_reserve_ms)
        self.min_k = min_k
        self.max_k = max_k
        self.safety_sigmas = float(safety_sigmas)
        self.cost = CostModel(halflife, prior)
        self.reserve = RecentP95()
        self.probe_every = max(int(probe_every), 0)
        self._model_skips = 0  # consecutive; a benign race only shifts a probe by a call
        self._clock = clock

    # -- the decision ------------------------------------------------------------------
    def current_reserve_ms(self) -> float:
        """The time kept back for what follows the rerank, as of now."""
        if self.reserve_ms is not None:
            return self.reserve_ms
        for source in (self.reserve, CHAT_LATENCY):
            if source.count >= RESERVE_MIN_SAMPLES:
                learned = source.p95()
                if learned is not None:
                    return max(learned, self.min_reserve_ms)
        return self.min_reserve_ms

    def time_left_ms(self, deadline: float | None = None) -> float | None:
        """Milliseconds the request has left: its budget, ``deadline``, or the smaller.

        Args:
            deadline: an explicit deadline on this guard's clock (``time.monotonic()`` by
                default); works with or without a request scope.
        """
        left: float | None = None
        state = _request.current()
        if state is not None:
            left = state.remaining_ms()
        if deadline is not None and isinstance(deadline, (int, float)) and not math.isnan(deadline):
            explicit = (float(deadline) - self._clock()) * 1000.0
            left = explicit if left is None else min(left, explicit)
        return left

    def plan(self, candidates: int, *, deadline: float | None = None) -> BudgetDecision:
        """Decide how many of ``candidates`` to rerank now. Never raises.

        With neither a request budget nor a deadline every candidate is reranked (up to
        ``max_k``). If the guard itself fails, the decision is a full rerank.
        """
        count = candidates if isinstance(candidates, int) and candidates > 0 else 0
        try:
            return self._plan(count, deadline)
        except Exception:
            report_internal_error("RerankBudget.plan")
            return BudgetDecision(count, count, semconv.BUDGET_OUTCOME_FULL, None, 0.0, None)

    def _plan(self, count: int, deadline: float | None) -> BudgetDecision:
        cap = count if self.max_k is None else min(count, self.max_k)
        time_left = self.time_left_ms(deadline)
        reserve = self.current_reserve_ms()
        estimate = self.cost.estimate()
        if time_left is None or count == 0:
            k = cap
        else:
            available = time_left - reserve
            if available <= 0:
                k = 0
            elif estimate is None:
                k = cap  # nothing learned yet: rerank in full and learn from it
            else:
                k = min(cap, estimate.max_k(available, self.safety_sigmas))
            if k < min(self.min_k, count):
                k = 0
                if available > 0 and estimate is not None and self.probe_every:
                    self._model_skips += 1
                    if self._model_skips >= self.probe_every:
                        k = min(self.min_k, cap)
            if k:
                self._model_skips = 0
        if k == 0 and count > 0:
            outcome = semconv.BUDGET_OUTCOME_SKIPPED
        elif k < count:
            outcome = semconv.BUDGET_OUTCOME_CUT
        else:
            outcome = semconv.BUDGET_OUTCOME_FULL
        predicted = (
            estimate.predict_ms(k, self.safety_sigmas) if estimate is not None and k > 0 else None
        )
        return BudgetDecision(count, k, outcome, time_left, reserve, predicted)

    # -- learning ----------------------------------------------------------------------
    def observe(self, k: int, latency_ms: float) -> None:
        """Feed the cost model one rerank of ``k`` candidates that took ``latency_ms``."""
        with guard("RerankBudget.observe"):
            self.cost.observe(k, latency_ms)

    def observe_reserve(self, latency_ms: float) -> None:
        """Feed the learned reserve one duration of what follows the rerank (ms)."""
        with guard("RerankBudget.observe_reserve"):
            self.reserve.add(latency_ms)

    # -- one guarded rerank around any scoring function ---------------------------------
    def rerank(
        self,
        candidates: Sequence[_T],
        score: Callable[[list[_T]], Any],
        *,
        deadline: float | None = None,
    ) -> list[_T]:
        """Serve ``candidates`` with only the top k that fit reranked by ``score``.

        ``score(top_k)`` returns one score per candidate it is given (higher is better).
        Its exceptions are yours and propagate unchanged; scores that are not one number
        per candidate serve retrieval's order. The decision is written on the current
        span when it records (e.g. inside ``with otel_rerank.rerank(...)``) and counted.

        Returns:
            A new list: the top ``k`` in reranked order, then the rest in the order given.
        """
        items = list(candidates)
        decision = self.plan(len(items), deadline=deadline)
        if decision.skipped:
            self.record(decision, None)
            return items
        top = items[: decision.k]
        started = self._clock()
        raw = score(top)
        actual_ms = (self._clock() - started) * 1000.0
        scores = _scores(raw)
        if scores is None or len(scores) != len(top):
            self.record(decision, actual_ms)
            return items
        self.observe(decision.k, actual_ms)
        self.record(decision, actual_ms)
        return [items[i] for i in guarded_order(len(items), decision.k, scores)]

    def measure(self) -> float:
        """The guard's clock, in seconds (for callers timing their own rerank)."""
        return self._clock()

    def record(
        self,
        decision: BudgetDecision,
        actual_ms: float | None,
        *,
        span: Any = None,
        metric_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Write a decision on ``span`` (default: the current span) and count it. Never raises."""
        with guard("RerankBudget.record"):
            target = span if span is not None else trace.get_current_span()
            if target.is_recording():
                target.set_attributes(
                    {k: v for k, v in decision_attributes(decision, actual_ms) if v is not None}
                )
            telemetry = _telemetry.current()
            if telemetry is not None:
                attributes = dict(
                    metric_attributes or {semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_RERANK}
                )
                attributes[semconv.RAG_RERANK_BUDGET_OUTCOME] = decision.outcome
                telemetry.budget_decisions.add(1, attributes)


def _scores(raw: Any) -> list[float] | None:
    """One finite float per candidate, or ``None``: a hostile result never raises here."""
    try:
        scores = float_list(raw)
    except Exception:
        return None
    if scores is None or not all(map(math.isfinite, scores)):
        return None
    return scores


def _non_negative(value: object) -> bool:
    return is_number(value) and math.isfinite(value) and value >= 0
