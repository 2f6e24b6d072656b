"""``otel-rerank bench`` end to end: the JSON document, the table, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_rerank import report
from otel_rerank.cli import main
from otel_rerank.models import PROXY_NOTICE

LABELLED = [
    {
        "query": "wing lift in a slipstream",
        "candidates": [
            {"text": "the quick brown fox", "label": 0},
            {"text": "aeronautics wing boundary layer pressure flow", "label": 1},
            {"text": "python docs assistant", "label": 0},
            {"text": "latency budget percentile", "label": 0},
        ],
    },
    {
        "query": "trace latency alert",
        "candidates": [
            {"text": "latency budget percentile histogram span trace metric alert", "label": 1},
            {"text": "the lazy dog", "label": 0},
            {"text": "rerank the retrieved candidates", "label": 0},
        ],
    },
    {
        "query": "standard library questions",
        "candidates": [
            {"text": "supersonic flow", "label": 0},
            {"text": "the quick brown fox jumps", "label": 0},
            {
                "text": "python docs assistant answers questions about the standard library",
                "label": 1,
            },
            {"text": "cross encoder", "label": 0},
        ],
    },
]


@pytest.fixture
def labelled_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in LABELLED))
    return path


def test_bench_json_has_every_cell(
    tiny_cross_encoder_path: Path,
    labelled_jsonl: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "bench.json"
    png = tmp_path / "bench.png"
    status = main(
        [
            "bench", "--model", str(tiny_cross_encoder_path), "--queries", str(labelled_jsonl),
            "--k", "2,4", "--batch-size", "1,2,4", "--repeats", "3", "--warmup", "1",
            "--budget-ms", "5000", "--json", str(out), "--plot", str(png), "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    stdout = capsys.readouterr().out
    assert "3 queries from" in stdout and "verdict: up to k=4" in stdout
    assert PROXY_NOTICE not in stdout  # a real model directory, not the proxy
    document = json.loads(out.read_text())
    assert document["model"] == "tiny-cross-encoder"
    assert document["proxy"] is False
    cells = {(c["k"], c["batch_size"]): c for c in document["cells"]}
    assert set(cells) == {(k, b) for k in (2, 4) for b in (1, 2, 4)}
    for (k, _), cell in cells.items():
        assert cell["samples"] == 3 * 3
        assert 0 < cell["p50_ms"] <= cell["p95_ms"] <= cell["p99_ms"]
        assert cell["pairs_per_call"] == (2 if k == 2 else 11 / 3)
        # pairs/s is total pairs over total time, i.e. pairs per call over mean latency
        assert cell["pairs_per_s"] == pytest.approx(cell["pairs_per_call"] / cell["mean_ms"] * 1e3)
        assert cell["ms_per_pair"] * cell["pairs_per_s"] == pytest.approx(1000)
    quality = {q["k"]: q for q in document["quality"]}
    assert set(quality) == {2, 4}
    assert quality[4]["top1_original"] == pytest.approx(1 / 3)  # only query 2 starts right
    assert quality[2]["with_relevant"] == 2  # query 3's relevant text is third
    for q in quality.values():
        assert q["top1_lift"] == pytest.approx(q["top1_reranked"] - q["top1_original"])
        assert q["ndcg5_lift"] == pytest.approx(q["ndcg5_reranked"] - q["ndcg5_original"])
    assert {f["batch_size"] for f in document["fits"]} == {1, 2, 4}
    assert document["verdict"]["k"] == 4
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_default_model_is_the_proxy_and_says_so(
    labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["bench", "--queries", str(labelled_jsonl), "--k", "2", "--batch-size", "2",
         "--repeats", "1", "--warmup", "0", "--no-progress"]
    )  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out.count(PROXY_NOTICE) == 1  # said once, not once per section
    assert PROXY_NOTICE not in captured.err
    assert "ms-marco-MiniLM-L-6-v2-proxy" in captured.out
    assert "NOT meaningful" in captured.out.split("quality (")[1].splitlines()[0]


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "0"], "--k must be positive, got 0"),
        (["--k", "5,-1"], "--k must be positive, got -1"),
        (["--k", "ten"], "--k must be comma-separated integers"),
        (["--batch-size", "0"], "--batch-size must be positive"),
        (["--budget-ms", "-5"], "--budget-ms must be positive"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
    ],
)
def test_bad_numbers(
    extra: list[str], message: str, labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(capsys, ["bench", "--queries", str(labelled_jsonl), *extra], message)


def test_missing_query_file(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, ["bench", "--queries", "/nope/q.jsonl"], "no such file: /nope/q.jsonl")


def test_malformed_jsonl_line(
    tiny_cross_encoder_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(LABELLED[0]) + "\n" + json.dumps(LABELLED[1])[:-3] + "\n")
    _one_line_error(
        capsys,
        ["bench", "--model", str(tiny_cross_encoder_path), "--queries", str(path)],
        f"{path}, line 2: not JSON",
    )


def test_unknown_model_path(labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(
        capsys,
        ["bench", "--model", "/no/such/model", "--queries", str(labelled_jsonl)],
        "unknown model: no model directory at /no/such/model",
    )


def test_unknown_model_name(labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(
        capsys,
        ["bench", "--model", "no-such-org/no-such-reranker", "--queries", str(labelled_jsonl)],
        "unknown model 'no-such-org/no-such-reranker': cannot load it offline",
    )


def test_a_directory_that_is_not_a_model(
    labelled_jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(
        capsys,
        ["bench", "--model", str(tmp_path), "--queries", str(labelled_jsonl)],
        f"cannot load a cross-encoder from {tmp_path}",
    )


def test_subprocess_exit_status_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "otel_rerank.cli", "bench", "--k", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "otel-rerank bench: error: --k must be positive, got 0"


@pytest.mark.slow
def test_trec_collection_through_the_cli(
    tiny_cross_encoder_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trec = tmp_path / "trec"
    trec.mkdir()
    (trec / "mini.all.4.xml").write_text(
        "<xml><doc><docno>1</docno><title>wing</title><text>lift of a wing in a propeller "
        "slipstream</text></doc><doc><docno>2</docno><title>heat</title><text>heat "
        "conduction in composite slabs</text></doc><doc><docno>3</docno><title>flutter"
        "</title><text>aeroelastic flutter of panels at supersonic speed</text></doc>"
        "<doc><docno>4</docno><title>buckling</title><text>buckling of thin cylindrical "
        "shells under axial compression</text></doc></xml>"
    )
    (trec / "mini.qry.xml").write_text(
        "<xml><top><num> 5</num><title>how does heat flow through layered slabs .</title>"
        "</top><top><num> 8</num><title>panel flutter at high speed .</title></top></xml>"
    )
    (trec / "miniqrel.trec.txt").write_text("1 0 2 1\n2 0 3 1\n")
    saved = tmp_path / "converted.jsonl"
    status = main(
        ["bench", "--model", str(tiny_cross_encoder_path), "--trec", str(trec), "--k", "2",
         "--batch-size", "2", "--repeats", "1", "--warmup", "0", "--no-progress",
         "--save-queries", str(saved)]
    )  # fmt: skip
    assert status == 0
    assert "2 queries of the TREC collection trec" in capsys.readouterr().out
    rows = [json.loads(line) for line in saved.read_text().splitlines()]
    # all-MiniLM-L6-v2 puts the judged document first for both queries.
    assert [row["candidates"][0]["label"] for row in rows] == [1, 1]
    assert rows[0]["candidates"][0]["text"] == "heat conduction in composite slabs"


def test_timed_calls_become_spans_the_report_reads(
    tiny_cross_encoder_path: Path, labelled_jsonl: Path, tmp_path: Path
) -> None:
    # configure() installs global providers, so this runs in its own process.
    traces = tmp_path / "traces.jsonl"
    env = {**os.environ, "OTEL_RERANK_TRACES_FILE": str(traces), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "otel_rerank.cli", "bench", "--model", str(tiny_cross_encoder_path),
         "--queries", str(labelled_jsonl), "--k", "2,3", "--batch-size", "2", "--repeats", "2",
         "--warmup", "1", "--no-progress"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"spans: {traces}" in done.stdout
    spans = report.load_spans(traces)
    rerank = [s for s in spans if s.stage == "rerank"]
    assert len(rerank) == 2 * (1 + 2 * 3)  # per k: one warm-up call, then 2 passes over 3 queries
    assert {s.attributes["gen_ai.rerank.candidate.count"] for s in rerank} == {2, 3}
    assert all(s.attributes["gen_ai.request.model"] == "tiny-cross-encoder" for s in rerank)


def test_unwritable_output_is_a_one_line_error(
    tiny_cross_encoder_path: Path, labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(
        capsys,
        ["bench", "--model", str(tiny_cross_encoder_path), "--queries", str(labelled_jsonl),
         "--k", "2", "--batch-size", "2", "--repeats", "1", "--warmup", "0", "--no-progress",
         "--json", "/nonexistent-dir/out.json"],
        "cannot write /nonexistent-dir/out.json: no such directory",
    )  # fmt: skip


# -- bad input found by the red team: one line, exit 2, and before any long work ----------
def _never_runs(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the benchmark started although its arguments were bad")


@pytest.fixture
def no_bench_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model load or query-set build fails the test: bad input must be caught first."""
    from otel_rerank.cli import _bench

    monkeypatch.setattr(_bench, "load_cross_encoder", _never_runs)
    monkeypatch.setattr(_bench, "_query_set", _never_runs)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget-ms", "nan"], "--budget-ms must be positive and finite, got nan"),
        (["--budget-ms", "inf"], "--budget-ms must be positive and finite, got inf"),
        (["--budget-ms=-inf"], "--budget-ms must be positive and finite, got -inf"),
        (["--budget-ms", "0"], "--budget-ms must be positive and finite, got 0"),
        (["--threads", "100000"], "--threads must be between 1 and"),
        (["--threads", "0"], "--threads must be between 1 and"),
        (["--k", "9" * 5000], "--k must be comma-separated integers"),
        (["--plot", "out.xyz"], "--plot out.xyz: unknown image format '.xyz'"),
        (["--plot", "/proc/self/x.png"], "cannot write /proc/self/x.png"),
        (["--json", "/proc/self/x.json"], "cannot write /proc/self/x.json"),
        (["--save-queries", "/proc/self/q.jsonl"], "cannot write /proc/self/q.jsonl"),
    ],
)
def test_bad_input_fails_before_the_bench_runs(
    extra: list[str],
    message: str,
    labelled_jsonl: Path,
    no_bench_work: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _one_line_error(capsys, ["bench", "--queries", str(labelled_jsonl), *extra], message)


def test_threads_bound_follows_the_cores(
    labelled_jsonl: Path, no_bench_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_rerank.cli._bench import max_threads

    assert max_threads() == min(4 * (os.cpu_count() or 1), 256)
    _one_line_error(
        capsys,
        ["bench", "--queries", str(labelled_jsonl), "--threads", str(max_threads() + 1)],
        f"--threads must be between 1 and {max_threads()}",
    )


def test_deeply_nested_query_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(LABELLED[0]) + "\n" + "[" * 200_000 + "]" * 200_000 + "\n")
    _one_line_error(
        capsys, ["bench", "--queries", str(path)], f"{path}, line 2: JSON nested too deeply"
    )


@pytest.mark.parametrize("kind", ["proc", "file"])
def test_an_unusable_cache_directory(
    kind: str,
    labelled_jsonl: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = Path("/proc/x") if kind == "proc" else tmp_path / "a-file"
    if kind == "file":
        cache.write_text("not a directory")
    monkeypatch.setenv("OTEL_RERANK_CACHE_DIR", str(cache))
    # The proxy (no --model) and the bundled query set (no --queries) both live in the cache.
    for argv in (["bench", "--queries", str(labelled_jsonl)], ["bench"]):
        _one_line_error(capsys, argv, "set OTEL_RERANK_CACHE_DIR to a writable directory")


def test_k_above_the_candidates_is_measured_at_the_real_count(
    tiny_cross_encoder_path: Path,
    labelled_jsonl: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "bench.json"
    status = main(
        ["bench", "--model", str(tiny_cross_encoder_path), "--queries", str(labelled_jsonl),
         "--k", "2,100000", "--batch-size", "4", "--repeats", "1", "--warmup", "0",
         "--budget-ms", "100000", "--json", str(out), "--no-progress"]
    )  # fmt: skip
    assert status == 0
    stdout = capsys.readouterr().out
    assert (
        "note: k=100000 is more than the most candidates any query has (4): measured at k=4 "
        "instead" in stdout
    )
    assert "verdict: up to k=4 candidates fit" in stdout
    assert "k=100000 candidates" not in stdout
    document = json.loads(out.read_text())
    assert sorted({c["k"] for c in document["cells"]}) == [2, 4]
    assert document["verdict"]["k"] == 4
    for fit in document["fits"]:
        assert fit["a_ms"] >= 0 and fit["b_ms_per_pair"] >= 0


def test_an_embedding_model_as_model_says_its_quality_is_not_meaningful(
    labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from otel_rerank.models import UNTRAINED_HEAD_NOTICE, embedding_model_path

    status = main(
        ["bench", "--model", str(embedding_model_path()), "--queries", str(labelled_jsonl),
         "--k", "2", "--batch-size", "2", "--repeats", "1", "--warmup", "0", "--no-progress"]
    )  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out.count(UNTRAINED_HEAD_NOTICE) == 1
    quality = captured.out.split("quality (")[1].splitlines()[0]
    assert "NOT meaningful" in quality


def test_a_real_cross_encoder_has_no_notice(tiny_cross_encoder: object) -> None:
    from otel_rerank.models import has_untrained_head

    assert has_untrained_head(tiny_cross_encoder) is False


def test_no_arguments_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: otel-rerank")
    for command in ("demo", "bench", "report"):
        assert command in err
