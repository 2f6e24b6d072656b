"""Which providers otel-rerank records to, resolved at call time.

``instrument()`` may be given a tracer and meter provider; otherwise the global ones are
used. Instrumented calls, decorators and the shadow reranker all ask :func:`current` on
every call, so a provider installed after ``import otel_rerank.auto`` (or after a function
was decorated) is picked up, and so is the next ``instrument()`` call's. The answer is
cached on the identity of the two providers, which makes the lookup a few attribute reads.

An instrumentor given its own providers or content setting
(``CohereInstrumentor().instrument(tracer_provider=tp)``) records that library's calls with
them and leaves everything else alone: its patched methods run inside
:func:`library_scope`, which :func:`current` reads (only while some instrumentor has such
settings, so the common case pays nothing for it).

When neither provider is a real SDK (the API's proxy/no-op defaults), :func:`current`
returns ``None`` and every wrapper calls straight through: no span, no metric, no work.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider, NoOpMeterProvider
from opentelemetry.metrics import _internal as _metrics_internal
from opentelemetry.sdk.trace import sampling
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, Tracer, TracerProvider

from otel_rerank import semconv
from otel_rerank._config import ContentPolicy
from otel_rerank.version import __version__

# The proxy class is private; without it only explicit no-op providers are detected.
_ProxyMeterProvider = getattr(_metrics_internal, "_ProxyMeterProvider", NoOpMeterProvider)

_logger = logging.getLogger("otel_rerank")

_SCOPE = "otel_rerank"
# The GenAI conventions' last release inside semantic-conventions, whose keys we emit
# (docs/semconv.md names the few from semantic-conventions-genai and OpenInference).
_SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.1"


@dataclass(slots=True)
class _Settings:
    """What the latest ``instrument()`` call asked for; ``None`` means "use the default"."""

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    content: ContentPolicy | None = None


_settings = _Settings()
_lock = threading.Lock()


class LibrarySettings:
    """What one instrumentor's ``instrument()`` was given; unset fields fall back to the
    defaults of ``otel_rerank.instrument()``, then to the global providers."""

    __slots__ = ("cache", "content", "meter_provider", "tracer_provider")

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        content: ContentPolicy | None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.content = content
        # (tracer provider, meter provider, content policy, resolved telemetry or None)
        self.cache = _NOTHING_RESOLVED


def library_settings(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | str | None = None,
) -> LibrarySettings | None:
    """An instrumentor's own settings, or ``None`` when it was given none (use the defaults)."""
    if tracer_provider is None and meter_provider is None and capture_content is None:
        return None
    content = ContentPolicy.from_env(capture_content) if capture_content is not None else None
    return LibrarySettings(tracer_provider, meter_provider, content)


_library: ContextVar[LibrarySettings | None] = ContextVar("otel_rerank_library", default=None)
# How many instrumentors hold their own settings; while 0, current() never reads _library.
_libraries_with_settings = 0


def hold_library_settings(held: bool) -> None:
    """Count one instrumentor's own settings in (``True``) or out (``False``)."""
    global _libraries_with_settings
    with _lock:
        _libraries_with_settings += 1 if held else -1
        _update_own_providers()


@contextmanager
def library_scope(settings: LibrarySettings | None) -> Iterator[None]:
    """While inside, calls record with ``settings`` (``None``: with the defaults)."""
    token = _library.set(settings)
    try:
        yield
    finally:
        _library.reset(token)


class Telemetry:
    """The tracer and instruments for one (tracer provider, meter provider) pair.

    Attributes:
        tracer: the tracer spans are started from (a no-op one when tracing is not set up).
        tracing: whether ``tracer`` belongs to a real SDK provider.
        metering: whether the instruments belong to a real SDK provider. When not (an
            application that set up tracing only), a call records no metric point and
            builds no context for one: the API's proxy instruments would drop the point,
            and one set up later gets a new ``Telemetry`` (:func:`current` is keyed on
            the providers).
        keeps_every_root: no span without a parent is dropped by sampling: the tracer
            provider's sampler is the SDK's default (parent-based, always on at the root)
            or always-on, or nothing is traced. A leaf call's span, made when it ends, is
            then kept whatever its parent; under any other sampler a root call's span
            starts first (see ``_span.StageSpan``).
        content: the content policy in force.
        duration: ``gen_ai.client.operation.duration`` histogram.
        candidates: ``rag.rerank.candidates`` histogram.
        token_usage: ``gen_ai.client.token.usage`` histogram.
        time_to_first_chunk: ``gen_ai.client.operation.time_to_first_chunk`` histogram.
        shadow_dropped: ``rag.shadow.dropped`` counter.
        budget_decisions: ``rag.rerank.budget.decisions`` counter.
    """

    __slots__ = (
        "budget_decisions",
        "candidates",
        "content",
        "duration",
        "keeps_every_root",
        "metering",
        "shadow_dropped",
        "time_to_first_chunk",
        "token_usage",
        "tracer",
        "tracing",
    )

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        content: ContentPolicy,
    ) -> None:
        self.tracing = _is_real_tracer_provider(tracer_provider)
        self.metering = _is_real_meter_provider(meter_provider)
        self.keeps_every_root = not self.tracing or _keeps_every_root(tracer_provider)
        self.tracer: Tracer = tracer_provider.get_tracer(
            _SCOPE, __version__, schema_url=_SCHEMA_URL
        )
        meter: Meter = meter_provider.get_meter(_SCOPE, __version__, schema_url=_SCHEMA_URL)
        self.content = content
        self.duration: Histogram = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of embedding, retrieval, rerank and LLM calls.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
        )
        self.candidates: Histogram = meter.create_histogram(
            semconv.METRIC_RERANK_CANDIDATES,
            unit="{candidate}",
            description="Candidates scored per rerank call.",
            explicit_bucket_boundaries_advisory=[float(b) for b in semconv.CANDIDATE_BUCKETS],
        )
        self.token_usage: Histogram = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Input and output tokens per LLM call.",
            explicit_bucket_boundaries_advisory=[float(b) for b in semconv.TOKEN_BUCKETS],
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from sending a streamed LLM request to its first chunk.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
        )
        self.shadow_dropped: Counter = meter.create_counter(
            semconv.METRIC_SHADOW_DROPPED,
            unit="{rerank}",
            description="Shadow reranks dropped because the shadow queue was full.",
        )
        self.budget_decisions: Counter = meter.create_counter(
            semconv.METRIC_RERANK_BUDGET_DECISIONS,
            unit="{decision}",
            description="Rerank budget guard decisions, by outcome (full, cut, skipped).",
        )


def _is_real_tracer_provider(provider: TracerProvider) -> bool:
    return not isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


def _keeps_every_root(provider: TracerProvider) -> bool:
    """Whether the provider's sampler is one of the SDK's two that keep every root span
    (the default ``parentbased_always_on``, or ``always_on``), by identity: any other, or a
    provider whose sampler cannot be read, may drop a root."""
    sampler = getattr(provider, "sampler", None)
    return sampler is sampling.DEFAULT_ON or sampler is sampling.ALWAYS_ON


def _is_real_meter_provider(provider: MeterProvider) -> bool:
    return not isinstance(provider, (_ProxyMeterProvider, NoOpMeterProvider))


# What :func:`current` last resolved: (tracer provider, meter provider, content policy,
# telemetry or None), each provider as configured (``None``: unset, standing for the API's
# proxy, see ``_UNSET_IS_PROXY``); ``_UNSET`` before the first call, which so never matches.
_UNSET: Any = object()
_NOTHING_RESOLVED: tuple[Any, Any, Any, Telemetry | None] = (_UNSET, _UNSET, _UNSET, None)
_cache = _NOTHING_RESOLVED
#: What :func:`current` answers while the settings stay as they are: (the API's global
#: tracer provider, its global meter provider, the telemetry or None), kept by
#: :func:`_resolve` where the answer depends on those two alone; cleared, and the
#: generation counted up, by every settings change (:func:`_update_own_providers`).
_NOTHING_KNOWN: tuple[Any, Any, Telemetry | None] = (_UNSET, _UNSET, None)
_known = _NOTHING_KNOWN
_generation = 0

# The API resolves a provider named by these variables lazily; read once, as the API does
# before any provider exists, so the common "nothing configured" case costs two reads.
_PROVIDERS_FROM_ENV = any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)
#: Whether the API keeps its two global providers where the no-SDK checks read them
#: (``trace._TRACER_PROVIDER``, ``_metrics_internal._METER_PROVIDER``, ``None`` until the
#: application sets one): every supported version does; an API that did not would get the
#: wrappers' full check on every call instead.
GLOBALS_READABLE = hasattr(trace, "_TRACER_PROVIDER") and hasattr(
    _metrics_internal, "_METER_PROVIDER"
)

#: Whether a provider may come from somewhere other than the API's two globals: given to
#: ``instrument()``, to an instrumentor of its own, or named by an ``OTEL_PYTHON_*_PROVIDER``
#: variable (or this API version keeps its globals elsewhere). While it is false, "no SDK
#: configured" is exactly ``trace._TRACER_PROVIDER is None and
#: _metrics_internal._METER_PROVIDER is None``: the check every wrapper makes first
#: (:func:`current`, and inline in the patched methods, ``instrumentation._base``), in
#: three attribute reads, because in an app without an SDK it is all a call pays, on a
#: cache a model's forward pass has just swept (each further function or object read
#: there costs about a microsecond: ``benchmarks/no_sdk_split.py``).
own_providers: bool


def _update_own_providers() -> None:
    """Recompute :data:`own_providers` (at import, then with ``_lock`` held after each
    settings change)."""
    global own_providers, _known, _generation
    _generation += 1  # what current() worked out before this is not kept
    _known = _NOTHING_KNOWN
    own_providers = (
        not GLOBALS_READABLE
        or _PROVIDERS_FROM_ENV
        or _libraries_with_settings > 0
        or _settings.tracer_provider is not None
        or _settings.meter_provider is not None
    )


_update_own_providers()

#: Whether a global provider left unset stands for the API's proxy (as ``get_tracer_provider``
#: and ``get_meter_provider`` answer then) until the application sets one: true unless an
#: ``OTEL_PYTHON_*_PROVIDER`` variable names a provider for the API to load, or this API
#: version keeps its globals elsewhere. Then :func:`current` keys its cache on the unset
#: global itself and asks the API only when it builds (else it asks before looking in the
#: cache, which is then keyed on the API's answer): an app that set up tracing alone does
#: not ask for the meter provider (an environment lookup and two calls) on every call.
_UNSET_IS_PROXY = GLOBALS_READABLE and not _PROVIDERS_FROM_ENV


def _global_tracer_provider() -> TracerProvider | None:
    provider: TracerProvider | None = getattr(trace, "_TRACER_PROVIDER", None)
    return provider


def _global_meter_provider() -> MeterProvider | None:
    provider: MeterProvider | None = getattr(_metrics_internal, "_METER_PROVIDER", None)
    return provider


# Variables whose provider failed to load: the API retries (and raises) on every lookup, so
# each is tried once and then treated as unset.
_unloadable: set[str] = set()


def _env_named_provider(variable: str, getter: Callable[[], Any], fallback: Any) -> Any:
    if variable in _unloadable:
        return fallback
    try:
        return getter()
    except Exception:  # StopIteration for a name with no entry point, or the provider's own error
        _unloadable.add(variable)
        _logger.warning(
            "otel-rerank: %s=%r names no provider that can be loaded; recording nothing "
            "through it until the application sets a provider itself",
            variable,
            os.environ.get(variable),
        )
        return fallback


def global_tracer_provider() -> TracerProvider:
    """``trace.get_tracer_provider()``, except that it never raises.

    The API raises ``StopIteration`` on every call when ``OTEL_PYTHON_TRACER_PROVIDER``
    names a provider with no entry point; here that counts as "none set" (logged once).
    """
    provider = _global_tracer_provider()
    if provider is not None:
        return provider
    result: TracerProvider = _env_named_provider(
        "OTEL_PYTHON_TRACER_PROVIDER",
        trace.get_tracer_provider,
        getattr(trace, "_PROXY_TRACER_PROVIDER", None) or ProxyTracerProvider(),
    )
    return result


def global_meter_provider() -> MeterProvider:
    """``metrics.get_meter_provider()``, except that it never raises (see the tracer twin)."""
    provider = _global_meter_provider()
    if provider is not None:
        return provider
    result: MeterProvider = _env_named_provider(
        "OTEL_PYTHON_METER_PROVIDER",
        metrics.get_meter_provider,
        getattr(_metrics_internal, "_PROXY_METER_PROVIDER", None) or NoOpMeterProvider(),
    )
    return result


def current() -> Telemetry | None:
    """The telemetry to record this call with, or ``None`` when nothing would be recorded.

    Every instrumented call asks. While the settings are unchanged and no instrumentor
    holds its own, the answer depends on the API's two global providers alone: it is kept
    with them (``_known``) and given again while both are the same objects, two reads and
    two comparisons; else it is worked out (:func:`_resolve`).
    """
    known = _known
    if known[0] is trace._TRACER_PROVIDER and known[1] is _metrics_internal._METER_PROVIDER:
        return known[2]
    return _resolve()


def _resolve() -> Telemetry | None:
    """:func:`current` worked out, and kept for it where it depends on the two globals alone
    (unless the settings changed meanwhile: then the next call works it out again)."""
    global _known
    generation = _generation
    if not GLOBALS_READABLE:
        return _resolve_now()
    # Read before the answer is worked out: a global set meanwhile never matches this entry.
    tracer_global, meter_global = trace._TRACER_PROVIDER, _metrics_internal._METER_PROVIDER
    telemetry = _resolve_now()
    if _UNSET_IS_PROXY and not _libraries_with_settings:
        with _lock:
            if generation == _generation:
                _known = (tracer_global, meter_global, telemetry)
    return telemetry


if not GLOBALS_READABLE:  # pragma: no cover - an API keeping its globals elsewhere
    current = _resolve  # worked out on every call: there are no globals to key it on


def _resolve_now() -> Telemetry | None:
    global _cache
    if (
        not own_providers
        and trace._TRACER_PROVIDER is None
        and _metrics_internal._METER_PROVIDER is None
    ):
        return None  # no SDK anywhere: the fast path of every wrapper
    if _libraries_with_settings:
        library = _library.get()
        if library is not None:
            return _current_for(library)
    settings = _settings
    tracer_provider = settings.tracer_provider or getattr(trace, "_TRACER_PROVIDER", None)
    meter_provider = settings.meter_provider or getattr(_metrics_internal, "_METER_PROVIDER", None)
    if tracer_provider is None and meter_provider is None and not _PROVIDERS_FROM_ENV:
        return None  # a library's own settings elsewhere, none here
    if not _UNSET_IS_PROXY:  # an unset global is what the API answers: ask it now
        tracer_provider = tracer_provider or global_tracer_provider()
        meter_provider = meter_provider or global_meter_provider()
    content = settings.content
    cached = _cache
    if cached[0] is tracer_provider and cached[1] is meter_provider and cached[2] is content:
        return cached[3]
    telemetry = _build(tracer_provider, meter_provider, content)
    _cache = (tracer_provider, meter_provider, content, telemetry)
    return telemetry


def _current_for(library: LibrarySettings) -> Telemetry | None:
    """:func:`current` for a library whose instrumentor was given its own settings."""
    tracer_provider = (
        library.tracer_provider
        or _settings.tracer_provider
        or getattr(trace, "_TRACER_PROVIDER", None)
    )
    meter_provider = (
        library.meter_provider
        or _settings.meter_provider
        or getattr(_metrics_internal, "_METER_PROVIDER", None)
    )
    if not _UNSET_IS_PROXY:  # as in current()
        tracer_provider = tracer_provider or global_tracer_provider()
        meter_provider = meter_provider or global_meter_provider()
    content = library.content or _settings.content
    cached = library.cache
    if cached[0] is tracer_provider and cached[1] is meter_provider and cached[2] is content:
        return cached[3]
    telemetry = _build(tracer_provider, meter_provider, content)
    library.cache = (tracer_provider, meter_provider, content, telemetry)
    return telemetry


def _build(
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    content: ContentPolicy | None,
) -> Telemetry | None:
    """The telemetry of these providers (``None``: unset, the API's answer, asked now)."""
    tracer_provider = tracer_provider or global_tracer_provider()
    meter_provider = meter_provider or global_meter_provider()
    if not (_is_real_tracer_provider(tracer_provider) or _is_real_meter_provider(meter_provider)):
        return None
    try:
        return Telemetry(tracer_provider, meter_provider, content or ContentPolicy.from_env())
    except Exception:  # a provider that cannot hand out a tracer or meter: record nothing
        _logger.warning(
            "otel-rerank: the configured providers failed to create a tracer or meter; "
            "recording nothing with them",
            exc_info=True,
        )
        return None


def use(
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | str | None = None,
) -> None:
    """Make these the providers and content setting of every later call (``instrument()``)."""
    with _lock:
        _settings.tracer_provider = tracer_provider
        _settings.meter_provider = meter_provider
        _settings.content = ContentPolicy.from_env(capture_content)
        _update_own_providers()


def reset() -> None:
    """Forget what ``instrument()`` asked for; fall back to the global providers."""
    global _cache
    with _lock:
        _settings.tracer_provider = None
        _settings.meter_provider = None
        _settings.content = None
        _cache = _NOTHING_RESOLVED
        _update_own_providers()
