"""OpenTelemetry instrumentation for the openai client: chat completions and embeddings.

Usage::

    from otel_rerank.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    client = openai.OpenAI()
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # "chat gpt-4o-mini"

(``otel_rerank.instrument()`` does the same for every installed library.)

What becomes a span (kind CLIENT, ``gen_ai.provider.name = "openai"``):

* ``chat.completions.create`` — sync and async, with and without ``stream=True`` — and the
  ``chat.completions.parse(...)`` and ``chat.completions.stream(...)`` helpers →
  ``chat {model}`` with ``server.address`` / ``server.port``,
  ``gen_ai.request.max_tokens`` / ``temperature`` / ``top_p``,
  ``gen_ai.response.model`` / ``id`` / ``finish_reasons`` and input/output token usage
  (also recorded in the ``gen_ai.client.token.usage`` histogram). A stream's span also has
  ``gen_ai.response.time_to_first_chunk`` (seconds) and ends when the stream is exhausted, closed,
  broken out of, or dropped; token usage of a stream needs
  ``stream_options={"include_usage": True}``, as the API sends it only then.
* ``embeddings.create`` (sync and async) → ``embeddings {model}`` with the input count,
  vector dimension and input tokens.

Prompts, completions and embedded texts are recorded only when content capture is on. API
keys and request headers are never read.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_rerank.instrumentation._base import RagInstrumentor, Target
from otel_rerank.instrumentation.openai import _wrappers

_CHAT = "openai.resources.chat.completions.completions"
_EMBEDDINGS = "openai.resources.embeddings"


class OpenAIInstrumentor(RagInstrumentor):
    """Instruments openai's chat completions (incl. streams) and embeddings, sync and async."""

    package = "openai"
    supported = "openai >= 2.0, < 4"

    def targets(self) -> Sequence[Target]:
        return (
            Target(_CHAT, "Completions", "create", _wrappers.chat_create),
            Target(_CHAT, "AsyncCompletions", "create", _wrappers.achat_create),
            # parse() (structured outputs) sends its own request, not through create().
            Target(_CHAT, "Completions", "parse", _wrappers.chat_create),
            Target(_CHAT, "AsyncCompletions", "parse", _wrappers.achat_create),
            Target(_CHAT, "Completions", "stream", _wrappers.chat_stream_helper),
            Target(_CHAT, "AsyncCompletions", "stream", _wrappers.chat_stream_helper),
            Target(_EMBEDDINGS, "Embeddings", "create", _wrappers.embeddings_create),
            Target(_EMBEDDINGS, "AsyncEmbeddings", "create", _wrappers.aembeddings_create),
        )
