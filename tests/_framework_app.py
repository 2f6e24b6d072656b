"""What the framework app tests share: a corpus, the checks on one query's trace.

Each framework test builds a RAG app the way that framework's docs write it (its own
embedder over the real all-MiniLM-L6-v2, its vector store, a cross-encoder reranker, an
OpenAI-compatible LLM on the loopback stand-in) and checks that each query is exactly one
trace: the request's root span with embeddings, retrieval, rerank and chat children.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from scipy.stats import kendalltau

PASSAGES = [
    "The json module encodes and decodes JSON documents.",
    "copy.deepcopy makes a deep copy of a nested object.",
    "pathlib offers classes for filesystem paths with methods for common operations.",
    "The re module provides regular expression matching operations.",
    "itertools.groupby groups consecutive items that share a key.",
    "functools.lru_cache memoizes a function's results in a bounded cache.",
    "datetime.timedelta represents the difference between two dates or times.",
    "collections.Counter counts hashable objects.",
    "pprint pretty-prints nested data structures.",
    "subprocess.run runs a command and waits for it to finish.",
]
QUERIES = [
    "How do I copy a nested object?",
    "How can I parse JSON?",
    "How do I count items in a list?",
]
TOP_K = 6
TOP_N = 3


@pytest.fixture(scope="module", autouse=True)
def collect_framework_leftovers() -> Iterator[None]:
    """Collect what the frameworks leave unclosed (async HTTP clients, event loops) here.

    Their sockets and loops would otherwise be collected at the end of the session, where
    ``filterwarnings = error`` turns each ``ResourceWarning`` into a failed session.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def request_traces(spans: Sequence[Any]) -> dict[int, list[Any]]:
    """Spans of every trace whose root is a request span (not a bare stage call)."""
    roots = {
        s.context.trace_id
        for s in spans
        if s.parent is None and s.attributes.get("gen_ai.operation.name") == "invoke_workflow"
    }
    out: dict[int, list[Any]] = {t: [] for t in roots}
    for span in spans:
        if span.context.trace_id in out:
            out[span.context.trace_id].append(span)
    return out


def check_query_trace(
    trace: list[Any], framework: str, chats: int = 1, streamed_usage: bool = True
) -> dict[str, Any]:
    """One root ``invoke_workflow {framework}`` (CHAIN) and one span of each stage under it.

    ``chats`` LLM calls, each with its usage (a chat engine condensing the conversation
    into a standalone question makes two) unless ``streamed_usage`` is false: a stream the
    app opens without ``stream_options.include_usage`` carries none. Returns the first stage
    span of each operation.
    """
    roots = [s for s in trace if s.parent is None]
    assert len(roots) == 1, [s.name for s in trace]
    root = roots[0]
    assert root.name == f"invoke_workflow {framework}"
    assert root.attributes["openinference.span.kind"] == "CHAIN"
    by_stage: dict[str, list[Any]] = {}
    for span in trace:
        operation = span.attributes.get("gen_ai.operation.name")
        if span is not root and operation:
            by_stage.setdefault(operation, []).append(span)
    assert sorted(by_stage) == ["chat", "embeddings", "rerank", "retrieval"], [
        s.name for s in trace
    ]
    for stage in ("retrieval", "rerank"):
        assert len(by_stage[stage]) == 1, (stage, [s.name for s in trace])  # one span per stage
    assert len(by_stage["chat"]) == chats, [s.name for s in trace]
    for chat in by_stage["chat"]:
        assert chat.attributes["gen_ai.response.model"]
        if not streamed_usage and chat.attributes.get("gen_ai.request.stream"):
            assert "gen_ai.usage.input_tokens" not in chat.attributes
            continue
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    return {stage: spans[0] for stage, spans in by_stage.items()}


def check_rerank(span: Any, model: str, scores_in_given_order: Sequence[float], top_n: int) -> None:
    """The rerank span against an independent computation over the same candidates."""
    a = span.attributes
    assert a["gen_ai.request.model"] == model
    assert a["gen_ai.rerank.candidate.count"] == len(scores_in_given_order)
    assert a["gen_ai.rerank.top_n"] == top_n
    best = max(range(len(scores_in_given_order)), key=lambda i: scores_in_given_order[i])
    assert a["rag.rerank.top1_changed"] is (best != 0)
    # +1 when the reranker keeps the order it was given: descending scores along positions.
    positions = [-i for i in range(len(scores_in_given_order))]
    expected_tau = kendalltau(positions, scores_in_given_order).statistic
    assert a["rag.rerank.kendall_tau"] == pytest.approx(expected_tau, abs=1e-9)
