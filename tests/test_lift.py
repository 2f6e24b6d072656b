"""The report's production lift: joining feedback to reranks, the statistics, the verdict.

The last test runs the Cranfield simulation (``benchmarks/lift_simulation.py``) on a subset
of queries: real BM25 and real all-MiniLM-L6-v2 with real relevance labels, simulated
users, and the report's interval must cover the lift computed from the labels.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_rerank import report
from otel_rerank.cli import main as cli_main
from otel_rerank.report._lift import (
    MIN_REQUESTS,
    Interval,
    format_lift,
    hit_rate,
    paired_bootstrap,
    reciprocal_rank,
)
from otel_rerank.report._spans import SpanRecord

from .conftest import CRANFIELD_DIR

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _rerank(
    trace_id: str,
    retrieval: list[str],
    reranked: list[str],
    *,
    served: str = "retrieval",
    shadow: bool = True,
    start: int = 1,
) -> SpanRecord:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "rerank",
        "rag.rerank.reranked.ids": reranked,
        "rag.rerank.served.order": served,
    }
    if served == "reranked":
        attributes["rag.rerank.served.ids"] = reranked
        attributes["rag.rerank.retrieval.ids"] = retrieval
    else:
        attributes["rag.rerank.served.ids"] = retrieval
    if shadow:
        attributes["rag.rerank.shadow"] = True
        return SpanRecord(
            f"s{trace_id}", "0" * 15 + "2", None, "rerank m", start, start + 10**6,
            attributes, links=((trace_id, "0" * 15 + "1"),),
        )  # fmt: skip
    return SpanRecord(trace_id, "0" * 15 + "3", "0" * 15 + "1", "rerank m", start, 10**6,
                      attributes)  # fmt: skip


def _request(trace_id: str, ms: float = 100.0) -> SpanRecord:
    return SpanRecord(trace_id, "0" * 15 + "1", None, "invoke_workflow ask", 0, int(ms * 1e6))


def _feedback(trace_id: str, doc: str, useful: bool = True, n: int = 0) -> SpanRecord:
    return SpanRecord(
        f"f{trace_id}{doc}{n}", "0" * 15 + "9", None, "feedback click", 0, 1000,
        {"rag.feedback.trace_id": trace_id, "rag.feedback.document.id": doc,
         "rag.feedback.useful": useful, "rag.feedback.kind": "click"},
    )  # fmt: skip


def test_metrics_per_request() -> None:
    order = ["a", "b", "c", "d"]
    assert reciprocal_rank(order, frozenset({"c", "d"})) == pytest.approx(1 / 3)
    assert reciprocal_rank(order, frozenset({"z"})) == 0.0
    assert hit_rate(order, frozenset({"a", "d"}), 2) == 0.5


def test_paired_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    rng = random.Random(5)
    values = [rng.gauss(0.1, 0.3) for _ in range(200)]
    first = paired_bootstrap(values, resamples=500, confidence=0.95, seed=3)
    again = paired_bootstrap(values, resamples=500, confidence=0.95, seed=3)
    assert first == again
    assert first.low < first.mean < first.high
    # the normal-theory interval, roughly
    se = 0.3 / 200**0.5
    assert first.high - first.low == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert paired_bootstrap([0.2], resamples=10, confidence=0.95, seed=0) == Interval(0.2, 0.2, 0.2)


def test_join_through_links_and_own_traces_with_negative_feedback() -> None:
    spans = [
        _request("t1"),
        _rerank("t1", ["a", "b", "c"], ["c", "b", "a"]),  # shadow, linked to t1
        _feedback("t1", "c"),
        _request("t2"),
        _rerank("t2", ["a", "b", "c"], ["b", "a", "c"], served="reranked", shadow=False),
        _feedback("t2", "b"),
        _feedback("t2", "a", useful=False),
        _request("t3"),  # feedback but no rerank ids
        _feedback("t3", "x"),
        _request("t4"),
        _rerank("t4", ["a"], ["a"]),
        _feedback("t4", "a", useful=False),  # only negative: no useful document
    ]
    joined, feedback, unjoined = report.join_feedback(spans)
    assert (feedback, unjoined) == (5, 1)
    assert [(r.trace_id, r.served, sorted(r.useful)) for r in joined] == [
        ("t1", "retrieval", ["c"]),
        ("t2", "reranked", ["b"]),
    ]
    lift = report.production_lift(spans, resamples=200)
    assert lift is not None
    assert lift.served == "mixed"
    assert lift.retrieval_mrr == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert lift.reranked_mrr == pytest.approx(1.0)
    assert lift.split is not None
    assert (lift.split.retrieval_requests, lift.split.reranked_requests) == (2, 1)
    # t1 (retrieval served, 'c' at 3) and t4 (no useful: 0); t2 (reranked served, 'b' first)
    assert lift.split.retrieval_mrr == pytest.approx((1 / 3 + 0) / 2)
    assert lift.split.reranked_mrr == pytest.approx(1.0)
    assert lift.too_thin and lift.split.too_thin
    assert lift.deciding is lift.mrr_lift  # a thin A/B does not decide


def _shadow_population(n: int, *, better: bool) -> list[SpanRecord]:
    rng = random.Random(11)
    spans: list[SpanRecord] = []
    for i in range(n):
        trace_id = f"{i:032x}"
        docs = [f"d{j}" for j in range(10)]
        target = docs[rng.randrange(1, 6)]
        reranked = [target, *[d for d in docs if d != target]] if better else docs[::-1]
        spans += [
            _request(trace_id),
            _rerank(trace_id, docs, reranked),
            _feedback(trace_id, target),
        ]
    return spans


def test_a_clear_lift_is_decided_and_set_against_the_added_p95() -> None:
    lift = report.production_lift(_shadow_population(80, better=True), resamples=300)
    assert lift is not None and not lift.too_thin
    assert lift.mrr_lift.low > 0
    text = format_lift(lift, rerank_p95_ms=420.0, end_to_end_p95_ms=1200.0, budget_ms=1500)
    assert "80 request(s) with useful feedback" in text
    assert "users saw retrieval's order, so their feedback favours it" in text
    assert "1200 + 420 = 1620 ms, OVER the 1500 ms budget" in text
    assert "a real lift" in text and "too thin" not in text


def test_a_worse_reranker_and_thin_data_are_called_so() -> None:
    worse = report.production_lift(_shadow_population(60, better=False), resamples=300)
    assert worse is not None and worse.mrr_lift.high < 0
    assert "do not ship it" in format_lift(worse)
    thin = report.production_lift(_shadow_population(MIN_REQUESTS - 1, better=True))
    assert thin is not None
    text = format_lift(thin, rerank_p95_ms=100.0)
    assert f"too thin to decide: {MIN_REQUESTS - 1} request(s)" in text
    assert "no lift shown yet" in text


def test_no_feedback_no_lift() -> None:
    assert report.production_lift([_request("t1"), _rerank("t1", ["a"], ["a"])]) is None


def test_the_cli_prints_the_lift_and_writes_it_to_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = _shadow_population(40, better=True)
    lines = []
    for span in spans:  # one OTLP/JSON request per span, as the embedded exporter writes
        attributes = [{"key": k, "value": _otlp_value(v)} for k, v in span.attributes.items()]
        otlp_span = {
            "traceId": span.trace_id.rjust(32, "0")[-32:],
            "spanId": span.span_id,
            "name": span.name,
            "startTimeUnixNano": str(span.start_ns),
            "endTimeUnixNano": str(span.end_ns),
            "attributes": attributes,
            "links": [{"traceId": t, "spanId": s} for t, s in span.links],
        }
        if span.parent_id:
            otlp_span["parentSpanId"] = span.parent_id
        lines.append(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [otlp_span]}]}]}))
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "report.json"
    assert cli_main(["report", str(path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "production lift (40 request(s) with useful feedback" in printed
    assert "lift verdict: MRR +" in printed
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["lift"]["requests"] == 40
    assert document["requests"] == 40  # feedback spans are not requests


def _otlp_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_otlp_value(v) for v in value]}}
    return {"stringValue": str(value)}


# -- the simulation on real labels ------------------------------------------------------------
def _simulation() -> Any:
    spec = importlib.util.spec_from_file_location(
        "lift_simulation", _BENCHMARKS / "lift_simulation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lift_simulation"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cranfield_reranker() -> Any:
    """The simulation module, the collection and a MiniLM reranker whose embedding cache
    lives for the test session."""
    if not (CRANFIELD_DIR / "cranqrel.trec.txt").is_file():
        pytest.skip(f"no Cranfield collection in {CRANFIELD_DIR}")
    simulation = _simulation()
    return (
        simulation,
        simulation.load_cranfield(CRANFIELD_DIR),
        simulation.BiEncoderReranker(simulation.load_minilm()),
    )


@pytest.mark.slow
def test_simulated_lift_covers_the_true_lift_on_cranfield(cranfield_reranker: Any) -> None:
    simulation, collection, reranker = cranfield_reranker
    outcome = simulation.simulate(
        collection, reranker, queries=30, sessions=60, depth=20, serve_share=0.3,
        interleave_share=0.4, seed=2, resamples=1000,
    )  # fmt: skip
    lift = outcome.lift
    deciding = lift.deciding
    assert lift.split is not None and not lift.split.too_thin
    assert deciding is lift.split.mrr_lift  # the A/B reading decides
    assert deciding.low <= outcome.true_lift <= deciding.high, (outcome.true_lift, deciding)
    assert deciding.high - deciding.low < 0.3  # an interval that can miss, not a blanket
    # The paired (position-biased) reading is printed but does not decide.
    assert lift.mrr_lift is not deciding
    # By the labels MiniLM puts more relevant documents in the top 10 on these requests;
    # interleaving, which credits every useful document, must prefer it.
    assert outcome.true_recall_lift > 0.02
    assert lift.interleaving is not None
    assert lift.interleaving.preferred == "reranked", lift.interleaving


# -- team-draft interleaving ------------------------------------------------------------------
def test_team_draft_interleaving_is_fair_and_keeps_each_teams_order() -> None:
    from otel_rerank.shadow import _team_draft

    rng = random.Random(4)
    for _ in range(200):
        n = rng.randint(1, 30)
        reranked = list(range(n))
        rng.shuffle(reranked)
        result = _team_draft(n, reranked, rng.random)
        assert result is not None
        merged, teams = result
        assert sorted(merged) == list(range(n))
        for prefix in range(1, n + 1):  # the picks never differ by more than one
            picked = teams[:prefix]
            assert abs(picked.count("reranked") - picked.count("retrieval")) <= 1
        from_reranked = [m for m, t in zip(merged, teams, strict=True) if t == "reranked"]
        assert from_reranked == [d for d in reranked if d in set(from_reranked)]
        from_retrieval = [m for m, t in zip(merged, teams, strict=True) if t == "retrieval"]
        assert from_retrieval == sorted(from_retrieval)


def test_interleave_mode_serves_and_records_an_interleaving(otel: Any) -> None:
    import otel_rerank

    class Reverse:
        def predict(self, pairs: list[Any], batch_size: int = 32) -> list[float]:
            return [float(i) for i in range(len(pairs))]

    reranker = otel_rerank.ShadowReranker(Reverse(), sample_rate=1.0, mode="interleave", model="r")
    candidates = [{"id": f"d{i}", "text": f"t{i}"} for i in range(6)]
    served = reranker("q", candidates)
    assert sorted(c["id"] for c in served) == sorted(c["id"] for c in candidates)
    assert {served[0]["id"], served[1]["id"]} == {"d0", "d5"}  # each team's best, first
    attributes = otel.span("rerank r").attributes or {}
    assert attributes["rag.rerank.served.order"] == "interleaved"
    assert list(attributes["rag.rerank.served.ids"]) == [c["id"] for c in served]
    teams = list(attributes["rag.rerank.interleave.teams"])
    assert sorted(teams) == ["reranked"] * 3 + ["retrieval"] * 3
    assert list(attributes["rag.rerank.reranked.ids"]) == [f"d{i}" for i in range(5, -1, -1)]
    outside = otel_rerank.ShadowReranker(Reverse(), sample_rate=0.0, mode="interleave")
    assert outside("q", candidates) is candidates  # not sampled: retrieval's order as is


def _interleaved(trace_id: str, teams: list[str], served: list[str]) -> SpanRecord:
    return SpanRecord(
        trace_id, "0" * 15 + "3", "0" * 15 + "1", "rerank m", 1, 10**6,
        {"gen_ai.operation.name": "rerank", "rag.rerank.served.order": "interleaved",
         "rag.rerank.served.ids": served, "rag.rerank.interleave.teams": teams,
         "rag.rerank.reranked.ids": ["b", "a"], "rag.rerank.retrieval.ids": ["a", "b"]},
    )  # fmt: skip


def test_interleaving_credits_each_click_to_the_team_that_contributed_it() -> None:
    spans: list[SpanRecord] = []
    for i in range(60):
        trace_id = f"{i:032x}"
        spans += [_request(trace_id), _interleaved(trace_id, ["reranked", "retrieval"], ["b", "a"])]
        # 40 requests click the reranker's pick, 15 retrieval's, 5 both (ties)
        clicked = ["b"] if i < 40 else ["a"] if i < 55 else ["a", "b"]
        spans += [_feedback(trace_id, doc) for doc in clicked]
    lift = report.production_lift(spans, resamples=500)
    assert lift is not None and lift.interleaving is not None
    mixed = lift.interleaving
    assert (mixed.requests, mixed.reranked_wins, mixed.retrieval_wins, mixed.ties) == (
        60, 40, 15, 5
    )  # fmt: skip
    assert mixed.win_rate is not None
    assert mixed.win_rate.mean == pytest.approx(40 / 55)
    assert mixed.preferred == "reranked"
    text = format_lift(lift)
    assert "the reranker's team won 40, retrieval's 15, 5 tie(s)" in text
    assert "users prefer the reranker's order" in text
    assert lift.split is None  # interleaved requests are not A/B arms


async def test_interleave_from_asyncio_code() -> None:
    import otel_rerank

    class Reverse:
        def predict(self, pairs: list[Any], batch_size: int = 32) -> list[float]:
            return [float(i) for i in range(len(pairs))]

    reranker = otel_rerank.ShadowReranker(Reverse(), sample_rate=1.0, mode="interleave")
    served = await reranker.acall("q", list(range(6)))
    assert sorted(served) == list(range(6)) and set(served[:2]) == {0, 5}
    outside = otel_rerank.ShadowReranker(Reverse(), sample_rate=0.0, mode="interleave")
    candidates = list(range(6))
    assert await outside.acall("q", candidates) is candidates
