"""``otel-rerank demo``: run the bundled RAG pipeline offline, instrumented, and show the table.

What a new user runs first. It builds (once, then cached) a corpus from the Python standard
library's docstrings, loads the real all-MiniLM-L6-v2 and a cross-encoder (the proxy by
default), starts the loopback LLM stand-in, then sets up OpenTelemetry exactly as
``import otel_rerank.auto`` does — ``configure()`` with no endpoint writes spans to an
OTLP-JSON lines file, here under ``--out`` — and sends ``--queries`` questions through the
pipeline, one root span per request. It prints the per-stage p50/p95 table from the
report module, where the end-to-end p95 goes, and where the trace file and the waterfall
picture are. Set-up (indexing, warm-up) runs with instrumentation suppressed so that the
trace file holds requests only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

from otel_rerank.cli import UsageError, check_output

DEFAULT_QUERIES: Final = 20
DEFAULT_OUT: Final = "otel-rerank-out"
TRACES_NAME: Final = "traces.jsonl"
WATERFALL_NAME: Final = "waterfall.png"
_ROOT_SPAN: Final = "demo request"


def add_parser(subparsers: Any) -> None:
    """Register ``demo`` and its arguments."""
    from otel_rerank.demo.corpus import DEFAULT_PASSAGES
    from otel_rerank.demo.pipeline import DEFAULT_K

    parser = subparsers.add_parser(
        "demo",
        help="run the bundled RAG pipeline offline and print the per-stage latency table",
        description=(
            "Run the bundled RAG pipeline (all-MiniLM-L6-v2 + faiss over standard-library "
            "docstrings + a cross-encoder + a local OpenAI-compatible stand-in) offline, "
            "instrumented by otel-rerank, and print the per-stage latency table."
        ),
    )
    parser.add_argument(
        "--queries", type=int, default=DEFAULT_QUERIES, metavar="N",
        help=f"requests to send (default {DEFAULT_QUERIES})",
    )  # fmt: skip
    parser.add_argument(
        "--k", type=int, default=DEFAULT_K, metavar="K",
        help=f"candidates retrieved and reranked per request (default {DEFAULT_K})",
    )  # fmt: skip
    parser.add_argument(
        "--model", metavar="PATH",
        help="a local cross-encoder directory (default: the ms-marco-MiniLM-L-6-v2 proxy)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR",
        help=f"where the trace file and the plot go (default ./{DEFAULT_OUT}; "
        f"its {TRACES_NAME} is replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--mode", choices=("off", "shadow", "serve"), default="serve",
        help="reranker mode (OTEL_RERANK_MODE): serve puts the rerank on the request path "
        "(default), shadow runs it off the path, off skips it",
    )  # fmt: skip
    parser.add_argument(
        "--passages", type=int, default=DEFAULT_PASSAGES, metavar="N",
        help=f"corpus size (default {DEFAULT_PASSAGES}; each size is cached separately)",
    )  # fmt: skip
    parser.add_argument(
        "--prepare", action="store_true",
        help="only build and cache the corpus and models (what `make demo` does at set-up)",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> Path:
    if args.queries <= 0:
        raise UsageError(f"--queries must be at least 1, got {args.queries}")
    if args.k <= 0:
        raise UsageError(f"--k must be at least 1, got {args.k}")
    if args.passages < 10:
        raise UsageError(f"--passages must be at least 10, got {args.passages}")
    if args.k > args.passages:
        raise UsageError(f"--k {args.k} is larger than the corpus (--passages {args.passages})")
    if args.model is not None:
        config = Path(args.model) / "config.json"
        if not config.is_file():
            raise UsageError(f"no cross-encoder model at {args.model} (expected a config.json)")
        # A broken config is caught here, before the telemetry and the corpus are set up;
        # anything subtler is caught when the model loads.
        try:
            settings = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "not valid JSON" if isinstance(exc, (ValueError, RecursionError)) else exc
            raise UsageError(
                f"--model {args.model}: cannot read its config.json ({reason})"
            ) from None
        if not isinstance(settings, dict) or not settings:
            raise UsageError(f"--model {args.model}: its config.json is not a model configuration")
    from otel_rerank import models

    try:  # the corpus and the proxy are cached there: a bad setting fails now, not later
        models.cache_subdir()
    except models.ModelUnavailableError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    if not args.prepare:
        try:  # fail before the models load, not after the requests ran
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise UsageError(f"--out {args.out}: cannot create it ({reason})") from None
        check_output("--out", str(out / TRACES_NAME))
    return out


def _quiet_model_loading() -> None:
    # Loading and building models prints progress bars and load reports that would bury
    # the demo's own output; none of it is actionable here.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except Exception:  # an older or newer transformers without these helpers: only noise
        pass


def _setup_telemetry(traces_file: Path) -> Any:
    """``configure()`` + ``instrument()`` as ``import otel_rerank.auto`` does, into ``traces_file``.

    If an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``) the spans go there as
    well: the file is added beside it, because the table is computed from the file.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import otel_rerank
    from otel_rerank._file_exporter import TRACES_FILE_ENV, JsonLinesSpanExporter

    os.environ[TRACES_FILE_ENV] = str(traces_file)
    os.environ.setdefault("OTEL_SERVICE_NAME", "otel-rerank-demo")
    try:
        configured = otel_rerank.configure()
    except otel_rerank.ConfigurationError as exc:
        raise UsageError(str(exc)) from exc
    provider = trace.get_tracer_provider()
    if configured.traces_file != str(traces_file):
        if not isinstance(provider, TracerProvider):
            raise UsageError("OTEL_SDK_DISABLED is set: the demo needs spans to measure")
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(traces_file)))
    otel_rerank.instrument()
    return provider


def _build(args: argparse.Namespace, announce: str) -> tuple[Any, Any]:
    """Build the pipeline (corpus index and models come from the cache after the first run)."""
    import torch

    from otel_rerank import models
    from otel_rerank.demo.pipeline import build_pipeline

    # Indexing (first run only) gets every core but one: on a 2-core machine shared with
    # other work, two threads fighting for two cores indexed slower than one thread did.
    torch.set_num_threads(_indexing_threads())
    print(announce, flush=True)
    try:
        return build_pipeline(
            k=args.k,
            cross_encoder=args.model,
            max_passages=args.passages,
            mode=args.mode,
            use_env_llm=False,
            progress=True,
        )
    except models.ModelUnavailableError as exc:
        raise UsageError(str(exc)) from exc


def _prepare(args: argparse.Namespace, started: float) -> int:
    """Build and cache what the demo needs (corpus index, proxy model), record nothing."""
    pipeline, setup = _build(args, "otel-rerank demo: preparing the corpus and models ...")
    pipeline.close()
    print(
        f"prepared in {time.perf_counter() - started:.1f} s: "
        f"{len(setup.corpus.passages)} passages in {setup.corpus.directory}",
        flush=True,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """The ``demo`` handler."""
    started = time.perf_counter()
    _quiet_model_loading()
    # Every optional dependency the demo needs, imported before any work: a missing one is
    # one line naming the extra (see cli.main), not a traceback half-way through. torch
    # first, since no extra installs it.
    for module in ("torch", "faiss", "matplotlib", "openai", "sentence_transformers", "tqdm"):
        importlib.import_module(module)
    out = _check(args)
    import torch
    from opentelemetry import trace
    from tqdm import tqdm

    from otel_rerank import report
    from otel_rerank.demo.queries import DEMO_QUERIES

    if args.prepare:
        return _prepare(args, started)
    traces_file = out / TRACES_NAME
    traces_file.unlink(missing_ok=True)
    provider = _setup_telemetry(traces_file)

    pipeline, setup = _build(
        args, "otel-rerank demo: setting up (first run builds and caches the corpus) ..."
    )
    # Requests get one intra-op thread, as in a serving worker that handles one request per
    # core. On a busy machine, two threads contending for two cores made each request
    # several times slower.
    torch.set_num_threads(1)
    setup_s = time.perf_counter() - started
    corpus = setup.corpus
    reranker = setup.cross_encoder_path.name
    print(
        f"  corpus     {len(corpus.passages)} Python standard-library docstrings "
        f"({'built' if corpus.built else 'cached'} in {corpus.directory})\n"
        f"  embedder   {setup.embedder_name}\n"
        f"  reranker   {reranker}"
        + (f" — {setup.notice}" if setup.notice else "")
        + f"\n  LLM        local OpenAI-compatible stand-in at {setup.llm_base_url} "
        "(quotes the top passage)\n"
        f"  mode       {args.mode}, k={pipeline.k}, {args.queries} requests\n"
        f"  set-up     {setup_s:.1f} s",
        flush=True,
    )

    tracer = trace.get_tracer("otel_rerank.demo")
    questions = [DEMO_QUERIES[i % len(DEMO_QUERIES)] for i in range(args.queries)]
    try:
        for question in tqdm(questions, desc="requests", unit="req", file=sys.stderr):
            # One root span per request, as a web framework's server span would be.
            with tracer.start_as_current_span(_ROOT_SPAN, kind=trace.SpanKind.SERVER):
                pipeline.answer(question)
    finally:
        pipeline.close()
        provider.force_flush()

    spans = report.load_spans(traces_file)
    table = report.stage_table(spans)
    print()
    print(report.format_table(table))
    print()
    print(_where_the_time_went(table, args.mode))
    if setup.notice:
        print(f"note: {reranker}: {setup.notice}; pass --model PATH for a real cross-encoder.")
    waterfall = out / WATERFALL_NAME
    try:
        report.plot_waterfall(spans, waterfall, title="otel-rerank demo: the median request")
        picture = f"waterfall:  {waterfall}"
    except ValueError as exc:
        picture = f"waterfall:  not drawn ({exc})"
    print(
        f"\ntraces:     {traces_file}  (OTLP-JSON lines; `otel-rerank report {traces_file}`)\n"
        f"{picture}\n"
        f"done in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _indexing_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def _where_the_time_went(table: Any, mode: str) -> str:
    from otel_rerank import report, semconv

    e2e = table.end_to_end
    if e2e is None:
        return "where the time went: no request was recorded."
    lines = [f"where the time went: end-to-end p95 is {e2e.p95_ms:.0f} ms."]
    rerank = table.row(semconv.OPERATION_RERANK)
    if rerank is not None:
        share = rerank.share if rerank.share is not None else 0.0
        lines.append(
            f"  rerank p95 is {rerank.p95_ms:.0f} ms, {rerank.p95_ms / e2e.p95_ms:.0%} of the "
            f"end-to-end p95; over all requests the rerank took {share:.0%} of the time."
        )
    shadow = table.row(report.SHADOW_ROW)
    if shadow is not None:
        lines.append(
            f"  the reranker ran in shadow, off the request path: serving it would add about "
            f"{shadow.p95_ms:.0f} ms at p95."
        )
    if mode == "off":
        lines.append("  reranking is off (mode off): requests are served in retrieval order.")
    slowest = max(table.rows, key=lambda r: r.share or 0.0, default=None)
    if slowest is not None and slowest.share and slowest.stage != semconv.OPERATION_RERANK:
        lines.append(
            f"  the largest share of request time is {slowest.stage} ({slowest.share:.0%})."
        )
    lines.append(
        "  chat ran against the local stand-in, which generates nothing: a real LLM's time "
        "adds to the end-to-end latency and lowers every other stage's share."
    )
    return "\n".join(lines)
