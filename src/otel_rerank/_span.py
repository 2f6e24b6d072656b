"""The one span helper every instrumentation and decorator records through.

A wrapper does four things and nothing else::

    call = stage_span.begin(RERANK, model=name, provider="sentence_transformers")
    if call is None:                      # suppressed, or no SDK configured
        return wrapped(*args, **kwargs)
    with call:                            # current span while the call runs
        call.extract(_attributes.request, instance, args, kwargs)
        result = wrapped(*args, **kwargs)
        call.extract(_attributes.response, result)
        return result

:class:`StageSpan` is the call's lifetime (span name and stage attributes from the GenAI and
OpenInference conventions, current while the call runs, ended exactly once) and composes
the parts that each do one job: :mod:`otel_rerank._metrics` (the metric points),
:mod:`otel_rerank._rerank` (the rerank summary and reranked list), :mod:`otel_rerank._content`
(the content policy: the only place content is turned into attributes) and
:mod:`otel_rerank._errors` (the user's exception, recorded and left to propagate). Every
recording method runs through :func:`otel_rerank._safe.guarded` (``end``,
``record_candidates`` and ``record_scores``, on every call's path, catch and report inline:
the same path, one Python call less): a failure of ours never reaches the user's call.
Extraction functions are pure and run only when the span records.

The attributes a call gathers after its start are written in one ``set_attributes`` when it
ends: the SDK takes the span's lock and validates each attribute once, not once per write.
A *leaf* call (one that runs nothing that could start a span: faiss's C++ search) has its
span made when it ends instead, with every attribute at creation and never current.
What a span starts with (name, kind, start and metric attributes) is an :class:`Opening`,
built once per identity: the generic library wrapper keeps one per ``Start`` object,
checks "something records" once (:func:`records`: no SDK, then suppression from a single
context read) and starts the span in that context; so do the LLM
clients' wrappers.
When nothing records, the stage decorators hand out :data:`NON_RECORDING`, the same class
over ``INVALID_SPAN`` with no telemetry and no state, so one instance serves every thread
and task.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, Final, NamedTuple, ParamSpec, TypeVar

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.utils import (
    _SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
    is_instrumentation_enabled,
)
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_rerank import _content, _errors, _metrics, _rerank, _telemetry, semconv
from otel_rerank._config import ContentPolicy
from otel_rerank._metrics import MetricAttributes
from otel_rerank._safe import guard, guarded, report_internal_error
from otel_rerank._values import is_int

_P = ParamSpec("_P")
_R = TypeVar("_R")
Attributes = Iterable[tuple[str, AttributeValue | None]]

# OpenInference's ``llm.system`` values (``llm.provider`` takes any provider name).
_OPENINFERENCE_LLM_SYSTEMS = frozenset({"openai", "anthropic", "cohere", "mistralai", "vertexai"})
# The GenAI metric attributes a span's start attributes may carry (besides the identity).
_METRIC_SERVER_KEYS: Final = (semconv.SERVER_ADDRESS, semconv.SERVER_PORT)


# eq=False: a stage is one of the four constants below, hashed by identity (the span
# identity cache hashes it on every call).
@dataclass(frozen=True, slots=True, eq=False)
class Stage:
    """One step of a RAG request, as the span conventions name it."""

    operation: str
    openinference_kind: str
    default_span_kind: SpanKind
    #: OpenInference's twin of ``gen_ai.request.model`` on this stage's spans, if it has one.
    model_key: str | None = None


EMBEDDINGS = Stage(
    semconv.OPERATION_EMBEDDINGS,
    semconv.KIND_EMBEDDING,
    SpanKind.INTERNAL,
    semconv.EMBEDDING_MODEL_NAME,
)
RETRIEVAL = Stage(semconv.OPERATION_RETRIEVAL, semconv.KIND_RETRIEVER, SpanKind.INTERNAL)
RERANK = Stage(
    semconv.OPERATION_RERANK, semconv.KIND_RERANKER, SpanKind.INTERNAL, semconv.RERANKER_MODEL_NAME
)
# ``llm.model_name`` starts as the request model and becomes the response model once known.
CHAT = Stage(semconv.OPERATION_CHAT, semconv.KIND_LLM, SpanKind.CLIENT, semconv.LLM_MODEL_NAME)

STAGES: Mapping[str, Stage] = {s.operation: s for s in (EMBEDDINGS, RETRIEVAL, RERANK, CHAT)}

#: Called with the seconds each successful chat span took; the rerank budget guard
#: (``otel_rerank.budget``) sets it to learn the time kept back for the LLM after a rerank.
chat_duration_listener: Callable[[float], None] | None = None


# A framework's rerank step (LangChain's CrossEncoderReranker, LlamaIndex's
# SentenceTransformerRerank, Haystack's rankers) knows its top_n but calls a library that
# does not (CrossEncoder.predict): it sets this while the library call runs, and the
# library's rerank span records it (read by ``with_top_n``, and by the generic wrapper's
# ``Method._opening`` to tell that it must). One rerank span, with the framework's top_n.
framework_top_n: ContextVar[int | None] = ContextVar("otel_rerank_rerank_top_n", default=None)


@contextlib.contextmanager
def rerank_top_n(top_n: Any) -> Iterator[None]:
    """While inside, a rerank span that starts records ``top_n`` (an int > 0, else ignored)."""
    if not is_int(top_n) or top_n <= 0:
        yield
        return
    token = framework_top_n.set(top_n)
    try:
        yield
    finally:
        framework_top_n.reset(token)


def instrumentation_suppressed() -> bool:
    """True inside ``suppress_instrumentation()`` (ours, contrib's, or the legacy key).

    The OpenTelemetry instrumentation package's own check, which reads both keys.
    """
    return not is_instrumentation_enabled()


def records() -> tuple[_telemetry.Telemetry, context.Context] | None:
    """What a span would start with now: its telemetry and the context it starts in; or
    ``None`` when nothing records (no SDK configured, the cheaper check, then suppressed
    by ``suppress_instrumentation()``).

    The suppression answer is the OpenTelemetry instrumentation package's own check
    (``is_instrumentation_enabled``: either of its two keys set in the current context),
    made on the one context read here rather than through its three reads: this runs on
    every instrumented call. The context is handed to :class:`StageSpan` as the span's
    parent, so the SDK does not read it again.
    """
    # "No SDK" first: the answer of every call in an app without one.
    telemetry = _telemetry.current()
    if telemetry is None:
        return None
    parent = context.get_current()
    if parent.get(_SUPPRESS_INSTRUMENTATION_KEY) or parent.get(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN):
        return None
    return telemetry, parent


def begin(
    stage: Stage,
    *,
    provider: str,
    model: str | None = None,
    detail: str | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    links: Sequence[Link] | None = None,
) -> StageSpan | None:
    """Start a stage span, or return ``None`` when the caller should call straight through
    (nothing records, or ours failed).

    The span starts in the context current when it is entered (a decorated generator may
    start it before its first item and enter it later), so the context :func:`records`
    read is not kept.

    Args:
        stage: which step this is (EMBEDDINGS, RETRIEVAL, RERANK, CHAT).
        provider: ``gen_ai.provider.name``.
        model: ``gen_ai.request.model``; also the span name's suffix unless ``detail`` is given.
        detail: the span name's suffix (the data source, for retrieval).
        kind: span kind; the stage's default (INTERNAL, CLIENT for chat) if omitted.
        attributes: extra attributes known before the call starts.
        links: links to other spans (the shadow reranker links to its request).
    """
    found = records()
    if found is None:
        return None
    try:
        return StageSpan(
            found[0],
            opening(stage, provider, model, detail, kind, with_top_n(stage, attributes)),
            links,
        )
    except Exception:  # ours, or a caller's model that cannot be read: call straight through
        report_internal_error("begin")
        return None


def with_top_n(
    stage: Stage, attributes: Mapping[str, AttributeValue] | None
) -> Mapping[str, AttributeValue] | None:
    """``attributes`` with the top_n a framework set (:func:`rerank_top_n`), if a rerank
    span starts while one is set; else ``attributes`` itself."""
    if stage is RERANK:
        top_n = framework_top_n.get()
        if top_n is not None:
            return {
                semconv.GEN_AI_RERANK_TOP_N: top_n,
                semconv.RERANKER_TOP_K: top_n,
                **(attributes or {}),
            }
    return attributes


# Stateless, so shared: the guards of the methods that run a callable they are given (the
# logged traceback names the extractor, recorder or writer that failed).
_SAFELY_GUARD: Final = guard("StageSpan.safely")
_CONTENT_GUARD: Final = guard("StageSpan.record_content")


class Opening(NamedTuple):
    """Everything a span starts with, worked out before it starts.

    Depends only on :func:`opening`'s arguments, so a caller whose start attributes are
    one shared mapping (a per-instance cache) can keep it and start every call with it.
    Never written to.
    """

    stage: Stage
    name: str
    kind: SpanKind
    span_attributes: Mapping[str, AttributeValue]
    metric_attributes: MetricAttributes


def _build_identity(
    stage: Stage, provider: str, model: str | None, detail: str | None, shadow: bool
) -> Opening:
    """What every call of one (stage, provider, model) starts with, computed once: its
    opening with the stage's default kind and no attributes of its own."""
    metric_attributes: dict[str, AttributeValue] = {
        semconv.GEN_AI_OPERATION_NAME: stage.operation,
        semconv.GEN_AI_PROVIDER_NAME: provider,
    }
    if model:
        metric_attributes[semconv.GEN_AI_REQUEST_MODEL] = model
    if shadow:
        metric_attributes[semconv.RAG_RERANK_SHADOW] = True
    suffix = detail or model
    name = f"{stage.operation} {suffix}" if suffix else stage.operation
    # Shared by every call with this identity and never written to: handed to the SDK as
    # it is (the SDK copies the start attributes it keeps, and shows samplers a read-only
    # view); a dict, because ``{**a, **b}`` copies a dict at C speed and a mapping proxy
    # key by key.
    span_attributes = dict(metric_attributes)
    span_attributes[semconv.OPENINFERENCE_SPAN_KIND] = stage.openinference_kind
    if model and stage.model_key:
        span_attributes[stage.model_key] = model
    if stage is CHAT:
        span_attributes[semconv.LLM_PROVIDER] = provider
        if provider in _OPENINFERENCE_LLM_SYSTEMS:
            span_attributes[semconv.LLM_SYSTEM] = provider
    return Opening(
        stage, name, stage.default_span_kind, span_attributes, MetricAttributes(metric_attributes)
    )


# Bounded: model names are the caller's.
_identity = functools.lru_cache(maxsize=512)(_build_identity)


def opening(
    stage: Stage,
    provider: str,
    model: str | None = None,
    detail: str | None = None,
    kind: SpanKind | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Opening:
    """The span name, kind, start attributes and metric attributes of a call (see :func:`begin`
    for the arguments; a framework's top_n is not added here: :func:`with_top_n`)."""
    # Shadow runs cost the user nothing: keep them out of serving-latency alerts.
    shadow = bool(attributes and attributes.get(semconv.RAG_RERANK_SHADOW))
    try:
        identity = _identity(stage, provider, model, detail, shadow)
    except TypeError:  # a decorator's caller gave an unhashable model or data source
        identity = _build_identity(stage, provider, model, detail, shadow)
    if not attributes and (kind is None or kind is identity.kind):
        return identity  # the usual decorated call: nothing of its own to add
    span_attributes = identity.span_attributes
    metric_attributes = identity.metric_attributes
    if attributes:
        span_attributes = {**span_attributes, **attributes}
        top_n = attributes.get(semconv.GEN_AI_RERANK_TOP_N)
        if top_n is not None:  # OpenInference's twin
            span_attributes[semconv.RERANKER_TOP_K] = top_n
        for key in _METRIC_SERVER_KEYS:  # recommended on the GenAI metrics
            if key in attributes:
                metric_attributes = metric_attributes.plus(key, attributes[key])
    return Opening(stage, identity.name, kind or identity.kind, span_attributes, metric_attributes)


def leaf_records(telemetry: _telemetry.Telemetry, parent: context.Context | None) -> bool | None:
    """Whether a call that runs nothing that could start a span (a *leaf*: faiss's C++
    search, qdrant's in-process local mode) records, its span made when it ends; ``None``
    when it is not made a leaf here.

    Its span is made when it ends, with its start time taken when it began and every
    attribute at creation (one write; a sampler sees them all), never current. It records
    (its pairs are read) unless its parent is a span that is not sampled (a parent-based
    sampler drops the child; a sampler that keeps a child of an unsampled parent gets the
    start attributes only) or tracing is not set up. A root call is a leaf only under a
    sampler that keeps every root (``Telemetry.keeps_every_root``: the SDK's default);
    under any other (a ratio) ``None``: its span starts when the call does, as any call's,
    so that a span the sampler drops reads nothing.
    """
    in_parent = trace.get_current_span(parent)
    if in_parent is not INVALID_SPAN:  # a root call's has no span context to read
        parent_span = in_parent.get_span_context()
        if parent_span.is_valid:
            return telemetry.tracing and parent_span.trace_flags.sampled
    return telemetry.tracing if telemetry.keeps_every_root else None


def make_leaf(
    telemetry: _telemetry.Telemetry,
    opened: Opening,
    parent: context.Context | None,
    links: Sequence[Link] | None,
    attributes: Mapping[str, AttributeValue],
    start_ns: int,
    elapsed: float,
    failure: BaseException | None,
) -> Span:
    """A leaf call's span (see :func:`leaf_records`), made and ended now that the call
    returned: every attribute at creation, the start time taken when it began, ended after
    as long as it took; marked failed by ``failure`` (its ``error.type`` attribute already
    in ``attributes`` where it records)."""
    span = telemetry.tracer.start_span(
        opened.name,
        context=parent,
        kind=opened.kind,
        attributes=attributes,
        links=links,
        start_time=start_ns,
    )
    try:
        if failure is not None:
            _errors.record_error(span, failure, telemetry.content)
    finally:
        span.end(start_ns + int(elapsed * 1e9))
    return span


def end_leaf(
    telemetry: _telemetry.Telemetry,
    opened: Opening,
    parent: context.Context,
    pairs: dict[str, AttributeValue],
    start_ns: int,
    began: float,
    records: bool,
    error: BaseException | None = None,
) -> None:
    """The end of a leaf call recorded without a ``StageSpan`` (the generic wrapper's
    ``Method._leaf_call``), as :meth:`StageSpan.end` ends a leaf: its span made with the
    pairs read where it ``records`` (:func:`make_leaf`), then its duration (since the
    ``perf_counter`` reading ``began``) recorded in a context where that span is current.
    ``GeneratorExit`` is not an error. A failure of ours is logged, never raised.
    """
    elapsed = time.perf_counter() - began
    failure = error if error is not None and not isinstance(error, GeneratorExit) else None
    span: Span = INVALID_SPAN
    try:
        attributes = opened.span_attributes
        if records:
            if failure is not None:
                pairs[semconv.ERROR_TYPE] = _errors.error_type(failure)
            if pairs:
                attributes = {**attributes, **pairs}
        span = make_leaf(telemetry, opened, parent, None, attributes, start_ns, elapsed, failure)
    except Exception:
        report_internal_error("StageSpan.end")
    if telemetry.metering:
        try:
            _metrics.call_points(
                telemetry,
                opened.metric_attributes,
                elapsed,
                failure,
                trace.set_span_in_context(span, parent),
            )
        except Exception:
            report_internal_error("StageSpan.end")


def read_pairs(
    into: dict[str, AttributeValue],
    extractor: Callable[_P, Attributes],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> None:
    """Run a pure extraction function and add the pairs it yields to ``into``, less those
    whose value is ``None``: all of them, or none if it fails (a failure of ours, logged,
    that never reaches the user's call). An extractor names each key once."""
    try:
        found = dict(extractor(*args, **kwargs))  # in C, as the None check below
        if None in found.values():  # not the usual pairs, each of which has a value
            found = {key: value for key, value in found.items() if value is not None}
    except Exception:
        report_internal_error("StageSpan.extract")
    else:
        into.update(found)


class StageSpan:
    """One instrumented call in flight: its span, clock, metrics and gathered attributes.

    Use it as a context manager to make the span current while the call runs, or call
    :meth:`end` yourself when the call outlives the wrapper (streams, generators).
    Attributes given while the call runs (:meth:`set`, :meth:`extract`, ``record_*``) are
    written when it ends, in one write; like the SDK's, an ended span records nothing more.
    """

    __slots__ = (
        "_candidates",
        "_content",
        "_in_span",
        "_leaf",
        "_metric_attributes",
        "_open",
        "_parent",
        "_pending",
        "_ranking",
        "_rerank_texts",
        "_stage",
        "_telemetry",
        "_token",
        "_written_ranking",
        "recording",
        "span",
    )

    def __init__(
        self,
        telemetry: _telemetry.Telemetry,
        opened: Opening,
        links: Sequence[Link] | None = None,
        parent: context.Context | None = None,
        *,
        leaf: bool = False,
    ) -> None:
        """Start the span (see :func:`begin`).

        ``parent``: the current context (:func:`records`' second value), given by a caller that
        enters this span before anything can change it; the span starts in it and is made
        current on top of it without the context being read again.

        ``leaf``: nothing the call runs can start a span, so the span need not be current
        while it runs: where :func:`leaf_records` makes it a leaf, its start time is taken
        now and the span made when it ends (:func:`make_leaf`).
        """
        recording = leaf_records(telemetry, parent) if leaf else None
        if recording is not None:
            self.span: Span = INVALID_SPAN  # until the call ends
            self.recording = recording
            self._leaf: tuple[Opening, Sequence[Link] | None, int] | None = (
                opened,
                links,
                time.time_ns(),
            )
        else:
            self.span = telemetry.tracer.start_span(
                opened.name,
                context=parent,
                kind=opened.kind,
                attributes=opened.span_attributes,
                links=links,
            )
            self.recording = self.span.is_recording()
            self._leaf = None
        self._telemetry: _telemetry.Telemetry | None = telemetry
        self._metric_attributes = opened.metric_attributes
        self._content = telemetry.content
        self._stage: Stage | None = opened.stage
        self._parent = parent
        self._pending: dict[str, AttributeValue] = {}
        self._ranking: _rerank.Ranking | None = None
        #: positions of a ranking whose output documents are in ``_pending`` already
        self._written_ranking = 0
        self._rerank_texts: list[object] | None = None
        self._token: object | None = None
        self._in_span: context.Context | None = None  # see _current_in
        self._candidates: int | None = None  # recorded with the duration (record_candidates)
        # The start time, taken out exactly once by ``end`` (list.pop is atomic: two
        # threads ending one call record it once).
        self._open = [time.perf_counter()]

    @classmethod
    def _non_recording(cls) -> StageSpan:
        """The stand-in when nothing records: ``INVALID_SPAN``, no telemetry, no state."""
        stand_in = object.__new__(cls)
        stand_in.span = INVALID_SPAN
        stand_in.recording = False  # never set again: every write below is gated on it
        stand_in._telemetry = None
        stand_in._metric_attributes = _NO_METRIC_ATTRIBUTES
        stand_in._parent = None
        stand_in._content = ContentPolicy()
        stand_in._leaf = None
        stand_in._stage = None
        stand_in._pending = {}
        stand_in._ranking = None
        stand_in._written_ranking = 0
        stand_in._rerank_texts = None
        stand_in._token = None
        stand_in._in_span = None
        stand_in._candidates = None
        stand_in._open = []  # already ended: ``end`` does nothing
        return stand_in

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> StageSpan:
        # The stand-in has no span to make current, a leaf none yet (nor a need for one).
        if self._telemetry is not None and self._leaf is None:
            # Without a parent given, the span starts in the context current now.
            if self._parent is None or self._in_span is None:
                self._in_span = trace.set_span_in_context(self.span, self._parent)
            self._token = context.attach(self._in_span)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        token = self._token
        if token is not None:
            self._token = None
            context.detach(token)  # type: ignore[arg-type]
        self.end(exc)

    def _current_in(self) -> context.Context:
        """A context in which this span is current, built once: the one each metric point
        of the call is recorded in, so that its exemplar points at this span wherever the
        point is recorded (before the span is entered, or after it is left). A leaf has
        none until it is made (an invalid span: no exemplar)."""
        in_span = self._in_span
        if in_span is None:
            in_span = self._in_span = trace.set_span_in_context(self.span, self._parent)
        return in_span

    @property
    def context(self) -> context.Context:
        """A context in which this span is the current one (for work resumed later).

        The stand-in's is the current context: it has no span to make current (nor has a
        leaf before it ends).
        """
        if self._telemetry is None or self._leaf is not None:
            return context.get_current()
        if self._parent is None:  # on top of the current context
            return trace.set_span_in_context(self.span)
        return self._current_in()  # on top of the context it started in: built once

    def end(self, error: BaseException | None = None) -> None:
        """Record the outcome, end the span and record the duration. Later calls do nothing.

        ``GeneratorExit`` (a stream or generator closed early by its consumer) is not an error.
        """
        try:
            start = self._open.pop()
        except IndexError:  # ended already (or the stand-in)
            return
        elapsed = time.perf_counter() - start
        # Inline rather than through ``guarded`` methods: this runs on every call. Each of
        # the two steps is guarded on its own, so a failed write still records the metric.
        failure = error if error is not None and not isinstance(error, GeneratorExit) else None
        leaf = self._leaf
        try:
            if leaf is not None:
                try:
                    self._make_leaf(leaf, elapsed, failure)
                except Exception:
                    report_internal_error("StageSpan.end")
            elif self.recording:
                self.recording = False  # as the SDK's ended span: later writes are dropped
                try:
                    # The usual call (no ranking kept for the end, no failure) writes what
                    # it gathered as it is: no frame to work out its outcome.
                    if self._ranking is None and failure is None:
                        pending = self._pending
                        if pending:
                            self.span.set_attributes(pending)
                    else:
                        self._write_outcome(failure)
                except Exception:
                    report_internal_error("StageSpan.end")
            telemetry = self._telemetry
            if telemetry is not None:
                if telemetry.metering:
                    in_span = self._in_span  # built as the span was entered, usually
                    try:
                        _metrics.call_points(
                            telemetry,
                            self._metric_attributes,
                            elapsed,
                            failure,
                            in_span if in_span is not None else self._current_in(),
                            self._candidates,  # given before or during the call
                        )
                    except Exception:
                        report_internal_error("StageSpan.end")
                listener = chat_duration_listener
                if listener is not None and error is None and self._stage is CHAT:
                    try:
                        listener(elapsed)
                    except Exception:
                        report_internal_error("StageSpan.end")
        finally:
            if leaf is None:
                self.span.end()

    def _outcome(self, failure: BaseException | None) -> dict[str, AttributeValue]:
        """Everything gathered while the call ran, then the failure's ``error.type``."""
        pending = self._pending
        ranking = self._ranking
        if ranking is not None:
            policy = self._content
            _rerank.add_output_documents(pending, ranking, policy.max_documents)
            texts = self._rerank_texts
            if texts is not None and policy.capture:
                pending.update(_content.output_document_texts(policy, ranking[0], texts))
        if failure is not None:
            pending[semconv.ERROR_TYPE] = _errors.error_type(failure)
        return pending

    def _write_outcome(self, failure: BaseException | None) -> None:
        """The outcome (:meth:`_outcome`) in one write, then the failure's event."""
        pending = self._outcome(failure)
        if pending:
            self.span.set_attributes(pending)
        if failure is not None:
            _errors.record_error(self.span, failure, self._content)

    def _make_leaf(
        self,
        leaf: tuple[Opening, Sequence[Link] | None, int],
        elapsed: float,
        failure: BaseException | None,
    ) -> None:
        """A leaf call's span, made now that it ended: every attribute at creation, the
        start time taken when the call began, ended after as long as the call took."""
        opened, links, start_ns = leaf
        attributes = opened.span_attributes
        if self.recording:
            self.recording = False
            # The usual leaf (no ranking, no failure) has nothing but its pairs to add.
            pending = (
                self._pending
                if self._ranking is None and failure is None
                else self._outcome(failure)
            )
            if pending:
                attributes = {**attributes, **pending}
        telemetry: _telemetry.Telemetry = self._telemetry  # type: ignore[assignment]
        self.span = make_leaf(
            telemetry,
            opened,
            self._parent,
            links,
            attributes,
            start_ns,
            elapsed,
            failure,
        )
        self._in_span = None  # built on the invalid span until now

    # -- attributes -----------------------------------------------------------------------
    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set one attribute if the span records and the value is not ``None``.

        A key that is not a string is dropped, as the SDK drops it (a user's ``with
        otel_rerank.rerank() as span: span.set_attribute(...)`` must never raise).
        """
        if self.recording and value is not None and isinstance(key, str):
            self._pending[key] = value

    set_attribute = set  # the name OpenTelemetry users reach for in a ``with ... as span``

    def extract(
        self,
        extractor: Callable[_P, Attributes],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> None:
        """Run a pure extraction function and set the pairs it yields; ``None`` values skip.

        Runs only when the span records; a failure inside it is ours and never reaches the
        user's call (and then none of its pairs is set).
        """
        if self.recording:
            read_pairs(self._pending, extractor, *args, **kwargs)

    def safely(self, recorder: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        """Run one of our recorders (which may use this span's methods); ``None`` if it fails.

        For recording logic that is more than a list of pairs (``extract``): whatever goes
        wrong inside is ours and never reaches the user's call.
        """
        with _SAFELY_GUARD:
            return recorder(*args, **kwargs)
        return None

    def record_candidates(self, count: int | None) -> None:
        """Candidates given to a reranker: the span attribute and the candidates histogram.

        The histogram point of a call in flight (the latest count given, as for the span
        attribute) is recorded as it ends, beside its duration and in the same context
        (its exemplar points at this span), whether or not the call failed: the two
        records run back to back, where the SDK's code is warm, rather than one on each
        side of the model's forward pass (about 7 µs less per call, warm). After the end,
        the point is recorded at once: it belongs to the call (the span's attribute is
        not: an ended span records nothing more).
        """
        if count is None:
            return
        if self.recording:
            self._pending[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] = count
        if self._open:  # in flight
            self._candidates = count
            return
        telemetry = self._telemetry
        if telemetry is not None and telemetry.metering:
            try:  # inline, not ``guarded``: a call's own path
                _metrics.candidates(telemetry, self._metric_attributes, count, self._current_in())
            except Exception:
                report_internal_error("StageSpan.record_candidates")

    def record_scores(self, scores: Sequence[float] | Any, top_n: int | None = None) -> None:
        """Scores in the order the candidates were given: top score, top-1 change, tau-b.

        A list or tuple of numbers, or a numpy array or torch tensor of shape (n,) or (n, 1)
        as a model returned it (read once, never kept). Also the reranked list,
        ``reranker.output_documents.{i}.document.id|score`` best first (the id is the
        candidate's position in the input; ``top_n``: only that many were returned). Pass
        ``None`` when the scores do not belong to one query's candidate list.

        With content capture off (the default) the summary and the reranked list are
        written into the span's pending attributes at once (``_rerank.write_summary``: one
        compiled call); with it on, the ranking is kept until the span ends, when the
        documents' texts join it. Either way a later ranking replaces this one whole.
        """
        if not self.recording or scores is None:
            return
        try:  # inline, not ``guarded``: every reranker call's own path
            policy = self._content
            limit = policy.max_documents  # only these are written
            if top_n is not None and 0 <= top_n < limit:
                limit = top_n
            if policy.capture:  # kept: the documents' texts join it when the span ends
                found = _rerank.summary(scores, limit)
                if found is not None:
                    self._drop_written_ranking()
                    attributes, self._ranking = found
                    self._pending.update(attributes)
            elif not self._written_ranking:  # the usual call: written now, in one step
                written = _rerank.write_summary(self._pending, scores, limit)
                if written is not None:
                    self._written_ranking = written
                    self._ranking = None
            else:  # a ranking written before: replaced whole, if these are scores
                fresh: dict[str, AttributeValue] = {}
                written = _rerank.write_summary(fresh, scores, limit)
                if written is not None:
                    self._drop_written_ranking()
                    self._pending.update(fresh)
                    self._written_ranking = written
        except Exception:
            report_internal_error("StageSpan.record_scores")

    def _drop_written_ranking(self) -> None:
        """Remove the output documents :meth:`record_scores` wrote: a later ranking
        replaces them whole (and a ranking kept for the end, ``_ranking``, is forgotten)."""
        self._ranking = None
        written = self._written_ranking
        if written:
            self._written_ranking = 0
            _rerank.drop_output_documents(self._pending, written)

    @guarded
    def record_ranked(self, ranked: Sequence[tuple[int, float]] | None) -> None:
        """The reranker's output, best first, as ``(input position, score)`` pairs.

        Written as ``reranker.output_documents.{i}.document.id|score`` (not content: at most
        ``max_documents`` of them); with capture on and the input documents recorded, each
        also gets its ``document.content``. The latest ranking given is the one written.
        """
        if self.recording and ranked is not None:
            self._drop_written_ranking()
            self._ranking = _rerank.ranking_of_pairs(ranked)

    def record_ranked_columns(self, indices: Sequence[int], scores: Sequence[float]) -> None:
        """:meth:`record_ranked` of a ranking read as two columns (an API's response): the
        input positions best first and their scores, the same length (not copied: not
        changed later by the caller)."""
        if self.recording:
            self._drop_written_ranking()
            self._ranking = (indices, scores)

    @guarded
    def record_tokens(
        self, input_tokens: int | None, output_tokens: int | None, *, on_span: bool = True
    ) -> None:
        """LLM token usage: the span attributes and the token usage histogram.

        ``on_span=False`` records the histogram only (the caller set the attributes along
        with others).
        """
        if on_span and self.recording:
            self._pending.update(_token_attributes(input_tokens, output_tokens))
        if self._telemetry is not None and self._telemetry.metering:
            _metrics.tokens(
                self._telemetry,
                self._metric_attributes,
                input_tokens,
                output_tokens,
                self._current_in(),
            )

    @guarded
    def record_response_model(self, model: object) -> None:
        """``gen_ai.response.model`` on the span and the metrics recorded from now on.

        On LLM spans ``llm.model_name`` becomes it too (OpenInference's model is the one
        that answered). Call it before :meth:`record_tokens` so the token histogram has it.
        """
        if not isinstance(model, str) or not model:
            return
        if self._telemetry is not None and self._telemetry.metering:  # else never read
            self._metric_attributes = self._metric_attributes.plus(
                semconv.GEN_AI_RESPONSE_MODEL, model
            )
        if self.recording:
            self._pending[semconv.GEN_AI_RESPONSE_MODEL] = model
            if self._stage is CHAT:
                self._pending[semconv.LLM_MODEL_NAME] = model

    @guarded
    def record_time_to_first_chunk(self, seconds: float) -> None:
        """A stream's first chunk: ``gen_ai.response.time_to_first_chunk`` and its histogram."""
        self.set(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, seconds)
        if self._telemetry is not None and self._telemetry.metering:
            _metrics.time_to_first_chunk(
                self._telemetry, self._metric_attributes, seconds, self._current_in()
            )

    # -- content (the privacy gate; _content applies the policy) --------------------------
    @property
    def capturing(self) -> bool:
        """Whether content would be written: the span records and capture is on."""
        return self.recording and self._content.capture

    def record_content(
        self,
        writer: Callable[Concatenate[StageSpan, _P], object],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> None:
        """The privacy gate: run ``writer(self, *args, **kwargs)`` only when content is captured.

        Wrappers hand their content here lazily instead of asking whether capture is on:
        with capture off (the default) the writer never runs, so nothing of the content is
        even read. A failure inside the writer is ours and never reaches the user's call.
        """
        if self.recording and self._content.capture:  # ``capturing``, inline: every call
            with _CONTENT_GUARD:
                writer(self, *args, **kwargs)

    @guarded
    def record_text(self, key: str, text: object) -> None:
        """Write one piece of content (a query, a prompt) when capture is on."""
        if self.capturing and text is not None:
            self._pending[key] = _content.string(self._content, text)

    @guarded
    def record_documents(
        self,
        prefix: str,
        documents: Iterable[object] | None,
        scores: Sequence[float] | None = None,
        ids: Sequence[object] | None = None,
        content_key: str = semconv.DOCUMENT_CONTENT,
    ) -> None:
        """Write documents as OpenInference ``{prefix}.{i}.document.*`` keys when capture is on.

        At most ``max_documents`` are written; scores and ids are written even for
        documents whose text is unknown (``None``). ``content_key`` names the text's key
        under each index (``embedding.text`` for embedding inputs). A reranker's input
        documents get their position as ``document.id`` (the id its output documents
        refer to) and are remembered, so the output documents get their text too.
        """
        if not self.capturing:
            return
        docs = list(documents) if documents is not None else []
        if prefix == semconv.RERANKER_INPUT_DOCUMENTS:
            if ids is None:
                ids = range(len(docs))
            self._rerank_texts = docs
        self._pending.update(
            _content.documents(self._content, prefix, docs, scores, ids, content_key)
        )

    @guarded
    def record_messages(self, prefix: str, messages: Iterable[tuple[str, object]]) -> None:
        """Write chat messages as ``{prefix}.{i}.message.role|content`` when capture is on."""
        if self.capturing:
            self._pending.update(_content.messages(self._content, prefix, messages))

    @guarded
    def record_input_messages(
        self, messages: Sequence[tuple[str, object]], system_instructions: object = None
    ) -> None:
        """A chat request's messages, when capture is on, in both vocabularies.

        OpenInference's ``llm.input_messages.{i}.message.*`` (the separately given system
        instructions first, as a ``system`` message) and the GenAI conventions' JSON
        ``gen_ai.input.messages`` and ``gen_ai.system_instructions``; the same truncation
        and count cap apply to both.
        """
        if self.capturing:
            self._pending.update(
                _content.input_messages(self._content, messages, system_instructions)
            )

    @guarded
    def record_output_messages(
        self, messages: Sequence[tuple[str, object]], finish_reasons: Sequence[str] = ()
    ) -> None:
        """A chat response's choices, when capture is on, in both vocabularies.

        ``llm.output_messages.{i}.message.*``, the JSON ``gen_ai.output.messages`` (each
        with its finish reason, in the conventions' names) and ``output.value`` (the first
        choice's text, what Phoenix shows as the span's output).
        """
        if self.capturing:
            self._pending.update(_content.output_messages(self._content, messages, finish_reasons))

    @guarded
    def record_retrieval_query(self, text: object) -> None:
        """A retrieval's query text, when capture is on: ``input.value`` and
        ``gen_ai.retrieval.query.text``."""
        if self.capturing and isinstance(text, str):
            self._pending.update(_content.retrieval_query(self._content, text))

    @guarded
    def record_retrieved(
        self,
        documents: Sequence[object] | None,
        scores: Sequence[float] | None,
        ids: Sequence[object] | None,
    ) -> None:
        """A retrieval's hits, best first, when capture is on, in both vocabularies.

        ``retrieval.documents.{i}.document.id|score|content`` and the JSON
        ``gen_ai.retrieval.documents`` (``[{"id", "score", "content"}]``), truncated and
        capped alike.
        """
        if not self.capturing:
            return
        policy = self._content
        docs = list(documents or ())
        pending = self._pending
        pending.update(
            _content.documents(
                policy, semconv.RETRIEVAL_DOCUMENTS, docs, scores, ids, semconv.DOCUMENT_CONTENT
            )
        )
        pending.update(_content.retrieved_json(policy, docs, scores, ids))


_NO_METRIC_ATTRIBUTES: Final = MetricAttributes({})

#: What the stage decorators' ``with otel_rerank.rerank() as span:`` gets when nothing
#: records: every method works and does nothing (it has no state to share between threads).
NON_RECORDING: Final = StageSpan._non_recording()


def _token_attributes(
    input_tokens: int | None, output_tokens: int | None
) -> dict[str, AttributeValue]:
    """Token counts in both vocabularies (``llm.token_count.total`` only with both known)."""
    found: dict[str, AttributeValue] = {}
    if input_tokens is not None:
        found[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        found[semconv.LLM_TOKEN_COUNT_PROMPT] = input_tokens
    if output_tokens is not None:
        found[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        found[semconv.LLM_TOKEN_COUNT_COMPLETION] = output_tokens
    if input_tokens is not None and output_tokens is not None:
        found[semconv.LLM_TOKEN_COUNT_TOTAL] = input_tokens + output_tokens
    return found
