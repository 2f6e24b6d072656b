"""The library overhead benchmark's switching and its floor, on a short real run.

Every number the benchmark prints is a difference between cases switched in and out of one
process. If switching left a wrapper behind, the bare and A/A cases would be timed
instrumented; if the floor recorded less than ours, "ours / floor" would flatter or wrong
us. So a ``--quick`` run on two rows (faiss and the tiny cross-encoder) is held to
account here: no span from any uninstrumented case, exactly ours' spans from ours, and a
floor that writes the same spans, attributes and metric records. The inner-timed estimate
subtracts each call's CPU time inside the library's inner work, which is fair only if the
shim is in every case and nothing of ours runs inside it: its set-up check is held to that
on the real rows, and shown to catch instrumentation inside and uneven entries. No timing
is asserted (speed targets live in the benchmark's output, not in tests); no peer venv is
needed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import statistics
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from ._benchmark_script import BENCHMARKS, run_benchmark

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_benchmark("library_overhead.py", *args)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "summary.json"
    done = _run(
        "--quick", "--rows", "faiss,predict-50", "--peers", "none",
        "--blocks", "2", "--calls", "5", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours/floor" in done.stdout
    assert "Inner-timed" in done.stdout
    summary: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return summary


EXPECTED_SPANS = {"faiss": "retrieval IndexFlatIP", "predict-50": "rerank tiny-cross-encoder"}


@pytest.mark.parametrize("row", sorted(EXPECTED_SPANS))
def test_uninstrumented_cases_make_no_span_and_ours_exactly_its_own(
    quick_run: dict[str, Any], row: str
) -> None:
    result = quick_run["rows"][row]
    spans = result["spans_per_call"]
    assert spans["bare"] == spans["A/A"] == spans["no SDK"] == 0
    assert spans["ours"] == spans["floor"] == 1
    assert result["span_names"]["ours"] == [EXPECTED_SPANS[row]]
    assert result["ours_recording"]["spans"] == [EXPECTED_SPANS[row]]


@pytest.mark.parametrize("row", sorted(EXPECTED_SPANS))
def test_floor_records_what_ours_records(quick_run: dict[str, Any], row: str) -> None:
    result = quick_run["rows"][row]
    ours, floor = result["ours_recording"], result["floor_recording"]
    assert ours["attribute_count"] > 5  # a real span of ours, not an empty one
    assert floor["attribute_count"] == ours["attribute_count"]
    assert floor["events"] == ours["events"]
    assert floor["metric_records"] == ours["metric_records"]
    assert ["gen_ai.client.operation.duration", 1] in ours["metric_records"]
    # and so did every span each case exported while timed
    assert result["attribute_counts"]["floor"] == result["attribute_counts"]["ours"]
    assert result["attribute_counts"]["ours"] == [ours["attribute_count"]]


def test_every_case_was_timed_in_every_block(quick_run: dict[str, Any]) -> None:
    assert quick_run["blocks"] == 2
    assert quick_run["processes"] == 1  # --quick: one worker process
    for result in quick_run["rows"].values():
        assert result["calls_per_block"] == 5
        for key in ("bare_us", "floor_us", "ours_us", "no_sdk_us", "aa_us"):
            assert isinstance(result[key], float)
        assert result["bare_us"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["--blocks", "0"],
        ["--calls", "many"],
        ["--rows", "encode-empty,nope"],
        ["--peers", "langfuse"],
        ["--budget-ms", "-1"],
        ["--processes", "0"],
        ["--processes", "two"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str]) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("library_overhead.py: error:"), lines


EXPECTED_INNER = {
    "faiss": ["IndexFlatIP.search_c"],
    "predict-50": ["CrossEncoder()._inference"],
}


@pytest.mark.parametrize("row", sorted(EXPECTED_INNER))
def test_inner_work_is_shimmed_in_every_case_with_nothing_of_ours_inside(
    quick_run: dict[str, Any], row: str
) -> None:
    inner = quick_run["rows"][row]["inner"]
    assert inner["targets"] == EXPECTED_INNER[row]
    check = inner["check"]
    # the set-up check: the call ours' recording came from, the floor's and a bare one
    assert set(check["entries"]) == {"bare", "ours", "floor"}
    assert check["entries"]["bare"] > 0
    assert len(set(check["entries"].values())) == 1
    assert check["instrumentation_inside"] == {"bare": [], "ours": [], "floor": []}
    # and the timed calls: every case went through the shims as often
    per_call = inner["entries_per_call"]
    assert set(per_call) == {"bare", "A/A", "floor", "ours", "no SDK"}
    assert set(per_call.values()) == {check["entries"]["bare"]}
    for key in ("inner_us", "bare_us", "aa_us", "floor_us", "ours_us", "no_sdk_us"):
        assert isinstance(inner[key], float)
    assert inner["inner_us"] > 0
    assert inner["bare_us"] < quick_run["rows"][row]["bare_us"]  # the inner work left out


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark module, imported here (its environment defaults undone after)."""
    environ = os.environ.copy()
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("library_overhead")
    finally:
        sys.path.remove(str(BENCHMARKS))
        os.environ.clear()
        os.environ.update(environ)


class _Library:
    def heavy(self, n: int) -> int:
        return sum(range(n))

    def heavier(self, n: int) -> int:
        return self.heavy(n) + self.heavy(n)  # a shimmed call inside another one

    def traced(self, n: int) -> int:
        from opentelemetry import trace

        trace.get_current_span()  # instrumentation's code inside the inner work
        return n


def test_net_time_leaves_out_the_inner_work_once_per_entry(bench: ModuleType) -> None:
    library = _Library()
    inner = bench.InnerWork()
    assert inner.install(library, "heavy") == "_Library().heavy"
    assert inner.install(library, "heavier") == "_Library().heavier"
    assert inner.install(library, "heavy") == "_Library().heavy"  # installed once
    total: list[int] = []
    net: list[int] = []
    bench.time_calls_net(lambda: library.heavier(200_000), 3, total, net, inner)
    assert inner.entries == 3  # heavier's inner heavy calls are not counted (nor timed) twice
    assert all(0 <= n < t for n, t in zip(net, total, strict=True))
    assert sum(net) < sum(total) / 2  # nearly all of the call is inside heavier
    assert library.heavier(3) == 6  # the shim returns what the function returns


def test_inner_check_catches_instrumentation_inside_and_uneven_entries(
    bench: ModuleType,
) -> None:
    library = _Library()
    inner = bench.InnerWork()
    inner.install(library, "heavy")
    inner.install(library, "traced")
    check: dict[str, Any] = {
        "targets": ["_Library().heavy"],
        "entries": {},
        "instrumentation_inside": {},
    }
    for case in ("bare", "ours"):
        with bench.inner_checked(inner, check, case):
            library.heavy(10)
    bench.verify_inner({"row": check})  # as the real rows: nothing to complain about
    with bench.inner_checked(inner, check, "floor"):
        library.traced(1)
    inside = check["instrumentation_inside"]["floor"]
    assert inside and all(f"{os.sep}opentelemetry{os.sep}" in path for path in inside)
    with pytest.raises(bench.InnerWorkError, match="floor ran instrumentation inside"):
        bench.verify_inner({"row": check})
    check["instrumentation_inside"]["floor"] = []
    with bench.inner_checked(inner, check, "floor"):
        library.heavy(10)
        library.heavy(10)
    with pytest.raises(bench.InnerWorkError, match="different number of times"):
        bench.verify_inner({"row": check})
    with pytest.raises(bench.InnerWorkError, match="never ran"):
        bench.verify_inner({"row": {**check, "entries": {"bare": 0}}})


def _json_inside(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    json.dumps({"an instrumentation's": "code"})  # Python functions of json run here
    return wrapped(*args, **kwargs)


@pytest.mark.parametrize("on", ["instance", "subclass"])
def test_a_shim_on_an_inherited_method_runs_a_later_patch_of_the_defining_class(
    bench: ModuleType, on: str
) -> None:
    # A peer's instrument() patches the class that defines the method after the shims are
    # in: held as it was at install time, the shim would hide the patch from every case.
    import wrapt

    class Base:
        def work(self, n: int) -> int:
            return n + 1

    class Sub(Base):
        pass

    obj = Sub()
    inner = bench.InnerWork()
    inner.install(obj if on == "instance" else Sub, "work")
    assert obj.work(1) == 2
    Base.work = wrapt.FunctionWrapper(Base.__dict__["work"], _json_inside)  # type: ignore[method-assign]
    check: dict[str, Any] = {"targets": ["work"], "entries": {}, "instrumentation_inside": {}}
    with bench.inner_checked(inner, check, "peer", ["json"]):
        assert obj.work(1) == 2
    assert check["entries"] == {"peer": 1}
    inside = check["instrumentation_inside"]["peer"]
    assert inside and all(f"{os.sep}json{os.sep}" in path for path in inside)
    # json is no instrumentation unless named as the peer's package
    with bench.inner_checked(inner, check, "ours"):
        obj.work(1)
    assert check["instrumentation_inside"]["ours"] == []


def test_inner_problems_name_the_case_and_verify_raises_on_any(bench: ModuleType) -> None:
    check: dict[str, Any] = {
        "targets": ["Collection()._query"],
        "entries": {"bare": 3, "ours": 3, "peer": 4},
        "instrumentation_inside": {"bare": [], "ours": [], "peer": ["/x/genai_otel/a.py"]},
    }
    assert bench.inner_problems("chroma", check, ["ours"]) == []
    problems = bench.inner_problems("chroma", check, ["peer"])
    assert len(problems) == 2
    assert "different number of times: {'bare': 3, 'peer': 4}" in problems[0]
    assert "peer ran instrumentation inside" in problems[1]
    with pytest.raises(bench.InnerWorkError, match="peer ran instrumentation"):
        bench.verify_inner({"chroma": check})


def _peer_row(peer: str, peer_problems: list[str], peer_entries: float) -> dict[str, Any]:
    """A worker's row as ``measure`` returns it, 3 blocks, peer dearer than ours by 10 µs
    plain and 2 µs inner-timed."""
    cases = ("bare", "floor", "ours", peer)
    return {
        "label": "chroma",
        "calls": 5,
        "p10_us": {
            "bare": [100.0] * 3,
            "floor": [125.0] * 3,
            "ours": [130.0] * 3,
            peer: [140.0] * 3,
        },
        "net_p10_us": {
            "bare": [10.0] * 3,
            "floor": [18.0] * 3,
            "ours": [20.0] * 3,
            peer: [22.0] * 3,
        },
        "inner_p10_us": {case: [90.0] * 3 for case in cases},
        "inner_entries_per_call": {"bare": 3.0, "floor": 3.0, "ours": 3.0, peer: peer_entries},
        "spans_per_call": {"bare": 0.0, "floor": 1.0, "ours": 1.0, peer: 1.0},
        "span_names": {case: [] for case in cases},
        "attribute_counts": {"bare": [], "floor": [12], "ours": [12], peer: [10]},
        "metric_points_per_call": {"bare": 0.0, "floor": 1.0, "ours": 1.0, peer: 0.0},
        "ours_recording": {},
        "floor_recording": {},
        "inner": {
            "targets": ["Collection()._query"],
            "entries": {"bare": 3, "floor": 3, "ours": 3, peer: 3},
            "instrumentation_inside": {"bare": [], "floor": [], "ours": [], peer: []},
            "peer_problems": peer_problems,
        },
    }


@pytest.mark.parametrize(
    ("problems", "entries", "fallback"),
    [
        ([], 3.0, None),
        (["chroma: traceverde ran instrumentation inside"], 3.0, "ran instrumentation inside"),
        ([], 4.0, "inner work entered 4 times per timed call, bare 3"),
    ],
)
def test_peer_rows_carry_both_estimates_or_say_why_plain_only(
    bench: ModuleType,
    capsys: pytest.CaptureFixture[str],
    problems: list[str],
    entries: float,
    fallback: str | None,
) -> None:
    peer = "traceverde"
    main = {"versions": {}, "blocks": 3, "rows": {}}
    worker = {
        "versions": {"TraceVerde": "1.42.0"},
        "rows": {"chroma": _peer_row(peer, problems, entries)},
    }
    row = bench.summarize([main], {peer: [worker]})["peers"][peer]["chroma"]
    assert row["ours_us"] == 30.0 and row["peer_us"] == 40.0
    assert row["blocks_ours_below"] == 3
    summary = {
        "versions": {},
        "processes": 1,
        "blocks": 3,
        "rows": {},
        "peers": {peer: {"version": "1", "chroma": row}},
    }
    bench.print_report(summary, "test")
    out = capsys.readouterr().out
    if fallback is None:
        assert row["inner_fallback"] is None
        assert row["inner"]["ours_us"] == 10.0 and row["inner"]["peer_us"] == 12.0
        assert row["inner"]["peer_over_ours"] == pytest.approx(1.2)
        assert row["inner"]["peer_over_floor"] == pytest.approx(1.5)  # 12 / 8
        assert row["inner"]["check"]["entries"] == {"bare": 3, "floor": 3, "ours": 3, peer: 3}
        assert "1.20x" in out and "1.50x" in out and "plain only" not in out
    else:
        assert row["inner"] is None
        assert fallback in row["inner_fallback"]
        assert "plain only" in out and fallback in out
    assert "1.33x" in out and "1.60x" in out  # the plain estimates are printed either way
    assert row["peer_over_floor"] == pytest.approx(1.6)  # 40 / 25
    assert "below the floor" not in out


def test_a_peer_cheaper_than_the_floor_is_named_as_such(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = "openllmetry"
    worker_row = _peer_row(peer, [], 3.0)
    worker_row["net_p10_us"][peer] = [16.0] * 3  # below the floor's 18 inner-timed
    main = {"versions": {}, "blocks": 3, "rows": {}}
    worker = {"versions": {"OpenLLMetry": "0.62.4"}, "rows": {"chroma": worker_row}}
    row = bench.summarize([main], {peer: [worker]})["peers"][peer]["chroma"]
    assert row["inner"]["peer_over_floor"] == pytest.approx(0.75)  # 6 / 8
    assert row["peer_over_floor"] == pytest.approx(1.6)  # plain: not below; inner decides
    summary = {"versions": {}, "processes": 1, "blocks": 3, "rows": {},
               "peers": {peer: {"version": "1", "chroma": row}}}  # fmt: skip
    bench.print_report(summary, "test")
    out = capsys.readouterr().out
    assert "0.75x" in out
    assert out.rstrip().endswith("can be below OpenLLMetry there): chroma")


def _process(floor: float, ours: float, aa: float, **more: float) -> dict[str, Any]:
    """One process's estimates of a row, as ``_estimates`` gives them."""
    return {
        "bare_us": 30.0,
        "aa_us": aa,
        "aa_iqr_us": 1.0,
        "floor_us": floor,
        "ours_us": ours,
        "ours_over_floor": ours / floor if floor > 0 else float("nan"),
        "blocks_ours_over_target": 2,
        "no_sdk_us": 2.0,
        **more,
    }


def test_processes_combine_into_medians_and_the_median_ratio(bench: ModuleType) -> None:
    # faiss' inner-timed ratios in three processes of the same code (stop 13): 1.34, 0.80, 1.15
    per_process = [
        _process(40.0, 53.6, aa=-0.2, no_sdk_us=2.4, aa_iqr_us=0.5, inner_us=27.0),
        _process(50.0, 40.0, aa=0.5, no_sdk_us=2.6, aa_iqr_us=0.2, inner_us=26.0),
        _process(30.0, 34.5, aa=0.1, no_sdk_us=1.9, aa_iqr_us=0.3, inner_us=28.0),
    ]
    row = bench.combine_processes(per_process)
    assert row["ours_over_floor_per_process"] == pytest.approx([1.34, 0.80, 1.15])
    # the median of the processes' ratios (1.15), not the ratio of the medians (40/40 = 1.0)
    assert row["ours_over_floor"] == pytest.approx(1.15)
    assert row["floor_us"] == 40.0 and row["ours_us"] == 40.0
    assert row["aa_us"] == 0.1
    assert row["aa_iqr_us"] == 0.3  # within a process: the median of the processes' IQRs
    assert row["aa_range_us"] == pytest.approx(0.7)  # across processes: max - min of A/A
    assert row["no_sdk_us"] == 2.4 and row["inner_us"] == 27.0 and row["bare_us"] == 30.0
    assert row["blocks_ours_over_target"] == 6  # summed over the processes' blocks
    assert row["processes"] == per_process

    # a process whose floor was not above 0 has no ratio: left out of the median
    row = bench.combine_processes([per_process[0], _process(-1.0, 5.0, aa=0.0)])
    assert row["ours_over_floor"] == pytest.approx(1.34)
    assert math.isnan(row["ours_over_floor_per_process"][1])
    assert "inner_us" not in row  # only what every process reports
    assert math.isnan(bench.combine_processes([_process(0.0, 5.0, aa=0.0)])["ours_over_floor"])


def test_peer_processes_combine_into_medians_and_summed_blocks(bench: ModuleType) -> None:
    def process(ours: float, peer: float | None) -> dict[str, Any]:
        ratio = peer / ours if peer is not None and ours > 0 else None
        over_floor = peer / 8.0 if peer is not None else None
        return {"bare_us": 9.0, "floor_us": 8.0, "ours_us": ours, "peer_us": peer,
                "peer_over_ours": ratio, "peer_over_floor": over_floor,
                "blocks_ours_below": 5, "blocks": 7}  # fmt: skip

    row = bench.combine_peer_processes([process(10.0, 20.0), process(20.0, 22.0), process(-1, 9)])
    assert row["peer_over_ours_per_process"] == [2.0, 1.1, None]
    assert row["peer_over_ours"] == pytest.approx(1.55)  # of the two known ratios
    assert row["ours_us"] == 10.0 and row["peer_us"] == 20.0 and row["floor_us"] == 8.0
    assert row["peer_over_floor_per_process"] == [2.5, 2.75, 1.125]
    assert row["peer_over_floor"] == 2.5  # the median of the processes' own
    assert (row["blocks_ours_below"], row["blocks"]) == (15, 21)
    assert bench.combine_peer_processes([process(10.0, None)])["peer_us"] is None


def test_summary_of_two_main_processes_prints_each_ones_ratio(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    def worker(floor: float, ours: float, spans: float) -> dict[str, Any]:
        blocks = 3
        cases = ("bare", "A/A", "floor", "ours", "no SDK")
        per_block = {"bare": 100.0, "A/A": 100.0, "floor": 100 + floor, "ours": 100 + ours,
                     "no SDK": 101.0}  # fmt: skip
        return {
            "versions": {"otel-rerank": "0"},
            "blocks": blocks,
            "rows": {
                "faiss": {
                    "label": "faiss IndexFlatIP.search k=10",
                    "calls": 7,
                    "p10_us": {case: [per_block[case]] * blocks for case in cases},
                    "inner": None,
                    "spans_per_call": {c: spans if c in ("floor", "ours") else 0.0 for c in cases},
                    "span_names": {c: ["retrieval IndexFlatIP"] for c in cases},
                    "attribute_counts": {c: [10] for c in cases},
                    "ours_recording": {"attribute_count": 10},
                    "floor_recording": {"attribute_count": 10},
                }
            },
        }

    summary = bench.summarize([worker(40.0, 50.0, 1.0), worker(50.0, 75.0, 1.0)], {})
    assert summary["processes"] == 2 and summary["blocks"] == 3
    row = summary["rows"]["faiss"]
    assert row["ours_over_floor_per_process"] == [1.25, 1.5]
    assert row["ours_over_floor"] == pytest.approx(1.375)
    assert [p["calls_per_block"] for p in row["processes"]] == [7, 7]
    assert row["spans_per_call"]["ours"] == 1.0 and row["spans_per_call"]["bare"] == 0.0
    bench.print_report(summary, "test")
    line = next(line for line in capsys.readouterr().out.splitlines() if "faiss" in line)
    assert "1.25 1.50" in line and "1.38!" in line  # by process, then the missed median


def test_a_peer_worker_runs_the_inner_check_on_the_peer_too(tmp_path: Any) -> None:
    # Needs the peer's venv (made by a full run, minutes): skipped where it is not built.
    venv = BENCHMARKS.parent / ".venv-bench-openllmetry" / "bin" / "python"
    if not venv.exists():
        pytest.skip("no .venv-bench-openllmetry (built by a full run of the benchmark)")
    out = tmp_path / "summary.json"
    done = _run(
        "--quick", "--processes", "2", "--rows", "qdrant", "--peers", "openllmetry",
        "--blocks", "2", "--calls", "3", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "openllmetry 2/2: block 2/2 done" in done.stderr  # as many workers as main ones
    row = json.loads(out.read_text(encoding="utf-8"))["peers"]["openllmetry"]["qdrant"]
    for numbers in (row, row["inner"]):
        ratios = numbers["peer_over_ours_per_process"]
        assert len(ratios) == len(numbers["processes"]) == 2
        known = [r for r in ratios if r is not None]  # none where ours was <= 0 (noise)
        assert numbers["peer_over_ours"] == (
            pytest.approx(statistics.median(known)) if known else None
        )
        assert numbers["blocks"] == 4  # both processes' blocks
    assert row["inner_fallback"] is None
    check = row["inner"]["check"]
    assert check["entries"] == {"bare": 1, "floor": 1, "ours": 1, "openllmetry": 1}
    assert check["instrumentation_inside"] == {
        "bare": [],
        "floor": [],
        "ours": [],
        "openllmetry": [],
    }
    assert set(row["inner"]["entries_per_call"].values()) == {1.0}
    for key in ("floor_us", "ours_us", "peer_us", "blocks_ours_below"):
        assert isinstance(row[key], (int, float)) and isinstance(row["inner"][key], (int, float))
    assert "inner-timed" in done.stdout


def test_two_processes_each_time_the_row_and_the_report_gives_both(tmp_path: Any) -> None:
    out = tmp_path / "summary.json"
    done = _run(
        "--quick", "--processes", "2", "--rows", "faiss", "--peers", "none",
        "--blocks", "2", "--calls", "5", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for process in ("main 1/2", "main 2/2"):
        assert f"{process}: block 2/2 done" in done.stderr
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert (summary["processes"], summary["blocks"]) == (2, 2)
    assert "2 processes x 2 blocks, 5 calls per case per block" in done.stdout
    row = summary["rows"]["faiss"]
    for numbers in (row, row["inner"]):
        assert len(numbers["processes"]) == 2
        ratios = numbers["ours_over_floor_per_process"]
        assert len(ratios) == 2
        assert numbers["floor_us"] == pytest.approx(
            statistics.median(p["floor_us"] for p in numbers["processes"])
        )
        assert numbers["aa_range_us"] >= 0
        # faiss' floor (~40 µs) is far above its noise (~1 µs): every process has a ratio
        assert not any(math.isnan(r) for r in ratios)
        assert ratios == [p["ours_over_floor"] for p in numbers["processes"]]
        assert numbers["ours_over_floor"] == pytest.approx(statistics.median(ratios))
        # the report prints each process's ratio beside their median
        printed = f"{ratios[0]:.2f} {ratios[1]:.2f} {numbers['ours_over_floor']:>9.2f}"
        assert any(printed in line for line in done.stdout.splitlines()), done.stdout
    assert [p["calls_per_block"] for p in row["processes"]] == [5, 5]
    assert row["spans_per_call"]["ours"] == row["spans_per_call"]["floor"] == 1
    assert row["spans_per_call"]["bare"] == row["spans_per_call"]["no SDK"] == 0
    assert row["inner"]["check"]["entries"] == {"bare": 1, "ours": 1, "floor": 1}


def test_no_sdk_split_runs_every_layer_with_no_sdk() -> None:
    done = run_benchmark(
        "no_sdk_split.py", "--rows", "encode-empty", "--blocks", "2", "--calls", "3", "--stub"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "encode-empty (inference stubbed out): no SDK configured" in out
    for layer in ("A/A", "pass-through function", "_span.records()", "trivial wrapt", "ours"):
        assert layer in out
    for args, error in (
        (["--rows", "faiss"], "argument --rows: unknown row faiss"),
        (["--touch-mb", "4"], "--touch-mb needs --stub"),
    ):
        bad = run_benchmark("no_sdk_split.py", *args)
        assert bad.returncode == 2 and bad.stdout == ""
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"no_sdk_split.py: error: {error}")


def test_the_floor_writes_what_a_result_tells_after_the_call(bench: ModuleType) -> None:
    # A hand-written instrumentation cannot know the response before the call returns: the
    # floor starts its span with the arguments' attributes and adds the result's after.
    from opentelemetry import trace

    sdk = bench._make_sdk()
    attributes = {
        "gen_ai.operation.name": "rerank",
        "gen_ai.rerank.candidate.count": 50,
        "rag.rerank.top_score": 0.9,
        "rag.rerank.kendall_tau": 0.5,
        "reranker.output_documents.0.document.id": "3",
        "gen_ai.usage.input_tokens": 7,
    }
    recording = bench.Recording([("rerank m", trace.SpanKind.INTERNAL, attributes, [])])
    during: list[dict[str, Any]] = []

    def call() -> str:
        during.append(dict(trace.get_current_span().attributes))  # type: ignore[attr-defined]
        return "result"

    assert bench._floor(call, recording, sdk)() == "result"
    assert during == [{"gen_ai.operation.name": "rerank", "gen_ai.rerank.candidate.count": 50}]
    # and the span it ends with holds all of them
    assert bench._record_once(bench._floor(call, recording, sdk), sdk, "floor").spans == [
        ("rerank m", trace.SpanKind.INTERNAL, attributes, [])
    ]


def test_traces_only_gives_ours_no_meter_provider_and_the_floor_copies_that(
    tmp_path: Any,
) -> None:
    """``--traces-only``: ours records its span and no metric point; the floor, a copy of
    ours' recording, neither (the like-for-like setup against peers that record none)."""
    out = tmp_path / "summary.json"
    done = _run(
        "--quick", "--rows", "faiss", "--peers", "none", "--traces-only",
        "--blocks", "2", "--calls", "5", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no MeterProvider (--traces-only" in done.stdout
    row = json.loads(out.read_text(encoding="utf-8"))["rows"]["faiss"]
    ours, floor = row["ours_recording"], row["floor_recording"]
    assert ours["metric_records"] == floor["metric_records"] == []
    assert ours["spans"] == ["retrieval IndexFlatIP"]
    assert ours["attribute_count"] == floor["attribute_count"] > 5
    assert row["spans_per_call"]["ours"] == row["spans_per_call"]["floor"] == 1
