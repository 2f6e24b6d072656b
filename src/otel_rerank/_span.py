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

import contextlib
import functools
import json
import math
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Concatenate, Final, NamedTuple, ParamSpec, TypeVar

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

# OpenInference's ``llm.system`` values (``llm.provider`` takes any provider name).
_OPENINFERENCE_LLM_SYSTEMS = frozenset({"openai", "anthropic", "cohere", "mistralai", "vertexai"})
# Attributes given at span start that have an OpenInference twin.
_START_TWINS = {semconv.GEN_AI_RERANK_TOP_N: semconv.RERANKER_TOP_K}
# The GenAI metric attributes a span's start attributes may carry (besides the identity).
_METRIC_SERVER_KEYS = (semconv.SERVER_ADDRESS, semconv.SERVER_PORT)
# The GenAI conventions' finish reasons for the providers' own names (output messages).
_FINISH_REASONS = {
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_use": "tool_call",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}


@dataclass(frozen=True, slots=True)
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
# library's rerank span records it. One rerank span, with the framework's top_n.
_RERANK_TOP_N: ContextVar[int | None] = ContextVar("otel_rerank_rerank_top_n", default=None)


@contextlib.contextmanager
def rerank_top_n(top_n: Any) -> Iterator[None]:
    """While inside, a rerank span that starts records ``top_n`` (an int > 0, else ignored)."""
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n <= 0:
        yield
        return
    token = _RERANK_TOP_N.set(top_n)
    try:
        yield
    finally:
        _RERANK_TOP_N.reset(token)


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
    if stage is RERANK:
        top_n = _RERANK_TOP_N.get()
        if top_n is not None:
            attributes = {
                semconv.GEN_AI_RERANK_TOP_N: top_n,
                semconv.RERANKER_TOP_K: top_n,
                **(attributes or {}),
            }
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
    if model and stage.model_key:
        span_attributes[stage.model_key] = model
    if stage.operation == semconv.OPERATION_CHAT:
        span_attributes[semconv.LLM_PROVIDER] = provider
        if provider in _OPENINFERENCE_LLM_SYSTEMS:
            span_attributes[semconv.LLM_SYSTEM] = provider
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
        "_ranking",
        "_rerank_texts",
        "_stage",
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
        self._stage = stage
        self._ranking: list[tuple[int, float]] | None = None
        self._rerank_texts: list[object] | None = None
        if attributes:
            span_attributes = {**span_attributes, **attributes}
            for key, twin in _START_TWINS.items():
                if key in attributes:
                    span_attributes[twin] = attributes[key]
            server = {k: attributes[k] for k in _METRIC_SERVER_KEYS if k in attributes}
            if server:  # recommended on the GenAI metrics
                self._metric_attributes = {**self._metric_attributes, **server}
        else:
            span_attributes = dict(span_attributes)
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
            listener = chat_duration_listener
            if (
                listener is not None
                and error is None
                and attributes.get(semconv.GEN_AI_OPERATION_NAME) == semconv.OPERATION_CHAT
            ):
                listener(elapsed)
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

    def record_scores(self, scores: Sequence[float] | None, top_n: int | None = None) -> None:
        """Scores in the order the candidates were given: top score, top-1 change, tau-b.

        Also the reranked list, ``reranker.output_documents.{i}.document.id|score`` best
        first (the id is the candidate's position in the input; ``top_n``: only that many
        were returned). Pass ``None`` when the scores do not belong to one query's
        candidate list.
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
            order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # stable
            limit = self._telemetry.content.max_documents  # only these are written
            if top_n is not None and 0 <= top_n < limit:
                limit = top_n
            self.record_ranked([(i, float(scores[i])) for i in order[:limit]])
        except Exception:
            report_internal_error("record_scores")

    def record_ranked(self, ranked: Sequence[tuple[int, float]] | None) -> None:
        """The reranker's output, best first, as ``(input position, score)`` pairs.

        Written as ``reranker.output_documents.{i}.document.id|score`` (not content: at most
        ``max_documents`` of them); with capture on and the input documents recorded, each
        also gets its ``document.content``.
        """
        if not self.recording or ranked is None:
            return
        try:
            self._ranking = list(ranked)
            self._write_output_documents()
        except Exception:
            report_internal_error("record_ranked")

    def _write_output_documents(self) -> None:
        ranking = self._ranking
        if ranking is None:
            return
        policy = self._telemetry.content
        texts = self._rerank_texts if policy.capture else None
        found: dict[str, AttributeValue] = {}
        for position, (index, score) in enumerate(ranking[: policy.max_documents]):
            id_key, score_key, content_key = _output_document_keys(position)
            found[id_key] = str(index)
            if math.isfinite(score):
                found[score_key] = score
            if texts is not None and 0 <= index < len(texts) and texts[index] is not None:
                found[content_key] = _content_string(policy, texts[index])
        if found:
            self.span.set_attributes(found)

    def record_tokens(
        self, input_tokens: int | None, output_tokens: int | None, *, on_span: bool = True
    ) -> None:
        """LLM token usage: the span attributes and the token usage histogram.

        ``on_span=False`` records the histogram only (the caller set the attributes along
        with others, in one write).
        """
        try:
            if on_span and self.recording:
                self.span.set_attributes(_token_attributes(input_tokens, output_tokens))
            for token_type, count in (("input", input_tokens), ("output", output_tokens)):
                if count is None:
                    continue
                self._telemetry.token_usage.record(
                    count, {**self._metric_attributes, semconv.GEN_AI_TOKEN_TYPE: token_type}
                )
        except Exception:
            report_internal_error("record_tokens")

    def record_response_model(self, model: object) -> None:
        """``gen_ai.response.model`` on the span and the metrics recorded from now on.

        On LLM spans ``llm.model_name`` becomes it too (OpenInference's model is the one
        that answered). Call it before :meth:`record_tokens` so the token histogram has it.
        """
        if not isinstance(model, str) or not model:
            return
        try:
            self._metric_attributes = {
                **self._metric_attributes,
                semconv.GEN_AI_RESPONSE_MODEL: model,
            }
            if self.recording:
                self.span.set_attribute(semconv.GEN_AI_RESPONSE_MODEL, model)
                if self._stage.operation == semconv.OPERATION_CHAT:
                    self.span.set_attribute(semconv.LLM_MODEL_NAME, model)
        except Exception:
            report_internal_error("record_response_model")

    def record_time_to_first_chunk(self, seconds: float) -> None:
        """A stream's first chunk: ``gen_ai.response.time_to_first_chunk`` and its histogram."""
        try:
            self.set(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, seconds)
            self._telemetry.time_to_first_chunk.record(seconds, self._metric_attributes)
        except Exception:
            report_internal_error("record_time_to_first_chunk")

    # -- content (the only place the content policy is applied) ---------------------------
    @property
    def capturing(self) -> bool:
        """Whether content would be written: the span records and capture is on."""
        return self.recording and self._telemetry.content.capture

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
        if not self.capturing:
            return
        try:
            writer(self, *args, **kwargs)
        except Exception:
            report_internal_error(getattr(writer, "__qualname__", "record_content"))

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
        under each index (``embedding.text`` for embedding inputs). A reranker's input
        documents get their position as ``document.id`` (the id its output documents
        refer to) and are remembered, so the output documents get their text too.
        """
        if not self.capturing:
            return
        try:
            policy = self._telemetry.content
            span = self.span
            docs = list(documents) if documents is not None else []
            if prefix == semconv.RERANKER_INPUT_DOCUMENTS:
                if ids is None:
                    ids = range(len(docs))
                self._rerank_texts = docs
                self._write_output_documents()
            count = max(len(docs), len(scores or ()), len(ids or ()))
            for i in range(min(count, policy.max_documents)):
                base = f"{prefix}.{i}."
                if i < len(docs) and docs[i] is not None:
                    span.set_attribute(base + content_key, _content_string(policy, docs[i]))
                if scores is not None and i < len(scores) and math.isfinite(scores[i]):
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

    def record_input_messages(
        self, messages: Sequence[tuple[str, object]], system_instructions: object = None
    ) -> None:
        """A chat request's messages, when capture is on, in both vocabularies.

        OpenInference's ``llm.input_messages.{i}.message.*`` (the separately given system
        instructions first, as a ``system`` message) and the GenAI conventions' JSON
        ``gen_ai.input.messages`` and ``gen_ai.system_instructions``; the same truncation
        and count cap apply to both.
        """
        if not self.capturing:
            return
        try:
            flattened = list(messages)
            if system_instructions is not None:
                flattened.insert(0, ("system", system_instructions))
            self.record_messages(semconv.LLM_INPUT_MESSAGES, flattened)
            policy = self._telemetry.content
            found: dict[str, AttributeValue] = {
                semconv.GEN_AI_INPUT_MESSAGES: _json(
                    [
                        {"role": str(role), "parts": _text_parts(policy, text)}
                        for role, text in messages[: policy.max_documents]
                    ]
                )
            }
            if system_instructions is not None:
                found[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = _json(
                    _text_parts(policy, system_instructions)
                )
            self.span.set_attributes(found)
        except Exception:
            report_internal_error("record_input_messages")

    def record_output_messages(
        self, messages: Sequence[tuple[str, object]], finish_reasons: Sequence[str] = ()
    ) -> None:
        """A chat response's choices, when capture is on, in both vocabularies.

        ``llm.output_messages.{i}.message.*``, the JSON ``gen_ai.output.messages`` (each
        with its finish reason, in the conventions' names) and ``output.value`` (the first
        choice's text, what Phoenix shows as the span's output).
        """
        if not self.capturing:
            return
        try:
            self.record_messages(semconv.LLM_OUTPUT_MESSAGES, messages)
            policy = self._telemetry.content
            output = []
            for i, (role, text) in enumerate(messages[: policy.max_documents]):
                reason = finish_reasons[i] if i < len(finish_reasons) else None
                output.append(
                    {
                        "role": str(role),
                        "parts": _text_parts(policy, text),
                        "finish_reason": _FINISH_REASONS.get(reason, reason) if reason else "",
                    }
                )
            found: dict[str, AttributeValue] = {semconv.GEN_AI_OUTPUT_MESSAGES: _json(output)}
            if messages and messages[0][1] is not None:
                found[semconv.OUTPUT_VALUE] = _content_string(policy, messages[0][1])
            self.span.set_attributes(found)
        except Exception:
            report_internal_error("record_output_messages")

    def record_retrieval_query(self, text: object) -> None:
        """A retrieval's query text, when capture is on: ``input.value`` and
        ``gen_ai.retrieval.query.text``."""
        if not self.capturing or not isinstance(text, str):
            return
        try:
            value = _content_string(self._telemetry.content, text)
            self.span.set_attributes(
                {semconv.INPUT_VALUE: value, semconv.GEN_AI_RETRIEVAL_QUERY_TEXT: value}
            )
        except Exception:
            report_internal_error("record_retrieval_query")

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
        self.record_documents(semconv.RETRIEVAL_DOCUMENTS, documents, scores, ids)
        try:
            policy = self._telemetry.content
            docs = list(documents or ())
            count = max(len(docs), len(scores or ()), len(ids or ()))
            entries: list[dict[str, object]] = []
            for i in range(min(count, policy.max_documents)):
                entry: dict[str, object] = {}
                if ids is not None and i < len(ids):
                    entry["id"] = str(ids[i])
                if scores is not None and i < len(scores) and math.isfinite(scores[i]):
                    entry["score"] = float(scores[i])
                if i < len(docs) and docs[i] is not None:
                    entry["content"] = _content_string(policy, docs[i])
                entries.append(entry)
            self.span.set_attribute(semconv.GEN_AI_RETRIEVAL_DOCUMENTS, _json(entries))
        except Exception:
            report_internal_error("record_retrieved")


def _content_string(policy: ContentPolicy, value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return policy.truncate(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=1024)
def _output_document_keys(position: int) -> tuple[str, str, str]:
    """``reranker.output_documents.{position}.document.id|score|content``, built once."""
    base = f"{semconv.RERANKER_OUTPUT_DOCUMENTS}.{position}."
    return (
        base + semconv.DOCUMENT_ID,
        base + semconv.DOCUMENT_SCORE,
        base + semconv.DOCUMENT_CONTENT,
    )


def _text_parts(policy: ContentPolicy, text: object) -> list[dict[str, str]]:
    """A message's content as the GenAI conventions' parts (``[]`` when it has no text)."""
    if text is None:
        return []
    return [{"type": "text", "content": _content_string(policy, text)}]


def _json(value: object) -> str:
    # Spans take no structured values yet, so the conventions' JSON is written as a string.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    # The bare class name, as the contrib GenAI instrumentations write it: the same error
    # from two instrumentations then falls in one dashboard series.
    return type(error).__name__
