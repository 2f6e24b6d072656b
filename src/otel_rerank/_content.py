"""The content policy, applied: what a span says about queries, documents and messages.

Content (a query, a document's text, a prompt, a completion, an exception's message) is
written only through these functions, and they are the only place the content policy
(:class:`~otel_rerank._config.ContentPolicy`) is applied: every string is truncated to
``max_length``, every list capped at ``max_documents``, both vocabularies (OpenInference's
flattened ``{prefix}.{i}.*`` keys and the GenAI conventions' JSON) get the same cut. They
are pure: each returns the attributes to write and never touches a span. Whether content
is captured at all is :class:`~otel_rerank._span.StageSpan`'s decision (its
``record_content`` gate); these functions are only reached once it said yes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Final

from opentelemetry.util.types import AttributeValue

from otel_rerank import semconv
from otel_rerank._config import ContentPolicy

Found = dict[str, AttributeValue]

# The GenAI conventions' finish reasons for the providers' own names (output messages).
_FINISH_REASONS: Final = {
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_use": "tool_call",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def string(policy: ContentPolicy, value: object) -> str:
    """One piece of content as a span string: bytes decoded, anything else ``str()``-ed, cut."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return policy.truncate(value if isinstance(value, str) else str(value))


def documents(
    policy: ContentPolicy,
    prefix: str,
    docs: Sequence[object],
    scores: Sequence[float] | None,
    ids: Sequence[object] | None,
    content_key: str,
) -> Found:
    """OpenInference's ``{prefix}.{i}.document.{content_key}|score|id`` for the first documents.

    Scores and ids are written even for documents whose text is unknown (``None``).
    """
    found: Found = {}
    count = max(len(docs), len(scores or ()), len(ids or ()))
    for i in range(min(count, policy.max_documents)):
        base = f"{prefix}.{i}."
        if i < len(docs) and docs[i] is not None:
            found[base + content_key] = string(policy, docs[i])
        if scores is not None and i < len(scores) and math.isfinite(scores[i]):
            found[base + semconv.DOCUMENT_SCORE] = float(scores[i])
        if ids is not None and i < len(ids):
            found[base + semconv.DOCUMENT_ID] = str(ids[i])
    return found


def retrieved_json(
    policy: ContentPolicy,
    docs: Sequence[object],
    scores: Sequence[float] | None,
    ids: Sequence[object] | None,
) -> Found:
    """The GenAI conventions' ``gen_ai.retrieval.documents``: ``[{"id", "score", "content"}]``."""
    count = max(len(docs), len(scores or ()), len(ids or ()))
    entries: list[dict[str, object]] = []
    for i in range(min(count, policy.max_documents)):
        entry: dict[str, object] = {}
        if ids is not None and i < len(ids):
            entry["id"] = str(ids[i])
        if scores is not None and i < len(scores) and math.isfinite(scores[i]):
            entry["score"] = float(scores[i])
        if i < len(docs) and docs[i] is not None:
            entry["content"] = string(policy, docs[i])
        entries.append(entry)
    return {semconv.GEN_AI_RETRIEVAL_DOCUMENTS: _json(entries)}


def retrieval_query(policy: ContentPolicy, text: str) -> Found:
    """A retrieval's query: ``input.value`` and ``gen_ai.retrieval.query.text``."""
    value = string(policy, text)
    return {semconv.INPUT_VALUE: value, semconv.GEN_AI_RETRIEVAL_QUERY_TEXT: value}


def output_document_texts(
    policy: ContentPolicy, indices: Sequence[int], texts: Sequence[object]
) -> Found:
    """``reranker.output_documents.{i}.document.content``: the text of each ranked input
    (``indices``: the input positions, best first)."""
    found: Found = {}
    for position, index in enumerate(indices[: policy.max_documents]):
        if 0 <= index < len(texts) and texts[index] is not None:
            found[_output_document_content_key(position)] = string(policy, texts[index])
    return found


def _output_document_content_key(position: int) -> str:
    return f"{semconv.RERANKER_OUTPUT_DOCUMENTS}.{position}.{semconv.DOCUMENT_CONTENT}"


def messages(policy: ContentPolicy, prefix: str, given: Iterable[tuple[str, object]]) -> Found:
    """Chat messages as ``{prefix}.{i}.message.role|content``."""
    found: Found = {}
    for i, (role, text) in enumerate(given):
        if i >= policy.max_documents:
            break
        base = f"{prefix}.{i}."
        found[base + semconv.MESSAGE_ROLE] = str(role)
        if text is not None:
            found[base + semconv.MESSAGE_CONTENT] = string(policy, text)
    return found


def input_messages(
    policy: ContentPolicy, given: Sequence[tuple[str, object]], system_instructions: object
) -> Found:
    """A chat request's messages in both vocabularies.

    OpenInference's ``llm.input_messages.{i}.message.*`` (the separately given system
    instructions first, as a ``system`` message) and the GenAI conventions' JSON
    ``gen_ai.input.messages`` and ``gen_ai.system_instructions``.
    """
    flattened = list(given)
    if system_instructions is not None:
        flattened.insert(0, ("system", system_instructions))
    found = messages(policy, semconv.LLM_INPUT_MESSAGES, flattened)
    found[semconv.GEN_AI_INPUT_MESSAGES] = _json(
        [
            {"role": str(role), "parts": _text_parts(policy, text)}
            for role, text in given[: policy.max_documents]
        ]
    )
    if system_instructions is not None:
        found[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = _json(_text_parts(policy, system_instructions))
    return found


def output_messages(
    policy: ContentPolicy, given: Sequence[tuple[str, object]], finish_reasons: Sequence[str]
) -> Found:
    """A chat response's choices in both vocabularies.

    ``llm.output_messages.{i}.message.*``, the JSON ``gen_ai.output.messages`` (each with
    its finish reason, in the conventions' names) and ``output.value`` (the first choice's
    text, what Phoenix shows as the span's output).
    """
    found = messages(policy, semconv.LLM_OUTPUT_MESSAGES, given)
    output = []
    for i, (role, text) in enumerate(given[: policy.max_documents]):
        reason = finish_reasons[i] if i < len(finish_reasons) else None
        output.append(
            {
                "role": str(role),
                "parts": _text_parts(policy, text),
                "finish_reason": _FINISH_REASONS.get(reason, reason) if reason else "",
            }
        )
    found[semconv.GEN_AI_OUTPUT_MESSAGES] = _json(output)
    if given and given[0][1] is not None:
        found[semconv.OUTPUT_VALUE] = string(policy, given[0][1])
    return found


def exception_text(
    policy: ContentPolicy, error: BaseException, error_type: str
) -> tuple[str | None, str]:
    """An exception's ``exception.message`` and its stack trace's last line.

    The message often quotes its input (a document, a prompt), so it is content: with
    capture off it is ``None`` and the last line names only the type. With capture on it is
    kept up to ``max_length``, and the last line holds its start (a quarter of that: the
    message has its own attribute, the stack trace needs room for its frames). Never
    raises, even for an exception whose ``__str__`` does.
    """
    if not policy.capture:
        return None, f"{error_type} (message not recorded: content capture is off)"
    try:
        message = str(error)
    except Exception:
        message = f"<{error_type} object: str() failed>"
    start = ContentPolicy(max_length=max(policy.max_length // 4, 1)).truncate(message)
    return policy.truncate(message), f"{error_type}: {start}"


def stacktrace(policy: ContentPolicy, text: str) -> str:
    """A stack trace cut to ``max_length`` characters, keeping its innermost end."""
    if len(text) <= policy.max_length:
        return text
    return "…" + text[len(text) - policy.max_length + 1 :]


def _text_parts(policy: ContentPolicy, text: object) -> list[dict[str, str]]:
    """A message's content as the GenAI conventions' parts (``[]`` when it has no text)."""
    if text is None:
        return []
    return [{"type": "text", "content": string(policy, text)}]


def _json(value: object) -> str:
    # Spans take no structured values yet, so the conventions' JSON is written as a string.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
