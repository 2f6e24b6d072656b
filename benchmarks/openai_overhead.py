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
versions as this one, plus otel-rerank installed editable; none of them pulls torch). A
worker process holds the bare client, ours and one peer, and alternates the three every
few dozen calls, so each overhead and each ratio to ours is measured within one process
and one stretch of time (the estimator is explained in ``_worker``); workers for the peers
are interleaved round by round, and each reported number is the median over rounds. A
case whose instrumentation produced no spans is reported as such (its "overhead" would be
meaningless). Run::

    .venv/bin/python benchmarks/openai_overhead.py [--rounds 5] [--calls 25] [--chunks 100]

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _patches import Patches  # benchmarks/ is on sys.path as a script
from _timing import quantile_us, time_calls

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
#: The module each peer's instrumentor is imported from (to check its venv is complete).
PEER_MODULES: dict[str, str] = {
    "official": "opentelemetry.instrumentation.openai_v2",
    "openinference": "openinference.instrumentation.openai",
    "traceloop": "opentelemetry.instrumentation.openai",
}

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


def _instrumentor(case: str) -> tuple[Callable[[], object], str]:
    """(instrument, version) of the case's library, with default settings."""
    if case == "ours":
        import otel_rerank

        def instrument() -> object:
            return otel_rerank.instrument(libraries=["openai"])

        return instrument, otel_rerank.__version__
    if case == "official":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        peer: Any = OpenAIInstrumentor()
    elif case == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        peer = OIInstrumentor()
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TLInstrumentor

        peer = TLInstrumentor()
    return peer.instrument, importlib.metadata.version(PEERS[case][0])


#: Where the instrumentations patch: the client library and the HTTP clients under it.
_PATCHED_PACKAGES = ("openai", "httpx", "httpx2")


class _Patches(Patches):
    """One case's patches in openai and the HTTP clients under it (see ``_patches.py``).

    Not every instrumentation's ``uninstrument()`` is an exact switch (Traceloop's, toggled
    repeatedly, leaves wrappers stacking up), so each case is instrumented once and its
    patches are swapped in and out.
    """

    def __init__(self, instrument: Callable[[], object]) -> None:
        super().__init__(instrument, _PATCHED_PACKAGES)


def _worker(peer: str, calls: int, chunks: int) -> dict[str, Any]:
    """Bare, ours and ``peer`` in one process, in short alternating chunks; low quantiles.

    This machine is shared and its per-call CPU time is bimodal (the same call takes
    1.4 ms or 3 ms depending on what the neighbours do), and two processes differ by more
    than the gap being measured, so a comparison is only trusted within one process and
    one stretch of time. Hence: ours and the peer are both installed here (their patches
    switched in and out, see :class:`_Patches`); the phases (bare, ours, peer) alternate
    every ``calls`` calls, ``chunks`` times, in rotating order; each call is timed on its
    own, and each phase is summed up by the 10th percentile of its calls, which stays put
    where means, medians and whole-block minimums wander. A phase's overhead is its 10th
    percentile minus the bare phase's.
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
    for fn in ops.values():
        fn()  # import everything the calls use before looking for patches
    phases: dict[str, _Patches | None] = {"bare": None}
    versions: dict[str, str] = {}
    for case in ("ours", peer):
        instrument, versions[case] = _instrumentor(case)
        phases[case] = _Patches(instrument)
    samples = {phase: {op: list[int]() for op in ops} for phase in phases}
    spans = {phase: dict.fromkeys(ops, 0) for phase in phases}
    # Move everything imported so far out of the collector's sight: otherwise a full
    # collection (tens of ms over openai's and pydantic's objects) lands in a chunk at
    # random and its cost is credited to whichever phase it hit.
    gc.collect()
    gc.freeze()
    names = list(phases)
    for chunk in range(chunks):
        for phase in names[chunk % len(names) :] + names[: chunk % len(names)]:
            patches = phases[phase]
            if patches is not None:
                patches.on()
            for op, fn in ops.items():
                for _ in range(3):  # warm-up after switching (method caches)
                    fn()
                exporter.count = 0
                time_calls(fn, calls, samples[phase][op])
                spans[phase][op] += exporter.count
            if patches is not None:
                patches.off()
    return {
        "versions": versions,
        "patches": {case: len(p) for case, p in phases.items() if p is not None},
        "openai": importlib.metadata.version("openai"),
        "p10": {
            phase: {op: quantile_us(v, 0.1) for op, v in by_op.items()}
            for phase, by_op in samples.items()
        },
        "spans": {
            phase: {op: n / (calls * chunks) for op, n in by_op.items()}
            for phase, by_op in spans.items()
        },
    }


# -- driver --------------------------------------------------------------------------------
def _venv_python(peer: str) -> Path:
    return ROOT / f".venv-bench-{peer}" / "bin" / "python"


def _ensure_venv(peer: str) -> None:
    """The peer's virtualenv, with otel-rerank installed in it too (editable)."""
    python = _venv_python(peer)
    venv = python.parents[1]
    if not python.exists():
        print(f"creating {venv.name} (one-time) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    has_ours = subprocess.run(
        [str(python), "-c", "import otel_rerank, " + PEER_MODULES[peer]],
        capture_output=True,
        check=False,
    )
    if has_ours.returncode == 0:
        return
    pins = [
        f"openai=={importlib.metadata.version('openai')}",
        "httpx",  # the official instrumentation imports it; openai 3.x does not need it
        f"opentelemetry-api=={importlib.metadata.version('opentelemetry-api')}",
        f"opentelemetry-sdk=={importlib.metadata.version('opentelemetry-sdk')}",
    ]
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *pins, *PEER_PINS.get(peer, []),
         PEERS[peer][0], "-e", str(ROOT)],
        check=True,
    )  # fmt: skip


def _run_worker(peer: str, calls: int, chunks: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OTEL_SDK_DISABLED": "false"}
    done = subprocess.run(
        [str(_venv_python(peer)), __file__, "--worker", peer, "--calls", str(calls),
         "--chunks", str(chunks)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"worker {peer} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="worker runs per peer")
    parser.add_argument("--calls", type=int, default=25, help="timed calls per chunk")
    parser.add_argument("--chunks", type=int, default=100, help="phase alternations")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(args.worker, args.calls, args.chunks)))
        return

    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown or not peers:
        raise SystemExit(f"--peers: choose from {', '.join(PEERS)} (got {args.peers!r})")
    for peer in peers:
        _ensure_venv(peer)
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}
    for round_index in range(args.rounds):
        order = peers[round_index % len(peers) :] + peers[: round_index % len(peers)]
        for peer in order:
            results[peer].append(_run_worker(peer, args.calls, args.chunks))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    _print_table(results, args)


_OPS = ("chat", "embeddings")


def _overhead(run: dict[str, Any], phase: str, op: str) -> float:
    p10: dict[str, dict[str, float]] = run["p10"]
    return p10[phase][op] - p10["bare"][op]


def _print_table(results: dict[str, list[dict[str, Any]]], args: Any) -> None:
    """One row per case; each peer's ratio is taken against ours in the same worker runs."""
    all_runs = [run for runs in results.values() for run in runs]
    first = all_runs[0]
    print()
    print(
        f"OpenAI client instrumentation overhead per call (µs of process CPU time), openai "
        f"{first['openai']}, in-process mock transport, SDK TracerProvider + "
        "SimpleSpanProcessor + no-op exporter. Each run: bare, ours and one peer in one "
        f"process, alternating every {args.calls} calls, {args.chunks} times; overhead = "
        f"10th-percentile call minus the bare one's; median over {args.rounds} runs per peer."
    )
    header = f"{'case':<40} {'chat.create':>12} {'vs ours':>8} {'embeddings':>12} {'vs ours':>8}"
    header += "  spans/call"
    print(header)
    print("-" * len(header))
    bare = [statistics.median(run["p10"]["bare"][op] for run in all_runs) for op in _OPS]
    print(f"{'uninstrumented (the call itself)':<40} {bare[0]:>12.1f} {'':>8} {bare[1]:>12.1f}")
    rows = [("otel-rerank (ours) " + first["versions"]["ours"], "ours", all_runs)]
    rows += [
        (f"{PEERS[peer][1]} {runs[0]['versions'][peer]}", peer, runs)
        for peer, runs in results.items()
    ]
    for label, phase, runs in rows:
        cells = []
        for op in _OPS:
            if runs[0]["spans"][phase][op] == 0:
                cells += [f"{'no span':>12}", f"{'':>8}"]
                continue
            overhead = statistics.median(_overhead(run, phase, op) for run in runs)
            ratio = statistics.median(
                _overhead(run, phase, op) / max(_overhead(run, "ours", op), 1e-9) for run in runs
            )
            cells += [f"{'+' + format(overhead, '.1f'):>12}", f"{ratio:>7.2f}x"]
        spans_text = "/".join(format(runs[0]["spans"][phase][op], "g") for op in _OPS)
        print(f"{label:<40} {' '.join(cells)}  {spans_text}")
    for peer, runs in results.items():
        wins = [
            f"{op} {sum(_overhead(r, peer, op) > _overhead(r, 'ours', op) for r in runs)}"
            f"/{len(runs)}"
            for op in _OPS
        ]
        print(f"runs in which ours was below {PEERS[peer][1]}: {', '.join(wins)}")
    leaked = [r for r in all_runs if any(r["spans"]["bare"].values())]
    if leaked:
        print("WARNING: the bare phase produced spans: a patch was not switched off")
    print("vs ours = the peer's overhead / ours, measured in the same process (median of runs)")


if __name__ == "__main__":
    main()
