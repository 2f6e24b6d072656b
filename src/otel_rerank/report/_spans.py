"""Spans read back from exported traces, in one small record type whatever the source.

Two sources are understood. OTLP/JSON — what the embedded default exporter appends (one
``ExportTraceServiceRequest`` per line) and what the OpenTelemetry Collector's ``file``
exporter writes (the same shape, also one request per line); a file holding one
pretty-printed request is accepted too. And Jaeger's HTTP query API
(``/api/traces?service=...``), whose JSON differs in every name (microseconds, ``tags``,
``references``). Both are turned into :class:`SpanRecord`, which is all the statistics and
the waterfall need.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_rerank import semconv

#: Timestamps are unsigned 64-bit nanoseconds (OTLP's ``fixed64``); anything outside is
#: malformed, not a date 10^390 years away whose arithmetic overflows later.
_MAX_NS = 2**64
#: What any reader here catches from a span of the wrong shape: a wrong type, a missing
#: key, a number that does not convert (``1e400``, ``Infinity``), nesting past the stack.
_MALFORMED = (AttributeError, KeyError, TypeError, ValueError, ArithmeticError, RecursionError)


class TraceFileError(ValueError):
    """Spans could not be read: a missing file, a malformed line, an unreachable server."""


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One finished span, reduced to what a latency report needs.

    Attributes:
        trace_id: hex trace id.
        span_id: hex span id.
        parent_id: hex id of the parent span; ``None`` for a root span.
        name: the span name (``rerank ms-marco-MiniLM-L-6-v2``).
        start_ns: start time, nanoseconds since the epoch.
        end_ns: end time, nanoseconds since the epoch.
        attributes: span attributes, values decoded to Python scalars or lists.
        links: ``(trace_id, span_id)`` of each linked span.
        service: ``service.name`` of the resource that emitted it, if known.
        error: the span's status is ERROR.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()
    service: str | None = None
    error: bool = False

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def stage(self) -> str | None:
        """``gen_ai.operation.name`` (embeddings, retrieval, rerank, chat), if it has one."""
        value = self.attributes.get(semconv.GEN_AI_OPERATION_NAME)
        return value if isinstance(value, str) else None

    @property
    def is_shadow(self) -> bool:
        """A shadow rerank run, off the request path."""
        return self.attributes.get(semconv.RAG_RERANK_SHADOW) is True


# -- OTLP/JSON -------------------------------------------------------------------------------
def load_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Read every span from an OTLP/JSON file (one export request per line, or one document).

    Raises:
        TraceFileError: the file is missing or unreadable, or a line is not an OTLP/JSON
            export request (the message names the line).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(f"cannot read {file}: {exc}") from None
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("{") and "\n" in stripped:
        # A single pretty-printed request spans many lines; try it whole first.
        try:
            document = json.loads(stripped)
        except json.JSONDecodeError:
            pass
        except RecursionError:
            raise TraceFileError(f"{file}: JSON nested too deeply") from None
        else:
            return _unique(_spans_from_request(document, f"{file}"))
    spans: list[SpanRecord] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{file}, line {number}"
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceFileError(f"{where}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise TraceFileError(f"{where}: JSON nested too deeply") from None
        spans.extend(_spans_from_request(document, where))
    return _unique(spans)


def _unique(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    # An exporter retry can write a batch twice; count each span once.
    seen: set[tuple[str, str]] = set()
    out = []
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key not in seen:
            seen.add(key)
            out.append(span)
    return out


def parse_otlp_json(document: Mapping[str, Any]) -> list[SpanRecord]:
    """Spans of one OTLP/JSON ``ExportTraceServiceRequest`` (already decoded)."""
    return _unique(_spans_from_request(document, "document"))


def _spans_from_request(document: Any, where: str) -> Iterator[SpanRecord]:
    if not isinstance(document, dict) or "resourceSpans" not in document:
        raise TraceFileError(f"{where}: not an OTLP/JSON export request (no resourceSpans)")
    try:
        for resource_spans in document["resourceSpans"] or ():
            resource = resource_spans.get("resource") or {}
            service = _otlp_attributes(resource.get("attributes") or ()).get("service.name")
            for scope_spans in resource_spans.get("scopeSpans") or ():
                for span in scope_spans.get("spans") or ():
                    yield _otlp_span(span, service)
    except _MALFORMED as exc:
        raise TraceFileError(f"{where}: malformed span ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _timestamp(value: Any, what: str, scale: int = 1) -> int:
    """An unsigned 64-bit nanosecond time from a JSON number or decimal string.

    ``scale`` converts from the source's unit (Jaeger's microseconds: 1000).
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} is a boolean")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{what} {value!r} is not a whole number")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal() and len(value) <= 40:
        number = int(value)
    else:
        raise ValueError(f"{what} {str(value)[:40]!r} is not a whole number")
    number *= scale
    if not 0 <= number < _MAX_NS:
        raise ValueError(f"{what} {number} is outside 0..2^64 nanoseconds")
    return number


def _interval(start: Any, end: Any, scale: int = 1) -> tuple[int, int]:
    start_ns = _timestamp(start, "start time", scale)
    end_ns = _timestamp(end, "end time", scale)
    if end_ns < start_ns:
        raise ValueError("the span ends before it starts")
    return start_ns, end_ns


def _otlp_span(span: Mapping[str, Any], service: Any) -> SpanRecord:
    status = span.get("status") or {}
    links = tuple((str(link["traceId"]), str(link["spanId"])) for link in span.get("links") or ())
    start_ns, end_ns = _interval(span["startTimeUnixNano"], span["endTimeUnixNano"])
    return SpanRecord(
        trace_id=str(span["traceId"]),
        span_id=str(span["spanId"]),
        parent_id=str(span["parentSpanId"]) if span.get("parentSpanId") else None,
        name=str(span.get("name", "")),
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=_otlp_attributes(span.get("attributes") or ()),
        links=links,
        service=service if isinstance(service, str) else None,
        error=status.get("code") in (2, "STATUS_CODE_ERROR"),
    )


def _otlp_attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(item["key"]): _otlp_value(item.get("value") or {}) for item in items}


def _otlp_value(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # OTLP/JSON writes 64-bit ints as strings
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_otlp_value(v) for v in (value["arrayValue"] or {}).get("values") or ()]
    return None


# -- Jaeger HTTP API -------------------------------------------------------------------------
def load_jaeger(
    url: str, service: str, *, limit: int = 500, lookback: str = "1h", timeout: float = 10.0
) -> list[SpanRecord]:
    """Fetch recent traces of ``service`` from Jaeger's HTTP query API (``/api/traces``).

    Args:
        url: Jaeger query base URL, e.g. ``http://localhost:16686``.
        service: the service name the app reports (``OTEL_SERVICE_NAME``).
        limit: at most this many traces.
        lookback: how far back to look, in Jaeger's syntax (``1h``, ``2d``).
        timeout: seconds to wait for the answer.

    Raises:
        TraceFileError: the server cannot be reached or answers something else.
    """
    query = urllib.parse.urlencode({"service": service, "limit": limit, "lookback": lookback})
    address = f"{url.rstrip('/')}/api/traces?{query}"
    try:
        parts = urllib.parse.urlsplit(address)
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError as exc:
        raise TraceFileError(f"not a valid URL: {url} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TraceFileError(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise TraceFileError(f"Jaeger at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TraceFileError(f"cannot reach Jaeger at {url}: {reason}") from None
    except (http.client.HTTPException, ValueError) as exc:
        raise TraceFileError(f"cannot read Jaeger's answer at {url}: {_reason(exc)}") from None
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TraceFileError(f"Jaeger at {url} did not answer JSON") from None
    except RecursionError:
        raise TraceFileError(f"Jaeger at {url} answered JSON nested too deeply") from None
    return parse_jaeger(document)


def parse_jaeger(document: Any) -> list[SpanRecord]:
    """Spans of a Jaeger ``/api/traces`` answer (``{"data": [trace, ...]}``)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise TraceFileError("not a Jaeger /api/traces answer (no data list)")
    spans: list[SpanRecord] = []
    try:
        for jaeger_trace in document["data"]:
            processes = jaeger_trace.get("processes") or {}
            for span in jaeger_trace.get("spans") or ():
                spans.append(_jaeger_span(span, processes))
    except _MALFORMED as exc:
        raise TraceFileError(f"malformed Jaeger span ({_reason(exc)})") from None
    return _unique(spans)


def _jaeger_span(span: Mapping[str, Any], processes: Mapping[str, Any]) -> SpanRecord:
    parent: str | None = None
    links: list[tuple[str, str]] = []
    for reference in span.get("references") or ():
        ids = (_jaeger_id(reference["traceID"]), _jaeger_id(reference["spanID"]))
        if (
            reference.get("refType") == "CHILD_OF"
            and parent is None
            and ids[0] == _jaeger_id(span["traceID"])
        ):
            parent = ids[1]
        else:
            links.append(ids)  # FOLLOWS_FROM, or a reference into another trace: a link
    tags = {str(t["key"]): _jaeger_value(t) for t in span.get("tags") or ()}
    process = processes.get(str(span.get("processID"))) or {}
    service = process.get("serviceName")
    # Jaeger reports microseconds.
    start_ns, end_ns = _interval(
        span["startTime"], _micros_sum(span["startTime"], span["duration"]), scale=1000
    )
    return SpanRecord(
        trace_id=_jaeger_id(span["traceID"]),
        span_id=_jaeger_id(span["spanID"]),
        parent_id=parent,
        name=str(span.get("operationName", "")),
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=tags,
        links=tuple(links),
        service=service if isinstance(service, str) else None,
        error=tags.get("error") is True or tags.get("otel.status_code") == "ERROR",
    )


def _micros_sum(start: Any, duration: Any) -> int:
    return _timestamp(start, "start time") + _timestamp(duration, "duration")


def _jaeger_id(value: Any) -> str:
    # Jaeger drops leading zeros of 64-bit halves; pad so ids compare with OTLP's.
    text = str(value).lower()
    return text.zfill(32) if len(text) > 16 else text.zfill(16)


def _jaeger_value(tag: Mapping[str, Any]) -> Any:
    value = tag.get("value")
    kind = tag.get("type")
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "int64":
        return int(value)  # type: ignore[arg-type]
    if kind == "float64":
        return float(value)  # type: ignore[arg-type]
    return value
