"""``otel-rerank bench``: what a cross-encoder costs per query and what it buys.

Loads a cross-encoder (a local directory, or a hub name already in the local cache —
nothing is downloaded), sweeps candidate count k and batch size over a query set, and
prints the latency table, the quality lift over the first-stage order (with labels), the
fitted cost line and the verdict against a p95 budget; ``--json`` and ``--plot`` write
the same as a document and a PNG. With no ``--model`` the ms-marco-MiniLM-L-6-v2-shaped
proxy is used, whose quality numbers mean nothing (the output says so, as it does for an
embedding model given as ``--model``, whose scoring head is just as random).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from otel_rerank.cli import UsageError, check_budget, check_output

_DEFAULT_K = "5,10,20,50,100"
# Any of these means the user asked for spans somewhere.
_TRACING_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_RERANK_TRACES_FILE",
)
_DEFAULT_BATCH = "8,16,32,64"
#: More torch threads than this is no benchmark of anything (and 100,000 crashed OpenBLAS).
_MAX_THREADS_PER_CORE = 4
_MAX_THREADS = 256


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` and its arguments."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark a cross-encoder's latency and quality lift over k and batch size",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--model",
        help="cross-encoder directory or cached hub name "
        "(default: the latency proxy of ms-marco-MiniLM-L-6-v2)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--queries",
        metavar="FILE.jsonl",
        help='JSONL lines {"query": ..., "candidates": [{"text": ..., "label": 0|1}]}',
    )
    source.add_argument(
        "--trec",
        metavar="DIR",
        help="TREC collection (Cranfield layout); candidates retrieved by MiniLM",
    )
    parser.add_argument("--k", default=_DEFAULT_K, help=f"candidate counts (default {_DEFAULT_K})")
    parser.add_argument(
        "--batch-size", default=_DEFAULT_BATCH, help=f"batch sizes (default {_DEFAULT_BATCH})"
    )
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=1500.0,
        help="p95 budget of the rerank call for the verdict (default 1500)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed passes over the query set per cell (default 3)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per cell (default 2)")
    parser.add_argument(
        "--max-queries",
        type=int,
        default=None,
        help="use the first N queries (default: all; 40 for --trec)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help=f"torch CPU threads (default 1: per-request latency; at most "
        f"{_MAX_THREADS_PER_CORE} per CPU core)",
    )
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON")
    parser.add_argument("--plot", metavar="OUT.png", help="write latency percentiles vs k")
    parser.add_argument(
        "--save-queries",
        metavar="OUT.jsonl",
        help="write the query set used (e.g. a converted TREC set)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="record every timed call as a rerank span (configure() from OTEL_*; also on "
        "when an OTLP endpoint or OTEL_RERANK_TRACES_FILE is set)",
    )
    parser.set_defaults(handler=run)


def max_threads() -> int:
    """The largest ``--threads`` accepted on this machine."""
    return min(_MAX_THREADS_PER_CORE * (os.cpu_count() or 1), _MAX_THREADS)


def _int_list(text: str, what: str) -> list[int]:
    values = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:  # also a number of more than 4300 digits
            raise UsageError(f"{what} must be comma-separated integers, got {text!r}") from None
        if value <= 0:
            raise UsageError(f"{what} must be positive, got {value}")
        values.append(value)
    return sorted(set(values))


def _check(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    ks = _int_list(args.k, "--k")
    batch_sizes = _int_list(args.batch_size, "--batch-size")
    check_budget("--budget-ms", args.budget_ms)
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {args.repeats}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must not be negative, got {args.warmup}")
    if not 1 <= args.threads <= max_threads():
        raise UsageError(
            f"--threads must be between 1 and {max_threads()} ({_MAX_THREADS_PER_CORE} per "
            f"CPU core, at most {_MAX_THREADS}), got {args.threads}"
        )
    if args.max_queries is not None and args.max_queries < 1:
        raise UsageError(f"--max-queries must be at least 1, got {args.max_queries}")
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        raise UsageError(f"--device must be cpu or cuda, got {args.device!r}")
    # Fail before a long run, not after it.
    if args.json:
        check_output("--json", args.json)
    if args.save_queries:
        check_output("--save-queries", args.save_queries)
    if args.plot:
        check_output("--plot", args.plot, image=True)
    if args.queries and not Path(args.queries).is_file():
        raise UsageError(f"no such file: {args.queries}")
    if args.trec and not Path(args.trec).is_dir():
        raise UsageError(f"no such directory: {args.trec}")
    return ks, batch_sizes


def load_cross_encoder(name: str | None, device: str) -> tuple[Any, str, str | None]:
    """The CrossEncoder to benchmark, its display name and the notice its numbers need.

    The notice is :data:`~otel_rerank.models.PROXY_NOTICE` for the proxy,
    :data:`~otel_rerank.models.UNTRAINED_HEAD_NOTICE` for a checkpoint without a trained
    scoring head (an embedding model), else ``None``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from otel_rerank import models
    from otel_rerank._values import model_name_from_path

    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    try:
        if name is None:
            name = str(models.proxy_cross_encoder_path())
        try:  # the model loader's own progress bar is noise in a benchmark's output
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
            pass
        model = models.load_cross_encoder(name, device=device)
    except models.ModelUnavailableError as exc:
        raise UsageError(str(exc)) from None
    notice = None
    if Path(name).expanduser().is_dir() and models.is_proxy(Path(name).expanduser()):
        notice = models.PROXY_NOTICE
    elif models.has_untrained_head(model):
        notice = models.UNTRAINED_HEAD_NOTICE
    return model, model_name_from_path(name), notice


def _query_set(args: argparse.Namespace, max_k: int) -> Any:
    from otel_rerank import bench
    from otel_rerank.models import ModelUnavailableError

    try:
        if args.queries:
            return bench.load_jsonl(args.queries).head(args.max_queries)
        if args.trec:
            from sentence_transformers import SentenceTransformer

            from otel_rerank.models import embedding_model_path

            encoder = SentenceTransformer(str(embedding_model_path()), device="cpu")

            def embed(texts: Any) -> Any:
                return encoder.encode(list(texts), batch_size=64, normalize_embeddings=True)

            limit = args.max_queries if args.max_queries is not None else 40
            return bench.trec_query_set(args.trec, max_k, embed, max_queries=limit)
        return bench.bundled_query_set().head(args.max_queries)
    except (bench.QuerySetError, ModelUnavailableError) as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Handle ``otel-rerank bench``."""
    ks, batch_sizes = _check(args)
    # A missing optional dependency is reported before any work (see cli.main); torch first,
    # since no extra installs it (and sentence-transformers would pull its CUDA build).
    for module in ("torch", "sentence_transformers", "tqdm"):
        importlib.import_module(module)
    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    query_set = _query_set(args, max(ks))
    model, name, notice = load_cross_encoder(args.model, args.device)

    import otel_rerank
    from otel_rerank import bench
    from otel_rerank.models import PROXY_NOTICE

    if args.save_queries:
        try:
            query_set.to_jsonl(args.save_queries)
        except OSError as exc:
            raise UsageError(f"cannot write {args.save_queries}: {exc.strerror}") from None
        print(f"saved the query set to {args.save_queries}", file=sys.stderr)
    # Timed calls become rerank spans when the app's environment configures tracing.
    configured = None
    if args.trace or any(os.environ.get(name) for name in _TRACING_ENV):
        try:
            configured = otel_rerank.configure()
        except otel_rerank.ConfigurationError as exc:
            raise UsageError(str(exc)) from None
    was_instrumented = "sentence_transformers" in otel_rerank.instrumented_libraries()
    if not was_instrumented:
        otel_rerank.instrument(libraries=["sentence_transformers"])
    measured, _notes = bench.clip_ks(ks, query_set.max_candidates)
    calls_per_cell = args.warmup + args.repeats * len(query_set.queries)
    total = len(measured) * len(batch_sizes) * calls_per_cell
    bar = tqdm(
        total=total,
        desc="bench",
        unit="call",
        file=sys.stderr,
        disable=True if args.no_progress else None,
    )
    try:
        result = bench.run_bench(
            model, query_set, ks, batch_sizes,
            repeats=args.repeats, warmup=args.warmup, budget_ms=args.budget_ms,
            model_name=name, proxy=notice == PROXY_NOTICE, notice=notice, progress=bar.update,
            settings={"device": args.device, "threads": args.threads},
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
        if not was_instrumented:
            otel_rerank.uninstrument()
        if configured is not None:
            configured.force_flush()
    print(bench.format_result(result))
    if configured is not None and configured.traces_file:
        print(f"spans: {configured.traces_file} (otel-rerank report {configured.traces_file})")
    try:
        if args.json:
            text = json.dumps(result.to_dict(), indent=2) + "\n"
            Path(args.json).write_text(text, encoding="utf-8")
            print(f"wrote {args.json}")
        if args.plot:
            bench.plot_bench(result, args.plot)
            print(f"wrote {args.plot}")
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or 'output'}: {exc.strerror}") from None
    return 0
