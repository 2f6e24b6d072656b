"""The single decision about what content (queries, documents, prompts) may be recorded.

Privacy is decided here and nowhere else: instrumentations hand every piece of content to
the span helper (``otel_rerank._span``), which asks the active ``ContentPolicy`` whether to
write it, truncates it and caps how many documents are kept. Wrappers never read these
settings themselves. Vectors are never recorded, whatever the policy says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

CAPTURE_ENV: Final = "OTEL_RERANK_CAPTURE_CONTENT"
GENAI_CAPTURE_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
MAX_DOCUMENTS_ENV: Final = "OTEL_RERANK_CONTENT_MAX_DOCUMENTS"
MAX_LENGTH_ENV: Final = "OTEL_RERANK_CONTENT_MAX_LENGTH"

DEFAULT_MAX_DOCUMENTS: Final = 10
DEFAULT_MAX_LENGTH: Final = 1000

_TRUE = frozenset({"1", "true", "yes", "on"})
# The contrib GenAI instrumentations' content modes. otel-rerank writes content on spans
# only (it emits no events), so the modes that put content on spans turn capture on, and
# ``event_only`` (content in events, never on spans) and ``no_content`` leave it off.
_GENAI_SPAN_MODES = frozenset({"span_only", "span_and_event"})


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() in _TRUE


def _genai_capture_mode() -> bool | None:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: true-like or a span mode."""
    raw = os.environ.get(GENAI_CAPTURE_ENV)
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    return value in _TRUE or value in _GENAI_SPAN_MODES


def _env_positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """Whether content is recorded, and how much of it.

    Attributes:
        capture: record query/document/prompt/completion text at all.
        max_documents: at most this many documents per span (the first ones given).
        max_length: strings longer than this many characters are cut and marked.
    """

    capture: bool = False
    max_documents: int = DEFAULT_MAX_DOCUMENTS
    max_length: int = DEFAULT_MAX_LENGTH

    @classmethod
    def from_env(cls, capture: bool | None = None) -> ContentPolicy:
        """Build the policy: an explicit ``capture`` wins, then our env var, then GenAI's."""
        if capture is None:
            capture = _env_flag(CAPTURE_ENV)
        if capture is None:
            capture = _genai_capture_mode()
        return cls(
            capture=bool(capture),
            max_documents=_env_positive_int(MAX_DOCUMENTS_ENV, DEFAULT_MAX_DOCUMENTS),
            max_length=_env_positive_int(MAX_LENGTH_ENV, DEFAULT_MAX_LENGTH),
        )

    def truncate(self, text: str) -> str:
        """Cut ``text`` to ``max_length`` characters, marking the cut with an ellipsis."""
        if len(text) <= self.max_length:
            return text
        return text[: self.max_length - 1] + "…"
