"""The README's LangChain / LlamaIndex / Haystack snippets run as written and trace as promised.

Each snippet is cut from README.md, its hub model ids swapped for the local all-MiniLM-L6-v2
and the tiny cross-encoder (the tests run offline), and run in a subprocess against the
loopback OpenAI stand-in (``OPENAI_BASE_URL``). Its spans land in the embedded default's
OTLP-JSON file, which the report reads: one request with every stage, the start-up
indexing call counted apart.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_rerank import report
from otel_rerank.demo.llm_standin import LLMStandIn
from otel_rerank.models import embedding_model_path

pytestmark = pytest.mark.slow

README = Path(__file__).parents[1] / "README.md"
FRAMEWORKS = {  # README paragraph that introduces the snippet -> a module it needs
    "LangChain": "langchain_classic",
    "LlamaIndex": "llama_index.llms.openai_like",
    "Haystack": "haystack_integrations.components.rankers.sentence_transformers",
}


def snippet(framework: str) -> str:
    """The python block that follows the README paragraph starting with ``framework (``."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### With LangChain, LlamaIndex or Haystack", 1)[1]
    match = re.search(rf"^{framework} \(.*?```python\n(.*?)```", section, re.S | re.M)
    assert match, f"no {framework} snippet in the README"
    return match.group(1)


@pytest.fixture(scope="module")
def llm_server() -> Iterator[LLMStandIn]:
    with LLMStandIn() as server:
        yield server


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_readme_snippet_runs_and_is_one_trace(
    framework: str, tmp_path: Path, tiny_cross_encoder_path: Path, llm_server: LLMStandIn
) -> None:
    try:
        found = importlib.util.find_spec(FRAMEWORKS[framework]) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        pytest.skip(f"{FRAMEWORKS[framework]} not installed in this venv")
    code = (
        snippet(framework)
        .replace("sentence-transformers/all-MiniLM-L6-v2", str(embedding_model_path()))
        .replace("cross-encoder/ms-marco-MiniLM-L6-v2", str(tiny_cross_encoder_path))
    )
    app = tmp_path / "app.py"
    app.write_text(code)
    traces = tmp_path / "traces.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))},
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OTEL_RERANK_TRACES_FILE": str(traces),
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": llm_server.base_url,  # the openai client (LangChain, Haystack)
        "OPENAI_API_BASE": llm_server.base_url,  # LlamaIndex's OpenAILike
        "PYTHONWARNINGS": "ignore",
    }
    result = subprocess.run(
        [sys.executable, str(app)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the stand-in's answer: a quote of a "[1] ..." passage in the prompt, when there is one
    # (LlamaIndex's default prompt has none)
    assert result.stdout.strip()
    table = report.stage_table(report.load_spans(traces))
    assert table.requests == 1
    assert table.background_calls == 1  # the start-up indexing encode
    assert [row.stage for row in table.rows] == ["embeddings", "retrieval", "rerank", "chat"]
    spans = report.load_spans(traces)
    (rerank,) = [s for s in spans if s.stage == "rerank"]
    assert rerank.attributes["gen_ai.rerank.top_n"] == 2
    assert rerank.attributes["gen_ai.rerank.candidate.count"] == 3
