"""What the duration histogram (or the rerank summary) costs in place, per instrumented call,
beside ours and a peer: an ablation.

``library_overhead.py`` compares ours with peers that record less than ours: on chroma
``query`` and qdrant ``query_points`` the peers write no metric and fewer attributes. This
script answers how much of ours is the ``gen_ai.client.operation.duration`` record the spec
requires, and how the same recording costs when written by hand; with ``--ablate summary``,
how much of ours on a reranker is computing the summary the floor writes as given. In one
process, the cases alternating block by block, inner-timed as ``library_overhead.py``'s
second table (each call's CPU time outside the library's inner work; per block the 10th
percentile, less bare's; the median over blocks):

* ``ours``           ``otel_rerank.instrument(...)`` as shipped;
* ``ours, no hist``  the same with the points recorded as the call ends switched off (its
  duration, and a reranker's candidate count; an ablation, never shipped: it only tells
  what the records cost where they run, after the call);
* ``floor``          ``library_overhead.py``'s hand-written span and histogram records with
  ours' recording, and ``floor, no hist`` the same span without them;
* ``--ablate summary`` instead of the histogram, ours with the rerank summary (top score,
  top-1 change, tau-b, the ranking written as output documents) given rather than
  computed: each call writes the attributes its first call computed (the scores do not
  change), so the case records exactly what ours records, less the computing. Rows
  ``predict-50``, ``rank-50``, ``cohere``; the floor writes the summary as given too, so
  ``ours, summary given`` against ``floor`` is ours' wrapper alone;
* ``--ablate pieces`` on ``predict-50`` and ``rank-50``: ours with one piece of its
  wrapper given at a time (what that piece's first call returned, every call after it):
  the summary, the request's attributes, the candidate count, the one-query check, the
  argument binding. Each case records what ours records; the drop from ``ours`` is that
  piece's cost in place, so a reader can tell which piece is worth working on (``rank``
  never runs the one-query check: on its row that case is an A/A control);
* ``--ablate speedups`` on ``predict-50`` and ``rank-50``: beside ours as built,
  ``ours, pure Python``: the same with the compiled speed-ups (``otel_rerank._speedups``:
  the ranking behind the summary, its writing with the output documents, the one-query
  check, the output documents' writer and the argument binding; the patched method stays
  compiled) switched off, so the Python functions they stand in for run instead. Both record the
  same; the difference is what compiling them saves in place. Refused where the build had
  no C compiler;
* ``--ablate bound`` on ``predict-50`` and ``qdrant``: beside ours, ``hand-written``: the
  least Python a wrapper recording exactly what ours records can run
  (:func:`_hand_written_predict`, :func:`_hand_written_query_points`: no argument binding,
  no span helper, no guards; ours' own pure functions for the attributes, and on
  ``predict`` the one-query check and the exact summary; qdrant's a leaf span, made when
  the call returns, as ours'). Set-up checks that its span's attributes equal ours' and
  stops if they do not. ``hand-written`` against ``floor`` is what recording this much
  costs before any wrapper design: the lowest ours could reach; ``ours`` against
  ``hand-written`` is what ours' one generic wrapper adds; with ``--peer``, ``hand-written``
  against the peer says whether any wrapper recording what ours records could be below it;
* ``--peer NAME``    the peer's own instrumentation (run with that peer's venv's Python,
  which ``library_overhead.py --peers NAME`` makes: ``.venv-bench-<name>/bin/python``),
  with the histogram ablation or ``--ablate bound``;
* ``--traces-only``  ours, the floor and the peer with a TracerProvider alone, as
  ``library_overhead.py --traces-only`` (any ablation but the histogram's).

Run::

    .venv/bin/python benchmarks/histogram_cost.py --rows chroma,qdrant
    .venv/bin/python benchmarks/histogram_cost.py --ablate summary --rows predict-50,cohere
    .venv/bin/python benchmarks/histogram_cost.py --ablate pieces --blocks 31
    .venv/bin/python benchmarks/histogram_cost.py --ablate bound
    .venv-bench-openllmetry/bin/python benchmarks/histogram_cost.py --ablate bound \\
        --rows qdrant --peer openllmetry --traces-only
    .venv/bin/python benchmarks/histogram_cost.py --ablate speedups
    .venv-bench-traceverde/bin/python benchmarks/histogram_cost.py --rows chroma --peer traceverde
    .venv-bench-openllmetry/bin/python benchmarks/histogram_cost.py --rows qdrant --peer openllmetry
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import library_overhead as lo  # benchmarks/ is on sys.path as a script
from _patches import Patches
from _timing import InnerWork

DEFAULT_ROWS = ("chroma", "qdrant")
SUMMARY_ROWS = ("predict-50", "rank-50", "cohere")
#: The rerank summary's functions (module attributes, looked up per call): ablated together.
SUMMARY_FUNCTIONS = ("summary", "summary_attributes", "ranking_summary_attributes")
#: Rows of ``--ablate pieces``: the two whose wrapper pieces it gives one at a time.
PIECE_ROWS = ("predict-50", "rank-50")
#: The rows of ``--ablate bound``: those a hand-written wrapper is written for.
BOUND_ROWS = ("predict-50", "qdrant")


def _taking_only(ablation: str, rows: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """An ablation's rows and the error for any other row (``{}``: the rows refused)."""
    return rows, f"--ablate {ablation} takes {', '.join(rows)} only, not {{}}"


#: The ablations beside the default one: their rows, and the error for any other row.
ABLATION_ROWS = {
    "summary": (SUMMARY_ROWS, "no rerank summary on {}"),
    "pieces": _taking_only("pieces", PIECE_ROWS),
    "bound": _taking_only("bound", BOUND_ROWS),
    "speedups": _taking_only("speedups", PIECE_ROWS),
}
#: What ``--ablate speedups`` switches off: each module's compiled function, by attribute.
SPEEDUPS = (
    ("otel_rerank._ranking", "_compiled_rank_summary"),
    ("otel_rerank._rerank", "_compiled_rank_summary"),
    ("otel_rerank._rerank", "_compiled_summarize"),
    ("otel_rerank.instrumentation.sentence_transformers._attributes", "_compiled_one_query"),
    ("otel_rerank._rerank", "_compiled_output_documents"),
    ("otel_rerank.instrumentation._common", "_compiled_bind"),
)


def _first_result(compute: Callable[..., Any]) -> Callable[..., Any]:
    """``compute``, answering every call with what its first call returned."""
    kept: list[Any] = []

    def given(*args: Any) -> Any:
        if not kept:
            kept.append(compute(*args))
        return kept[0]

    return given


def _piece_phases(ours: Any, patches: Patches) -> list[Any]:
    """Ours with one wrapper piece given at a time (``--ablate pieces``)."""
    from otel_rerank.instrumentation import _base
    from otel_rerank.instrumentation import sentence_transformers as st
    from otel_rerank.instrumentation.sentence_transformers import _attributes

    methods = (st.PREDICT, st.RANK)

    def swapped(owners: Sequence[Any], name: str) -> tuple[Callable[[], None], Callable[[], None]]:
        return _switched(patches, [(owner, name) for owner in owners], _first_result)

    pieces = [
        ("request given", swapped(methods, "request")),
        ("candidates given", swapped(methods, "candidates")),
        ("one-query check given", swapped([_attributes], "single_query")),
        ("arguments given", swapped([_base], "bind_arguments")),
    ]
    return [
        _summary_given_phase("summary given", ours, patches),
        *(lo.Phase(name, on, off, dict(ours.calls)) for name, (on, off) in pieces),
    ]


def _switched(
    patches: Patches, targets: Sequence[tuple[Any, str]], replace: Callable[[Any], Any]
) -> tuple[Callable[[], None], Callable[[], None]]:
    """``on``/``off`` for a phase of ours with each ``(owner, attribute)`` of ``targets``
    set to ``replace(its value)`` (one that is ``None`` is left), and back. Set as a frozen
    dataclass's ``__post_init__`` sets a field: the wrapper's methods are ones."""
    saved = [getattr(owner, name) for owner, name in targets]

    def on() -> None:
        patches.on()
        for (owner, name), original in zip(targets, saved, strict=True):
            if original is not None:
                object.__setattr__(owner, name, replace(original))

    def off() -> None:
        for (owner, name), original in zip(targets, saved, strict=True):
            object.__setattr__(owner, name, original)
        patches.off()

    return on, off


def _pure_python_phase(ours: Any, patches: Patches) -> Any:
    """Ours with the compiled speed-ups switched off (``--ablate speedups``): each module's
    ``_compiled_*`` set to ``None``, as a build without a C compiler leaves it."""
    import importlib

    targets = [(importlib.import_module(module), name) for module, name in SPEEDUPS]
    on, off = _switched(patches, targets, lambda _compiled: None)
    return lo.Phase("ours, pure Python", on, off, dict(ours.calls))


def _hand_written_predict() -> Callable[..., Any]:
    """``CrossEncoder.predict``'s recording as ours makes it, written out by hand in the
    fewest Python steps: ``(predict, model, args, kwargs) -> result``.

    The same span (name, kind, start attributes, the request's, the exact summary and the
    ranking) and the same two histogram records (candidates, duration, each in a context
    where the span is current), computed by ours' own pure functions; what it leaves out
    is ours' wrapper: argument binding, the span helper, the one-span group, the guards.
    Written for the success path of ``predict(pairs)``: a bound, never shipped.
    """
    import inspect

    from opentelemetry import context, trace
    from sentence_transformers import CrossEncoder

    from otel_rerank import _rerank, _span, semconv
    from otel_rerank.instrumentation import sentence_transformers as st
    from otel_rerank.instrumentation.sentence_transformers import _attributes

    method = st.PREDICT
    default_batch_size = inspect.signature(CrossEncoder.predict).parameters["batch_size"].default
    perf_counter = time.perf_counter

    def predict(wrapped: Callable[..., Any], model: Any, args: Any, kwargs: Any) -> Any:
        telemetry, parent = _span.records()  # type: ignore[misc]  # the bench's SDK records
        opened = method._opening(_attributes.start(model, {}))
        span = telemetry.tracer.start_span(
            opened.name, context=parent, kind=opened.kind, attributes=opened.span_attributes
        )
        in_span = trace.set_span_in_context(span, parent)
        metric_attributes = opened.metric_attributes.values
        pairs = args[0]
        if telemetry.metering:
            telemetry.candidates.record(len(pairs), metric_attributes, in_span)
        pending = {
            semconv.GEN_AI_RERANK_CANDIDATE_COUNT: len(pairs),
            semconv.RAG_BATCH_SIZE: kwargs.get("batch_size", default_batch_size),
            semconv.RAG_RERANK_MAX_LENGTH: _attributes._max_length(model),
            semconv.RAG_DEVICE: _attributes._device(model),
        }
        token = context.attach(in_span)
        start = perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        finally:
            elapsed = perf_counter() - start
            context.detach(token)
        if _attributes.single_query(pairs)[0]:
            limit = telemetry.content.max_documents
            found = _rerank.summary(result, limit)
            if found is not None:
                summary, ranking = found
                pending.update(summary)
                _rerank.add_output_documents(pending, ranking, limit)
        span.set_attributes(pending)
        if telemetry.metering:
            telemetry.duration.record(elapsed, metric_attributes, in_span)
        span.end()
        return result

    return predict


def _hand_written_query_points() -> Callable[..., Any]:
    """qdrant's ``query_points`` in local mode recorded as ours records it, written out by
    hand in the fewest Python steps: ``(query_points, client, args, kwargs) -> result``.

    A leaf, as ours' is (local mode starts no span): the span is made when the call has
    returned, with its start time taken before it and every attribute at creation, and never
    made current; the same duration record, in a context where the span is current. The
    attributes come from ours' own pure functions (the collection's start, the request's and
    the response's pairs); what it leaves out is ours' wrapper: the SDK check, argument
    binding, the span helper, the one-span group, the guards. Written for the success path of
    ``query_points(collection, query=..., limit=...)`` under a sampler that keeps every
    root: a bound, never shipped.
    """
    from opentelemetry import trace

    from otel_rerank import _span
    from otel_rerank.instrumentation.qdrant_client import QUERY_POINTS
    from otel_rerank.instrumentation.qdrant_client import _attributes as attrs

    perf_counter, time_ns = time.perf_counter, time.time_ns

    def query_points(wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        telemetry, parent = _span.records()  # type: ignore[misc]  # the bench's SDK records
        start_ns = time_ns()
        start = perf_counter()
        result = wrapped(*args, **kwargs)
        elapsed = perf_counter() - start
        arguments = {"collection_name": args[0], **kwargs}
        opened = QUERY_POINTS._opening(attrs.start(client, arguments))
        attributes = dict(opened.span_attributes)
        attributes.update(attrs.query_request(client, arguments))
        attributes.update(attrs.query_response(result))
        span = telemetry.tracer.start_span(
            opened.name,
            context=parent,
            kind=opened.kind,
            attributes=attributes,
            start_time=start_ns,
        )
        span.end(start_ns + int(elapsed * 1e9))
        if telemetry.metering:
            in_span = trace.set_span_in_context(span, parent)
            telemetry.duration.record(elapsed, opened.metric_attributes.values, in_span)
        return result

    return query_points


def _bound_targets() -> dict[str, tuple[type, str, Callable[[], Callable[..., Any]]]]:
    """Per ``--ablate bound`` row: the class and method its hand-written wrapper replaces,
    and the function that writes it."""
    from qdrant_client import QdrantClient
    from sentence_transformers import CrossEncoder

    return {
        "predict-50": (CrossEncoder, "predict", _hand_written_predict),
        "qdrant": (QdrantClient, "query_points", _hand_written_query_points),
    }


def _what_is_recorded(recording: Any) -> tuple[Any, ...]:
    """A recording less what changes from call to call (the durations' values)."""
    records = sorted(
        (record["name"], record["times"], sorted(record["attributes"].items()))
        for record in recording.records
    )
    return recording.spans, records


def _hand_written_phase(row_keys: Sequence[str], ours: Any, patches: Patches) -> Any:
    """Ours' instrumentation with each row's method (:func:`_bound_targets`) recorded by its
    hand-written wrapper instead (``rank`` stays ours')."""
    targets = [_bound_targets()[key] for key in row_keys]
    replaced: list[tuple[type, str, Any]] = []  # ours' replacements, put back by ``off``
    hand_written: list[tuple[type, str, Any]] = []
    for owner, name, write in targets:
        # the original (before ours patches it), recorded by the hand-written wrapper
        hand_written.append((owner, name, _calling(owner.__dict__[name], write())))

    def on() -> None:
        patches.on()
        for owner, name, method in hand_written:
            replaced.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, method)

    def off() -> None:
        while replaced:  # ours' uninstrument finds its own
            owner, name, ours_replacement = replaced.pop()
            setattr(owner, name, ours_replacement)
        patches.off()

    return lo.Phase("hand-written", on, off, dict(ours.calls))


def _calling(original: Callable[..., Any], record: Callable[..., Any]) -> Callable[..., Any]:
    """A method that calls ``record`` with wrapt's arguments for ``original``."""
    from types import MethodType

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return record(MethodType(original, self), self, args, kwargs)

    return method


def _summary_given_phase(name: str, ours: Any, patches: Patches) -> Any:
    """Ours with the rerank summary given rather than computed (:func:`_given_summaries`)."""
    give, compute = _given_summaries()

    def on() -> None:
        patches.on()
        give()

    def off() -> None:
        compute()
        patches.off()

    return lo.Phase(name, on, off, dict(ours.calls))


def _given_summaries() -> tuple[Callable[[], None], Callable[[], None]]:
    """Switch the rerank summary's functions to ones that return what their first call
    since switching on computed (each row's block switches on anew and warms up first; a
    row's scores never change), and back."""
    from otel_rerank import _rerank

    originals = {name: getattr(_rerank, name) for name in SUMMARY_FUNCTIONS}
    given: dict[str, Any] = {}

    def giving(name: str) -> Callable[..., Any]:
        compute = originals[name]

        def given_summary(*args: Any) -> Any:
            if name not in given:
                given[name] = compute(*args)
            found = given[name]
            if isinstance(found, tuple):  # (attributes, ranking): the caller updates its own
                return dict(found[0]), found[1]
            return None if found is None else dict(found)

        return given_summary

    def on() -> None:
        given.clear()
        for name in SUMMARY_FUNCTIONS:
            setattr(_rerank, name, giving(name))

    def off() -> None:
        for name, function in originals.items():
            setattr(_rerank, name, function)

    return on, off


def measure(
    row_keys: Sequence[str],
    blocks: int,
    calls: int,
    peer: str | None,
    ablate: str = "histogram",
    traces_only: bool = False,
) -> dict[str, dict[str, tuple[list[float], str]]]:
    """Per row, per case: the inner-timed overhead over bare of each block (µs), and what
    one call recorded (``traces_only``: as ``library_overhead.py --traces-only``)."""
    import torch

    torch.set_num_threads(1)
    rows = [lo.ROWS[key] for key in row_keys]
    libraries = sorted({row.library for row in rows})
    with tempfile.TemporaryDirectory(prefix="otel-rerank-hist-") as workdir:
        fx = lo.Fixtures(Path(workdir))
        bare = lo.Phase("bare", calls={row.key: row.make(fx) for row in rows})
        for fn in bare.calls.values():
            fn()  # imports everything the calls use before any snapshot of patches
        inner = InnerWork()
        for row in rows:
            for owner, name in row.inner(fx) if row.inner is not None else ():
                inner.install(owner, name)
        sdk, ours_on = lo.sdk_and_ours(libraries, peer, traces_only)
        patches = Patches(ours_on, lo.PATCHED_PACKAGES)
        ours = lo.Phase("ours", patches.on, patches.off)
        with lo._switched_on(ours):
            ours.calls = {row.key: row.make(fx) for row in rows}
            recordings = {row.key: lo._record_once(ours.calls[row.key], sdk) for row in rows}
        if ablate == "bound":
            hand = _hand_written_phase(row_keys, ours, patches)
            with lo._switched_on(hand):
                for row in rows:
                    written = lo._record_once(hand.calls[row.key], sdk)
                    if _what_is_recorded(written) != _what_is_recorded(recordings[row.key]):
                        raise SystemExit(
                            f"histogram_cost.py: the hand-written {row.key} records "
                            "otherwise than ours; its numbers would mean nothing"
                        )
            phases = [bare, ours, hand, _floor_phase("floor", bare, recordings, sdk)]
        elif ablate == "speedups":
            phases = [
                bare,
                ours,
                _pure_python_phase(ours, patches),
                _floor_phase("floor", bare, recordings, sdk),
            ]
        elif ablate == "pieces":
            phases = [bare, ours, *_piece_phases(ours, patches)]
            phases.append(_floor_phase("floor", bare, recordings, sdk))
        elif ablate == "summary":
            phases = [
                bare,
                ours,
                _summary_given_phase("ours, summary given", ours, patches),
                _floor_phase("floor", bare, recordings, sdk),
            ]
        else:
            phases = _histogram_phases(bare, ours, patches, recordings, sdk)
        if peer is not None:
            peer_patches = Patches(lambda: lo._instrument_peer(peer, rows), lo.PATCHED_PACKAGES)
            peer_phase = lo.Phase(lo.PEERS[peer].label, peer_patches.on, peer_patches.off)
            with lo._switched_on(peer_phase):  # some peers patch each client as it is built
                peer_phase.calls = {row.key: row.make(fx) for row in rows}
                for fn in peer_phase.calls.values():
                    fn()
            phases.append(peer_phase)
        sdk.tracer_provider.force_flush()
        sdk.exporter.reset()
        results = lo._run_blocks(rows, phases, sdk, blocks, 0.0, calls, inner)
        sdk.tracer_provider.shutdown()
    found: dict[str, dict[str, tuple[list[float], str]]] = {}
    for row in rows:
        result = results[row.key]
        net = result["net_p10_us"]
        found[row.label] = {
            name: (
                [case - base for case, base in zip(samples, net["bare"], strict=True)],
                f"{result['spans_per_call'][name]:g} span(s) of "
                f"{'/'.join(map(str, result['attribute_counts'][name]))} attributes, "
                f"{result['metric_points_per_call'][name]:g} histogram record(s)",
            )
            for name, samples in net.items()
            if name != "bare"
        }
    return found


def _histogram_phases(
    bare: Any, ours: Any, patches: Patches, recordings: dict[str, Any], sdk: Any
) -> list[Any]:
    """Ours and the floor, each with and without the histogram records."""
    from otel_rerank import _span

    call_points = _span._metrics.call_points

    def no_record(*_: Any) -> None:
        return None

    def ablated_on() -> None:
        patches.on()
        _span._metrics.call_points = no_record

    def ablated_off() -> None:
        _span._metrics.call_points = call_points
        patches.off()

    return [
        bare,
        ours,
        lo.Phase("ours, no hist", ablated_on, ablated_off, dict(ours.calls)),
        _floor_phase("floor", bare, recordings, sdk),
        _floor_phase(
            "floor, no hist",
            bare,
            {key: replace(recording, records=[]) for key, recording in recordings.items()},
            sdk,
        ),
    ]


def _floor_phase(name: str, bare: Any, recordings: dict[str, Any], sdk: Any) -> Any:
    """``library_overhead.py``'s hand-written floor of each row, with ``recordings``."""
    return lo.Phase(
        name, calls={key: lo._floor(bare.calls[key], recordings[key], sdk) for key in bare.calls}
    )


def report(found: dict[str, dict[str, tuple[list[float], str]]], blocks: int, calls: int) -> str:
    lines = [
        f"Inner-timed overhead over bare per call (µs): per block the 10th percentile of "
        f"{calls} calls, the median of {blocks} blocks (min..max over blocks).",
    ]
    for label, cases in found.items():
        medians = {name: statistics.median(values) for name, (values, _) in cases.items()}
        lines.append(f"\n{label}")
        for name, (values, recorded) in cases.items():
            lines.append(
                f"  {name:22} {medians[name]:+8.1f}   ({min(values):+.1f}..{max(values):+.1f})"
                f"   {recorded}"
            )
        if "ours, summary given" in medians:
            given = medians["ours, summary given"]
            lines.append(
                f"  summary computed in place: {medians['ours'] - given:.1f}; ours/floor "
                f"{medians['ours'] / medians['floor']:.2f}, with the summary given "
                f"{given / medians['floor']:.2f}"
            )
            continue
        if "ours, pure Python" in medians:
            pure, floor = medians["ours, pure Python"], medians["floor"]
            lines.append(
                f"  compiled speed-ups save in place: {pure - medians['ours']:.1f}; ours/floor "
                f"{medians['ours'] / floor:.2f}, pure Python {pure / floor:.2f}"
            )
            continue
        if "hand-written" in medians:
            hand, floor = medians["hand-written"], medians["floor"]
            lines.append(
                f"  ours/floor {medians['ours'] / floor:.2f}, hand-written/floor "
                f"{hand / floor:.2f}; ours' wrapper adds {medians['ours'] - hand:.1f} µs"
            )
            continue
        if "ours, no hist" not in medians:  # --ablate pieces
            floor = medians["floor"]
            lines.append(f"  ours/floor {medians['ours'] / floor:.2f}; each piece in place:")
            for name in cases:
                if name in ("ours", "floor"):
                    continue
                lines.append(
                    f"    {name:22} {medians['ours'] - medians[name]:+6.1f} µs;"
                    f" ours/floor without it {medians[name] / floor:.2f}"
                )
            continue
        lines.append(
            f"  histogram records in place: ours {medians['ours'] - medians['ours, no hist']:.1f}"
            f", floor {medians['floor'] - medians['floor, no hist']:.1f}"
        )
        for name in cases.keys() - {"ours", "ours, no hist", "floor", "floor, no hist"}:
            lines.append(
                f"  ours - {name}: {medians['ours'] - medians[name]:+.1f}; without the record: "
                f"{medians['ours, no hist'] - medians[name]:+.1f}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = lo._Parser(prog="histogram_cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=lo._csv(list(lo.ROWS), "rows"),
        default=None,
        help="comma-separated rows of library_overhead.py (default chroma,qdrant; with "
        "--ablate summary, predict-50,rank-50,cohere)",
    )
    parser.add_argument(
        "--ablate",
        choices=("histogram", "summary", "pieces", "bound", "speedups"),
        default="histogram",
        help="what ours does without: the duration record (default), computing the "
        "rerank summary (written as given), each piece of the reranker wrapper in turn, "
        "(bound) its wrapper: the same recording written out by hand, or (speedups) the "
        "compiled speed-ups: the Python functions they stand in for run instead",
    )
    parser.add_argument("--peer", choices=sorted(lo.PEERS))
    parser.add_argument(
        "--traces-only",
        action="store_true",
        help="give ours, the floor and the peer a TracerProvider only, as "
        "library_overhead.py --traces-only (not with the histogram ablation)",
    )
    parser.add_argument("--blocks", type=lo._positive, default=9)
    parser.add_argument(
        "--calls", type=lo._positive, default=60, help="timed calls per case per block"
    )
    args = parser.parse_args(argv)
    if args.ablate in ABLATION_ROWS:
        taken, refusal = ABLATION_ROWS[args.ablate]
        if args.rows is None:
            args.rows = list(taken)
        if args.peer is not None and args.ablate != "bound":
            parser.error("--peer goes with the histogram and bound ablations only")
        other = [key for key in args.rows if key not in taken]
        if other:
            parser.error(refusal.format(", ".join(other)))
    elif args.rows is None:
        args.rows = list(DEFAULT_ROWS)
    if args.traces_only and args.ablate == "histogram":
        parser.error("--traces-only records no histogram: choose another --ablate")
    if args.ablate == "speedups" and importlib.util.find_spec("otel_rerank._speedups") is None:
        parser.error("otel_rerank._speedups is not built here (no C compiler at install)")
    if args.peer is not None:
        missing = [key for key in args.rows if key not in lo.PEERS[args.peer].rows]
        if missing:
            parser.error(f"{args.peer} does not instrument {', '.join(missing)}")
        if importlib.util.find_spec(lo.PEERS[args.peer].modules[0].split(".")[0]) is None:
            parser.error(
                f"{args.peer} is not installed here: run it with .venv-bench-{args.peer}/bin/python"
            )
    found = measure(args.rows, args.blocks, args.calls, args.peer, args.ablate, args.traces_only)
    print(report(found, args.blocks, args.calls))


if __name__ == "__main__":
    sys.exit(main())
