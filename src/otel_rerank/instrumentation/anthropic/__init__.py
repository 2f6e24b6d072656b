"""OpenTelemetry instrumentation for the anthropic client: Messages API calls.

Usage::

    from otel_rerank.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument()
    client = anthropic.Anthropic()
    client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[...])
    # one span: "chat claude-sonnet-4-5"

(``otel_rerank.instrument()`` does the same for every installed library.)

What becomes a span (kind CLIENT, ``gen_ai.provider.name = "anthropic"``):

* ``messages.create`` — sync and async, with and without ``stream=True`` — and the
  ``messages.stream(...)`` helper (sync and async context managers) → ``chat {model}``
  with ``server.address`` / ``server.port``, ``gen_ai.request.max_tokens`` /
  ``temperature`` / ``top_p`` / ``top_k``, ``gen_ai.response.model`` / ``id``,
  ``gen_ai.response.finish_reasons`` (the ``stop_reason``) and input/output token usage
  (input includes cache reads and writes; also recorded in the
  ``gen_ai.client.token.usage`` histogram). A stream's span also has
  ``gen_ai.response.time_to_first_chunk`` (seconds) and ends when the stream is exhausted, closed,
  broken out of, or dropped.

Recent anthropic SDKs also emit their own ``anthropic.messages.create`` span through the
global tracer provider; it nests under this one (turn it off with
``ANTHROPIC_OPEN_TELEMETRY=false`` if the RAG stage span is all you want).

The system prompt, messages and completion are recorded only when content capture is on.
API keys and request headers are never read.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.anthropic import _wrappers

# A package re-exporting the classes from 0.41 on, a module before: both resolve here.
_MESSAGES = "anthropic.resources.messages"


class AnthropicInstrumentor(RagInstrumentor):
    """Instruments anthropic's ``messages.create`` (incl. streams) and ``messages.stream``."""

    package = "anthropic"
    supported = "anthropic >= 0.40, < 3"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_MESSAGES, "Messages", "create", _wrappers.messages_create),
            Target(_MESSAGES, "AsyncMessages", "create", _wrappers.amessages_create),
            Target(_MESSAGES, "Messages", "stream", _wrappers.messages_stream),
            Target(_MESSAGES, "AsyncMessages", "stream", _wrappers.messages_stream),
        )
