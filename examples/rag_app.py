"""The example service's web layer: a FastAPI app that answers questions about the Python docs.

``POST /ask {"query": "..."}`` runs the RAG pipeline (embed → faiss → rerank → LLM) and
returns the answer, the passages served, the reranker mode in force and the request's trace
id. ``GET /healthz`` says the process is up.

otel-rerank instruments the four stages but not the web framework, so each request needs a
span to hang them under. :class:`RootSpanMiddleware` is that span: a dozen lines of plain
OpenTelemetry API that start one SERVER span per HTTP request, making the stage spans its
children and the trace one request. In your own app, ``opentelemetry-instrumentation-fastapi``
(or Django's, Flask's, ...) does the same job; keep whichever you have.

This module imports no otel-rerank instrumentation: ``rag_service.py`` starts the app after
``import otel_rerank.auto``, and the tests build it around an in-memory SDK.
"""

from __future__ import annotations

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
    """ASGI middleware: every HTTP request runs inside one SERVER span, the trace's root."""

    def __init__(self, app: Any, tracer_provider: TracerProvider | None = None) -> None:
        self.app = app
        self.tracer = trace.get_tracer("rag_service", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED:
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


def create_app(pipeline: RagPipeline, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The FastAPI app around ``pipeline``.

    Args:
        pipeline: the RAG pipeline (``otel_rerank.demo.build_pipeline``).
        tracer_provider: where the request spans go; the global provider if omitted.
    """
    app = FastAPI(title="Ask the Python docs", version="1")
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
