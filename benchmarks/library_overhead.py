"""Per-call overhead of otel-rerank on every instrumented library call, and of its peers.

For each instrumented call (sentence-transformers ``encode`` with the real all-MiniLM-L6-v2,
``CrossEncoder.predict`` and ``rank`` on 50 pairs, faiss ``search``, chroma ``query``
in memory, qdrant ``query_points`` in local mode, and cohere ``rerank``, openai chat and
embeddings and anthropic messages against in-process mock transports), these cases run in
one worker process, alternating every few dozen calls (fewer for slow calls), and that in
``--processes`` fresh processes one after the other (see "Several processes" below):

* ``bare``    the uninstrumented call: every overhead is measured from it;
* ``A/A``     the bare call again, timed as a second case: its "overhead" is pure noise,
              and its spread over blocks says how large a difference is signal;
* ``floor``   a hand-written ``tracer.start_as_current_span`` around the same call, with
              the same span name, kind, attributes and events ours wrote, and the same
              histogram records, all precomputed (taken from a span and metric points ours
              actually recorded): the least any instrumentation recording that much costs.
              Its span starts with the attributes the arguments give; those read from the
              result (``FROM_THE_RESULT``: the response's, the top score, the reranked
              documents...) it writes after the call, as any instrumentation must; its
              metric points are recorded while its span is current, as ours are (each
              one's exemplar points at the span);
* ``ours``    ``otel_rerank.instrument(...)`` with an SDK ``TracerProvider`` +
              ``BatchSpanProcessor`` to an exporter that only counts, and a
              ``MeterProvider`` with an in-memory reader;
* ``no SDK``  ours with no SDK configured (the API's default providers).

Each case runs ``calls`` timed calls per block (each call timed on its own, process CPU
time; see ``_timing.py``), and a block sums a case up by the 10th percentile of its calls;
the blocks repeat with the cases in rotating order, and each process's number is a median
over its blocks of the per-block value. Targets (issue 16): ours ≤ 1.3 × the floor's
overhead on every row, and ≤ 3 µs with no SDK.

Several processes. On a quiet machine the same code's ours/floor moves by up to ±0.3 from
one process to the next (faiss 1.34, 0.80 and 1.15 in three runs; ``encode([])`` 0.81,
1.67 and 1.45), while within a process the A/A spread is a fraction of that: each process
lays its code and data out differently, and what the same bytecodes cost right after a
forward pass or a native query depends on it; every block of one process shares that
layout, so more blocks in one process cannot average it out. So the measurement runs in
``--processes`` fresh worker processes (default 3: the fewest whose median sets an outlying
process aside), one after the other, never two at once (each timed process needs the
cores to itself). Each one is the whole single-process measurement (set-up, checks,
blocks) and reports its own medians; the parent prints per row each process's ours/floor,
their median (the verdict against 1.3), the overheads' medians over processes, and the
A/A control both within a process (the median of the processes' interquartile ranges) and
across processes (max - min of their A/A medians); ``--json`` keeps every process's
numbers (``processes``) beside the medians. The time: the default was one process of 15
blocks with calls filling 150 ms per case per block (``--peers none``: 231 s of CPU, 4 min
6 s); it is now 3 processes of 7 blocks with 100 ms (331 s of CPU, 1.4x: 21 blocks of
~13 s and three set-ups of ~17 s instead of 15 blocks of ~14 s and one). Half of a
block is ``encode`` of 32 passages, held at its 5-call minimum whatever the budget, and
the fastest rows run the 200-call cap either way, so the shorter budget only thins the
rows in between. Fewer blocks per process, more processes: the spread between processes
(±0.3 in ours/floor) is what moves the verdict, and the inner-timed A/A interquartile
range within one is already 1-11 % of the floor, so a process's 7th block adds less than
a second process does. 7 blocks per process is the issue's minimum for a per-call median;
``--blocks 5`` brings the run back to about the old one's time (15 blocks in all), and
``--processes 1 --blocks 15 --budget-ms 150`` is the old run itself.

What the no-SDK column measures. With no SDK the patched method (the plain function the
patcher installs) asks "no SDK configured?" itself, in three attribute reads, and calls the
original; compiled (``_speedups.Replacement``), no bytecode of ours runs, and the answer is
kept while the three dicts read are unchanged (a line of each read). Right after a forward
pass (or chroma's query) every function and object a call touches is cold, about a
microsecond each, so until stop 21, when the same check ran behind the bound method,
``Method.wrapper``, ``_span.records`` and ``_telemetry.current``, it read +10 µs on chroma
and +10-28 µs on the model rows, inner-timed; 2-7 µs there from stop 21, mostly within the
A/A spread, and -1.2 to +4.4 µs over four runs since the answer is kept (stop 28, docs/
performance.md); 0-4 µs in ``cold_call.py``'s ``no SDK`` case, which switches nothing
between calls (here the case switches ours' patches in and out around each block).
``no_sdk_split.py`` splits it by layer.

Inner-timed estimate. On the rows whose own work dwarfs the overheads (a model's forward
pass, chroma's segment query, an SDK's request round trip), the 10th percentile still moves
by more than the overheads from block to block. So each such row declares its *inner work*
(``Row.inner``): library functions that run inside the call, that ours neither wraps nor
calls, and inside which nothing of ours runs, e.g. sentence-transformers' inference loop
``_inference`` (tokenizing and forward passes), chroma's server-side ``_query``, the
openai/anthropic client's ``request`` (and openai's body ``maybe_transform``).
Before any case is set up, a timing shim (``_timing.InnerWork``) replaces each of them,
once, for every case alike, bare included; it adds up each call's process CPU time inside
them. Every call then also yields ``outer − inner`` (its CPU time outside the inner work),
summed up per block by its 10th percentile like the plain number, and overhead = case − bare
per block again. Legitimate because (1) the shim's own cost is in every case, bare included,
and cancels like the clock's; (2) ours' and the floor's code runs wholly outside the inner
work, so everything they add stays in ``outer − inner``; (3) ours does not call the inner
work itself, so none of its own time is subtracted. (2) and (3) are checked at set-up, on
the call whose recording the floor copies: while the inner work runs, a profile hook
records every Python function called, and none may come from ``otel_rerank`` or
``opentelemetry`` (API or SDK); and the inner work is entered as many times in ours' and
the floor's call as in the bare call. Both estimates come from the same timed calls and
both are printed (``--json`` carries both). A shim on an inherited method (an instance's,
or a subclass's) looks the method up on every call, so that an instrumentation patching
the defining class later still runs, inside the shim, where the check sees it.

Peers run on the calls they instrument, each in its own virtualenv ``.venv-bench-<name>``
(made on first use; it sees this environment's packages, torch included, and adds the
peer's on top): TraceVerde (``genai-otel-instrument``), OpenLLMetry's chromadb, qdrant and
cohere instrumentations, and OpenInference's cohere, openai and anthropic ones. A worker
process in that venv holds the bare call, the floor, ours and the peer (its patches
switched in and out, see ``_patches.py``), so each peer ratio (peer overhead / ours) is
measured within one process, on both estimates, in ``--processes`` such workers one after
the other (the row's peer/ours is the median of theirs, "ours below" counts the blocks of
all). The floor beside the peer (peer/floor, likewise) tells a row that can be won from one
that cannot: where a peer costs less than the floor, the SDK alone recording what ours
records costs more than the peer's whole call, so no instrumentation recording that much
can be below it, and the row measures how much each records, not how well it is wrapped
(the report names those rows). The worker
installs the same inner-work shims before any instrumentation and runs the same set-up
check on bare's, ours' and the peer's call (instrumentation here also meaning the peer's
own packages). Bare or ours failing it stops the worker, as in the main workers (a main
worker failing stops the run: exit 1 and why); the peer failing it (its code running
inside the inner work, or entering it a different number of times, at set-up or over the
timed calls, in any of its processes) only puts that row on the plain estimate for that
peer, and the table prints "plain only" and why. Run::

    .venv/bin/python benchmarks/library_overhead.py [--quick] [--processes 3] [--blocks 7]
        [--calls N | --budget-ms 100] [--rows encode-empty,predict-50,...]
        [--peers traceverde,openllmetry,openinference|none] [--traces-only] [--json OUT.json]
    .venv/bin/python benchmarks/library_overhead.py --profile [--rows ...]  # where ours' time goes

or ``make bench-libraries``. ``--traces-only`` gives ours and the peers a TracerProvider
alone, as an application that set up tracing alone: no one records a metric point (ours
sees no real meter provider, ``Telemetry.metering``), nor does the floor; it compares ours
with peers that record no metric on what both record (the ours/floor verdict is the
default setup's, with the histogram every call records). ``--quick`` is a smoke run (1
process, 3 blocks of 3 calls; peers only where their venv is already built).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final, NoReturn

from _patches import Patches  # benchmarks/ is on sys.path as a script
from _timing import InnerWork, quantile_us, time_calls, time_calls_net
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_rerank import semconv

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The anthropic SDK traces its own calls to the global tracer provider (which the peers'
# workers set): the same span in every case, bare included, and a peer that sees it stands
# down. Off, so that each case measures the instrumentation alone.
os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")

ROOT = Path(__file__).resolve().parents[1]

#: Packages whose module and class attributes an instrumentation may patch.
PATCHED_PACKAGES = (
    "sentence_transformers",
    "faiss",
    "chromadb",
    "qdrant_client",
    "cohere",
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
)
#: The per-block statistic of a case's individually timed calls (see ``_timing.py``).
QUANTILE = 0.1
#: Calls per case per block: enough to fill ``--budget-ms`` of bare calls, within limits.
MIN_CALLS, MAX_CALLS = 5, 200
TARGET_RATIO = 1.3
#: The default run: see the module docstring for why these three.
DEFAULT_PROCESSES, DEFAULT_BLOCKS, DEFAULT_BUDGET_MS = 3, 7, 100.0
#: ``--worker``'s name for the bare/A-A/floor/ours/no-SDK measurement (the others: peers).
MAIN_WORKER = "main"
TARGET_NO_SDK_US = 3.0

QUERY = "what holds a wing up in steady level flight?"
_WORDS = [
    *("lift", "drag", "wing", "boundary", "layer", "pressure", "flow", "airfoil", "thrust"),
    *("weight", "speed", "shock", "wave", "turbulence", "laminar", "separation", "vortex"),
    *("stall", "angle", "attack", "chord", "span", "camber", "surface", "heat", "transfer"),
    *("supersonic", "subsonic", "nozzle", "compressor", "blade", "tip", "wake", "density"),
]


def _passage(i: int, words: int = 30) -> str:
    return " ".join(_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(words)) + "."


PASSAGES_32 = [_passage(i, 16) for i in range(32)]
DOCUMENTS_50 = [_passage(i, 20) for i in range(50)]
DIM = 384


# -- the calls ------------------------------------------------------------------------------
#: Where a row's inner work is: (class, module or instance, attribute name) pairs.
InnerTargets = Callable[["Fixtures"], Sequence[tuple[Any, str]]]


@dataclass(frozen=True)
class Row:
    """One instrumented call: ``make`` builds it (clients anew, models shared) as a callable.

    ``inner`` names the library work inside the call that the inner-timed estimate leaves
    out (see the module docstring); None keeps the row on the plain estimate alone.
    """

    key: str
    label: str
    library: str  # otel_rerank.instrument(libraries=[...]) name
    make: Callable[[Fixtures], Callable[[], object]]
    inner: InnerTargets | None = None


class Fixtures:
    """Models, indexes and collections the rows share, each built on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @cached_property
    def minilm(self) -> Any:
        from sentence_transformers import SentenceTransformer

        from otel_rerank.models import embedding_model_path

        return SentenceTransformer(str(embedding_model_path()), device="cpu")

    @cached_property
    def tiny_cross_encoder(self) -> Any:
        from sentence_transformers import CrossEncoder

        # Test-only code, not in the wheel: this script runs from the repository.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests._tiny_model import build_tiny_cross_encoder

        path = build_tiny_cross_encoder(self.workdir / "tiny-cross-encoder")
        return CrossEncoder(str(path), device="cpu")

    @cached_property
    def proxy_cross_encoder(self) -> Any:
        from sentence_transformers import CrossEncoder

        from otel_rerank.models import proxy_cross_encoder_path

        return CrossEncoder(str(proxy_cross_encoder_path()), device="cpu")

    @cached_property
    def vectors(self) -> Any:
        import numpy as np

        rng = np.random.default_rng(0)
        x = rng.standard_normal((1000, DIM)).astype("float32")
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    @cached_property
    def faiss_index(self) -> Any:
        import faiss

        index = faiss.IndexFlatIP(DIM)
        index.add(self.vectors)
        return index

    @cached_property
    def chroma_collection(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
        collection = client.get_or_create_collection(
            "bench-docs", embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        n = 500
        collection.add(
            ids=[f"d{i}" for i in range(n)],
            documents=[_passage(i, 12) for i in range(n)],
            embeddings=self.vectors[:n].tolist(),
        )
        return collection

    @cached_property
    def qdrant(self) -> Any:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(":memory:")
        client.create_collection(
            "bench-docs",
            vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        )
        n = 500
        client.upsert(
            "bench-docs",
            points=[
                models.PointStruct(id=i, vector=self.vectors[i].tolist(), payload={"i": i})
                for i in range(n)
            ],
        )
        return client


def _encode(texts: Any) -> Callable[[Fixtures], Callable[[], object]]:
    def make(fx: Fixtures) -> Callable[[], object]:
        model = fx.minilm
        return lambda: model.encode(texts)

    return make


def _predict(fx: Fixtures) -> Callable[[], object]:
    model = fx.tiny_cross_encoder
    pairs = [(QUERY, d) for d in DOCUMENTS_50]
    return lambda: model.predict(pairs)


def _predict_proxy(fx: Fixtures) -> Callable[[], object]:
    model = fx.proxy_cross_encoder
    pairs = [(QUERY, d) for d in DOCUMENTS_50]
    return lambda: model.predict(pairs)


def _rank(fx: Fixtures) -> Callable[[], object]:
    model = fx.tiny_cross_encoder
    return lambda: model.rank(QUERY, DOCUMENTS_50)


def _faiss(fx: Fixtures) -> Callable[[], object]:
    index, query = fx.faiss_index, fx.vectors[3:4]
    return lambda: index.search(query, 10)


def _chroma(fx: Fixtures) -> Callable[[], object]:
    collection, query = fx.chroma_collection, [fx.vectors[3].tolist()]
    return lambda: collection.query(query_embeddings=query, n_results=10)


def _qdrant(fx: Fixtures) -> Callable[[], object]:
    client, query = fx.qdrant, fx.vectors[3].tolist()
    return lambda: client.query_points("bench-docs", query=query, limit=10)


_COHERE_BODY = json.dumps(
    {
        "id": "rerank-bench",
        "results": [{"index": i, "relevance_score": 1.0 - i / 50} for i in range(10)],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }
).encode()


def _cohere(fx: Fixtures) -> Callable[[], object]:
    import cohere
    import httpx

    def handler(request: Any) -> Any:
        return httpx.Response(
            200, content=_COHERE_BODY, headers={"content-type": "application/json"}
        )

    client = cohere.ClientV2(
        api_key="sk-bench", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    return lambda: client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCUMENTS_50, top_n=10)


def _openai(operation: str) -> Callable[[Fixtures], Callable[[], object]]:
    def make(fx: Fixtures) -> Callable[[], object]:
        import openai_overhead  # the same mock client as the OpenAI benchmark

        client = openai_overhead._client()
        if operation == "chat":
            messages = openai_overhead._MESSAGES
            return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        texts = openai_overhead._TEXTS
        return lambda: client.embeddings.create(model="text-embedding-3-small", input=texts)

    return make


_ANTHROPIC_BODY = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench-20260101",
        "content": [{"type": "text", "text": "Lift holds the wing up."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 7},
    }
).encode()


def _anthropic(fx: Fixtures) -> Callable[[], object]:
    import anthropic
    from anthropic import _base_client

    http: Any = getattr(_base_client, "httpx2", None) or getattr(_base_client, "httpx", None)

    def handler(request: Any) -> Any:
        return http.Response(
            200, content=_ANTHROPIC_BODY, headers={"content-type": "application/json"}
        )

    client = anthropic.Anthropic(
        api_key="sk-ant-bench",
        base_url="http://bench.invalid",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    messages: Any = [{"role": "user", "content": "What is the lift of a wing?"}]
    return lambda: client.messages.create(
        model="claude-bench", max_tokens=256, messages=messages, system="Answer briefly."
    )


# -- the inner work of each call ------------------------------------------------------------
# Ours wraps encode, predict and rank only. Inside them, sentence-transformers runs its
# local inference loop, ``_inference``: the device resolution (it walks the parameters),
# eval() (the modules), the length sort, tokenizing, the forward pass per batch and the
# scores' or embeddings' stacking. ``rank`` reaches it through ``predict`` (whose wrapper's
# cheap nested path stays outside). An instance attribute on the shared model serves
# every case (``self._inference`` is looked up on the instance first).
_ST_INNER = ("_inference",)


def _model_inner(fixture: str) -> InnerTargets:
    def targets(fx: Fixtures) -> Sequence[tuple[Any, str]]:
        model = getattr(fx, fixture)
        return [(model, name) for name in _ST_INNER]

    return targets


def _faiss_inner(fx: Fixtures) -> Sequence[tuple[Any, str]]:
    # faiss' Python ``search`` (the one ours wraps) checks the arguments and calls the
    # C++ search, which SWIG exposes as ``search_c`` on each index class.
    return [(type(fx.faiss_index), "search_c")]


def _chroma_inner(fx: Fixtures) -> Sequence[tuple[Any, str]]:
    # Collection.query (ours' wrapper) validates the request, asks the server API (the
    # in-process Rust bindings) for the results and reshapes them: the three steps.
    collection = fx.chroma_collection
    return [
        (collection, "_validate_and_prepare_query_request"),
        (collection._client, "_query"),
        (collection, "_transform_query_response"),
    ]


def _qdrant_inner(fx: Fixtures) -> Sequence[tuple[Any, str]]:
    return [(fx.qdrant._client, "query_points")]  # local mode's engine behind QdrantClient


def _cohere_inner(fx: Fixtures) -> Sequence[tuple[Any, str]]:
    from cohere.v2.raw_client import RawV2Client

    return [(RawV2Client, "rerank")]  # V2Client.rerank's HTTP round trip and parsing


def _openai_inner(operation: str) -> InnerTargets:
    def targets(fx: Fixtures) -> Sequence[tuple[Any, str]]:
        import openai
        from openai.resources import embeddings
        from openai.resources.chat.completions import completions

        # create() builds the body (maybe_transform, as imported by the resource's module)
        # and hands it to the client's request(): build, send, parse the response. A class
        # attribute, so the clients each case builds all have it.
        module = completions if operation == "chat" else embeddings
        return [(module, "maybe_transform"), (openai.OpenAI, "request")]

    return targets


def _anthropic_inner(fx: Fixtures) -> Sequence[tuple[Any, str]]:
    import anthropic

    return [(anthropic.Anthropic, "request")]


ST = "sentence_transformers"
ROWS: dict[str, Row] = {
    row.key: row
    for row in (
        Row("encode-empty", "ST encode([]) MiniLM-L6", ST, _encode([]), _model_inner("minilm")),
        Row(
            "encode-query",
            "ST encode(1 query) MiniLM-L6",
            ST,
            _encode(QUERY),
            _model_inner("minilm"),
        ),
        Row(
            "encode-32",
            "ST encode(32 passages) MiniLM-L6",
            ST,
            _encode(PASSAGES_32),
            _model_inner("minilm"),
        ),
        Row(
            "predict-50",
            "CE predict(50 pairs) tiny",
            ST,
            _predict,
            _model_inner("tiny_cross_encoder"),
        ),
        Row("rank-50", "CE rank(50 docs) tiny", ST, _rank, _model_inner("tiny_cross_encoder")),
        Row(
            "predict-50-proxy",
            "CE predict(50 pairs) L-6 proxy",
            ST,
            _predict_proxy,
            _model_inner("proxy_cross_encoder"),
        ),
        Row("faiss", "faiss IndexFlatIP.search k=10", "faiss", _faiss, _faiss_inner),
        Row("chroma", "chroma Collection.query n=10", "chromadb", _chroma, _chroma_inner),
        Row("qdrant", "qdrant query_points limit=10", "qdrant_client", _qdrant, _qdrant_inner),
        Row("cohere", "cohere v2 rerank(50 docs)", "cohere", _cohere, _cohere_inner),
        Row(
            "openai-chat",
            "openai chat.completions.create",
            "openai",
            _openai("chat"),
            _openai_inner("chat"),
        ),
        Row(
            "openai-embeddings",
            "openai embeddings.create",
            "openai",
            _openai("embeddings"),
            _openai_inner("embeddings"),
        ),
        Row("anthropic", "anthropic messages.create", "anthropic", _anthropic, _anthropic_inner),
    )
}
#: The proxy cross-encoder row is slow (a 6-layer model on 50 pairs) and opt-in.
DEFAULT_ROWS = [key for key in ROWS if key != "predict-50-proxy"]
#: What ``--profile`` looks at unless ``--rows`` says otherwise.
PROFILE_ROWS = ("encode-empty", "predict-50")


# -- peers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    label: str
    distributions: tuple[str, ...]
    modules: tuple[str, ...]  # imported to check that the venv is complete
    rows: tuple[str, ...]  # the rows it instruments (others are not run in its worker)


PEERS: dict[str, Peer] = {
    "traceverde": Peer(
        "TraceVerde",
        ("genai-otel-instrument==1.42.0",),
        ("genai_otel",),
        (
            "encode-empty",
            "encode-query",
            "encode-32",
            "faiss",
            "chroma",
            "qdrant",
            "cohere",
            "openai-chat",
            "openai-embeddings",
            "anthropic",
        ),
    ),
    "openllmetry": Peer(
        "OpenLLMetry",
        (
            "opentelemetry-instrumentation-chromadb==0.62.4",
            "opentelemetry-instrumentation-qdrant==0.62.4",
            "opentelemetry-instrumentation-cohere==0.62.4",
        ),
        (
            "opentelemetry.instrumentation.chromadb",
            "opentelemetry.instrumentation.qdrant",
            "opentelemetry.instrumentation.cohere",
        ),
        ("chroma", "qdrant", "cohere"),
    ),
    "openinference": Peer(
        "OpenInference",
        (
            "openinference-instrumentation-cohere==0.1.15",
            "openinference-instrumentation-openai==0.1.66",
            "openinference-instrumentation-anthropic==3.1.0",
        ),
        (
            "openinference.instrumentation.cohere",
            "openinference.instrumentation.openai",
            "openinference.instrumentation.anthropic",
        ),
        ("cohere", "openai-chat", "openai-embeddings", "anthropic"),
    ),
}


class _SkipDependencyCheck:
    """An ``opentelemetry-instrumentation`` instrumentor, instrumented despite its version pins."""

    def __init__(self, instrumentor: Any) -> None:
        self.instrumentor = instrumentor

    def instrument(self) -> None:
        self.instrumentor.instrument(skip_dep_check=True)


def _instrument_peer(peer: str, rows: Sequence[Row]) -> str:
    """Install ``peer``'s instrumentation for the libraries of ``rows``; its version."""
    libraries = {row.library for row in rows}
    if peer == "traceverde":
        from genai_otel.config import OTelConfig
        from genai_otel.instrumentors.anthropic_instrumentor import AnthropicInstrumentor
        from genai_otel.instrumentors.cohere_instrumentor import CohereInstrumentor
        from genai_otel.instrumentors.openai_instrumentor import OpenAIInstrumentor
        from genai_otel.instrumentors.sentence_transformers_instrumentor import (
            SentenceTransformersInstrumentor,
        )
        from genai_otel.mcp_instrumentors.vector_db_instrumentor import VectorDBInstrumentor

        config = OTelConfig()
        by_library: dict[str, Any] = {
            ST: SentenceTransformersInstrumentor,
            "cohere": CohereInstrumentor,
            "openai": OpenAIInstrumentor,
            "anthropic": AnthropicInstrumentor,
        }
        for library, cls in by_library.items():
            if library in libraries:
                cls().instrument(config)
        if libraries & {"faiss", "chromadb", "qdrant_client"}:
            VectorDBInstrumentor(config).instrument()
        return importlib.metadata.version("genai-otel-instrument")
    instrumentors: list[Any] = []
    if peer == "openllmetry":
        if "chromadb" in libraries:
            from opentelemetry.instrumentation.chromadb import ChromaInstrumentor

            instrumentors.append(ChromaInstrumentor())
        if "qdrant_client" in libraries:
            from opentelemetry.instrumentation.qdrant import QdrantInstrumentor

            instrumentors.append(QdrantInstrumentor())
        if "cohere" in libraries:
            from opentelemetry.instrumentation.cohere import CohereInstrumentor as TLCohere

            # It declares cohere < 6 and, left to its dependency check, patches nothing on
            # the cohere installed here; its wrappers are measured with the check skipped.
            instrumentors.append(_SkipDependencyCheck(TLCohere()))
        version = importlib.metadata.version("opentelemetry-instrumentation-chromadb")
    else:
        if "cohere" in libraries:
            from openinference.instrumentation.cohere import CohereInstrumentor as OICohere

            instrumentors.append(OICohere())
        if "openai" in libraries:
            from openinference.instrumentation.openai import OpenAIInstrumentor as OIOpenAI

            instrumentors.append(OIOpenAI())
        if "anthropic" in libraries:
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as OIAnthropic

            instrumentors.append(OIAnthropic())
        version = importlib.metadata.version("openinference-instrumentation")
    for instrumentor in instrumentors:
        instrumentor.instrument()
    return version


# -- the SDK, the floor ---------------------------------------------------------------------
class _CountingExporter(SpanExporter):
    """Counts what each phase exported (and keeps the spans while ``keep`` is a list)."""

    def __init__(self) -> None:
        self.keep: list[Any] | None = None
        self.reset()

    def reset(self) -> None:
        self.spans = 0
        self.names: Counter[str] = Counter()
        self.attribute_counts: Counter[int] = Counter()

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        for span in spans:
            self.spans += 1
            self.names[span.name] += 1
            self.attribute_counts[len(span.attributes or {})] += 1
            if self.keep is not None:
                self.keep.append(span)
        return SpanExportResult.SUCCESS


@dataclass
class Sdk:
    tracer_provider: Any
    meter_provider: Any
    reader: Any
    exporter: _CountingExporter


def _make_sdk() -> Sdk:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = _CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Sdk(tracer_provider, MeterProvider(metric_readers=[reader]), reader, exporter)


def sdk_and_ours(
    libraries: list[str], peer: str | None, traces_only: bool = False
) -> tuple[Sdk, Callable[[], None]]:
    """A fresh SDK (also made the global providers when a peer runs: peers record to those)
    and the call that instruments ours' ``libraries`` with it.

    ``traces_only``: ours and the peer get the tracer provider only, as in an application
    that set up tracing alone; neither records a metric point (nor, copying ours, does the
    floor). The meter provider is made all the same, unused, so that the checks that read
    it find nothing.
    """
    import otel_rerank

    sdk = _make_sdk()
    meter_provider = None if traces_only else sdk.meter_provider
    if peer is not None:
        from opentelemetry import metrics, trace

        trace.set_tracer_provider(sdk.tracer_provider)
        if meter_provider is not None:
            metrics.set_meter_provider(meter_provider)

    def ours_with_sdk() -> None:
        otel_rerank.instrument(
            tracer_provider=sdk.tracer_provider,
            meter_provider=meter_provider,
            capture_content=False,
            libraries=libraries,
        )

    return sdk, ours_with_sdk


def _metric_state(reader: Any, scope: str) -> dict[tuple[str, tuple[Any, ...]], dict[str, Any]]:
    """Every histogram and counter point ``scope`` recorded so far, by (name, attributes)."""
    from opentelemetry.sdk.metrics.export import Histogram, Sum

    state: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != scope:
                continue
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    key = (metric.name, tuple(sorted(attributes.items())))
                    if isinstance(metric.data, Histogram):
                        state[key] = {
                            "kind": "histogram",
                            "unit": metric.unit,
                            "bounds": list(point.explicit_bounds),
                            "count": point.count,
                            "sum": point.sum,
                            "attributes": attributes,
                        }
                    elif isinstance(metric.data, Sum):
                        state[key] = {
                            "kind": "counter",
                            "unit": metric.unit,
                            "count": 1,
                            "sum": point.value,
                            "attributes": attributes,
                        }
    return state


#: The attributes ours reads from a call's result (the rest come from its arguments, the
#: instance and the configuration): the floor writes them after the call, as any
#: instrumentation must, and the others when its span starts.
FROM_THE_RESULT: Final = (
    "gen_ai.response.",
    "gen_ai.usage.",
    "openai.response.",
    "llm.token_count.",
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.LLM_OUTPUT_MESSAGES,
    semconv.OUTPUT_VALUE,
    semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
    semconv.RAG_RETRIEVAL_RETURNED_COUNT,
    semconv.RAG_RETRIEVAL_TOP_SCORE,
    semconv.RAG_RERANK_TOP_SCORE,
    semconv.RAG_RERANK_TOP1_CHANGED,
    semconv.RAG_RERANK_KENDALL_TAU,
    semconv.RERANKER_OUTPUT_DOCUMENTS + ".",
)


@dataclass
class Recording:
    """What ours recorded for one call: spans root first, and metric records."""

    spans: list[tuple[str, Any, dict[str, Any], list[tuple[str, dict[str, Any]]]]]
    records: list[dict[str, Any]] = field(default_factory=list)

    def split(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Span ``index``'s attributes as (known from the arguments, read from the result)."""
        attributes = self.spans[index][2]
        later = {k: v for k, v in attributes.items() if k.startswith(FROM_THE_RESULT)}
        return {k: v for k, v in attributes.items() if k not in later}, later

    @property
    def attribute_count(self) -> int:
        return sum(len(attributes) for _, _, attributes, _ in self.spans)

    def summary(self) -> dict[str, Any]:
        return {
            "spans": [name for name, *_ in self.spans],
            "attribute_count": self.attribute_count,
            "events": sum(len(events) for *_, events in self.spans),
            "metric_records": sorted((r["name"], r["times"]) for r in self.records),
        }


def _record_once(call: Callable[[], object], sdk: Sdk, scope: str = "otel_rerank") -> Recording:
    """One call: the spans it produced and the metric records of meter ``scope``."""
    sdk.tracer_provider.force_flush()
    before = _metric_state(sdk.reader, scope)
    sdk.exporter.keep = []
    call()
    sdk.tracer_provider.force_flush()
    spans, sdk.exporter.keep = sdk.exporter.keep, None
    after = _metric_state(sdk.reader, scope)
    parent_of = {s.context.span_id: s.parent.span_id if s.parent else None for s in spans}

    def depth(span: Any) -> int:
        steps, parent = 0, parent_of[span.context.span_id]
        while parent in parent_of:
            steps, parent = steps + 1, parent_of[parent]
        return steps

    spans.sort(key=depth)  # root first
    recording = Recording(
        [
            (
                span.name,
                span.kind,
                dict(span.attributes or {}),
                [(event.name, dict(event.attributes or {})) for event in span.events],
            )
            for span in spans
        ]
    )
    for key, point in after.items():
        previous = before.get(key, {"count": 0, "sum": 0})
        times = point["count"] - previous["count"]
        if point["kind"] == "counter":
            times = 1 if point["sum"] != previous["sum"] else 0
        if times <= 0:
            continue
        value = (point["sum"] - previous["sum"]) / times
        recording.records.append({"name": key[0], **point, "times": times, "value": value})
    return recording


def _floor(call: Callable[[], object], recording: Recording, sdk: Sdk) -> Callable[[], object]:
    """The same call inside a hand-written span (tree) with ours' recording, precomputed.

    Each span starts with the attributes the call's arguments give and is given those
    read from its result (``FROM_THE_RESULT``) after the call, as a hand-written
    instrumentation must: it cannot know a response before the call returns. Every metric
    point is recorded while the span is current, as ours records them (so each one's
    exemplar points at the span: the same recording).
    """
    tracer = sdk.tracer_provider.get_tracer("floor")
    meter = sdk.meter_provider.get_meter("floor")
    during: list[tuple[Callable[..., None], Any, dict[str, Any]]] = []
    after: list[tuple[Callable[..., None], dict[str, Any]]] = []  # durations
    for record in recording.records:
        if record["kind"] == "counter":
            instrument = meter.create_counter(record["name"], unit=record["unit"])
            method = instrument.add
        else:
            instrument = meter.create_histogram(
                record["name"],
                unit=record["unit"],
                explicit_bucket_boundaries_advisory=record["bounds"] or None,
            )
            method = instrument.record
        for _ in range(record["times"]):
            if record["unit"] == "s":  # a duration: measured here, after the span
                after.append((method, record["attributes"]))
            else:
                during.append((method, record["value"], record["attributes"]))
    perf_counter = time.perf_counter

    if len(recording.spans) == 1:  # the usual shape, without the generality's cost
        ((name, kind, _, events),) = recording.spans
        at_start, later = recording.split(0)

        def floor() -> object:
            start = perf_counter()
            with tracer.start_as_current_span(name, kind=kind, attributes=at_start) as span:
                result = call()
                if later:
                    span.set_attributes(later)
                for event_name, event_attributes in events:
                    span.add_event(event_name, event_attributes)
                for method, value, metric_attributes in during:
                    method(value, metric_attributes)
                elapsed = perf_counter() - start
                for method, metric_attributes in after:
                    method(elapsed, metric_attributes)
            return result

        return floor

    splits = [recording.split(index) for index in range(len(recording.spans))]

    def floor_tree() -> object:
        start = perf_counter()
        with ExitStack() as stack:
            opened = [
                (
                    stack.enter_context(
                        tracer.start_as_current_span(n, kind=k, attributes=at_start)
                    ),
                    later,
                    e,
                )
                for (n, k, _, e), (at_start, later) in zip(recording.spans, splits, strict=True)
            ]
            result = call()
            for span, later, events in opened:
                if later:
                    span.set_attributes(later)
                for event_name, event_attributes in events:
                    span.add_event(event_name, event_attributes)
            for method, value, metric_attributes in during:
                method(value, metric_attributes)
            elapsed = perf_counter() - start
            for method, metric_attributes in after:
                method(elapsed, metric_attributes)
        return result

    return floor_tree


# -- the measurement ------------------------------------------------------------------------
@dataclass
class Phase:
    """One case: how to switch it on and off, and its call for each row."""

    name: str
    on: Callable[[], None] = lambda: None
    off: Callable[[], None] = lambda: None
    calls: dict[str, Callable[[], object]] = field(default_factory=dict)


@contextmanager
def _switched_on(phase: Phase) -> Iterator[None]:
    phase.on()
    try:
        yield
    finally:
        phase.off()


def _calls_per_block(fn: Callable[[], object], budget_s: float, fixed: int | None) -> int:
    if fixed:
        return fixed
    samples: list[int] = []
    time_calls(fn, 3, samples)
    per_call_s = max(statistics.median(samples) / 1e9, 1e-7)
    return max(MIN_CALLS, min(MAX_CALLS, round(budget_s / per_call_s)))


@dataclass
class _Exported:
    """What one case exported over the whole run (all blocks, warm-up calls included)."""

    spans: int = 0
    calls: int = 0
    names: Counter[str] = field(default_factory=Counter)
    attribute_counts: Counter[int] = field(default_factory=Counter)
    inner_entries: int = 0
    metric_points: int = 0


def _run_blocks(
    rows: Sequence[Row],
    phases: Sequence[Phase],
    sdk: Sdk,
    blocks: int,
    budget_s: float,
    fixed_calls: int | None,
    inner: InnerWork,
) -> dict[str, Any]:
    """Every row's phases, alternating, ``blocks`` times; per-block 10th percentiles (µs).

    Per call both the CPU time and the CPU time outside ``inner``'s shims (the same as the
    former on a row with none installed): ``p10_us`` and ``net_p10_us``.
    """
    calls = {
        row.key: _calls_per_block(phases[0].calls[row.key], budget_s, fixed_calls) for row in rows
    }
    per_block = {row.key: {p.name: list[float]() for p in phases} for row in rows}
    net_per_block = {row.key: {p.name: list[float]() for p in phases} for row in rows}
    inner_per_block = {row.key: {p.name: list[float]() for p in phases} for row in rows}
    exported = {row.key: {p.name: _Exported() for p in phases} for row in rows}
    gc.collect()
    gc.freeze()  # a full collection over the loaded models would land in one case at random
    for block in range(blocks):
        for row_index, row in enumerate(rows):
            shift = (block + row_index) % len(phases)
            warmup = 1 if calls[row.key] < 20 else 3
            for phase in list(phases[shift:]) + list(phases[:shift]):
                fn = phase.calls[row.key]
                samples: list[int] = []
                net: list[int] = []
                entries_before = inner.entries
                points_before = _metric_points(sdk.reader)
                with _switched_on(phase):
                    for _ in range(warmup):  # method caches, after switching
                        fn()
                    time_calls_net(fn, calls[row.key], samples, net, inner)
                sdk.tracer_provider.force_flush()  # this phase's spans, not the next one's
                seen = exported[row.key][phase.name]
                seen.inner_entries += inner.entries - entries_before
                seen.metric_points += _metric_points(sdk.reader) - points_before
                seen.spans += sdk.exporter.spans
                seen.calls += warmup + calls[row.key]
                seen.names.update(sdk.exporter.names)
                seen.attribute_counts.update(sdk.exporter.attribute_counts)
                sdk.exporter.reset()
                per_block[row.key][phase.name].append(quantile_us(samples, QUANTILE))
                net_per_block[row.key][phase.name].append(quantile_us(net, QUANTILE))
                inside = [total - outside for total, outside in zip(samples, net, strict=True)]
                inner_per_block[row.key][phase.name].append(quantile_us(inside, QUANTILE))
        print(f"block {block + 1}/{blocks} done", file=sys.stderr, flush=True)
    return {
        row.key: {
            "label": row.label,
            "calls": calls[row.key],
            "p10_us": per_block[row.key],
            "net_p10_us": net_per_block[row.key],
            "inner_p10_us": inner_per_block[row.key],
            "inner_entries_per_call": {
                name: seen.inner_entries / seen.calls for name, seen in exported[row.key].items()
            },
            "spans_per_call": {
                name: seen.spans / seen.calls for name, seen in exported[row.key].items()
            },
            "metric_points_per_call": {
                name: seen.metric_points / seen.calls for name, seen in exported[row.key].items()
            },
            "span_names": {name: sorted(seen.names) for name, seen in exported[row.key].items()},
            "attribute_counts": {
                name: sorted(seen.attribute_counts) for name, seen in exported[row.key].items()
            },
        }
        for row in rows
    }


def _metric_points(reader: Any) -> int:
    """Histogram records so far on every meter (each instrumentation's, and the floor's);
    the difference over a case's calls is what those calls recorded. A counter's add is
    not counted (its point holds a sum, not a count)."""
    data = reader.get_metrics_data()
    total = 0
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    total += getattr(point, "count", 0)
    return total


class InnerWorkError(RuntimeError):
    """A row's inner work is not what the inner-timed estimate needs it to be."""


def _instrumentation_dirs(packages: Sequence[str] = ()) -> tuple[str, ...]:
    """Where the source files of ours, the OpenTelemetry API and SDK (and every other
    ``opentelemetry`` package) and of ``packages`` (a peer's) are, each with a slash."""
    import opentelemetry

    import otel_rerank

    dirs = [Path(otel_rerank.__file__).parent, *map(Path, opentelemetry.__path__)]
    for name in packages:
        module = importlib.import_module(name)
        dirs += map(Path, getattr(module, "__path__", [Path(module.__file__ or "").parent]))
    return tuple({os.path.join(str(form), "") for d in dirs for form in (d, d.resolve())})


def instrumentation_inside(files: set[str], packages: Sequence[str] = ()) -> list[str]:
    """Those of ``files`` (source files of functions that ran) that are instrumentation's:
    ours, OpenTelemetry's, or those of ``packages``."""
    dirs = _instrumentation_dirs(packages)
    return sorted(f for f in files if f.startswith(dirs))


@contextmanager
def inner_checked(
    inner: InnerWork, check: dict[str, Any] | None, case: str, packages: Sequence[str] = ()
) -> Iterator[None]:
    """Note, in ``check``, how often the code run meanwhile entered the inner work and
    which instrumentation functions (ours, OpenTelemetry's, ``packages``') ran inside it
    (nothing to note where ``check`` is None).
    """
    if check is None:
        yield
        return
    before = inner.entries
    with inner.watching() as files:
        yield
    check["entries"][case] = inner.entries - before
    check["instrumentation_inside"][case] = instrumentation_inside(files, packages)


def inner_problems(key: str, check: dict[str, Any], cases: Sequence[str]) -> list[str]:
    """Why subtracting row ``key``'s inner work would be unfair to one of ``cases``: it never
    ran in the bare call, a case entered it a different number of times than the bare call,
    or a case ran instrumentation inside it. Empty when it is fair."""
    entries = check["entries"]
    bare = entries.get("bare")
    problems = []
    if not bare:
        problems.append(f"{key}: its inner work ({', '.join(check['targets'])}) never ran")
    uneven = {case: entries.get(case) for case in cases if entries.get(case) != bare}
    if uneven:
        problems.append(
            f"{key}: inner work entered a different number of times: { ({'bare': bare, **uneven}) }"
        )
    for case in cases:
        files = check["instrumentation_inside"].get(case)
        if files:
            problems.append(f"{key}: {case} ran instrumentation inside the inner work: {files}")
    return problems


def _without(entries: dict[str, int], case: str) -> dict[str, int]:
    return {c: n for c, n in entries.items() if c != case}


def verify_inner(checks: dict[str, dict[str, Any]]) -> None:
    """Raise unless every row's inner work ran, as often in every case checked, with nothing
    of ours or of the SDK inside it: the conditions under which subtracting it is fair.
    """
    problems = [
        problem
        for key, check in checks.items()
        for problem in inner_problems(key, check, [c for c in check["entries"] if c != "bare"])
    ]
    if problems:
        raise InnerWorkError("; ".join(problems))


def _versions() -> dict[str, str]:
    found = {}
    for dist in (
        "otel-rerank",
        "opentelemetry-sdk",
        "sentence-transformers",
        "torch",
        "faiss-cpu",
        "chromadb",
        "qdrant-client",
        "cohere",
        "openai",
        "anthropic",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


def measure(
    row_keys: Sequence[str],
    blocks: int,
    budget_s: float,
    fixed_calls: int | None,
    peer: str | None = None,
    traces_only: bool = False,
) -> dict[str, Any]:
    """One process's measurement: bare/A-A/floor/ours/no-SDK, or bare/ours/``peer``
    (``traces_only``: see :func:`sdk_and_ours`)."""
    import torch

    import otel_rerank

    torch.set_num_threads(1)
    rows = [ROWS[key] for key in row_keys]
    libraries = sorted({row.library for row in rows})
    with tempfile.TemporaryDirectory(prefix="otel-rerank-bench-") as workdir:
        fx = Fixtures(Path(workdir))
        bare = Phase("bare", calls={row.key: row.make(fx) for row in rows})
        for fn in bare.calls.values():
            fn()  # imports everything the calls use before any snapshot of patches
        # The inner work's shims, once, before any instrumentation: every case has them.
        inner = InnerWork()
        inner_checks: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row.inner is not None:
                inner_checks[row.key] = {
                    "targets": [inner.install(owner, name) for owner, name in row.inner(fx)],
                    "entries": {},
                    "instrumentation_inside": {},
                }
        for key, check in inner_checks.items():
            with inner_checked(inner, check, "bare"):
                bare.calls[key]()
        sdk, ours_with_sdk = sdk_and_ours(libraries, peer, traces_only)
        ours_patches = Patches(ours_with_sdk, PATCHED_PACKAGES)
        ours = Phase("ours", ours_patches.on, ours_patches.off)
        recordings: dict[str, Recording] = {}
        with _switched_on(ours):
            ours.calls = {row.key: row.make(fx) for row in rows}
            for row in rows:
                with inner_checked(inner, inner_checks.get(row.key), "ours"):
                    recordings[row.key] = _record_once(ours.calls[row.key], sdk)
        sdk.exporter.reset()
        versions = _versions()
        # The floor runs beside a peer too: where the peer costs less than the floor (the
        # SDK recording by hand what ours records), no wrapper recording that much can be
        # below it, and the row measures recording, not wrappers.
        floor = Phase(
            "floor",
            calls={row.key: _floor(bare.calls[row.key], recordings[row.key], sdk) for row in rows},
        )
        checks: dict[str, Recording] = {}
        for key, fn in floor.calls.items():
            with inner_checked(inner, inner_checks.get(key), "floor"):
                checks[key] = _record_once(fn, sdk, "floor")
        sdk.exporter.reset()
        if peer is None:
            verify_inner(inner_checks)
            phases = [bare, Phase("A/A", calls=dict(bare.calls)), floor, ours]

            def no_sdk_on() -> None:
                ours_patches.on()
                otel_rerank.instrument(capture_content=False, libraries=libraries)

            def no_sdk_off() -> None:
                ours_with_sdk()
                ours_patches.off()

            phases.append(Phase("no SDK", no_sdk_on, no_sdk_off, dict(ours.calls)))
        else:
            peer_version: list[str] = []
            peer_patches = Patches(
                lambda: peer_version.append(_instrument_peer(peer, rows)), PATCHED_PACKAGES
            )
            peer_phase = Phase(peer, peer_patches.on, peer_patches.off)
            peer_packages = sorted({name.split(".")[0] for name in PEERS[peer].modules})
            with _switched_on(peer_phase):  # some peers patch each client as it is built
                peer_phase.calls = {row.key: row.make(fx) for row in rows}
                for key, fn in peer_phase.calls.items():
                    fn()  # first calls: imports and caches
                    with inner_checked(inner, inner_checks.get(key), peer, peer_packages):
                        fn()
            sdk.tracer_provider.force_flush()
            sdk.exporter.reset()
            # Ours and bare are held to the check as in the main process; a peer that runs
            # inside the inner work or changes how often it is entered only loses the
            # inner-timed estimate on that row (its plain one stays).
            verify_inner(
                {
                    key: {**check, "entries": _without(check["entries"], peer)}
                    for key, check in inner_checks.items()
                }
            )
            for key, check in inner_checks.items():
                check["peer_problems"] = inner_problems(key, check, [peer])
            versions[PEERS[peer].label] = peer_version[0]
            phases = [bare, floor, ours, peer_phase]
        results = _run_blocks(rows, phases, sdk, blocks, budget_s, fixed_calls, inner)
        for key, recording in recordings.items():
            results[key]["ours_recording"] = recording.summary()
            results[key]["floor_recording"] = checks[key].summary()
            results[key]["inner"] = inner_checks.get(key)
        otel_rerank.uninstrument()
        sdk.tracer_provider.shutdown()
    return {"versions": versions, "rows": results, "blocks": blocks}


# -- the profile ----------------------------------------------------------------------------
def _profiled(fn: Callable[[], object], calls: int) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    """cProfile's raw table for ``calls`` calls of ``fn``: (file, line, function) -> stats."""
    import cProfile
    import pstats

    # This thread's CPU time, not wall time: on a shared machine a preemption would be
    # credited to whichever function was running. No collection lands in the profile either.
    profiler = cProfile.Profile(time.thread_time)
    gc.collect()
    gc.disable()
    try:
        profiler.enable()
        for _ in range(calls):
            fn()
        profiler.disable()
    finally:
        gc.enable()
    table: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return table


def _where(key: tuple[str, int, str]) -> str:
    file, line, function = key
    parts = Path(file).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{'/'.join(parts)}:{line}({function})" if line else function


def profile(row_keys: Sequence[str], calls: int, top: int = 25) -> str:
    """Where ours spends its time on these rows: cProfile of bare calls vs ours, diffed.

    The model's own work is the same in both, so the listing keeps the functions that ours
    calls more often than the bare call does (our wrapper, what it reads from the model,
    the SDK), sorted by the self time they add per call; "cum" is the function's time per
    call including what it calls (for the wrapper itself, the wrapped call too). cProfile
    inflates small functions: read the ranking, not the absolute µs.
    """
    import torch

    import otel_rerank

    torch.set_num_threads(1)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="otel-rerank-bench-") as workdir:
        fx = Fixtures(Path(workdir))
        sdk = _make_sdk()
        for key in row_keys:
            row = ROWS[key]
            fn = row.make(fx)
            fn()
            bare = _profiled(fn, calls)
            otel_rerank.instrument(
                tracer_provider=sdk.tracer_provider,
                meter_provider=sdk.meter_provider,
                capture_content=False,
                libraries=[row.library],
            )
            fn()
            ours = _profiled(fn, calls)
            otel_rerank.uninstrument()
            extra = []
            for where, (_, ncalls, tottime, cumtime, _) in ours.items():
                base = bare.get(where, (0, 0, 0.0, 0.0, {}))
                more_calls = (ncalls - base[1]) / calls
                if more_calls <= 0:
                    continue
                extra.append(
                    (
                        (tottime - base[2]) / calls * 1e6,
                        more_calls,
                        cumtime / calls * 1e6,
                        _where(where),
                    )
                )
            extra.sort(reverse=True)
            added = sum(self_us for self_us, *_ in extra)
            lines += [
                "",
                f"### {row.label}: ours vs bare, cProfile over {calls} calls each "
                f"(self time of the functions ours adds, profiled: {added:.0f} µs per call)",
                "",
                f"{'self µs/call':>12} {'calls/call':>10} {'cum µs/call':>12}  function",
            ]
            lines += [
                f"{self_us:>12.1f} {more:>10.1f} {cum_us:>12.1f}  {name}"
                for self_us, more, cum_us, name in extra[:top]
            ]
        sdk.tracer_provider.shutdown()
    return "\n".join(lines)


# -- peers' virtualenvs ---------------------------------------------------------------------
def _venv_python(peer: str) -> Path:
    return ROOT / f".venv-bench-{peer}" / "bin" / "python"


def _venv_ready(peer: str) -> bool:
    python = _venv_python(peer)
    if not python.exists():
        return False
    check = "import otel_rerank, " + ", ".join(PEERS[peer].modules)
    done = subprocess.run([str(python), "-c", check], capture_output=True, check=False)
    return done.returncode == 0


def _site_dirs() -> list[str]:
    """This interpreter's package directories (not the standard library's, not benchmarks/)."""
    here = Path(__file__).resolve().parent
    return [
        p
        for p in sys.path
        if Path(p).is_absolute()
        and not p.startswith(sys.base_prefix)
        and Path(p).is_dir()
        and Path(p).resolve() != here
    ]


def _ensure_venv(peer: str) -> str | None:
    """The peer's venv over this environment; None when ready, else why it could not be."""
    if _venv_ready(peer):
        return None
    python = _venv_python(peer)
    venv = python.parents[1]
    print(f"creating {venv.name} (one-time) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A .pth line starting with "import" is executed: addsitedir also reads the .pth files
    # of this environment (editable installs), and appends, so the peer's own packages win.
    (Path(purelib) / "zz_bench_parent.pth").write_text(
        f"import site; list(map(site.addsitedir, {_site_dirs()!r}))\n", encoding="utf-8"
    )
    pins = [
        f"{dist}=={importlib.metadata.version(dist)}"
        for dist in ("opentelemetry-api", "opentelemetry-sdk")
    ]
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PEERS[peer].distributions,
            *pins,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not _venv_ready(peer):
        lines = (done.stderr or done.stdout or "import failed").strip().splitlines()
        return f"could not build {venv.name}: {lines[-1] if lines else '?'}"
    return None


def _run_worker(
    python: str,
    worker: str,
    rows: Sequence[str],
    blocks: int,
    budget_ms: float,
    calls: int | None,
    name: str,
    env: dict[str, str] | None = None,
    traces_only: bool = False,
) -> dict[str, Any]:
    """One worker process (``python this-script --worker worker``): its ``measure`` result,
    read from the last line of its standard output, or ``{"error": ...}`` with the last line
    of its standard error. Its standard error is passed on as it comes, each line prefixed
    with ``name`` (the blocks' progress, and why it failed)."""
    command = [
        python,
        __file__,
        "--worker",
        worker,
        "--rows",
        ",".join(rows),
        "--blocks",
        str(blocks),
        "--budget-ms",
        str(budget_ms),
    ]
    if calls:
        command += ["--calls", str(calls)]
    if traces_only:
        command.append("--traces-only")
    last = "no output"
    started, cpu_before = time.perf_counter(), _children_cpu_s()
    # Its standard output (the result, one long JSON line) goes to a file: a pipe read only
    # after its standard error would block a worker whose result overflowed the pipe.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                last = line.strip()
                print(f"{name}: {last}", file=sys.stderr, flush=True)
        code = process.wait()
        out.seek(0)
        lines = out.read().strip().splitlines()
    took = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu_before
    print(f"{name}: ended after {took:.0f} s ({cpu:.0f} s of CPU)", file=sys.stderr, flush=True)
    if code != 0 or not lines:
        return {"error": f"worker failed: {last}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _children_cpu_s() -> float:
    """The CPU time of this process' finished children so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_workers(
    python: str,
    worker: str,
    rows: Sequence[str],
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]] | dict[str, Any]:
    """``args.processes`` workers, one after the other (the machine's cores are for the
    worker being timed, not for its siblings): their results, or the first one's error."""
    results = []
    for index in range(args.processes):
        name = f"{worker} {index + 1}/{args.processes}"
        result = _run_worker(
            python,
            worker,
            rows,
            args.blocks,
            args.budget_ms,
            args.calls,
            name,
            env,
            args.traces_only,
        )
        if "error" in result:
            return {"error": f"{name}: {result['error']}"}
        results.append(result)
    return results


# -- the report -----------------------------------------------------------------------------
def _overheads(row: dict[str, Any], phase: str, estimate: str = "p10_us") -> list[float]:
    p10 = row[estimate]
    return [case - bare for case, bare in zip(p10[phase], p10["bare"], strict=True)]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if abs(value) >= 1000 else f"{value:.1f} µs"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _us(abs(value))


def _estimates(row: dict[str, Any], estimate: str) -> dict[str, Any]:
    """Bare, A/A, floor, ours and no SDK from per-block values ``row[estimate]``."""
    floor_blocks, ours_blocks = (
        _overheads(row, "floor", estimate),
        _overheads(row, "ours", estimate),
    )
    floor, ours = _median(floor_blocks), _median(ours_blocks)
    return {
        "bare_us": _median(row[estimate]["bare"]),
        "aa_us": _median(_overheads(row, "A/A", estimate)),
        "aa_iqr_us": _iqr(_overheads(row, "A/A", estimate)),
        "floor_us": floor,
        "ours_us": ours,
        "ours_over_floor": ours / floor if floor > 0 else float("nan"),
        "blocks_ours_over_target": sum(
            o > TARGET_RATIO * f for o, f in zip(ours_blocks, floor_blocks, strict=True)
        ),
        "no_sdk_us": _median(_overheads(row, "no SDK", estimate)),
    }


def _process_estimates(row: dict[str, Any], estimate: str) -> dict[str, Any]:
    """One process's ``_estimates`` of a row, with its calls per block (plain) or the bare
    call's time inside the inner work (inner-timed)."""
    if estimate == "p10_us":
        return {"calls_per_block": row["calls"], **_estimates(row, estimate)}
    return {"inner_us": _median(row["inner_p10_us"]["bare"]), **_estimates(row, estimate)}


#: What a row reports as the median over processes of each process's own number.
MEDIAN_OVER_PROCESSES: Final = (
    "bare_us",
    "inner_us",
    "aa_us",
    "aa_iqr_us",
    "floor_us",
    "ours_us",
    "no_sdk_us",
)


def combine_processes(per_process: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row's numbers over the processes that measured it, each process's as
    ``_estimates`` gives them (medians over that process's blocks).

    ``ours_over_floor`` is the median of the processes' own ratios (the verdict against the
    target; a process whose floor was not above 0 has no ratio and is left out of it), not
    the ratio of the medians; the overheads, bare and A/A are medians over processes too.
    The A/A control's spread is given both ways: ``aa_iqr_us``, the median of the processes'
    interquartile ranges over blocks (noise within a process), and ``aa_range_us``, max - min
    of the processes' A/A medians (noise from one process to the next). Each process's own
    numbers stay in ``processes``, in the order they ran.
    """
    ratios = [p["ours_over_floor"] for p in per_process]
    known = [r for r in ratios if not math.isnan(r)]
    aa = [p["aa_us"] for p in per_process]
    return {
        **{
            key: _median([p[key] for p in per_process])
            for key in MEDIAN_OVER_PROCESSES
            if all(key in p for p in per_process)
        },
        "aa_range_us": max(aa) - min(aa),
        "ours_over_floor": _median(known) if known else float("nan"),
        "ours_over_floor_per_process": ratios,
        "blocks_ours_over_target": sum(p["blocks_ours_over_target"] for p in per_process),
        "processes": list(per_process),
    }


def combine_peer_processes(per_process: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A peer row's numbers over its worker processes, each as ``_peer_estimates`` gives
    them: medians of the overheads, the median of the processes' own peer/ours and
    peer/floor ratios (those that have one), and the blocks in which ours was below, over
    all processes."""
    peer_us = [p["peer_us"] for p in per_process]
    ratios: dict[str, Any] = {}
    for name in ("peer_over_ours", "peer_over_floor"):
        per = ratios[f"{name}_per_process"] = [p[name] for p in per_process]
        known = [r for r in per if r is not None]
        ratios[name] = _median(known) if known else None
    return {
        "bare_us": _median([p["bare_us"] for p in per_process]),
        "floor_us": _median([p["floor_us"] for p in per_process]),
        "ours_us": _median([p["ours_us"] for p in per_process]),
        "peer_us": None if None in peer_us else _median(peer_us),
        **ratios,
        "blocks_ours_below": sum(p["blocks_ours_below"] for p in per_process),
        "blocks": sum(p["blocks"] for p in per_process),
        "processes": list(per_process),
    }


def _mean_per_case(runs: Sequence[dict[str, Any]], field: str) -> dict[str, float]:
    """``field``'s per-case numbers (spans, inner entries... per call) averaged over runs."""
    return {case: statistics.fmean(run[field][case] for run in runs) for case in runs[0][field]}


def _union_per_case(runs: Sequence[dict[str, Any]], field: str) -> dict[str, list[Any]]:
    """``field``'s per-case lists (span names, attribute counts) merged over runs, sorted."""
    return {
        case: sorted({value for run in runs for value in run[field][case]})
        for case in runs[0][field]
    }


def _inner_work(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A row's inner work: what it is, its set-up check (the first process's; a worker
    whose own check fails stops), and how often each case entered it per timed call."""
    first = runs[0]["inner"]
    return {
        "targets": first["targets"],
        "check": {
            "entries": first["entries"],
            "instrumentation_inside": first["instrumentation_inside"],
        },
        "entries_per_call": _mean_per_case(runs, "inner_entries_per_call"),
    }


def summarize(
    mains: Sequence[dict[str, Any]], peers: dict[str, list[dict[str, Any]] | dict[str, Any]]
) -> dict[str, Any]:
    """The numbers the tables print, also written by ``--json``: from the main workers'
    ``measure`` results (one per process) and each peer's (a list, or ``{"error": ...}``)."""
    rows = {}
    for key, row in mains[0]["rows"].items():
        runs = [main["rows"][key] for main in mains]
        inner = None
        if row.get("inner") is not None:
            # bare_us here: the bare call's CPU time outside the inner work
            inner = {
                **_inner_work(runs),
                **combine_processes([_process_estimates(run, "net_p10_us") for run in runs]),
            }
        rows[key] = {
            "label": row["label"],
            "calls_per_block": statistics.median_low(run["calls"] for run in runs),
            **combine_processes([_process_estimates(run, "p10_us") for run in runs]),
            "inner": inner,
            "spans_per_call": _mean_per_case(runs, "spans_per_call"),
            "span_names": _union_per_case(runs, "span_names"),
            "attribute_counts": _union_per_case(runs, "attribute_counts"),
            "ours_recording": row["ours_recording"],
            "floor_recording": row["floor_recording"],
        }
    peer_rows: dict[str, dict[str, Any]] = {}
    for peer, results in peers.items():
        if isinstance(results, dict):
            peer_rows[peer] = {"error": results["error"]}
            continue
        peer_rows[peer] = {"version": results[0]["versions"].get(PEERS[peer].label, "?")}
        for key, row in results[0]["rows"].items():
            runs = [result["rows"][key] for result in results]
            produced = all(run["spans_per_call"][peer] > 0 for run in runs)
            inner, fallback = None, None
            if row.get("inner") is not None and produced:
                problems = [p for run in runs for p in _peer_inner_problems(run, peer)]
                fallback = "; ".join(dict.fromkeys(problems)) or None
                if fallback is None:
                    inner = {
                        **_inner_work(runs),
                        # bare_us: the bare call's CPU time outside the inner work
                        **combine_peer_processes(
                            [
                                {
                                    "bare_us": _median(run["net_p10_us"]["bare"]),
                                    **_peer_estimates(run, peer, "net_p10_us"),
                                }
                                for run in runs
                            ]
                        ),
                    }
            peer_rows[peer][key] = {
                **combine_peer_processes(
                    [
                        {
                            "bare_us": _median(run["p10_us"]["bare"]),
                            **_peer_estimates(run, peer, "p10_us"),
                        }
                        for run in runs
                    ]
                ),
                "inner": inner,
                # why a row with inner work has no inner-timed estimate for this peer
                "inner_fallback": fallback,
                "spans_per_call": _mean_per_case(runs, "spans_per_call"),
                "peer_span_names": _union_per_case(runs, "span_names")[peer],
                "peer_attribute_counts": _union_per_case(runs, "attribute_counts")[peer],
                "attribute_counts": _union_per_case(runs, "attribute_counts"),
                "metric_points_per_call": _mean_per_case(runs, "metric_points_per_call"),
            }
    return {
        "versions": mains[0]["versions"],
        "processes": len(mains),
        "blocks": mains[0]["blocks"],
        "rows": rows,
        "peers": peer_rows,
    }


def _peer_estimates(row: dict[str, Any], peer: str, estimate: str) -> dict[str, Any]:
    """Ours' and the peer's overheads from per-block values ``row[estimate]``, and how often
    ours was the cheaper one; the peer's are None where it recorded no span."""
    ours_blocks, peer_blocks = _overheads(row, "ours", estimate), _overheads(row, peer, estimate)
    ours, peer_us = _median(ours_blocks), _median(peer_blocks)
    floor = _median(_overheads(row, "floor", estimate))
    produced = row["spans_per_call"][peer] > 0
    return {
        "floor_us": floor,
        "ours_us": ours,
        "peer_us": peer_us if produced else None,
        # ratios of medians; none where the divisor is lost in the noise (median <= 0)
        "peer_over_ours": peer_us / ours if produced and ours > 0 else None,
        "peer_over_floor": peer_us / floor if produced and floor > 0 else None,
        "blocks_ours_below": sum(p > o for p, o in zip(peer_blocks, ours_blocks, strict=True)),
        "blocks": len(ours_blocks),
    }


def _peer_inner_problems(row: dict[str, Any], peer: str) -> list[str]:
    """Why a peer's row cannot be inner-timed: its set-up check (peer code inside the inner
    work, or entered a different number of times), or uneven entries over the timed calls."""
    problems = list(row["inner"].get("peer_problems", []))
    entries = row["inner_entries_per_call"]
    if not problems and round(entries[peer], 6) != round(entries["bare"], 6):
        problems.append(
            f"inner work entered {entries[peer]:g} times per timed call, bare {entries['bare']:g}"
        )
    return problems


def _by_process_width(processes: int) -> int:
    return max(len("by process"), 5 * processes - 1)


def _judged_header(processes: int) -> str:
    """The headers of ``_judged``'s cells."""
    by_process = f"{'by process':>{_by_process_width(processes)}} " if processes > 1 else ""
    across = f"{'A/A range':>10} " if processes > 1 else ""
    return (
        f"{'A/A (IQR)':>18} {across}{'floor':>10} {'ours':>10} {by_process}"
        f"{'ours/floor':>10} {'no SDK':>10}"
    )


def _judged(estimates: dict[str, Any], processes: int) -> tuple[str, str | None]:
    """The A/A, floor, ours, ours/floor and no-SDK cells (and, over several processes, the
    A/A range and each process's ours/floor); "missed", "unresolved" or None."""
    aa = f"{_signed(estimates['aa_us'])} ({_us(estimates['aa_iqr_us'])})"
    ratio = estimates["ours_over_floor"]
    # The noise: the A/A control's spread within a process and from one process to the next.
    noise = max(estimates["aa_iqr_us"], estimates["aa_range_us"])
    verdict = None
    # Where the floor's overhead is no larger than the A/A spread, this run cannot tell
    # ours from the floor on that row: its ratio is printed with "~" and not judged.
    if estimates["floor_us"] <= noise:
        verdict = "unresolved"
        ratio_text = f"{ratio:>9.2f}~" if not math.isnan(ratio) else f"{'~':>10}"
    else:
        if ratio > TARGET_RATIO:
            verdict = "missed"
        ratio_text = f"{ratio:>9.2f}{'!' if verdict else ' '}"
    no_sdk = _signed(estimates["no_sdk_us"])
    no_sdk += "~" if abs(estimates["no_sdk_us"]) <= noise else " "
    across, by_process = "", ""
    if processes > 1:
        across = f"{_us(estimates['aa_range_us']):>10} "
        ratios = " ".join(
            f"{r:>4.2f}" if not math.isnan(r) else f"{'-':>4}"
            for r in estimates["ours_over_floor_per_process"]
        )
        by_process = f"{ratios:>{_by_process_width(processes)}} "
    cells = (
        f"{aa:>18} {across}{_signed(estimates['floor_us']):>10} "
        f"{_signed(estimates['ours_us']):>10} {by_process}{ratio_text} {no_sdk:>10}"
    )
    return cells, verdict


def _print_inner_report(summary: dict[str, Any]) -> None:
    """The inner-timed table: the same calls, each less its CPU time inside the inner work."""
    rows = {key: row for key, row in summary["rows"].items() if row["inner"] is not None}
    if not rows:
        return
    print()
    print(
        "Inner-timed, the same calls: each call's CPU time less its CPU time inside the "
        "library's inner work (listed below; timed by a shim installed for every case, bare "
        "included; nothing of ours or of the SDK runs inside it, checked at set-up). "
        "inner = bare's inner work per call; bare-inner = the bare call without it; "
        "overheads and statistics as above."
    )
    judged = _judged_header(summary["processes"])
    header = f"{'call':<34} {'inner':>10} {'bare-inner':>10} {judged}"
    print(header)
    print("-" * len(header))
    misses, unresolved, uneven = [], [], []
    for key, row in rows.items():
        inner = row["inner"]
        cells, verdict = _judged(inner, summary["processes"])
        if verdict == "missed":
            misses.append(key)
        elif verdict == "unresolved":
            unresolved.append(key)
        if len({round(n, 6) for n in inner["entries_per_call"].values()}) > 1:
            uneven.append(key)
        print(
            f"{row['label']:<34} {_us(inner['inner_us']):>10} {_us(inner['bare_us']):>10} {cells}"
        )
    print("inner work (entries per call):")
    for key, row in rows.items():
        entries = row["inner"]["entries_per_call"]["bare"]
        print(f"  {key}: {', '.join(row['inner']['targets'])} ({entries:g})")
    if misses:
        print(f"rows missing the ours/floor target, inner-timed: {', '.join(misses)}")
    if unresolved:
        print(f"rows whose floor is within the A/A spread, inner-timed: {', '.join(unresolved)}")
    if uneven:
        print(f"WARNING: inner work entered unevenly across cases in {', '.join(uneven)}")


def print_report(summary: dict[str, Any], settings: str) -> None:
    versions = ", ".join(f"{k} {v}" for k, v in summary["versions"].items())
    processes = summary["processes"]
    print()
    print(f"Library call overhead per call, process CPU time; {settings}.")
    print(f"Versions: {versions}.")
    if processes > 1:
        statistic = (
            f"each process's number is the median over its {summary['blocks']} blocks, and "
            f"every number printed the median of the {processes} processes' (by process: "
            "each process's ours/floor, in the order they ran; ours/floor: their median, "
            "the verdict). A/A = the bare call timed as another case (noise: its median and "
            "interquartile range over blocks; A/A range: max - min of the processes' A/A)."
        )
    else:
        statistic = (
            f"every number is the median over {summary['blocks']} blocks. A/A = the bare "
            "call timed as another case (noise: its median and interquartile range over "
            "blocks)."
        )
    print(
        "Per block each case's 10th-percentile call; overhead = case - bare in the same "
        f"block; {statistic}"
    )
    header = f"{'call':<34} {'bare':>10} {_judged_header(processes)} spans  attrs"
    print(header)
    print("-" * len(header))
    misses, unresolved = [], []
    for key, row in summary["rows"].items():
        cells, verdict = _judged(row, processes)
        if verdict == "missed":
            misses.append(key)
        elif verdict == "unresolved":
            unresolved.append(key)
        spans = row["spans_per_call"]
        print(
            f"{row['label']:<34} {_us(row['bare_us']):>10} {cells} "
            f"{spans['ours']:g}/{spans['floor']:g}  {row['ours_recording']['attribute_count']}"
        )
    print(
        f"target: ours/floor <= {TARGET_RATIO} (! = missed), no SDK <= {TARGET_NO_SDK_US} µs; "
        "~ = within the A/A spread (not resolved by this run); spans = spans per call "
        "ours/floor; attrs = attributes ours wrote (the floor writes the same)"
    )
    if misses:
        print(f"rows missing the ours/floor target: {', '.join(misses)}")
    if unresolved:
        print(f"rows whose floor is within the A/A spread: {', '.join(unresolved)}")
    leaked = [
        k
        for k, r in summary["rows"].items()
        if r["spans_per_call"]["bare"]
        or r["spans_per_call"]["A/A"]
        or r["spans_per_call"]["no SDK"]
    ]
    if leaked:
        print(f"WARNING: spans from an uninstrumented case in {', '.join(leaked)}")
    _print_inner_report(summary)
    for peer, rows in summary["peers"].items():
        label = PEERS[peer].label
        print()
        if "error" in rows:
            print(f"{label}: {rows['error']}")
            continue
        if processes > 1:
            where = (
                f"its own {processes} processes, one after the other: in each bare, ours and "
                f"{label} alternating; peer/ours = the median of the processes' own ratios "
                "(each its median overhead / ours; --json has them all)"
            )
        else:
            where = (
                f"its own process: bare, ours and {label} alternating; "
                "peer/ours = its median overhead / ours"
            )
        print(
            f"{label} {rows['version']} ({where}; n/a where ours is within noise of 0; "
            "ours below = blocks in which ours' overhead was the smaller; peer/floor: the "
            "same for the floor, timed in the same processes (the SDK recording by hand what "
            "ours records). Plain: as the first table; inner-timed: as the second, the same "
            f"inner work and set-up check, for {label}'s call too)"
        )
        cells = f"{'ours':>10} {label:>12} {'peer/ours':>10} {'ours below':>12} {'peer/floor':>10}"
        peer_header = (
            f"{'':<34} {'plain':-^59}  {'inner-timed':-^59}\n"
            f"{'call':<34} {cells}  {cells}  recorded per call: ours | peer"
        )
        print(peer_header)
        print("-" * len(peer_header.splitlines()[-1]))
        fallbacks = []
        below_floor = []
        for key, row in rows.items():
            if key == "version":
                continue
            if row["peer_us"] is None:
                print(f"{ROWS[key].label:<34} {_signed(row['ours_us']):>10} {'no span':>12}")
                continue
            if row["inner"] is not None:
                inner_cells = _peer_cells(row["inner"])
            else:
                inner_cells = f"{'plain only' if row['inner_fallback'] else 'n/a':>59}"
                if row["inner_fallback"]:
                    fallbacks.append(row["inner_fallback"])
            judged = row["inner"] or row  # the inner-timed estimate where there is one
            if judged["peer_over_floor"] is not None and judged["peer_over_floor"] < 1:
                below_floor.append(key)
            recorded = f"{_recorded(row, 'ours')} | {_recorded(row, peer)}"
            print(f"{ROWS[key].label:<34} {_peer_cells(row)}  {inner_cells}  {recorded}")
        for reason in fallbacks:
            print(f"plain only: {reason}")
        if below_floor:
            print(
                f"below the floor ({label} costs less than the SDK recording what ours records, "
                f"inner-timed where there is an estimate; no instrumentation recording as much "
                f"can be below {label} there): {', '.join(below_floor)}"
            )


def _peer_cells(estimates: dict[str, Any]) -> str:
    """Ours, the peer, peer/ours, the blocks ours was below and peer/floor, from
    ``_peer_estimates``."""
    ratio = estimates["peer_over_ours"]
    ratio_text = f"{ratio:>9.2f}x" if ratio is not None else f"{'n/a':>10}"
    below = f"{estimates['blocks_ours_below']}/{estimates['blocks']}"
    floor_ratio = estimates["peer_over_floor"]
    floor_text = f"{floor_ratio:>9.2f}x" if floor_ratio is not None else f"{'n/a':>10}"
    return (
        f"{_signed(estimates['ours_us']):>10} {_signed(estimates['peer_us']):>12} "
        f"{ratio_text} {below:>12} {floor_text}"
    )


def _recorded(row: dict[str, Any], case: str) -> str:
    """What a case recorded per call: attributes per span and histogram records."""
    attributes = "/".join(map(str, row["attribute_counts"].get(case, []))) or "0"
    points = row["metric_points_per_call"].get(case, 0.0)
    return f"{attributes} attrs, {points:.0f} hist"


# -- command line ---------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _csv(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v for v in text.split(",") if v]
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)}; choose from "
                f"{', '.join(choices)}"
            )
        return values

    return parse


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = _Parser(prog="library_overhead.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 process, 3 blocks of 3 calls"
    )
    parser.add_argument(
        "--processes",
        type=_positive,
        help=f"fresh worker processes, one after the other, each timing every row (default "
        f"{DEFAULT_PROCESSES}; quick 1). The same code's ours/floor moves by up to +-0.3 from "
        "one process to the next (memory layout, caches after native work) and much less "
        "within one, so the verdict is the median of the processes' ratios; 3 is the fewest "
        "whose median sets an outlying process aside",
    )
    parser.add_argument(
        "--blocks",
        type=_positive,
        help=f"blocks per process (default {DEFAULT_BLOCKS}; quick 3)",
    )
    parser.add_argument(
        "--calls",
        type=_positive,
        help=f"timed calls per case per block (default: as many as fill --budget-ms, "
        f"{MIN_CALLS}..{MAX_CALLS})",
    )
    parser.add_argument(
        "--budget-ms",
        type=_positive_float,
        help=f"bare-call ms per case per block (default {DEFAULT_BUDGET_MS:g})",
    )
    parser.add_argument(
        "--rows",
        type=_csv(list(ROWS), "row"),
        default=DEFAULT_ROWS,
        help=f"comma-separated subset of {', '.join(ROWS)}",
    )
    parser.add_argument(
        "--peers",
        type=_csv([*PEERS, "none"], "peer"),
        default=list(PEERS),
        help="comma-separated subset, or none (each peer runs in --processes processes)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, profile ours against bare (encode([]), predict; or --rows)",
    )
    parser.add_argument(
        "--traces-only",
        action="store_true",
        help="give ours and the peers a TracerProvider only (an application that set up "
        "tracing alone): no one records a metric point, the floor none either; the "
        "like-for-like comparison with peers that record no metric",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--worker", choices=[MAIN_WORKER, *PEERS], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile:
        rows = args.rows if args.rows is not DEFAULT_ROWS else list(PROFILE_ROWS)
        print(profile(rows, args.calls or (20 if args.quick else 300)))
        return
    args.processes = args.processes or (1 if args.quick else DEFAULT_PROCESSES)
    args.blocks = args.blocks or (3 if args.quick else DEFAULT_BLOCKS)
    args.budget_ms = args.budget_ms or DEFAULT_BUDGET_MS
    if args.quick and not args.calls:
        args.calls = 3

    if args.worker:
        peer = None if args.worker == MAIN_WORKER else args.worker
        result = measure(
            args.rows, args.blocks, args.budget_ms / 1000, args.calls, peer, args.traces_only
        )
        print(json.dumps(result))
        return

    # Each process draws its own address layout and hash seed: the variation its median is
    # over (the peers' workers keep the fixed seed they always had).
    mains = _run_workers(sys.executable, MAIN_WORKER, args.rows, args)
    if isinstance(mains, dict):
        parser.exit(1, f"{parser.prog}: {mains['error']}\n")
    peers: dict[str, list[dict[str, Any]] | dict[str, Any]] = {}
    for peer in [p for p in args.peers if p != "none"]:
        rows = [key for key in args.rows if key in PEERS[peer].rows]
        if not rows:
            continue
        if args.quick:
            if not _venv_ready(peer):
                print(f"{peer}: venv not built, skipped in --quick", file=sys.stderr)
                continue
        else:
            problem = _ensure_venv(peer)
            if problem:
                peers[peer] = {"error": problem}
                continue
        env = {"PYTHONHASHSEED": "0", "OTEL_SDK_DISABLED": "false"}
        peers[peer] = _run_workers(str(_venv_python(peer)), peer, rows, args, env)
    summary = summarize(mains, peers)
    calls = f"{args.calls} calls" if args.calls else f"calls filling {args.budget_ms:g} ms"
    processes = f"{args.processes} processes x " if args.processes > 1 else ""
    meters = (
        "no MeterProvider (--traces-only: no one records a metric)"
        if args.traces_only
        else "MeterProvider + in-memory reader"
    )
    settings = (
        f"SDK TracerProvider + BatchSpanProcessor (no-op exporter), {meters}; torch 1 "
        f"thread; {processes}{args.blocks} blocks, {calls} per case per block"
    )
    print_report(summary, settings)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
