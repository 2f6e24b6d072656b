"""Import this module to configure OpenTelemetry (if the app has not) and instrument everything.

::

    import otel_rerank.auto  # noqa: F401

It runs :func:`otel_rerank.configure` and :func:`otel_rerank.instrument` once, at import.
A failure here is logged, never raised: a broken telemetry set-up must not stop the app.
"""

from __future__ import annotations

import otel_rerank
from otel_rerank._safe import logger

configured: otel_rerank.Configured | None = None
instrumented: list[str] = []

try:
    configured = otel_rerank.configure()
    instrumented = otel_rerank.instrument()
except Exception as _error:  # a telemetry problem must not take the application down
    logger.warning("otel-rerank: automatic set-up failed: %s", _error)
