"""Pure extraction of span attributes from anthropic ``messages.create`` / ``messages.stream``.

Each function takes the call's keyword arguments (the SDK's methods take only keyword
arguments) or its result and returns ``(key, value)`` pairs or plain values;
``None`` values are skipped by the span helper. Nothing here touches a span. Input tokens
follow the GenAI conventions: Anthropic reports cache reads and cache writes apart from
``input_tokens``, and ``gen_ai.usage.input_tokens`` is their sum (the two parts are also
written on their own, as ``gen_ai.usage.cache_read.input_tokens`` and
``gen_ai.usage.cache_creation.input_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from otel_rerank import semconv
from otel_rerank._span import Attributes
from otel_rerank.instrumentation._llm import (
    BoundedText,
    Output,
    ParameterReader,
    RequestAttributes,
    integer,
    number,
    read_parameters,
    string,
    strings,
    text_of,
)

PROVIDER = "anthropic"


def request(arguments: Mapping[str, Any], stream: bool) -> RequestAttributes:
    """Request parameters; ``stream``: the call streams (``messages.stream()`` has no flag)."""
    found = read_parameters(arguments, _PARAMETERS)
    if stream:
        found[semconv.GEN_AI_REQUEST_STREAM] = True
    return tuple(found.items())


_PARAMETERS: Final[Mapping[str, ParameterReader]] = {
    "max_tokens": (semconv.GEN_AI_REQUEST_MAX_TOKENS, number),
    "temperature": (semconv.GEN_AI_REQUEST_TEMPERATURE, number),
    "top_p": (semconv.GEN_AI_REQUEST_TOP_P, number),
    "top_k": (semconv.GEN_AI_REQUEST_TOP_K, integer),
    "stop_sequences": (semconv.GEN_AI_REQUEST_STOP_SEQUENCES, strings),
}


def finish_reasons(result: Any) -> list[str]:
    """The Message's stop reason, as a one-item list (empty when there is none)."""
    reason = string(getattr(result, "stop_reason", None))
    return [reason] if reason else []


# Flat functions returning tuples of pairs, not generators: these run on every call, and
# each generator (and ``yield from``) is one more frame to create and resume.
def response(result: Any) -> Attributes:
    """A Message's id, stop reason and cache token counts."""
    reason = string(getattr(result, "stop_reason", None))
    return (
        (semconv.GEN_AI_RESPONSE_ID, string(getattr(result, "id", None))),
        (semconv.GEN_AI_RESPONSE_FINISH_REASONS, (reason,) if reason else None),
        *cache_tokens(getattr(result, "usage", None)),
    )


def cache_tokens(used: Any) -> Attributes:
    """Cache reads and cache writes, as reported (both already inside the input tokens)."""
    if used is None:
        return ()
    return (
        (
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            integer(getattr(used, "cache_read_input_tokens", None)),
        ),
        (
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            integer(getattr(used, "cache_creation_input_tokens", None)),
        ),
    )


def input_tokens(used: Any) -> int | None:
    """Every input token: uncached, cache writes and cache reads."""
    total = integer(getattr(used, "input_tokens", None))
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        extra = integer(getattr(used, name, None))
        if extra:
            total = (total or 0) + extra
    return total


def usage(result: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens of a Message."""
    used = getattr(result, "usage", None)
    if used is None:
        return None, None
    return input_tokens(used), integer(getattr(used, "output_tokens", None))


def system_instructions(arguments: Mapping[str, Any]) -> str | None:
    """The ``system`` prompt's text (content; capture only), given apart from the messages."""
    return text_of(arguments.get("system")) or None


def input_messages(arguments: Mapping[str, Any]) -> list[tuple[str, object]]:
    """(role, text) of each message (content; capture only); the system prompt is apart.

    A generator of messages is left untouched: reading it would consume the user's input.
    """
    out: list[tuple[str, object]] = []
    messages = arguments.get("messages")
    if not isinstance(messages, (list, tuple)):
        return out
    for message in messages:
        if isinstance(message, Mapping):
            out.append((str(message.get("role", "")), text_of(message.get("content"))))
    return out


def output_messages(result: Any) -> list[tuple[str, object]]:
    """The assistant's text (content; written only when capture is on)."""
    text = text_of(getattr(result, "content", None))
    return [(str(getattr(result, "role", None) or "assistant"), text)]


class MessageStreamState:
    """What a message stream's events said; fed one raw event at a time.

    Pure state: the span is written once, when the stream ends. The text is kept only as
    far as the content policy could write it (``limit`` characters).
    """

    __slots__ = (
        "cache",
        "input",
        "output_tokens",
        "response_id",
        "response_model",
        "stop",
        "text",
    )

    def __init__(self, limit: int) -> None:
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.stop: str | None = None
        self.input: int | None = None
        self.output_tokens: int | None = None
        self.cache: Any = None  # the usage that reported cache reads and writes
        self.text = BoundedText(limit)

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            text = getattr(getattr(event, "delta", None), "text", None)
            if isinstance(text, str):
                self.text.add(text)
        elif kind == "message_start":
            message = getattr(event, "message", None)
            self.response_model = string(getattr(message, "model", None))
            self.response_id = string(getattr(message, "id", None))
            in_tokens, out_tokens = usage(message)
            self.input = in_tokens
            self.output_tokens = out_tokens
            self.cache = getattr(message, "usage", None)
        elif kind == "message_delta":
            self.stop = string(getattr(getattr(event, "delta", None), "stop_reason", None))
            used = getattr(event, "usage", None)
            out_tokens = integer(getattr(used, "output_tokens", None))
            if out_tokens is not None:  # cumulative, as the API documents
                self.output_tokens = out_tokens
            in_tokens = input_tokens(used) if used is not None else None
            if in_tokens:  # newer API versions repeat the final input usage here
                self.input = in_tokens
                self.cache = used

    def attributes(self) -> Attributes:
        yield semconv.GEN_AI_RESPONSE_ID, self.response_id
        if self.stop:
            yield semconv.GEN_AI_RESPONSE_FINISH_REASONS, (self.stop,)
        yield from cache_tokens(self.cache)

    def usage(self) -> tuple[int | None, int | None]:
        return self.input, self.output_tokens

    def output(self) -> Output | None:
        """The assistant's text and the stop reason; ``None`` when the stream had no text."""
        if not self.text.pieces:
            return None
        return [("assistant", self.text.text())], [self.stop or ""]
