"""``opentelemetry-instrument python app.py`` traces a LangChain app with no code change.

With the README's install (``pip install otel-rerank opentelemetry-distro``) the distro
configures the SDK from ``OTEL_*`` variables and our entry points instrument the app: the
console exporter prints the request span and the rerank span of one trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.distro")
pytest.importorskip("langchain_core")

pytestmark = pytest.mark.slow

APP = """
import sys
from langchain_core.runnables import RunnableLambda
from sentence_transformers import CrossEncoder

model = CrossEncoder(sys.argv[1])
docs = ["a deep copy of a nested object", "json encodes", "a shallow copy"]
rerank = RunnableLambda(lambda q: model.predict([(q, d) for d in docs]).tolist())
chain = RunnableLambda(lambda q: q.strip()) | rerank
print("SCORES", chain.invoke("How do I copy a nested object? "))
"""


_LAUNCH = (
    "import sys; sys.argv = sys.argv[1:]; "
    "from opentelemetry.instrumentation.auto_instrumentation import run; run()"
)


def _spans(stdout: str) -> list[dict[str, object]]:
    """The console exporter's span documents (each a pretty-printed JSON object)."""
    decoder = json.JSONDecoder()
    spans, at = [], 0
    while (start := stdout.find("{", at)) != -1:
        try:
            document, at = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        if isinstance(document, dict) and "context" in document:
            spans.append(document)
    return spans


def test_opentelemetry_instrument_traces_a_langchain_app(
    tmp_path: Path, tiny_cross_encoder_path: Path
) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "rag-app",
    }
    script = bin_dir / "opentelemetry-instrument"
    # An overlay venv (tests in a worktree) has the script only in the base venv, whose
    # interpreter would not see the overlay's packages: call the script's function instead.
    launcher = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", _LAUNCH, "opentelemetry-instrument"]
    )
    result = subprocess.run(
        [*launcher, sys.executable, str(app), str(tiny_cross_encoder_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SCORES" in result.stdout
    spans = {str(s["name"]): s for s in _spans(result.stdout)}
    root = spans["invoke_workflow langchain"]
    rerank = spans[f"rerank {tiny_cross_encoder_path.name}"]
    assert rerank["context"]["trace_id"] == root["context"]["trace_id"]  # type: ignore[index]
    assert rerank["attributes"]["gen_ai.rerank.candidate.count"] == 3  # type: ignore[index]
    assert root["parent_id"] is None
