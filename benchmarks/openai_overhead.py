"""Per-call overhead of OpenAI client instrumentations, side by side in one run.

``chat.completions.create`` and ``embeddings.create`` against an in-process mock transport
(no sockets), uninstrumented vs otel-rerank vs the official
``opentelemetry-instrumentation-openai-v2``, OpenInference's
``openinference-instrumentation-openai`` and Traceloop's ``opentelemetry-instrumentation-openai``,
each with its default settings. Every case gets the same SDK set-up: a global
``TracerProvider`` with a ``SimpleSpanProcessor`` and an exporter that only counts spans,
and a ``MeterProvider`` with an in-memory reader (so metric recording is paid for, as in
production).

The peers may conflict with each other, so each runs in its own virtualenv
``.venv-bench-<name>/`` (created on first use with the same openai and opentelemetry-sdk
versions as this one; none of them pulls torch). Every case is a worker process that
times the bare call first and then the instrumented call, so its overhead is measured
against a baseline from the same process; cases are interleaved round by round so machine
noise hits them alike, and each reported number is the median over rounds. A case whose
instrumentation produced no spans is reported as such (its "overhead" would be
meaningless). Run::

    .venv/bin/python benchmarks/openai_overhead.py [--rounds 5] [--calls 30] [--blocks 8]

or ``make bench-openai``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: case name -> (pip distribution of the instrumentation, label in the table)
PEERS: dict[str, tuple[str, str]] = {
    "official": ("opentelemetry-instrumentation-openai-v2", "official openai-v2"),
    "openinference": ("openinference-instrumentation-openai", "OpenInference"),
    "traceloop": ("opentelemetry-instrumentation-openai", "Traceloop"),
}
#: Extra pins a peer needs to import at all. openai-v2 2.4b0 imports
#: ``opentelemetry.util.genai.instruments``, which util-genai 1.2b0 renamed.
PEER_PINS: dict[str, list[str]] = {"official": ["opentelemetry-util-genai==1.1b0"]}

_CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Lift holds the wing up."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30},
    }
).encode()
_EMBEDDINGS_BODY = json.dumps(
    {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.01 * j for j in range(64)]}
            for i in range(4)
        ],
        "usage": {"prompt_tokens": 12, "total_tokens": 12},
    }
).encode()
_MESSAGES = [
    {"role": "system", "content": "Answer from the documents."},
    {"role": "user", "content": "What is the lift of a wing?"},
]
_TEXTS = ["lift", "drag", "thrust", "weight"]


# -- worker (runs inside the case's virtualenv) --------------------------------------------
def _client() -> Any:
    import openai
    from openai import _base_client

    http: Any = getattr(_base_client, "httpx2", None) or _base_client.httpx

    def handler(request: Any) -> Any:
        body = _EMBEDDINGS_BODY if request.url.path.endswith("/embeddings") else _CHAT_BODY
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://bench.invalid/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


def _set_up_sdk() -> Any:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class _CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    exporter = _CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return exporter


def _instrumentor(case: str) -> tuple[Callable[[], object], Callable[[], object], str]:
    """(instrument, uninstrument, version) of the case's library, with default settings."""
    if case == "ours":
        import otel_rerank

        def instrument() -> object:
            return otel_rerank.instrument(libraries=["openai"])

        return instrument, otel_rerank.uninstrument, otel_rerank.__version__
    if case == "official":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        peer: Any = OpenAIInstrumentor()
    elif case == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        peer = OIInstrumentor()
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TLInstrumentor

        peer = TLInstrumentor()
    return peer.instrument, peer.uninstrument, importlib.metadata.version(PEERS[case][0])


def _block_us(fn: Callable[[], object], calls: int) -> float:
    # CPU time of this process, not wall time: on a shared machine wall time also counts
    # the moments another process held the core, which swamps a few-µs difference.
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def _worker(case: str, calls: int, blocks: int, groups: int) -> dict[str, Any]:
    """Alternate groups of bare and instrumented blocks; keep each phase's quietest block.

    The machine may be shared, so: blocks are short (a quiet window is likelier to hold a
    whole block), bare and instrumented groups alternate (time, instrument, time,
    uninstrument, ...), each block is timed in process CPU time, and each phase's minimum
    is taken, as ``timeit`` does: background load only ever adds time.
    """
    import gc

    exporter = _set_up_sdk()
    client = _client()
    ops: dict[str, Callable[[], object]] = {
        "chat": lambda: client.chat.completions.create(model="gpt-4o-mini", messages=_MESSAGES),
        "embeddings": lambda: client.embeddings.create(
            model="text-embedding-3-small", input=_TEXTS
        ),
    }
    instrument, uninstrument, version = _instrumentor(case)
    base: dict[str, list[float]] = {op: [] for op in ops}
    inst: dict[str, list[float]] = {op: [] for op in ops}
    spans: dict[str, float] = {}
    for fn in ops.values():
        fn()
    # Move everything imported so far out of the collector's sight: otherwise a full
    # collection (tens of ms over openai's and pydantic's objects) lands in a block at
    # random and its cost is credited to whichever phase it hit.
    gc.collect()
    gc.freeze()
    for _ in range(groups):
        for phase in (base, inst):
            if phase is inst:
                instrument()
            for op, fn in ops.items():
                for _ in range(10):  # warm-up after (un)instrumenting
                    fn()
                exporter.count = 0
                phase[op] += [_block_us(fn, calls) for _ in range(blocks)]
                if phase is inst:
                    spans[op] = exporter.count / (calls * blocks)
            if phase is inst:
                uninstrument()
    return {
        "version": version,
        "openai": importlib.metadata.version("openai"),
        "base": {op: min(v) for op, v in base.items()},
        "inst": {op: min(v) for op, v in inst.items()},
        "spans": spans,
    }


# -- driver --------------------------------------------------------------------------------
def _venv_python(case: str) -> Path:
    if case == "ours":
        return Path(sys.executable)
    return ROOT / f".venv-bench-{case}" / "bin" / "python"


def _ensure_venv(case: str) -> None:
    python = _venv_python(case)
    if python.exists():
        return
    venv = python.parents[1]
    print(f"creating {venv.name} (one-time) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [
        f"openai=={importlib.metadata.version('openai')}",
        "httpx",  # the official instrumentation imports it; openai 3.x does not need it
        f"opentelemetry-sdk=={importlib.metadata.version('opentelemetry-sdk')}",
    ]
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *pins, *PEER_PINS.get(case, []),
         PEERS[case][0]],
        check=True,
    )  # fmt: skip


def _run_worker(case: str, calls: int, blocks: int, groups: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OTEL_SDK_DISABLED": "false"}
    done = subprocess.run(
        [str(_venv_python(case)), __file__, "--worker", case, "--calls", str(calls),
         "--blocks", str(blocks), "--groups", str(groups)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"worker {case} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="worker runs per case")
    parser.add_argument("--calls", type=int, default=30, help="calls per timed block")
    parser.add_argument("--blocks", type=int, default=8, help="timed blocks per group")
    parser.add_argument("--groups", type=int, default=5, help="bare/instrumented alternations")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args.worker, args.calls, args.blocks, args.groups)))
        return

    peers = [p for p in args.peers.split(",") if p]
    cases = ["ours", *peers]
    for case in peers:
        _ensure_venv(case)
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    for round_index in range(args.rounds):
        order = cases[round_index % len(cases) :] + cases[: round_index % len(cases)]
        for case in order:
            results[case].append(_run_worker(case, args.calls, args.blocks, args.groups))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    _print_table(cases, results, args)


def _median(runs: list[dict[str, Any]], op: str, what: str) -> float:
    if what == "overhead":
        return statistics.median(r["inst"][op] - r["base"][op] for r in runs)
    return statistics.median(r[what][op] for r in runs)


def _print_table(cases: list[str], results: dict[str, list[dict[str, Any]]], args: Any) -> None:
    ops = ("chat", "embeddings")
    ours = {op: _median(results["ours"], op, "overhead") for op in ops}
    first = results["ours"][0]
    print()
    print(
        f"OpenAI client instrumentation overhead per call (µs), openai {first['openai']}, "
        f"in-process mock transport, process CPU time; median of {args.rounds} rounds "
        f"(each the quietest of {args.groups * args.blocks} blocks x {args.calls} calls); "
        "SDK TracerProvider + SimpleSpanProcessor + no-op exporter"
    )
    header = (
        f"{'case':<44} {'chat.create':>12} {'vs ours':>8} {'embeddings':>12} {'vs ours':>8}"
        f"  spans/call"
    )
    print(header)
    print("-" * len(header))
    base_all = [r for runs in results.values() for r in runs]
    print(
        f"{'uninstrumented (the call itself)':<44} "
        f"{_median(base_all, 'chat', 'base'):>12.1f} {'':>8} "
        f"{_median(base_all, 'embeddings', 'base'):>12.1f} {'':>8}"
    )
    for case in cases:
        runs = results[case]
        label = "otel-rerank (ours)" if case == "ours" else PEERS[case][1]
        name = f"{label} {runs[0]['version']}"
        cells = []
        for op in ops:
            overhead = _median(runs, op, "overhead")
            if runs[0]["spans"][op] == 0:
                cells += [f"{'no span':>12}", f"{'':>8}"]
                continue
            ratio = overhead / ours[op] if ours[op] > 0 else float("nan")
            cells += [f"{'+' + format(overhead, '.1f'):>12}", f"{ratio:>7.2f}x"]
        spans_text = "/".join(format(runs[0]["spans"][op], "g") for op in ops)
        print(f"{name:<44} {' '.join(cells)}  {spans_text}")
    print("ratio = that case's overhead / ours (higher is slower than ours)")


if __name__ == "__main__":
    main()
