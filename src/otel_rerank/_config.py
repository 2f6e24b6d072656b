"""The single decision about what content (queries, documents, prompts) may be recorded.

Privacy is decided here and nowhere else: instrumentations hand every piece of content to
the span helper (``otel_rerank._span``), which asks the active ``ContentPolicy`` whether to
write it, truncates it and caps how many documents are kept. Wrappers never read these
settings themselves. Vectors are never recorded, whatever the policy says.
"""

from __future__ import annotations

import functools
import logging
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
_GENAI_OFF_MODES = frozenset({"event_only", "no_content"})
_FALSE = frozenset({"0", "false", "no", "off"})

_logger = logging.getLogger("otel_rerank")


def parse_flag(value: object, source: str) -> bool | None:
    """An on/off setting as a bool; ``None`` when unset or not understood (logged).

    Accepts ``True``/``False``, the integers 0 and 1, and the strings the environment
    variables take (``true``/``1``/``yes``/``on``, ``false``/``0``/``no``/``off``, any
    case and surrounding spaces): ``capture_content="false"`` turns capture off, it does
    not count as a non-empty, truthy string. Never raises.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    _warn_unrecognised(source, _safe_repr(value))
    return None


@functools.lru_cache(maxsize=32)
def _warn_unrecognised(source: str, shown: str) -> None:
    _logger.warning(
        "otel-rerank: %s=%s is not an on/off value (true/false, 1/0, yes/no, on/off); ignored",
        source,
        shown,
    )


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:100]
    except Exception:
        return f"<{type(value).__name__}>"


def _env_flag(name: str) -> bool | None:
    return parse_flag(os.environ.get(name), name)


def _genai_capture_mode() -> bool | None:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: an on/off flag or a content mode."""
    raw = os.environ.get(GENAI_CAPTURE_ENV)
    value = raw.strip().lower() if raw else ""
    if value in _GENAI_SPAN_MODES:
        return True
    if value in _GENAI_OFF_MODES:
        return False
    return parse_flag(raw, GENAI_CAPTURE_ENV)


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
    def from_env(cls, capture: object = None) -> ContentPolicy:
        """Build the policy: an explicit ``capture`` wins, then our env var, then GenAI's.

        ``capture`` may be a bool or an on/off string (see :func:`parse_flag`); a value
        that is neither is logged and treated as not given.
        """
        flag = parse_flag(capture, "capture_content")
        if flag is None:
            flag = _env_flag(CAPTURE_ENV)
        if flag is None:
            flag = _genai_capture_mode()
        return cls(
            capture=bool(flag),
            max_documents=_env_positive_int(MAX_DOCUMENTS_ENV, DEFAULT_MAX_DOCUMENTS),
            max_length=_env_positive_int(MAX_LENGTH_ENV, DEFAULT_MAX_LENGTH),
        )

    def truncate(self, text: str) -> str:
        """Cut ``text`` to ``max_length`` characters, marking the cut with an ellipsis."""
        if len(text) <= self.max_length:
            return text
        return text[: self.max_length - 1] + "…"
