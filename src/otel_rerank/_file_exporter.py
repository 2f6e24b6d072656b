"""The embedded default span exporter: OTLP-JSON, one export request per line, in a file.

With no collector configured, spans still have to land somewhere a person can read them:
each batch is written as one line holding an ``ExportTraceServiceRequest`` in the OTLP/JSON
encoding (hex trace and span ids, lowerCamelCase keys), the same shape the collector's
``file`` exporter writes. ``otel-rerank report`` reads either. Lines are appended under a
lock with one ``write`` each, so concurrent processes appending to one file do not
interleave within a line on POSIX.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_rerank._safe import logger

TRACES_FILE_ENV = "OTEL_RERANK_TRACES_FILE"
DEFAULT_TRACES_FILE = "otel-rerank-traces.jsonl"
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def default_traces_path() -> Path:
    """Where the embedded default writes (``$OTEL_RERANK_TRACES_FILE`` or the default name)."""
    return Path(os.environ.get(TRACES_FILE_ENV) or DEFAULT_TRACES_FILE)


class JsonLinesSpanExporter(SpanExporter):
    """Appends each batch of spans to ``path`` as one OTLP-JSON line."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_traces_path()
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            # A fork taken while the batch worker holds the lock would leave it held forever
            # in the child (a pre-fork server's worker could then never export).
            reset = weakref.WeakMethod(self._reset_lock)

            def _after_fork_in_child() -> None:
                method = reset()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=_after_fork_in_child)
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            line = json.dumps(spans_to_otlp_json(spans), separators=(",", ":")) + "\n"
            with self._lock:
                if self.path.parent != Path():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line)
        except Exception:
            logger.warning("otel-rerank: could not write spans to %s", self.path, exc_info=True)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _reset_lock(self) -> None:
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self._shutdown = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Encode spans as an OTLP/JSON ``ExportTraceServiceRequest`` (ids as hex strings)."""
    message: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in message.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return message


def _hex_ids(obj: dict[str, Any]) -> None:
    # protobuf's JSON mapping writes bytes as base64; OTLP/JSON requires hex ids.
    for key in _ID_KEYS:
        value = obj.get(key)
        if value:
            obj[key] = base64.b64decode(value).hex()
