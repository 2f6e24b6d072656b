"""Stand-ins for an OTLP collector that is down, black-holed, overloaded, or healthy.

The hardening tests point the real OTLP exporters (``http/protobuf`` and ``grpc``) at these
loopback endpoints to show that a broken collector never slows, bloats or hangs the app:

* ``closed`` — a free port nobody listens on (connection refused at once);
* ``blackhole`` — a TCP server that accepts connections and never answers (the export
  waits out its whole timeout);
* ``unavailable`` — a server that answers every export with HTTP 503 (``http/protobuf``)
  or gRPC ``UNAVAILABLE`` (``grpc``), both of which the exporters retry;
* :class:`HealthyHttpCollector` — answers 200 and counts the spans it receives.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILURE_MODES = ("closed", "blackhole", "unavailable")
PROTOCOLS = ("http/protobuf", "grpc")


# Every port free_port() has handed out in this process: the OS may offer a port again once
# its probe socket is closed, and two servers of one test given the same port would collide.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A loopback port that was free a moment ago, that nothing listens on, and that no
    earlier call in this process returned.

    The port is only free until someone binds it: a server given it can still lose it to
    another process (see ``tests._backend.launch``, which retries on fresh ports).
    """
    with _handed_out_lock:
        for _ in range(1000):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no fresh loopback port: {len(_handed_out)} handed out already")


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A TCP server that accepts every connection and never reads or answers."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(256)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, name="blackhole", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        server.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


class _StatusHandler(BaseHTTPRequestHandler):
    status = 503

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.status == 200:
            self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(self.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def _http_server(status: int) -> Iterator[ThreadingHTTPServer]:
    handler = type("Handler", (_StatusHandler,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="otlp-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _grpc_unavailable() -> Iterator[int]:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    def abort(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAVAILABLE, "collector overloaded")
        return b""  # pragma: no cover - abort raises

    handlers = [
        grpc.method_handlers_generic_handler(
            f"opentelemetry.proto.collector.{signal}.v1.{service}",
            {"Export": grpc.unary_unary_rpc_method_handler(abort)},
        )
        for signal, service in (("trace", "TraceService"), ("metrics", "MetricsService"))
    ]
    server = grpc.server(ThreadPoolExecutor(max_workers=4), handlers=handlers)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def failing_collector(mode: str, protocol: str) -> Iterator[str]:
    """An OTLP endpoint URL (``http://127.0.0.1:PORT``) that fails in the given way."""
    if mode == "closed":
        yield f"http://127.0.0.1:{free_port()}"
    elif mode == "blackhole":
        with blackhole() as port:
            yield f"http://127.0.0.1:{port}"
    elif mode == "unavailable" and protocol == "grpc":
        with _grpc_unavailable() as port:
            yield f"http://127.0.0.1:{port}"
    elif mode == "unavailable":
        with _http_server(503) as server:
            yield f"http://127.0.0.1:{server.server_address[1]}"
    else:
        raise ValueError(mode)


class HealthyHttpCollector:
    """An OTLP/HTTP collector that accepts everything and counts the spans it got."""

    def __init__(self) -> None:
        self._context = _http_server(200)
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> HealthyHttpCollector:
        self._server = self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._context.__exit__(None, None, None)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def span_names(self) -> list[str]:
        """Names of every span received on ``/v1/traces`` so far."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        assert self._server is not None
        names: list[str] = []
        for path, body in list(self._server.received):  # type: ignore[attr-defined]
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    names.extend(span.name for span in scope_spans.spans)
        return names


class HealthyGrpcCollector:
    """An OTLP/gRPC collector that accepts every trace export and keeps the span names."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._server: Any = None
        self._port = 0

    def __enter__(self) -> HealthyGrpcCollector:
        from concurrent.futures import ThreadPoolExecutor

        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            message = ExportTraceServiceRequest()
            message.ParseFromString(request)
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self._names.extend(span.name for span in scope_spans.spans)
            return b""  # an empty ExportTraceServiceResponse: full success

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4), handlers=[handler])
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def span_names(self) -> list[str]:
        return list(self._names)
