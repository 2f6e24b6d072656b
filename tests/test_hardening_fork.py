"""Pre-fork servers (gunicorn, uWSGI): configure in the parent, fork workers, keep exporting.

A real ``os.fork`` in a subprocess: the parent runs ``configure()`` and ``instrument()``,
records a span that is still queued when it forks, then forks three workers that each make
spans and leave the way workers do (a normal exit that runs ``atexit``, a ``force_flush``
then ``os._exit``, and an explicit ``shutdown``). The SDK's batch processor restarts its
worker thread in each child (``os.register_at_fork``); these tests prove that every
worker's spans arrive (in the embedded JSONL file and at an OTLP collector, HTTP and gRPC), that the
parent's queued span is exported once and not once per child, and that a fork taken while
the parent's exporter holds its file lock does not deadlock the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests._collectors import HealthyGrpcCollector, HealthyHttpCollector

WORKERS = 3
SPANS_PER_WORKER = 40

_PREFORK = (
    textwrap.dedent(
        """
    import os, sys
    from opentelemetry import trace
    import otel_rerank

    configured = otel_rerank.configure()
    otel_rerank.instrument()

    @otel_rerank.rerank(model="worker")
    def rerank(query, documents):
        return [float(len(d)) for d in documents]

    # Queued in the parent's batch processor at fork time (the schedule delay is 5 s).
    with otel_rerank.retrieval(data_source="parent-before-fork"):
        pass

    children = []
    for n in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            for _ in range(SPANS):
                with otel_rerank.llm(model=f"child-{n}"):
                    rerank("q", ["a", "bb"])
            if n == 0:
                sys.exit(0)  # a normal exit: the atexit shutdown flushes
            if n == 1:
                trace.get_tracer_provider().force_flush()
                os._exit(0)  # gunicorn's hard exit after flushing
            configured.shutdown()
            os._exit(0)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    with otel_rerank.retrieval(data_source="parent-after-fork"):
        pass
    """
    )
    .replace("WORKERS", str(WORKERS))
    .replace("SPANS", str(SPANS_PER_WORKER))
)


def _run(env: dict[str, str]) -> None:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(HF_HUB_OFFLINE="1", **env)
    result = subprocess.run(
        [sys.executable, "-c", _PREFORK],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def _file_span_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        for resource_spans in json.loads(line)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                names.extend(span["name"] for span in scope_spans["spans"])
    return names


def _check(names: list[str]) -> None:
    counts = Counter(names)
    for n in range(WORKERS):
        assert counts[f"chat child-{n}"] == SPANS_PER_WORKER, counts
    assert counts["rerank worker"] == WORKERS * SPANS_PER_WORKER
    assert counts["retrieval parent-before-fork"] == 1, "parent's queued span exported twice"
    assert counts["retrieval parent-after-fork"] == 1


@pytest.mark.slow
def test_forked_workers_export_to_the_jsonl_file(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    _run({"OTEL_RERANK_TRACES_FILE": str(traces)})
    _check(_file_span_names(traces))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_forked_workers_export_over_otlp(protocol: str) -> None:
    collector_class = HealthyGrpcCollector if protocol == "grpc" else HealthyHttpCollector
    with collector_class() as collector:
        _run(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_METRICS_EXPORTER": "none",
            }
        )
        names = collector.span_names()
    _check(names)


_FORK_WHILE_WRITING = textwrap.dedent(
    """
    import os, signal
    from opentelemetry.sdk.trace import TracerProvider
    from otel_rerank._file_exporter import JsonLinesSpanExporter

    exporter = JsonLinesSpanExporter(os.environ["OTEL_RERANK_TRACES_FILE"])
    tracer = TracerProvider().get_tracer("t")
    span = tracer.start_span("child-span")
    span.end()
    exporter._lock.acquire()  # the parent's worker thread is mid-write at fork time
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a deadlocked child dies here instead of hanging the test
        exporter.export([span])
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    """
)


def test_fork_while_the_file_exporter_writes_does_not_deadlock_the_child(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "traces.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_RERANK_TRACES_FILE"] = str(traces)
    result = subprocess.run(
        [sys.executable, "-c", _FORK_WHILE_WRITING],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "0", (result.stdout, result.stderr)
    assert _file_span_names(traces) == ["child-span"]


_SHADOW_FORK = textwrap.dedent(
    """
    import json, os, sys, threading
    from otel_rerank import ShadowReranker

    class Scorer:
        def predict(self, pairs, batch_size=32):
            return [float(len(d)) for _, d in pairs]

    runs = []
    shadow = ShadowReranker(Scorer(), sample_rate=1.0, on_result=runs.append)
    shadow("q", ["a", "bb"])       # the parent's worker thread starts
    while shadow.pending:
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = len(runs)
        for _ in range(10):
            shadow("q", ["a", "bb", "ccc"])
        finished = shadow.close(timeout=5)
        os.write(write, json.dumps(
            {"runs": len(runs) - before, "pending": shadow.pending, "finished": finished}
        ).encode())
        os._exit(0)
    os.close(write)
    report = os.read(read, 1000).decode()
    os.waitpid(pid, 0)
    print(report)
    """
)


def test_shadow_reranker_restarts_its_worker_in_a_forked_child() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SHADOW_FORK],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"runs": 10, "pending": 0, "finished": True}, report
