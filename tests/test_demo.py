"""``otel-rerank demo`` end to end, and the pieces it is built from.

The end-to-end test runs the real command in a subprocess — real all-MiniLM-L6-v2, the
proxy cross-encoder, the standard-library corpus, the loopback LLM stand-in — with small
settings and the same model cache as the rest of the session (``models.cache_dir()``), so
the one-off set-up is paid once per machine. It checks what a user sees (the table, the
notice, the paths) and that the trace file reads back as one connected trace per request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otel_rerank import cli, models
from otel_rerank._span import instrumentation_suppressed
from otel_rerank.demo import LLMStandIn, Passage, RagPipeline, build_passages, load_corpus
from otel_rerank.demo.llm_standin import MODEL, answer_for, is_loopback

STAGES = ("embeddings", "retrieval", "rerank", "chat")
QUERIES = 4
OP = "gen_ai.operation.name"


@pytest.fixture(scope="session")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo-out")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_")) or k == models.CACHE_ENV
    }
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OTEL_RERANK_CACHE_DIR=str(models.cache_dir()),
    )
    command = [sys.executable, "-m", "otel_rerank.cli", "demo", "--queries", str(QUERIES)]
    command += ["--k", "10", "--passages", "200", "--out", str(out)]
    result = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out


def _table_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) == 7 and cells[0] in (*STAGES, "end-to-end") and cells[1].isdigit():
            rows[cells[0]] = cells
    return rows


def test_demo_prints_the_four_stages_with_p50_at_most_p95(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    stdout = demo_run[0].stdout
    rows = _table_rows(stdout)

    assert set(rows) == {*STAGES, "end-to-end"}, stdout
    for stage, cells in rows.items():
        count, p50, p95 = int(cells[1]), float(cells[2]), float(cells[3])
        assert count == QUERIES, stage
        assert 0 <= p50 <= p95, stage
    assert float(rows["rerank"][3]) <= float(rows["end-to-end"][3])
    assert "where the time went: end-to-end p95 is" in stdout
    assert "rerank p95 is" in stdout and "of the end-to-end p95" in stdout
    assert models.PROXY_NOTICE in stdout


def test_demo_says_where_its_files_are(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    stdout, out = demo_run[0].stdout, demo_run[1]
    traces, picture = out / "traces.jsonl", out / "waterfall.png"

    assert f"traces:     {traces}" in stdout
    assert f"waterfall:  {picture}" in stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_trace_file_holds_one_connected_trace_per_request(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    spans: list[dict[str, Any]] = []
    for line in (demo_run[1] / "traces.jsonl").read_text(encoding="utf-8").splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                spans.extend(scope_spans["spans"])
    traces: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        traces.setdefault(span["traceId"], []).append(span)

    assert len(traces) == QUERIES  # set-up (indexing, warm-up) left no trace
    for members in traces.values():
        roots = [s for s in members if not s.get("parentSpanId")]
        assert len(roots) == 1
        root = roots[0]
        children = [s for s in members if s is not root]
        assert all(s["parentSpanId"] == root["spanId"] for s in children)
        operations = Counter(
            a["value"]["stringValue"]
            for s in children
            for a in s["attributes"]
            if a["key"] == "gen_ai.operation.name"
        )
        assert operations == Counter(STAGES)
        for child in children:
            assert int(root["startTimeUnixNano"]) <= int(child["startTimeUnixNano"])
            assert int(child["endTimeUnixNano"]) <= int(root["endTimeUnixNano"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0"], "--k must be at least 1"),
        (["--queries", "-1"], "--queries must be at least 1"),
        (["--k", "50", "--passages", "20"], "larger than the corpus"),
        (["--model", "/no/such/model"], "no cross-encoder model at /no/such/model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "cannot read its config.json (not valid JSON)"),
        ("{not json", "cannot read its config.json (not valid JSON)"),
        ("[" * 100_000, "cannot read its config.json (not valid JSON)"),
        ("{}", "its config.json is not a model configuration"),
        ("[1, 2]", "its config.json is not a model configuration"),
    ],
)
def test_a_broken_model_config_is_one_line(
    config: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(config)
    assert cli.main(["demo", "--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing was set up


def test_a_model_that_does_not_load_is_a_model_unavailable_error(tmp_path: Path) -> None:
    # A valid config without weights gets past the CLI's check; the loader reports it.
    from otel_rerank.demo import build_pipeline

    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(models.ModelUnavailableError, match="cannot load a cross-encoder from"):
        build_pipeline(cross_encoder=tmp_path, max_passages=10)


@pytest.mark.parametrize("kind", ["proc", "file"])
def test_an_unusable_cache_directory_is_one_line(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = Path("/proc/x") if kind == "proc" else tmp_path / "a-file"
    if kind == "file":
        cache.write_text("not a directory")
    monkeypatch.setenv(models.CACHE_ENV, str(cache))
    assert cli.main(["demo", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot create the cache directory {cache}" in err


def test_an_unwritable_out_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--out", "/proc/self/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out /proc/self/x: cannot create it" in err


def test_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert cli.main(["demo", "--out", str(not_a_dir)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def _span(trace: str, span: str, parent: str | None, ms: float, **attributes: Any) -> Any:
    from otel_rerank.report import SpanRecord

    return SpanRecord(trace, span, parent, span, 0, int(ms * 1e6), attributes)


def _request(trace: str, stages: dict[str, float]) -> list[Any]:
    spans = [_span(trace, f"{trace}-root", None, sum(stages.values()) + 1)]
    for stage, ms in stages.items():
        spans.append(_span(trace, f"{trace}-{stage}", f"{trace}-root", ms, **{OP: stage}))
    return spans


@pytest.mark.parametrize(
    ("mode", "expected", "absent"),
    [
        ("serve", ["rerank p95 is 300 ms, 98% of the end-to-end p95"], ["in shadow", "is off"]),
        ("shadow", ["in shadow", "add about 300 ms", "largest share", "is chat"], ["is off"]),
        ("off", ["reranking is off", "largest share of request time is chat"], ["rerank p95"]),
    ],
)
def test_where_the_time_went(mode: str, expected: list[str], absent: list[str]) -> None:
    from otel_rerank import report
    from otel_rerank.cli._demo import _where_the_time_went

    stages = {"embeddings": 1.0, "retrieval": 1.0, "chat": 3.0}
    spans = []
    for i in range(3):
        if mode == "serve":
            spans += _request(f"t{i}", {**stages, "rerank": 300.0})
        else:
            spans += _request(f"t{i}", stages)
        if mode == "shadow":
            shadow = {OP: "rerank", "rag.rerank.shadow": True}
            spans.append(_span(f"s{i}", f"s{i}", None, 300.0, **shadow))

    text = _where_the_time_went(report.stage_table(spans), mode)

    assert text.startswith("where the time went: end-to-end p95 is")
    for phrase in expected:
        assert phrase in text
    for phrase in absent:
        assert phrase not in text
    assert "local stand-in" in text


# -- the corpus ----------------------------------------------------------------------------
def test_passages_are_deterministic_capped_and_cover_many_modules() -> None:
    first, second = build_passages(60), build_passages(60)

    assert first == second
    assert len(first) == 60
    assert [p.id for p in first] == list(range(60))
    assert [p.title for p in first] == sorted(p.title for p in first)
    assert len({p.text for p in first}) == 60
    assert len({p.title.split(".")[0] for p in first}) >= 30  # a cap keeps modules mixed
    for passage in first:
        assert 6 <= len(passage.text.split()) <= 41  # 40 words, plus an ellipsis when cut
        assert passage.content == f"{passage.title}: {passage.text}"


def test_full_corpus_has_a_few_thousand_passages() -> None:
    assert len(build_passages(100_000)) >= 2000


def test_a_cap_keeps_module_level_api_before_methods() -> None:
    titles = {p.title for p in build_passages(1000)}

    assert {"json", "json.dumps", "tempfile.TemporaryDirectory", "statistics.median"} <= titles
    assert "json.JSONEncoder.iterencode" not in titles  # a method: only in bigger corpora
    assert "json.JSONEncoder.iterencode" in {p.title for p in build_passages(100_000)}


class _CountingEmbedder:
    def __init__(self) -> None:
        self.calls = 0
        self.suppressed: list[bool] = []

    def encode(self, texts: list[str], **_: Any) -> Any:
        self.calls += 1
        self.suppressed.append(instrumentation_suppressed())
        vectors = np.random.default_rng(0).normal(size=(len(texts), 8))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_corpus_is_built_once_then_loaded_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    embedder = _CountingEmbedder()

    built = load_corpus(embedder, "fake", max_passages=30)
    cached = load_corpus(embedder, "fake", max_passages=30)

    assert built.built and not cached.built
    assert embedder.calls == 1
    assert embedder.suppressed == [True]  # indexing is not a request: no span
    assert cached.passages == built.passages
    assert cached.embeddings.dtype == np.float32
    np.testing.assert_array_equal(cached.embeddings, built.embeddings)
    assert built.directory.is_relative_to(tmp_path)


def test_stale_embeddings_are_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    embedder = _CountingEmbedder()
    corpus = load_corpus(embedder, "fake", max_passages=20)
    np.save(corpus.directory / "embeddings-fake.npy", np.zeros((3, 8), dtype=np.float32))

    again = load_corpus(embedder, "fake", max_passages=20)

    assert again.built and embedder.calls == 2
    assert again.embeddings.shape == (20, 8)


# -- the LLM stand-in ----------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", ""])
def test_standin_refuses_non_loopback(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ValueError, match="loopback only"):
        LLMStandIn(host=host)


def test_standin_answers_plain_and_streamed_alike() -> None:
    import openai

    passages = [
        Passage(0, "json.dumps", "Serialize obj to a JSON formatted str."),
        Passage(1, "b", "c d"),
    ]
    with LLMStandIn() as standin:
        client = openai.OpenAI(base_url=standin.base_url, api_key="unused", max_retries=0)
        plain = RagPipeline(None, None, [], None, client, MODEL)  # type: ignore[arg-type]
        streamed = RagPipeline(None, None, [], None, client, MODEL, stream=True)  # type: ignore[arg-type]
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "[1] quoted passage"}]
        )
        answers = (plain.chat("q?", passages), streamed.chat("q?", passages))

    expected = 'From the documentation: "json.dumps: Serialize obj to a JSON formatted str."'
    assert answers == (expected, expected)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 3
    assert reply.usage.completion_tokens == len(reply.choices[0].message.content.split())


def test_standin_rejects_malformed_requests() -> None:
    import httpx

    with LLMStandIn() as standin:
        bad = httpx.post(f"{standin.base_url}/chat/completions", content=b"{not json")
        missing = httpx.post(f"{standin.base_url}/chat/completions", json={"model": "m"})
        unknown = httpx.get(f"{standin.base_url}/nothing")

    assert (bad.status_code, missing.status_code, unknown.status_code) == (400, 400, 404)
    assert "malformed request" in bad.json()["error"]["message"]


def test_standin_without_a_passage_says_so() -> None:
    assert answer_for([{"role": "user", "content": "no passages here"}]) == (
        "I have no passage to answer from."
    )


def test_prepare_builds_the_cache_and_records_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OTEL_RERANK_CACHE_DIR=str(models.cache_dir()),
    )
    command = [sys.executable, "-m", "otel_rerank.cli", "demo", "--prepare", "--passages", "200"]
    result = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "prepared in" in result.stdout
    assert "200 passages" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no trace file, no output directory
