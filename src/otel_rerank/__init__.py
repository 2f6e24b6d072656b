"""otel-rerank: OpenTelemetry spans and latency histograms for every stage of a RAG request.

One import instruments everything installed::

    import otel_rerank.auto

or, explicitly::

    import otel_rerank

    otel_rerank.configure()      # SDK providers from OTEL_* (no-op if the app has its own)
    otel_rerank.instrument()     # patch every supported library that is installed
    otel_rerank.uninstrument()   # put every original back

Custom code is traced with the stage decorators / context managers
:func:`embedding`, :func:`retrieval`, :func:`rerank` and :func:`llm`, and a candidate
reranker can be shadow-run with :class:`ShadowReranker`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_rerank import _telemetry, instrumentation
from otel_rerank._decorators import embedding, llm, rerank, retrieval
from otel_rerank._feedback import feedback
from otel_rerank._request import request
from otel_rerank._sdk import ConfigurationError, Configured, configure
from otel_rerank.budget import RerankBudget
from otel_rerank.shadow import ShadowReranker
from otel_rerank.version import __version__

__all__ = [
    "ConfigurationError",
    "Configured",
    "RerankBudget",
    "ShadowReranker",
    "__version__",
    "configure",
    "embedding",
    "feedback",
    "instrument",
    "llm",
    "request",
    "rerank",
    "retrieval",
    "uninstrument",
]

_lock = threading.Lock()


def instrument(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
    libraries: Iterable[str] | None = None,
) -> list[str]:
    """Instrument every supported library that is installed (or just ``libraries``).

    Idempotent: a second call patches nothing twice, but its providers and content setting
    replace the first call's for every later call (instrumented or decorated).

    Args:
        tracer_provider: record spans here instead of the global tracer provider.
        meter_provider: record metrics here instead of the global meter provider.
        capture_content: record query/document/prompt text; ``None`` reads
            ``OTEL_RERANK_CAPTURE_CONTENT``, then
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
        libraries: names from ``otel_rerank.instrumentation.libraries()`` to narrow it to.

    Returns:
        The names of the libraries that are instrumented after the call.

    Raises:
        ValueError: ``libraries`` names a library otel-rerank does not support.
    """
    supported = instrumentation.libraries()
    wanted = supported if libraries is None else list(libraries)
    unknown = [name for name in wanted if name not in supported]
    if unknown:
        raise ValueError(
            f"unsupported librar{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}; "
            f"supported: {', '.join(supported)}"
        )
    with _lock:
        _telemetry.use(tracer_provider, meter_provider, capture_content)
        classes = instrumentation.available()
        done = []
        for name in wanted:
            cls = classes.get(name)
            if cls is None or not cls.is_installed():
                continue
            instrumentor = cls()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument()
            if instrumentor.is_instrumented_by_opentelemetry:
                done.append(name)
        return done


def uninstrument() -> None:
    """Restore every patched method exactly and forget the providers given to ``instrument``."""
    with _lock:
        for cls in instrumentation.available().values():
            instrumentor = cls()
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        _telemetry.reset()


def instrumented_libraries() -> list[str]:
    """Names of the libraries currently instrumented."""
    return [
        name
        for name, cls in instrumentation.available().items()
        if cls().is_instrumented_by_opentelemetry
    ]
