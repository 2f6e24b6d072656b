"""bench: timing cells, percentiles, the cost line, the verdict and the quality lift."""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_rerank import bench, semconv
from otel_rerank.bench import Query, QuerySet, _bundled
from tests.conftest import CRANFIELD_DIR


class GoldScorer:
    """CrossEncoder-shaped stub: 1.0 for a text containing 'gold', else 0.0 (many ties)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
        self.calls.append((len(pairs), batch_size))
        return [1.0 if "gold" in doc else 0.0 for _, doc in pairs]


# Relevant candidate at position 2, 0, 1, and nowhere: a case the lift is known for.
HAND = QuerySet(
    "hand",
    "hand-made",
    [
        Query("q1", ("a", "b", "gold", "c"), (0, 0, 1, 0)),
        Query("q2", ("gold", "a", "b", "c"), (1, 0, 0, 0)),
        Query("q3", ("a", "gold", "b", "c"), (0, 1, 0, 0)),
        Query("q4", ("a", "b", "c", "d"), (0, 0, 0, 0)),
    ],
)


def test_quality_lift_matches_a_hand_computed_case() -> None:
    result = bench.run_bench(GoldScorer(), HAND, ks=[4], batch_sizes=[2], repeats=1, warmup=0)
    (q,) = result.quality
    assert q.queries == 4 and q.with_relevant == 3
    assert q.top1_original == 0.25  # only q2 starts with its relevant document
    assert q.top1_reranked == 0.75  # the reranker lifts it to the top in q1, q2, q3
    assert q.top1_lift == 0.5
    ndcg_original = (1 / np.log2(4) + 1 + 1 / np.log2(3) + 0) / 4
    assert q.ndcg5_original == pytest.approx(ndcg_original)
    assert q.ndcg5_reranked == pytest.approx(0.75)
    assert q.ndcg5_lift == pytest.approx(0.75 - ndcg_original)
    assert q.mrr10_original == pytest.approx((1 / 3 + 1 + 1 / 2) / 4)
    assert q.mrr10_reranked == pytest.approx(0.75)


def test_quality_at_small_k_sees_only_the_top_k() -> None:
    result = bench.run_bench(GoldScorer(), HAND, ks=[1, 2], batch_sizes=[8], repeats=1, warmup=0)
    at1, at2 = result.quality
    assert (at1.k, at1.top1_original, at1.top1_reranked) == (1, 0.25, 0.25)
    assert (at2.k, at2.top1_original, at2.top1_reranked, at2.with_relevant) == (2, 0.25, 0.5, 2)


def test_ties_keep_the_first_stage_order() -> None:
    assert bench.quality(3, [[0, 1, 0]], [[0.5, 0.5, 0.5]]).top1_reranked == 0.0
    assert bench.quality(3, [[1, 0, 0]], [[0.0, 0.0, 0.0]]).top1_reranked == 1.0
    nan = float("nan")
    assert bench.quality(3, [[0, 1, 0]], [[nan, 1.0, nan]]).queries == 1  # no crash


def test_metric_functions() -> None:
    assert bench.top1([]) == 0.0
    assert bench.ndcg_at([0, 0, 0, 0, 0, 1], 5) == 0.0
    assert bench.ndcg_at([1, 1], 5) == 1.0
    assert bench.mrr_at([0] * 10 + [1], 10) == 0.0
    assert bench.mrr_at([0, 0, 0, 1], 10) == 0.25


def test_cells_use_the_clock_around_predict_only() -> None:
    # A fake clock: call i takes durations[i] ms, so every statistic is known exactly.
    durations = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 8.0, 6.0]
    ticks = itertools.count()
    times: list[float] = []
    for d in durations:
        times.extend([0.0, d / 1000])

    def clock() -> float:
        return times[next(ticks)]

    model = GoldScorer()
    result = bench.run_bench(model, HAND, ks=[3], batch_sizes=[2], repeats=2, warmup=1, clock=clock)
    cell = result.cell(3, 2)
    assert cell.samples == 8
    assert cell.pairs_per_call == 3
    for q, value in ((50, cell.p50_ms), (95, cell.p95_ms), (99, cell.p99_ms)):
        assert value == pytest.approx(np.percentile(durations, q))
    assert cell.mean_ms == pytest.approx(np.mean(durations))
    assert cell.pairs_per_s == pytest.approx(8 * 3 / (sum(durations) / 1000))
    assert cell.ms_per_pair == pytest.approx(sum(durations) / 24)
    assert model.calls == [(3, 2)] * 9  # one warm-up call, then 2 passes over 4 queries


def test_every_cell_is_measured_with_spans(otel: Any, tiny_cross_encoder: Any) -> None:
    queries = QuerySet(
        "tiny",
        "tiny",
        [Query(f"query {i}", tuple(f"doc {i} {j}" for j in range(6)), None) for i in range(3)],
    )
    result = bench.run_bench(
        tiny_cross_encoder, queries, ks=[2, 6], batch_sizes=[1, 4], repeats=2, warmup=1
    )
    assert {(c.k, c.batch_size) for c in result.cells} == {(2, 1), (2, 4), (6, 1), (6, 4)}
    for cell in result.cells:
        assert cell.samples == 6
        assert 0 < cell.p50_ms <= cell.p95_ms <= cell.p99_ms
        assert cell.pairs_per_s == pytest.approx(cell.pairs_per_call / cell.mean_ms * 1000)
    assert result.quality == []  # unlabelled
    assert {f.batch_size for f in result.fits} == {1, 4}
    for fit in result.fits:  # the p95 line runs through the two cells' p95s exactly
        small, large = (result.cell(k, fit.batch_size) for k in (2, 6))
        assert fit.p95_a_ms is not None and fit.p95_b_ms_per_pair is not None
        slope = (large.p95_ms - small.p95_ms) / 4
        if small.p95_ms - 2 * slope >= 0 and slope >= 0:
            assert fit.p95_b_ms_per_pair == pytest.approx(slope)
            assert fit.p95_a_ms + 2 * fit.p95_b_ms_per_pair == pytest.approx(small.p95_ms)
        else:  # timing noise gave a line below zero: refitted within a, b ≥ 0
            assert fit.p95_a_ms >= 0 and fit.p95_b_ms_per_pair >= 0
    rerank_spans = [s for s in otel.spans() if s.name.startswith("rerank")]
    assert len(rerank_spans) == 4 * (1 + 2 * 3)  # warm-up and timed calls
    assert {s.attributes[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] for s in rerank_spans} == {2, 6}


def test_fit_line() -> None:
    a, b, r2 = bench.fit_line([1, 2, 3, 4], [5, 8, 11, 14])
    assert (a, b, r2) == pytest.approx((2.0, 3.0, 1.0))
    a, b, r2 = bench.fit_line([0, 0, 10, 10], [1, 3, 21, 23])
    assert (a, b) == pytest.approx((2.0, 2.0))
    assert r2 is not None and 0.9 < r2 < 1
    with pytest.raises(ValueError, match="distinct"):
        bench.fit_line([5, 5], [1, 2])


def test_fit_line_nonnegative() -> None:
    xs, ys = [2, 4, 8], [1.0, 5.0, 13.0]  # y = -3 + 2x exactly
    assert bench.fit_line(xs, ys) == pytest.approx((-3.0, 2.0, 1.0))
    a, b, r2 = bench.fit_line(xs, ys, nonnegative=True)
    # Refitted through the origin: b = Σxy / Σx².
    assert (a, b) == pytest.approx((0.0, (2 * 1 + 4 * 5 + 8 * 13) / (4 + 16 + 64)))
    assert r2 is not None and r2 < 1
    a, b, _ = bench.fit_line([1, 2, 3], [9.0, 8.0, 7.0], nonnegative=True)  # falling: flat
    assert (a, b) == pytest.approx((8.0, 0.0))
    # A line that is already non-negative is left alone.
    assert bench.fit_line([1, 2, 3, 4], [5, 8, 11, 14], nonnegative=True) == pytest.approx(
        (2.0, 3.0, 1.0)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        # x: pairs per call (what the benchmark fits), y: milliseconds
        st.tuples(st.integers(0, 1000), st.floats(-1000, 1000, allow_nan=False)),
        min_size=2,
        max_size=40,
    ).filter(lambda points: len({x for x, _ in points}) >= 2)
)
def test_fit_line_is_the_stdlib_least_squares_line(points: list[tuple[int, float]]) -> None:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    a, b, _ = bench.fit_line(xs, ys)
    assert (a, b) == (intercept, slope)
    a, b, _ = bench.fit_line(xs, ys, nonnegative=True)
    assert a >= 0 and b >= 0
    if intercept >= 0 and slope >= 0:
        assert (a, b) == (intercept, slope)  # already feasible: left alone
    elif sys.version_info >= (3, 11) and a == 0:
        (origin_slope, _) = statistics.linear_regression(xs, ys, proportional=True)
        assert b == pytest.approx(max(origin_slope, 0.0), rel=1e-9, abs=1e-9)


def test_the_benchmarks_cost_lines_never_go_below_zero() -> None:
    # Fake clock: a call scoring k pairs takes 2k - 3 ms, a line with a negative intercept.
    class Timed:
        now = 0.0

        def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
            Timed.now += (2 * len(pairs) - 3) / 1000
            return [0.0] * len(pairs)

    queries = QuerySet("t", "t", [Query("q", tuple(f"d{i}" for i in range(8)))])
    result = bench.run_bench(
        Timed(), queries, ks=[2, 4, 8], batch_sizes=[4], repeats=2, warmup=0,
        clock=lambda: Timed.now, budget_ms=100,
    )  # fmt: skip
    [fit] = result.fits
    assert fit.a_ms == 0.0 and fit.b_ms_per_pair > 0
    assert fit.p95_a_ms == 0.0 and fit.p95_b_ms_per_pair is not None
    assert fit.p95_b_ms_per_pair > 0
    assert "a = 0.00 ms" in bench.format_result(result)


def test_a_k_above_every_querys_candidates_is_measured_at_the_real_count() -> None:
    model = GoldScorer()
    result = bench.run_bench(
        model, HAND, ks=[2, 5, 100_000], batch_sizes=[2], repeats=1, warmup=0, budget_ms=1e6
    )
    assert [c.k for c in result.cells] == [2, 4]
    assert {n for n, _ in model.calls} == {2, 4}
    assert result.settings["k"] == [2, 4]
    assert result.notes == [
        "k=5, 100000 is more than the most candidates any query has (4): measured at k=4 instead"
    ]
    assert result.verdict is not None and result.verdict.k == 4
    text = bench.format_result(result)
    assert "k=100000" not in text.split("note:")[0] + text.split("\n")[-1]
    assert "up to k=4 candidates fit" in text
    assert result.to_dict()["notes"] == result.notes


def _cell(k: int, batch: int, p95: float) -> bench.Cell:
    return bench.Cell(k, batch, 10, k, p95 / 2, p95, p95 * 1.1, p95 / 2, 1.0, 1.0)


def test_verdict_picks_the_largest_fitting_k() -> None:
    cells = [
        _cell(10, 8, 50),
        _cell(10, 32, 40),
        _cell(50, 8, 400),
        _cell(50, 32, 300),
        _cell(100, 32, 900),
    ]
    fits = [bench.Fit(32, 5.0, 4.0, 0.99, p95_a_ms=10.0, p95_b_ms_per_pair=6.0)]
    verdict = bench.bench_verdict(cells, fits, budget_ms=500)
    assert (verdict.k, verdict.batch_size, verdict.p95_ms) == (50, 32, 300)
    assert verdict.budget_share == pytest.approx(0.6)
    assert verdict.k_at_budget == 81  # (500 - 10) / 6
    assert "up to k=50" in verdict.text() and "60% of the budget" in verdict.text()
    none = bench.bench_verdict(cells, fits, budget_ms=10)
    assert none.k is None and "no tested k fits" in none.text()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        bench.run_bench(GoldScorer(), HAND, ks=[0], batch_sizes=[1])
    with pytest.raises(ValueError, match="positive"):
        bench.run_bench(GoldScorer(), HAND, ks=[1], batch_sizes=[-1])
    with pytest.raises(ValueError, match="empty"):
        bench.run_bench(GoldScorer(), QuerySet("x", "x", []), ks=[1], batch_sizes=[1])

    class Wrong:
        def predict(self, pairs: Any, batch_size: int = 32) -> list[float]:
            return [0.0]

    with pytest.raises(ValueError, match="one score per pair"):
        bench.run_bench(Wrong(), HAND, ks=[3], batch_sizes=[1], repeats=1, warmup=0)


def test_result_json_and_text_and_plot(tmp_path: Path) -> None:
    result = bench.run_bench(
        GoldScorer(), HAND, ks=[2, 4], batch_sizes=[1, 2], repeats=2, warmup=1, budget_ms=1000,
        model_name="gold", notice="stub model",
    )  # fmt: skip
    document = json.loads(json.dumps(result.to_dict()))
    assert len(document["cells"]) == 4
    assert document["verdict"]["k"] == 4
    assert document["percentile_method"].startswith("linear interpolation")
    assert [q["top1_lift"] for q in document["quality"]] == [0.25, 0.5]
    text = bench.format_result(result)
    assert "NOTE: stub model" in text and "verdict: up to k=4" in text
    assert "latency ≈ a + b·k" in text
    png = bench.plot_bench(result, tmp_path / "b.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


# -- query sets ------------------------------------------------------------------------------
def test_load_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"query": "a", "candidates": [{"text": "x", "label": 1}, {"text": "y", "label": 0}]}\n'
        "\n"
        '{"query": "b", "candidates": ["u", "v"]}\n'
    )
    query_set = bench.load_jsonl(path)
    assert query_set.queries[0] == Query("a", ("x", "y"), (1, 0))
    assert query_set.queries[1] == Query("b", ("u", "v"), None)
    assert not query_set.labelled
    first = query_set.head(1)
    assert first.queries == query_set.queries[:1]
    assert first.description.endswith("(first 1 used)")
    assert query_set.head(None) is query_set
    out = query_set.to_jsonl(tmp_path / "copy.jsonl")
    assert bench.load_jsonl(out).queries == query_set.queries


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "line 2: not JSON"),
        ('{"query": 1, "candidates": ["x"]}', "line 2: 'query' must be a string"),
        ('{"query": "q", "candidates": []}', "line 2: 'candidates' must be a non-empty list"),
        ('{"query": "q", "candidates": [{"text": "x", "label": 2}]}', "must be 0 or 1"),
        ('{"query": "q", "candidates": [{"text": "x", "label": 1}, "y"]}', "every candidate"),
        ('["q"]', "line 2: expected an object"),
    ],
)
def test_load_jsonl_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "ok", "candidates": ["x"]}\n' + line + "\n")
    with pytest.raises(bench.QuerySetError, match=message):
        bench.load_jsonl(path)


def _bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """A deterministic stand-in embedder: hashed bag of words."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, sum(map(ord, word)) % 64] += 1.0
    return out


def test_retrieve_top_k_is_stable_on_ties() -> None:
    docs = ["python", "wing lift", "wing lift", "boundary layer"]
    assert bench.retrieve_top_k(["wing lift"], docs, 2, _bag_of_words) == [[1, 2]]


def test_trec_query_set_from_a_small_collection(tmp_path: Path) -> None:
    (tmp_path / "tiny.all.3.xml").write_text(
        "<xml>\n<doc>\n<docno>1</docno>\n<title>wing lift</title>\n<text>wing lift\n"
        "in a slipstream</text>\n</doc>\n<doc><docno>2</docno><title>heat</title>"
        "<text>heat conduction in slabs</text></doc>\n<doc><docno>3</docno><title>flow</title>"
        "<text>supersonic flow over a wing</text></doc>\n</xml>\n"
    )
    (tmp_path / "tiny.qry.xml").write_text(
        "<xml><top><num> 7</num><title>heat conduction in slabs .</title></top>"
        "<top><num> 9</num><title>wing in a slipstream .</title></top>"
        "<top><num> 11</num><title>unjudged query</title></top></xml>"
    )
    (tmp_path / "tinyqrel.trec.txt").write_text("1 0 2 1\n2 0 1 1\n2 0 3 1\n3 0 1 0\n")
    collection = bench.read_trec(tmp_path)
    assert collection.topics[0] == ("1", "heat conduction in slabs")
    assert collection.qrels == {"1": {"2"}, "2": {"1", "3"}}
    query_set = bench.trec_query_set(tmp_path, 2, _bag_of_words)
    queries = [q.query for q in query_set.queries]
    assert queries == ["heat conduction in slabs", "wing in a slipstream"]
    first = query_set.queries[0]
    assert first.candidates[0] == "heat conduction in slabs"  # the text repeats its title
    assert collection.documents["3"] == "flow. supersonic flow over a wing"
    assert first.labels == (1, 0)
    assert query_set.labelled and "top-2" in query_set.description


@pytest.mark.skipif(not CRANFIELD_DIR.is_dir(), reason="the Cranfield data is not present")
def test_read_trec_cranfield_ids() -> None:
    collection = bench.read_trec(CRANFIELD_DIR)
    assert len(collection.documents) == 1400
    assert len(collection.topics) == 225
    assert len(collection.qrels) == 225
    # Query 3 in file order is <num> 4 in the topic file; the qrels call it 3.
    assert collection.topics[2] == (
        "3",
        "what problems of heat conduction in composite slabs have been solved so far",
    )
    assert "184" in collection.qrels["1"]
    assert collection.documents["1"].startswith("experimental investigation of the aerodynamics")


def test_read_trec_errors(tmp_path: Path) -> None:
    with pytest.raises(bench.QuerySetError, match="no such directory"):
        bench.read_trec(tmp_path / "missing")
    with pytest.raises(bench.QuerySetError, match="no documents file"):
        bench.read_trec(tmp_path)


def test_bundled_set_is_built_from_docstrings_with_known_item_labels() -> None:
    modules = ("json", "textwrap", "shutil", "statistics")
    query_set = _bundled.build(_bag_of_words, queries=12, k=20, modules=modules)
    assert len(query_set.queries) == 12
    assert all(len(q.candidates) == 20 for q in query_set.queries)
    assert all(q.labels is not None and sum(q.labels) <= 1 for q in query_set.queries)
    assert sum(sum(q.labels or ()) for q in query_set.queries) >= 6  # most sources retrieved
    assert "standard-library docstrings" in query_set.description


def test_a_built_bundled_set_is_written_to_the_cache_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_CACHE_DIR", str(tmp_path))
    builds: list[int] = []
    real_build = _bundled.build

    def small_build(embed: Any) -> QuerySet:  # the real embedder is loaded, not used
        builds.append(1)
        return real_build(_bag_of_words, queries=4, k=6, modules=("json", "shutil"))

    monkeypatch.setattr(_bundled, "build", small_build)
    built = bench.bundled_query_set()
    again = bench.bundled_query_set()
    assert builds == [1]
    assert again.queries == built.queries
    assert [p.name for p in _bundled.cache_path().parent.iterdir()] == [
        _bundled.cache_path().name
    ]  # no temporary left behind


def test_bundled_set_is_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RERANK_CACHE_DIR", str(tmp_path))
    built = _bundled.build(_bag_of_words, queries=5, k=10, modules=("json", "shutil"))
    built.to_jsonl(_bundled.cache_path())
    loaded = bench.bundled_query_set()
    assert loaded.queries == built.queries
    assert loaded.name == "stdlib-docstrings"
    assert "5 queries" in loaded.description
