"""The rerank budget guard: cost model, decisions, spans and counter, concurrency, hostility.

Latency never comes from the real clock here: a fake clock advances by exactly what a
synthetic a + b·k reranker "costs", so convergence and tracking are deterministic.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import otel_rerank
from otel_rerank import _span
from otel_rerank import budget as budget_module
from otel_rerank.budget import CHAT_LATENCY, CostModel, RecentP95, RerankBudget

from .conftest import Otel


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        with self._lock:
            self.now += ms / 1000.0


class SyntheticReranker:
    """A cross-encoder stand-in costing ``a_ms + b_ms * k`` on the fake clock.

    Scores reverse retrieval's order, so a full rerank always changes the order.
    """

    def __init__(self, clock: FakeClock, a_ms: float, b_ms: float, noise_ms: float = 0.0):
        self.clock, self.a_ms, self.b_ms, self.noise_ms = clock, a_ms, b_ms, noise_ms
        self.rng = random.Random(7)
        self.calls: list[int] = []

    def cost_ms(self, k: int) -> float:
        return self.a_ms + self.b_ms * k

    def score(self, items: list[Any]) -> list[float]:
        self.calls.append(len(items))
        noise = self.rng.gauss(0.0, self.noise_ms) if self.noise_ms else 0.0
        self.clock.advance_ms(max(self.cost_ms(len(items)) + noise, 0.0))
        return [float(i) for i in range(len(items))]

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 32) -> list[float]:
        return self.score(pairs)


# -- the cost model ------------------------------------------------------------------------
def test_cost_model_converges_on_a_synthetic_line() -> None:
    model = CostModel(halflife=50)
    rng = random.Random(1)
    for _ in range(400):
        k = rng.randint(1, 100)
        model.observe(k, 40.0 + 3.0 * k + rng.gauss(0.0, 2.0))
    estimate = model.estimate()
    assert estimate is not None
    assert estimate.a_ms == pytest.approx(40.0, abs=3.0)
    assert estimate.b_ms == pytest.approx(3.0, rel=0.05)
    assert estimate.sigma_ms == pytest.approx(2.0, rel=0.35)


def test_guard_learns_the_line_from_its_own_calls() -> None:
    """Driven through rerank() on the fake clock: the fit is the reranker's true line."""
    clock = FakeClock()
    ranker = SyntheticReranker(clock, a_ms=30.0, b_ms=4.0, noise_ms=1.0)
    budget = RerankBudget(reserve_ms=0.0, min_k=2, clock=clock)
    rng = random.Random(2)
    for _ in range(150):
        available_ms = rng.uniform(60.0, 300.0)  # varied time left: varied k
        budget.rerank(list(range(60)), ranker.score, deadline=clock() + available_ms / 1000)
    estimate = budget.cost.estimate()
    assert estimate is not None
    assert estimate.a_ms == pytest.approx(30.0, abs=4.0)
    assert estimate.b_ms == pytest.approx(4.0, rel=0.1)
    assert len(set(ranker.calls)) > 10  # it really cut to many different k


def test_fit_never_goes_negative() -> None:
    model = CostModel()
    for k, ms in ((10, 50.0), (20, 40.0), (30, 30.0), (40, 20.0)):  # faster with more: noise
        model.observe(k, ms)
    estimate = model.estimate()
    assert estimate is not None and estimate.a_ms >= 0 and estimate.b_ms >= 0
    model = CostModel()
    for k, ms in ((10, 5.0), (20, 30.0), (30, 55.0)):  # steep line crossing below 0
        model.observe(k, ms)
    estimate = model.estimate()
    assert estimate is not None and estimate.a_ms >= 0 and estimate.b_ms >= 0


def test_one_k_only_is_read_as_proportional() -> None:
    model = CostModel()
    for _ in range(5):
        model.observe(50, 500.0)
    estimate = model.estimate()
    assert estimate is not None
    assert (estimate.a_ms, estimate.b_ms) == (0.0, pytest.approx(10.0))


def test_a_model_that_suddenly_slows_is_followed_within_n_calls() -> None:
    clock = FakeClock()
    ranker = SyntheticReranker(clock, a_ms=20.0, b_ms=2.0, noise_ms=0.5)
    budget = RerankBudget(reserve_ms=0.0, min_k=1, halflife=10, clock=clock)
    rng = random.Random(3)

    def one_call() -> tuple[float, float]:
        allowed_ms = rng.uniform(160.0, 240.0)
        before = clock()
        budget.rerank(list(range(200)), ranker.score, deadline=clock() + allowed_ms / 1000)
        return (clock() - before) * 1000, allowed_ms

    for _ in range(60):
        one_call()
    assert budget.cost.estimate().b_ms == pytest.approx(2.0, rel=0.05)  # type: ignore[union-attr]
    # Four times the fixed cost, two and a half times the cost per candidate, from now on.
    ranker.a_ms, ranker.b_ms = 80.0, 5.0
    n = 20  # two half-lives
    for _ in range(n):
        one_call()
    estimate = budget.cost.estimate()
    assert estimate is not None
    assert estimate.a_ms == pytest.approx(80.0, rel=0.1)
    assert estimate.b_ms == pytest.approx(5.0, rel=0.1)
    # ... and the calls it now plans fit the time they were given again, without skipping.
    calls = [one_call() for _ in range(20)]
    assert all(0 < took <= allowed for took, allowed in calls)


def test_prior_seeds_the_model() -> None:
    budget = RerankBudget(reserve_ms=0.0, prior=(50.0, 5.0), clock=FakeClock())
    estimate = budget.cost.estimate()
    assert estimate is None  # two pseudo-observations: still learning
    budget.observe(10, 100.0)
    estimate = budget.cost.estimate()
    assert estimate is not None
    assert estimate.b_ms == pytest.approx(5.0, rel=0.05)


# -- decisions -------------------------------------------------------------------------------
def _trained(clock: FakeClock, a_ms: float = 20.0, b_ms: float = 10.0) -> RerankBudget:
    budget = RerankBudget(reserve_ms=100.0, min_k=5, safety_sigmas=0.0, clock=clock)
    for k in (5, 10, 20, 40):
        budget.observe(k, a_ms + b_ms * k)
    return budget


def test_a_deadline_already_past_skips() -> None:
    clock = FakeClock()
    budget = RerankBudget(reserve_ms=0.0, clock=clock)  # nothing learned yet: still skips
    called: list[int] = []
    candidates = list(range(30))
    served = budget.rerank(candidates, lambda top: called.append(1) or [0.0] * len(top),
                           deadline=clock() - 0.5)  # fmt: skip
    assert served == candidates and served is not candidates
    assert called == []
    decision = budget.plan(30, deadline=clock() - 0.5)
    assert decision.skipped and decision.k == 0 and decision.outcome == "skipped"
    assert decision.time_left_ms == pytest.approx(-500.0)


def test_a_request_budget_already_spent_skips() -> None:
    budget = RerankBudget(reserve_ms=0.0)
    with otel_rerank.request(budget_ms=0.001):
        threading.Event().wait(0.002)  # the request's 1 µs budget is certainly spent
        decision = budget.plan(30)
    assert decision.skipped
    assert budget.plan(30).outcome == "full"  # no request scope, no deadline: no limit


def test_the_cut_is_the_largest_k_that_fits() -> None:
    clock = FakeClock()
    budget = _trained(clock)  # 20 + 10·k ms, reserve 100 ms
    decision = budget.plan(50, deadline=clock() + 0.400)  # 300 ms for the rerank
    assert (decision.k, decision.outcome) == (28, "cut")
    assert decision.predicted_ms == pytest.approx(300.0)
    assert decision.reserve_ms == 100.0
    assert budget.plan(20, deadline=clock() + 0.400).outcome == "full"
    # 5 fits only when 20 + 50 + 100 ms are left; 4 (below min_k) is a skip.
    assert budget.plan(50, deadline=clock() + 0.169).outcome == "skipped"
    assert budget.plan(50, deadline=clock() + 0.171).k == 5
    # fewer candidates than min_k that fit: all of them, a full rerank
    assert budget.plan(3, deadline=clock() + 0.171).outcome == "full"


def test_the_smaller_of_request_budget_and_deadline_wins() -> None:
    clock = FakeClock()
    budget = _trained(clock)
    with otel_rerank.request(budget_ms=10_000):
        assert budget.plan(50, deadline=clock() + 0.400).k == 28
        assert budget.plan(50).outcome == "full"


def test_the_cut_reranks_the_top_k_and_keeps_the_rest_below() -> None:
    clock = FakeClock()
    budget = _trained(clock)
    served = budget.rerank(
        list(range(50)), lambda top: [float(i) for i in range(len(top))],
        deadline=clock() + 0.400,
    )  # fmt: skip
    assert served == [*range(27, -1, -1), *range(28, 50)]


def test_learned_reserve_is_a_p95_with_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget_module, "CHAT_LATENCY", RecentP95())  # no chat spans seen
    budget = RerankBudget(min_reserve_ms=50.0)
    assert budget.current_reserve_ms() == 50.0  # no data: the floor
    for value in range(1, 101):
        budget.observe_reserve(float(value))
    assert budget.current_reserve_ms() == pytest.approx(95.05)
    p95 = RecentP95(window=4)
    for value in (1.0, 2.0, 3.0, 4.0, 100.0):  # the window forgets the first
        p95.add(value)
    assert p95.p95() == pytest.approx(4.0 + 0.85 * 96.0)


def test_reserve_is_learned_from_chat_spans(otel: Otel) -> None:
    budget = RerankBudget()  # a guard that learns its reserve: chat spans feed it from now
    before = CHAT_LATENCY.count
    for _ in range(10):
        with otel_rerank.llm(model="m", provider="p"):
            pass
    with otel_rerank.embedding(model="e"):  # not a chat: not counted
        pass
    assert CHAT_LATENCY.count == before + 10
    learned = CHAT_LATENCY.p95()
    assert learned is not None and learned >= 0
    assert budget.current_reserve_ms() == pytest.approx(learned)


def test_chat_spans_feed_no_latency_window_until_a_guard_learns_its_reserve(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat call pays nothing for the budget guard in an app without one: its duration
    goes to the window only once a ``RerankBudget`` without a fixed reserve exists."""
    monkeypatch.setattr(_span, "chat_duration_listener", None)
    window = RecentP95()
    monkeypatch.setattr(budget_module, "CHAT_LATENCY", window)
    with otel_rerank.llm(model="m", provider="p"):
        pass
    RerankBudget(reserve_ms=400)  # a fixed reserve learns nothing
    with otel_rerank.llm(model="m", provider="p"):
        pass
    assert window.count == 0
    RerankBudget()
    with otel_rerank.llm(model="m", provider="p"):
        pass
    assert window.count == 1


# -- on the rerank span, and counted ---------------------------------------------------------
def test_serve_mode_records_each_decision(otel: Otel) -> None:
    clock = FakeClock()
    ranker = SyntheticReranker(clock, a_ms=20.0, b_ms=10.0)
    budget = _trained(clock)
    shadow = otel_rerank.ShadowReranker(ranker, mode="serve", budget=budget, model="synthetic")
    candidates = [{"id": f"d{i}", "text": f"doc {i}"} for i in range(50)]
    served = shadow("q", candidates, deadline=clock() + 0.400)
    assert [c["id"] for c in served[:3]] == ["d27", "d26", "d25"]
    assert ranker.calls == [28]
    span = otel.span("rerank synthetic")
    attributes = span.attributes or {}
    assert attributes["rag.rerank.budget.k"] == 28
    assert attributes["rag.rerank.budget.outcome"] == "cut"
    assert attributes["rag.rerank.budget.skipped"] is False
    assert attributes["rag.rerank.budget.time_left_ms"] == pytest.approx(400.0)
    assert attributes["rag.rerank.budget.reserve_ms"] == 100.0
    assert attributes["rag.rerank.budget.predicted_ms"] == pytest.approx(300.0)
    assert attributes["rag.rerank.budget.actual_ms"] == pytest.approx(300.0)
    assert attributes["gen_ai.rerank.candidate.count"] == 28
    assert list(attributes["rag.rerank.served.ids"])[:2] == ["d27", "d26"]
    assert list(attributes["rag.rerank.retrieval.ids"])[:2] == ["d0", "d1"]
    assert attributes["rag.rerank.served.order"] == "reranked"

    assert shadow("q", candidates, deadline=clock() - 1) == candidates  # skipped
    assert shadow("q", candidates) != candidates  # no deadline: full
    points = otel.metric_points("rag.rerank.budget.decisions")
    outcomes = {p.attributes["rag.rerank.budget.outcome"]: p.value for p in points}
    assert outcomes == {"cut": 1, "skipped": 1, "full": 1}
    for point in points:
        assert point.attributes["gen_ai.request.model"] == "synthetic"
    skipped = [s for s in otel.spans() if (s.attributes or {}).get("rag.rerank.budget.skipped")]
    assert len(skipped) == 1
    assert "rag.rerank.budget.actual_ms" not in (skipped[0].attributes or {})
    assert "rag.rerank.reranked.ids" not in (skipped[0].attributes or {})
    assert skipped[0].attributes["rag.rerank.served.order"] == "retrieval"  # type: ignore[index]


def test_standalone_guard_records_on_the_current_span(otel: Otel) -> None:
    clock = FakeClock()
    budget = _trained(clock)
    with otel_rerank.rerank(model="mine"):
        budget.rerank(list(range(50)), lambda top: [0.0] * len(top), deadline=clock() + 0.4)
    attributes = otel.span("rerank mine").attributes or {}
    assert attributes["rag.rerank.budget.outcome"] == "cut"
    points = otel.metric_points("rag.rerank.budget.decisions")
    assert [p.attributes["rag.rerank.budget.outcome"] for p in points] == ["cut"]


def test_guard_works_with_no_sdk_at_all() -> None:
    clock = FakeClock()
    ranker = SyntheticReranker(clock, a_ms=20.0, b_ms=10.0)
    shadow = otel_rerank.ShadowReranker(ranker, mode="serve", budget=_trained(clock))
    served = shadow("q", [f"d{i}" for i in range(50)], deadline=clock() + 0.4)
    assert ranker.calls == [28] and served[0] == "d27"


# -- concurrency -----------------------------------------------------------------------------
def test_threads_each_keep_their_own_request_budget() -> None:
    budget = RerankBudget(reserve_ms=0.0, min_k=1)
    for k in (5, 10, 20):
        budget.observe(k, 1.0 * k)  # 1 ms per candidate
    results: dict[int, str] = {}
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        budget_ms = 0.001 if index % 2 else 60_000.0
        with otel_rerank.request(budget_ms=budget_ms):
            barrier.wait()
            threading.Event().wait(0.002)
            results[index] = budget.plan(40).outcome
            for _ in range(50):
                budget.observe(10, 10.0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: ("skipped" if i % 2 else "full") for i in range(16)}
    assert budget.cost.estimate().observations == 3 + 16 * 50  # type: ignore[union-attr]


async def test_tasks_each_keep_their_own_request_budget() -> None:
    budget = RerankBudget(reserve_ms=0.0, min_k=1)
    for k in (5, 10, 20):
        budget.observe(k, 1.0 * k)

    async def one(index: int) -> str:
        async with otel_rerank.request(budget_ms=0.001 if index % 2 else 60_000.0):
            await asyncio.sleep(0.002)
            return budget.plan(40).outcome

    outcomes = await asyncio.gather(*(one(i) for i in range(20)))
    assert outcomes == ["skipped" if i % 2 else "full" for i in range(20)]


async def test_acall_serve_sees_the_tasks_budget() -> None:
    clock = FakeClock()
    ranker = SyntheticReranker(clock, a_ms=20.0, b_ms=10.0)
    shadow = otel_rerank.ShadowReranker(ranker, mode="serve", budget=_trained(clock))
    served = await shadow.acall("q", list(range(50)), deadline=clock() + 0.4)
    assert ranker.calls == [28] and served[0] == 27


# -- hostility ---------------------------------------------------------------------------------
class _Hostile:
    @property
    def shape(self) -> Any:
        raise RuntimeError("no shape for you")

    def tolist(self) -> Any:
        raise RuntimeError("nope")


@pytest.mark.parametrize(
    "result",
    [None, [], [1.0], "abc", [math.nan] * 10, ["x"] * 10, _Hostile(), iter([1.0] * 10), 3.0],
)
def test_a_hostile_reranker_result_serves_retrieval_order(result: Any) -> None:
    clock = FakeClock()
    budget = _trained(clock)
    candidates = list(range(10))
    assert budget.rerank(candidates, lambda top: result, deadline=clock() + 1) == candidates
    assert budget.cost.estimate().observations == 4  # type: ignore[union-attr]


def test_the_rerankers_own_exception_propagates_unchanged() -> None:
    class BoomError(Exception):
        pass

    def score(top: list[int]) -> list[float]:
        raise BoomError

    with pytest.raises(BoomError):
        RerankBudget(reserve_ms=0.0).rerank(list(range(5)), score)


_numbers = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12)
)


@settings(max_examples=200, deadline=None)
@given(
    candidates=st.one_of(st.integers(-5, 10**9), st.none(), st.floats(), st.text(max_size=3)),
    deadline=_numbers,
    observations=st.lists(st.tuples(st.one_of(st.integers(-3, 10**6), st.floats()), _numbers)),
)
def test_plan_and_observe_never_raise(candidates: Any, deadline: Any, observations: Any) -> None:
    budget = RerankBudget(reserve_ms=0.0)
    for k, ms in observations:
        budget.observe(k, ms)
        budget.observe_reserve(ms)
    decision = budget.plan(candidates, deadline=deadline)
    assert 0 <= decision.k <= max(candidates if isinstance(candidates, int) else 0, 0)
    estimate = budget.cost.estimate()
    if estimate is not None:
        assert all(math.isfinite(v) and v >= 0 for v in (estimate.a_ms, estimate.b_ms))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reserve_ms": -1},
        {"reserve_ms": math.nan},
        {"min_k": 0},
        {"min_k": 2, "max_k": 1},
        {"safety_sigmas": -1},
        {"halflife": 0},
        {"prior": (-1.0, 2.0)},
    ],
)
def test_bad_configuration_is_refused_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RerankBudget(**kwargs)
