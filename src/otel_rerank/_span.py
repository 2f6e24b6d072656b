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

:class:`StageSpan` owns the rest: span name and stage attributes from the GenAI and
OpenInference conventions, the error path (``error.type``, status ERROR, the user's
exception left to propagate unchanged), the duration histogram, ending exactly once, and
the content policy (content helpers write only when capture is on, truncated and capped).
Extraction functions are pure and run only when the span is recording, through
:meth:`StageSpan.extract`, which turns any failure of ours into a debug log line.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple, ParamSpec, TypeVar

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.semconv.attributes import exception_attributes as exception_keys
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from otel_rerank import _telemetry, semconv
from otel_rerank._config import ContentPolicy
from otel_rerank._ranking import summarize_scores
from otel_rerank._safe import report_internal_error

_P = ParamSpec("_P")
_R = TypeVar("_R")
Attributes = Iterable[tuple[str, AttributeValue | None]]

# The legacy string key, still set by some older instrumentations' suppression helpers.
_SUPPRESS_PLAIN = "suppress_instrumentation"


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a RAG request, as the span conventions name it."""

    operation: str
    openinference_kind: str
    default_span_kind: SpanKind


EMBEDDINGS = Stage(semconv.OPERATION_EMBEDDINGS, semconv.KIND_EMBEDDING, SpanKind.INTERNAL)
RETRIEVAL = Stage(semconv.OPERATION_RETRIEVAL, semconv.KIND_RETRIEVER, SpanKind.INTERNAL)
RERANK = Stage(semconv.OPERATION_RERANK, semconv.KIND_RERANKER, SpanKind.INTERNAL)
CHAT = Stage(semconv.OPERATION_CHAT, semconv.KIND_LLM, SpanKind.CLIENT)

STAGES: Mapping[str, Stage] = {s.operation: s for s in (EMBEDDINGS, RETRIEVAL, RERANK, CHAT)}


def instrumentation_suppressed() -> bool:
    """True inside ``suppress_instrumentation()`` (ours, contrib's, or the legacy key)."""
    current = context.get_current()
    return bool(current.get(_SUPPRESS_INSTRUMENTATION_KEY) or current.get(_SUPPRESS_PLAIN))


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
    """Start a stage span, or return ``None`` when the caller should call straight through.

    Args:
        stage: which step this is (EMBEDDINGS, RETRIEVAL, RERANK, CHAT).
        provider: ``gen_ai.provider.name``.
        model: ``gen_ai.request.model``; also the span name's suffix unless ``detail`` is given.
        detail: the span name's suffix (the data source, for retrieval).
        kind: span kind; the stage's default (INTERNAL, CLIENT for chat) if omitted.
        attributes: extra attributes known before the call starts.
        links: links to other spans (the shadow reranker links to its request).
    """
    if instrumentation_suppressed():
        return None
    telemetry = _telemetry.current()
    if telemetry is None:
        return None
    try:
        return StageSpan(telemetry, stage, provider, model, detail, kind, attributes, links)
    except Exception:  # ours, or a caller's model that cannot be read: call straight through
        report_internal_error("begin")
        return None


class _Identity(NamedTuple):
    """What every call of one (stage, provider, model) starts with, computed once."""

    name: str
    #: shared by every call with this identity: read, never written to
    metric_attributes: dict[str, AttributeValue]
    span_attributes: Mapping[str, AttributeValue]


def _build_identity(
    stage: Stage, provider: str, model: str | None, detail: str | None, shadow: bool
) -> _Identity:
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
    span_attributes = dict(metric_attributes)
    span_attributes[semconv.OPENINFERENCE_SPAN_KIND] = stage.openinference_kind
    # The metric attributes stay a dict: the SDK keeps them in its data points.
    return _Identity(name, metric_attributes, MappingProxyType(span_attributes))


# Bounded: model names are the caller's.
_identity = functools.lru_cache(maxsize=512)(_build_identity)


class StageSpan:
    """One instrumented call in flight: its span, clock and metric attributes.

    Use it as a context manager to make the span current while the call runs, or call
    :meth:`end` yourself when the call outlives the wrapper (streams, generators).
    """

    __slots__ = (
        "_ended",
        "_metric_attributes",
        "_start",
        "_telemetry",
        "_token",
        "recording",
        "span",
    )

    def __init__(
        self,
        telemetry: _telemetry.Telemetry,
        stage: Stage,
        provider: str,
        model: str | None,
        detail: str | None,
        kind: SpanKind | None,
        attributes: Mapping[str, AttributeValue] | None,
        links: Sequence[Link] | None,
    ) -> None:
        self._telemetry = telemetry
        # Shadow runs cost the user nothing: keep them out of serving-latency alerts.
        shadow = bool(attributes and attributes.get(semconv.RAG_RERANK_SHADOW))
        try:
            identity = _identity(stage, provider, model, detail, shadow)
        except TypeError:  # a decorator's caller gave an unhashable model or data source
            identity = _build_identity(stage, provider, model, detail, shadow)
        name, self._metric_attributes, span_attributes = identity
        span_attributes = {**span_attributes, **attributes} if attributes else dict(span_attributes)
        self.span: Span = telemetry.tracer.start_span(
            name,
            kind=kind or stage.default_span_kind,
            attributes=span_attributes,
            links=links,
        )
        self.recording: bool = self.span.is_recording()
        self._token: object | None = None
        self._ended = False
        self._start = time.perf_counter()

    # -- lifetime -------------------------------------------------------------------------
    def __enter__(self) -> StageSpan:
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        token = self._token
        if token is not None:
            self._token = None
            context.detach(token)  # type: ignore[arg-type]
        self.end(exc)

    @property
    def context(self) -> context.Context:
        """A context in which this span is the current one (for work resumed later)."""
        return trace.set_span_in_context(self.span)

    def end(self, error: BaseException | None = None) -> None:
        """Record the outcome, end the span and record the duration. Later calls do nothing.

        ``GeneratorExit`` (a stream or generator closed early by its consumer) is not an error.
        """
        if self._ended:
            return
        self._ended = True
        elapsed = time.perf_counter() - self._start
        attributes = self._metric_attributes
        try:
            if error is not None and not isinstance(error, GeneratorExit):
                error_type = _error_type(error)
                attributes = {**attributes, semconv.ERROR_TYPE: error_type}
                if self.recording:
                    self.span.set_attribute(semconv.ERROR_TYPE, error_type)
                    self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                    # Last, and on its own: the user's exception may fail to print itself.
                    self.span.add_event(
                        "exception", exception_attributes(error, self._telemetry.content)
                    )
        except Exception:
            report_internal_error("StageSpan.end")
        try:
            self._telemetry.duration.record(elapsed, attributes)
        except Exception:
            report_internal_error("StageSpan.end")
        finally:
            self.span.end()

    # -- attributes -----------------------------------------------------------------------
    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set one attribute if the span records and the value is not ``None``."""
        if self.recording and value is not None:
            self.span.set_attribute(key, value)

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
        if not self.recording:
            return
        try:
            found = {key: value for key, value in extractor(*args, **kwargs) if value is not None}
            if found:
                # One call: the SDK takes the span's lock once, not once per attribute.
                self.span.set_attributes(found)
        except Exception:
            report_internal_error(getattr(extractor, "__qualname__", "extract"))

    def safely(self, recorder: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        """Run one of our recorders (which may use this span's methods); ``None`` if it fails.

        For recording logic that is more than a list of pairs (``extract``): whatever goes
        wrong inside is ours and never reaches the user's call.
        """
        try:
            return recorder(*args, **kwargs)
        except Exception:
            report_internal_error(getattr(recorder, "__qualname__", "recorder"))
            return None

    def record_candidates(self, count: int | None) -> None:
        """Candidates given to a reranker: the span attribute and the candidates histogram."""
        if count is None:
            return
        try:
            self.set(semconv.GEN_AI_RERANK_CANDIDATE_COUNT, count)
            self._telemetry.candidates.record(count, self._metric_attributes)
        except Exception:
            report_internal_error("record_candidates")

    def record_scores(self, scores: Sequence[float] | None) -> None:
        """Scores in the order the candidates were given: top score, top-1 change, tau-b.

        Pass ``None`` when the scores do not belong to one query's candidate list.
        """
        if not self.recording or scores is None:
            return
        try:
            summary = summarize_scores(scores)
            if summary is None:
                return
            span = self.span
            span.set_attribute(semconv.RAG_RERANK_TOP_SCORE, summary.top_score)
            span.set_attribute(semconv.RAG_RERANK_TOP1_CHANGED, summary.top1_changed)
            if summary.kendall_tau is not None:
                span.set_attribute(semconv.RAG_RERANK_KENDALL_TAU, summary.kendall_tau)
        except Exception:
            report_internal_error("record_scores")

    def record_tokens(
        self, input_tokens: int | None, output_tokens: int | None, *, on_span: bool = True
    ) -> None:
        """LLM token usage: the span attributes and the token usage histogram.

        ``on_span=False`` records the histogram only (the caller set the attributes along
        with others, in one write).
        """
        try:
            for token_type, key, count in (
                ("input", semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
                ("output", semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
            ):
                if count is None:
                    continue
                if on_span:
                    self.set(key, count)
                self._telemetry.token_usage.record(
                    count, {**self._metric_attributes, semconv.GEN_AI_TOKEN_TYPE: token_type}
                )
        except Exception:
            report_internal_error("record_tokens")

    # -- content (the only place the content policy is applied) ---------------------------
    @property
    def capturing(self) -> bool:
        """Whether content would be written: the span records and capture is on."""
        return self.recording and self._telemetry.content.capture

    def record_text(self, key: str, text: object) -> None:
        """Write one piece of content (a query, a prompt) when capture is on."""
        if not self.capturing or text is None:
            return
        try:
            self.span.set_attribute(key, _content_string(self._telemetry.content, text))
        except Exception:
            report_internal_error("record_text")

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
        under each index (``embedding.text`` for embedding inputs).
        """
        if not self.capturing:
            return
        try:
            policy = self._telemetry.content
            span = self.span
            docs = list(documents) if documents is not None else []
            count = max(len(docs), len(scores or ()), len(ids or ()))
            for i in range(min(count, policy.max_documents)):
                base = f"{prefix}.{i}."
                if i < len(docs) and docs[i] is not None:
                    span.set_attribute(base + content_key, _content_string(policy, docs[i]))
                if scores is not None and i < len(scores):
                    span.set_attribute(base + semconv.DOCUMENT_SCORE, float(scores[i]))
                if ids is not None and i < len(ids):
                    span.set_attribute(base + semconv.DOCUMENT_ID, str(ids[i]))
        except Exception:
            report_internal_error("record_documents")

    def record_messages(self, prefix: str, messages: Iterable[tuple[str, object]]) -> None:
        """Write chat messages as ``{prefix}.{i}.message.role|content`` when capture is on."""
        if not self.capturing:
            return
        try:
            policy = self._telemetry.content
            for i, (role, content_value) in enumerate(messages):
                if i >= policy.max_documents:
                    break
                base = f"{prefix}.{i}."
                self.span.set_attribute(base + semconv.MESSAGE_ROLE, str(role))
                if content_value is not None:
                    self.span.set_attribute(
                        base + semconv.MESSAGE_CONTENT, _content_string(policy, content_value)
                    )
        except Exception:
            report_internal_error("record_messages")


def _content_string(policy: ContentPolicy, value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return policy.truncate(value if isinstance(value, str) else str(value))


#: Innermost frames kept in a recorded stack trace (a RecursionError has a thousand).
_MAX_STACK_FRAMES: Final = 32


def exception_attributes(error: BaseException, policy: ContentPolicy) -> dict[str, str]:
    """The ``exception`` event's attributes, bounded by the content policy.

    An exception message often quotes its input (a document, a prompt), so it is content:
    with capture off only the type and the stack frames (file, line, function, source line;
    no message, no chained exception's message) are recorded; with capture on, the message
    too (in full up to the limit, and its start at the stack trace's end). The message and
    the stack trace are each at most ``policy.max_length`` characters (the stack trace
    keeps its innermost end). Never raises, even for an
    exception whose ``__str__`` or ``__repr__`` does.
    """
    error_type = _error_type(error)
    attributes = {exception_keys.EXCEPTION_TYPE: error_type}
    frames = "".join(
        traceback.format_list(traceback.extract_tb(error.__traceback__, limit=-_MAX_STACK_FRAMES))
    )
    if policy.capture:
        try:
            message = str(error)
        except Exception:
            message = f"<{error_type} object: str() failed>"
        attributes[exception_keys.EXCEPTION_MESSAGE] = policy.truncate(message)
        # The message is in its own attribute: here a short start of it leaves room for frames.
        short = ContentPolicy(max_length=max(policy.max_length // 4, 1)).truncate(message)
        last_line = f"{error_type}: {short}"
    else:
        last_line = f"{error_type} (message not recorded: content capture is off)"
    stacktrace = f"Traceback (most recent call last):\n{frames}{last_line}"
    if len(stacktrace) > policy.max_length:
        stacktrace = "…" + stacktrace[len(stacktrace) - policy.max_length + 1 :]
    attributes[exception_keys.EXCEPTION_STACKTRACE] = stacktrace
    return attributes


def _error_type(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
