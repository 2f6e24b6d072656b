"""Pure extraction of span attributes from openai chat-completion and embedding calls.

Each function takes the call's keyword arguments (the SDK's ``create`` methods take only
keyword arguments) or its result and returns ``(key, value)`` pairs (a request's: only
present values, hashable, as the span's opening is cached under them), or plain values;
``None`` values are skipped by the span helper. Nothing here touches a span.
Results are read with ``getattr`` and defaults, so a raw-response object or a future SDK
shape yields fewer attributes rather than an error. API keys live on the client and
in headers, which nothing here reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from otel_rerank import semconv
from otel_rerank._span import Attributes
from otel_rerank._values import is_int
from otel_rerank.instrumentation._llm import (
    BoundedText,
    Output,
    ParameterReader,
    RequestAttributes,
    integer,
    number,
    read_parameters,
    streaming,
    string,
    strings,
    text_of,
)

PROVIDER = "openai"


# -- chat completions ----------------------------------------------------------------------
def chat_request(arguments: Mapping[str, Any], stream: bool = False) -> RequestAttributes:
    """Request parameters; ``stream``: the call streams (as ``stream=True`` also says)."""
    found = read_parameters(arguments, _CHAT_PARAMETERS)
    # The older name, read only when given and the newer one did not set the attribute.
    if "max_tokens" in arguments and semconv.GEN_AI_REQUEST_MAX_TOKENS not in found:
        max_tokens = number(arguments["max_tokens"])
        if max_tokens is not None:
            found[semconv.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    if stream or streaming(arguments):
        found[semconv.GEN_AI_REQUEST_STREAM] = True
    return tuple(found.items())


def _choice_count(n: Any) -> int | None:
    choices = integer(n)
    return choices if choices != 1 else None  # the conventions: only when not 1


def _stop_sequences(stop: Any) -> tuple[str, ...] | None:
    return (stop,) if isinstance(stop, str) else strings(stop)


def _output_type(response_format: Any) -> str | None:
    """``gen_ai.output.type``: ``json`` for JSON modes, ``text`` for text."""
    kind = (
        response_format.get("type")
        if isinstance(response_format, Mapping)
        else getattr(response_format, "type", None)
    )
    if kind in ("json_object", "json_schema"):
        return "json"
    return "text" if kind == "text" else None


#: The chat parameters written at span start (``max_tokens``, the older name of
#: ``max_completion_tokens``, only when that is not given: see ``chat_request``).
_CHAT_PARAMETERS: Final[Mapping[str, ParameterReader]] = {
    "max_completion_tokens": (semconv.GEN_AI_REQUEST_MAX_TOKENS, number),
    "temperature": (semconv.GEN_AI_REQUEST_TEMPERATURE, number),
    "top_p": (semconv.GEN_AI_REQUEST_TOP_P, number),
    "frequency_penalty": (semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY, number),
    "presence_penalty": (semconv.GEN_AI_REQUEST_PRESENCE_PENALTY, number),
    "seed": (semconv.GEN_AI_REQUEST_SEED, integer),
    "stop": (semconv.GEN_AI_REQUEST_STOP_SEQUENCES, _stop_sequences),
    "n": (semconv.GEN_AI_REQUEST_CHOICE_COUNT, _choice_count),
    "response_format": (semconv.GEN_AI_OUTPUT_TYPE, _output_type),
    "service_tier": (semconv.OPENAI_REQUEST_SERVICE_TIER, string),
}


# Flat functions returning tuples of pairs, not generators: these run on every call, and
# each generator (and ``yield from``) is one more frame to create and resume.
def chat_response(result: Any) -> Attributes:
    """A completion's id, finish reasons, service tier, fingerprint and token breakdown."""
    reasons = finish_reasons(result)
    return (
        (semconv.GEN_AI_RESPONSE_ID, string(getattr(result, "id", None))),
        (semconv.GEN_AI_RESPONSE_FINISH_REASONS, tuple(reasons) if reasons else None),
        *response_details(result),
    )


def response_details(result: Any) -> Attributes:
    """OpenAI's service tier and system fingerprint, and the token usage breakdown."""
    used = getattr(result, "usage", None)
    return (
        (semconv.OPENAI_RESPONSE_SERVICE_TIER, string(getattr(result, "service_tier", None))),
        (
            semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
            string(getattr(result, "system_fingerprint", None)),
        ),
        (
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            _token_detail(used, "prompt_tokens_details", "cached_tokens"),
        ),
        (
            semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            _token_detail(used, "completion_tokens_details", "reasoning_tokens"),
        ),
    )


def _token_detail(used: Any, details: str, name: str) -> int | None:
    """``used.<details>.<name>`` if it is an int (either part may be missing or ``None``)."""
    # ``None`` checked first: ``getattr(None, name, None)`` raises and catches inside.
    part = getattr(used, details, None) if used is not None else None
    found = getattr(part, name, None) if part is not None else None
    return found if is_int(found) else None


def finish_reasons(result: Any) -> list[str]:
    """The finish reason of each choice that has one, in choice order."""
    choices = getattr(result, "choices", None)
    reasons: list[str] = []
    if isinstance(choices, list):
        for choice in choices:
            reason = getattr(choice, "finish_reason", None)
            if reason:
                reasons.append(str(reason))
    return reasons


def usage(result: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens of a completion, embedding response, or final stream chunk."""
    used = getattr(result, "usage", None)
    if used is None:
        return None, None
    return integer(getattr(used, "prompt_tokens", None)), integer(
        getattr(used, "completion_tokens", None)
    )


def embedding_input_tokens(result: Any) -> int | None:
    """Input tokens of an embedding response (its usage has no completion tokens)."""
    return integer(getattr(getattr(result, "usage", None), "prompt_tokens", None))


def input_messages(arguments: Mapping[str, Any]) -> list[tuple[str, object]]:
    """(role, text) of each request message (content; written only when capture is on).

    A generator of messages is left untouched: reading it would consume the user's input.
    """
    messages = arguments.get("messages")
    if not isinstance(messages, (list, tuple)):
        return []
    out: list[tuple[str, object]] = []
    for message in messages:
        if isinstance(message, Mapping):
            out.append((str(message.get("role", "")), text_of(message.get("content"))))
        else:
            out.append(
                (str(getattr(message, "role", "")), text_of(getattr(message, "content", None)))
            )
    return out


def output_messages(result: Any) -> list[tuple[str, object]]:
    """(role, text) of each returned choice (content; written only when capture is on)."""
    choices = getattr(result, "choices", None)
    if not isinstance(choices, list):
        return []
    out: list[tuple[str, object]] = []
    for choice in choices:
        message = getattr(choice, "message", None)
        role = getattr(message, "role", None) or "assistant"
        out.append((str(role), text_of(getattr(message, "content", None))))
    return out


class ChatStreamState:
    """What a chat-completion stream's chunks said; fed one chunk at a time.

    Pure state: the span is written once, when the stream ends. Each choice's text is kept
    only as far as the content policy could write it (``limit`` characters).
    """

    __slots__ = (
        "finish_reasons",
        "limit",
        "response_id",
        "response_model",
        "service_tier",
        "system_fingerprint",
        "texts",
        "used",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: dict[int, str] = {}
        self.texts: dict[int, BoundedText] = {}
        self.used: Any = None
        self.service_tier: str | None = None
        self.system_fingerprint: str | None = None

    def add(self, chunk: Any) -> None:
        if self.response_model is None:
            self.response_model = string(getattr(chunk, "model", None))
            self.response_id = string(getattr(chunk, "id", None))
            self.service_tier = string(getattr(chunk, "service_tier", None))
            self.system_fingerprint = string(getattr(chunk, "system_fingerprint", None))
        for choice in getattr(chunk, "choices", None) or ():
            index = getattr(choice, "index", 0)
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.finish_reasons[index] = str(reason)
            text = getattr(getattr(choice, "delta", None), "content", None)
            if isinstance(text, str):
                pieces = self.texts.get(index)
                if pieces is None:
                    pieces = self.texts[index] = BoundedText(self.limit)
                pieces.add(text)
        used = getattr(chunk, "usage", None)
        if used is not None:  # only with stream_options={"include_usage": True}
            self.used = chunk

    def attributes(self) -> Attributes:
        yield semconv.GEN_AI_RESPONSE_ID, self.response_id
        if self.finish_reasons:
            reasons = tuple(self.finish_reasons[i] for i in sorted(self.finish_reasons))
            yield semconv.GEN_AI_RESPONSE_FINISH_REASONS, reasons
        yield semconv.OPENAI_RESPONSE_SERVICE_TIER, self.service_tier
        yield semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, self.system_fingerprint
        if self.used is not None:
            yield from response_details(self.used)

    def usage(self) -> tuple[int | None, int | None]:
        return usage(self.used) if self.used is not None else (None, None)

    def output(self) -> Output:
        """Each choice's text, in choice order, with its finish reason."""
        indexes = sorted(self.texts)
        return (
            [("assistant", self.texts[i].text()) for i in indexes],
            [self.finish_reasons.get(i, "") for i in indexes],
        )


# -- embeddings ----------------------------------------------------------------------------
def embeddings_request(arguments: Mapping[str, Any]) -> RequestAttributes:
    return tuple(read_parameters(arguments, _EMBEDDINGS_PARAMETERS).items())


def _encoding_formats(encoding: Any) -> tuple[str] | None:
    return (encoding,) if isinstance(encoding, str) and encoding else None


def embeddings_response(result: Any, input_tokens: int | None = None) -> Attributes:
    """Vector dimension and (given, as read by the caller) input tokens, in both vocabularies."""
    dimension = None
    data = getattr(result, "data", None)
    if isinstance(data, list) and data:
        vector = getattr(data[0], "embedding", None)
        if isinstance(vector, list):  # base64 strings (encoding_format="base64") are skipped
            dimension = len(vector)
    return (
        (semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
        (semconv.LLM_TOKEN_COUNT_PROMPT, input_tokens),
        (semconv.LLM_TOKEN_COUNT_TOTAL, input_tokens),
        (semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, dimension),
    )


def embedding_texts(arguments: Mapping[str, Any]) -> list[str]:
    """The texts embedded (content; written only when capture is on). Token ids are skipped."""
    inputs = arguments.get("input")
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, (list, tuple)):
        return [x for x in inputs if isinstance(x, str)]
    return []


def _input_count(inputs: Any) -> int | None:
    if isinstance(inputs, str):
        return 1
    if isinstance(inputs, (list, tuple)):
        # A flat list of ints is one tokenised input; a list of lists is several.
        if inputs and all(isinstance(x, int) for x in inputs):
            return 1
        return len(inputs)
    return None


_EMBEDDINGS_PARAMETERS: Final[Mapping[str, ParameterReader]] = {
    "input": (semconv.RAG_EMBEDDING_INPUT_COUNT, _input_count),
    "encoding_format": (semconv.GEN_AI_REQUEST_ENCODING_FORMATS, _encoding_formats),
    "dimensions": (semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, integer),
}
