"""The example service's web layer: a FastAPI app that answers questions about the Python docs.

``POST /ask {"query": "..."}`` runs the RAG pipeline (embed → faiss → rerank → LLM) and
returns the answer, the passages served, the reranker mode in force and the request's trace
id. ``GET /healthz`` says the process is up.

otel-rerank instruments the four stages but not the web framework, so each request needs a
span to hang them under: exactly one SERVER span per request, the trace's root, with the
stage spans as its children. :func:`create_app` gets it from FastAPI's own OpenTelemetry
instrumentation (``opentelemetry-instrumentation-fastapi``) when that is installed — also
when ``opentelemetry-instrument`` has already instrumented every FastAPI app — and from
:class:`RootSpanMiddleware`, a dozen lines of plain OpenTelemetry API, when it is not.
Never both: two server spans per request would double every request in a report. Health
checks (``GET /healthz``) are left untraced either way; a load balancer's probes would
otherwise count as requests.

This module imports no otel-rerank instrumentation: ``rag_service.py`` starts the app after
``import otel_rerank.auto``, and the tests build it around an in-memory SDK.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from pydantic import BaseModel, Field

from otel_rerank.demo import RagPipeline

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Routes named in span names; any other path is named by its method only, so that a
#: scanner probing random URLs cannot blow up the span-name cardinality.
_ROUTES = frozenset({"/ask"})
#: Not traced: a load balancer's health checks would count as requests in every report.
_UNTRACED = frozenset({"/healthz"})
#: The same, as FastAPI's instrumentation takes it: regexes searched in the request URL.
_UNTRACED_URLS = ",".join(f"{path}$" for path in sorted(_UNTRACED))


class AskRequest(BaseModel):
    """A question."""

    query: str = Field(min_length=1, max_length=2000)


class PassageOut(BaseModel):
    """One served passage."""

    id: int
    title: str
    text: str


class AskResponse(BaseModel):
    """The answer, the passages it came from (in served order), the mode and the trace id."""

    answer: str
    passages: list[PassageOut]
    mode: str
    trace_id: str | None


class RootSpanMiddleware:
    """ASGI middleware: every HTTP request runs inside one SERVER span, the trace's root.

    If a span is already current when a request arrives, an instrumentation outside this
    middleware has made the request's server span: the request runs under that one.
    """

    def __init__(self, app: Any, tracer_provider: TracerProvider | None = None) -> None:
        self.app = app
        self.tracer = trace.get_tracer("rag_service", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in _UNTRACED
            or trace.get_current_span().get_span_context().is_valid
        ):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        name = f"{method} {path}" if path in _ROUTES else method
        attributes = {"http.request.method": method, "url.path": path}
        with self.tracer.start_as_current_span(
            name, kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def send_and_record(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_and_record)


def fastapi_instrumentation_installed() -> bool:
    """Whether ``opentelemetry-instrumentation-fastapi`` can be imported."""
    try:
        import opentelemetry.instrumentation.fastapi  # noqa: F401
    except ImportError:
        return False
    return True


def _instrument_with_fastapi(app: FastAPI, tracer_provider: TracerProvider | None) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        # `opentelemetry-instrument` instrumented the app when it was constructed, with only
        # the exclusions of OTEL_PYTHON_FASTAPI_EXCLUDED_URLS: redo it with health checks out.
        FastAPIInstrumentor.uninstrument_app(app)
        app.middleware_stack = None  # built again, instrumented, on the first request
    configured = os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or os.environ.get(
        "OTEL_PYTHON_EXCLUDED_URLS"
    )
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls=",".join(filter(None, (configured, _UNTRACED_URLS))),
        # Per-message ASGI spans (`http receive`, `http send`) say nothing about where a
        # request's time goes, and would be most of the spans in every trace.
        exclude_spans=["receive", "send"],
    )


def create_app(
    pipeline: RagPipeline,
    tracer_provider: TracerProvider | None = None,
    fastapi_instrumentation: bool | None = None,
) -> FastAPI:
    """The FastAPI app around ``pipeline``, with one server span per request.

    Args:
        pipeline: the RAG pipeline (``otel_rerank.demo.build_pipeline``).
        tracer_provider: where the request spans go; the global provider if omitted.
        fastapi_instrumentation: make the server span with FastAPI's own instrumentation
            (``True``) or with :class:`RootSpanMiddleware` (``False``); by default the
            former when it is installed.
    """
    app = FastAPI(title="Ask the Python docs", version="1")
    if fastapi_instrumentation is None:
        fastapi_instrumentation = fastapi_instrumentation_installed()
    if fastapi_instrumentation:
        _instrument_with_fastapi(app, tracer_provider)
    else:
        app.add_middleware(RootSpanMiddleware, tracer_provider=tracer_provider)

    # A plain ``def``: FastAPI runs it on its thread pool (the models block), and the
    # thread inherits the request's context, so the stage spans find the root span.
    @app.post("/ask")
    def ask(request: AskRequest) -> AskResponse:
        result = pipeline.answer(request.query)
        return AskResponse(
            answer=result.answer,
            passages=[PassageOut(id=p.id, title=p.title, text=p.text) for p in result.passages],
            mode=result.mode,
            trace_id=result.trace_id,
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
