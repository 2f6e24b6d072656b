"""How a user's exception is recorded on a span: ``error.type``, status ERROR, the event.

The user's exception always propagates unchanged; these functions only describe it. The
``error.type`` value is the bare class name, as the contrib GenAI instrumentations write it
(the same error from two instrumentations then falls in one dashboard series). The
``exception`` event's message is content and goes through the content policy
(:mod:`otel_rerank._content`); the stack trace is bounded and never raises to build.
"""

from __future__ import annotations

import traceback
from typing import Final

from opentelemetry.semconv.attributes import exception_attributes as exception_keys
from opentelemetry.trace import Span, Status, StatusCode

from otel_rerank import _content, semconv
from otel_rerank._config import ContentPolicy

#: Innermost frames kept in a recorded stack trace (a RecursionError has a thousand).
_MAX_STACK_FRAMES: Final = 32


def error_type(error: BaseException) -> str:
    """``error.type``: the exception's bare class name."""
    return type(error).__name__


def is_error(error: BaseException | None) -> bool:
    """Whether ending with ``error`` is a failure (a generator closed early is not one)."""
    return error is not None and not isinstance(error, GeneratorExit)


def exception_attributes(error: BaseException, policy: ContentPolicy) -> dict[str, str]:
    """The ``exception`` event's attributes, bounded by the content policy.

    With capture off only the type and the stack frames (file, line, function, source line;
    no message, no chained exception's message) are recorded; with capture on, the message
    too (in full up to the limit, and its start at the stack trace's end). The message and
    the stack trace are each at most ``policy.max_length`` characters (the stack trace
    keeps its innermost end). Never raises, even for an exception whose ``__str__`` or
    ``__repr__`` does.
    """
    kind = error_type(error)
    attributes = {exception_keys.EXCEPTION_TYPE: kind}
    frames = "".join(
        traceback.format_list(traceback.extract_tb(error.__traceback__, limit=-_MAX_STACK_FRAMES))
    )
    message, last_line = _content.exception_text(policy, error, kind)
    if message is not None:
        attributes[exception_keys.EXCEPTION_MESSAGE] = message
    attributes[exception_keys.EXCEPTION_STACKTRACE] = _content.stacktrace(
        policy, f"Traceback (most recent call last):\n{frames}{last_line}"
    )
    return attributes


def record_error(span: Span, error: BaseException, policy: ContentPolicy) -> None:
    """Mark a recording span as failed by ``error``: ``error.type``, status, ``exception`` event.

    The event comes last and on its own: the user's exception may fail to print itself.
    """
    span.set_attribute(semconv.ERROR_TYPE, error_type(error))
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.add_event("exception", exception_attributes(error, policy))
