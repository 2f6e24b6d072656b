"""Import this module to configure OpenTelemetry (if the app has not) and instrument everything.

::

    import otel_rerank.auto  # noqa: F401

It runs :func:`otel_rerank.configure` and :func:`otel_rerank.instrument` once, at import.
A failure in either is logged, never raised: a broken telemetry set-up must not stop the
app. The two are independent: when ``configure()`` refuses a bad ``OTEL_*`` setting (and
so installs nothing), the libraries are still instrumented, and record to whatever
providers the application sets up itself.
"""

from __future__ import annotations

import otel_rerank
from otel_rerank._safe import logger

configured: otel_rerank.Configured | None = None
instrumented: list[str] = []

try:
    configured = otel_rerank.configure()
except Exception as _error:  # a telemetry problem must not take the application down
    logger.warning("otel-rerank: OpenTelemetry SDK set-up failed: %s", _error)

try:
    instrumented = otel_rerank.instrument()
except Exception as _error:
    logger.warning("otel-rerank: instrumentation failed: %s", _error)
