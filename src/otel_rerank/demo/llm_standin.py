"""A local stand-in for an OpenAI-compatible chat endpoint, so the demo runs offline.

The demo calls its LLM through the real ``openai`` client, exactly as an application does;
with no real endpoint configured it points the client at this server. It answers
``POST /v1/chat/completions`` (plain and ``stream=True`` as server-sent events, with
``stream_options.include_usage``) and ``GET /v1/models`` in the OpenAI wire format. Its
"model" generates nothing: it quotes the first numbered passage (``[1] ...``) of the last
user message, which is what the demo's prompt puts first, and counts whitespace-separated
words as tokens. It listens on loopback only and refuses any other address: it has no
authentication and is not meant to be reachable from another machine.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

MODEL: Final = "standin-quote-top-passage"
_PASSAGE = re.compile(r"^\[1\]\s*(.+?)\s*$", re.MULTILINE)
_MAX_BODY: Final = 4 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def answer_for(messages: list[dict[str, Any]]) -> str:
    """The stand-in's reply: a quote of the top passage of the last user message."""
    prompt = next(
        (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    match = _PASSAGE.search(prompt)
    if match is None:
        return "I have no passage to answer from."
    return f'From the documentation: "{match.group(1)}"'


def _tokens(text: str) -> int:
    return len(text.split())


def _completion(model: str, content: str, prompt_tokens: int) -> dict[str, Any]:
    completion_tokens = _tokens(content)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _chunks(
    model: str, content: str, prompt_tokens: int, include_usage: bool
) -> Iterator[dict[str, Any]]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    words = content.split(" ")
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        yield {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    if include_usage:
        completion_tokens = _tokens(content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        yield {**base, "choices": [], "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    server_version = "otel-rerank-llm-standin/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request on stderr would drown the demo's output

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "otel-rerank"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > _MAX_BODY:
            self._error(400, "a JSON body is required")
            return
        try:
            request = json.loads(self.rfile.read(length))
            messages = request["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"malformed request: {exc}")
            return
        model = str(request.get("model") or MODEL)
        content = answer_for(messages)
        prompt_tokens = sum(_tokens(str(m.get("content") or "")) for m in messages)
        delay = self.server.delay_s  # type: ignore[attr-defined]
        if not request.get("stream"):
            if delay:
                time.sleep(delay)
            self._send_json(200, _completion(model, content, prompt_tokens))
            return
        options = request.get("stream_options") or {}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for chunk in _chunks(model, content, prompt_tokens, bool(options.get("include_usage"))):
            if delay:
                time.sleep(delay / 10)
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    delay_s = 0.0


class LLMStandIn:
    """The stand-in server, running on a background thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with LLMStandIn() as llm:
            client = openai.OpenAI(base_url=llm.base_url, api_key="unused")

    Args:
        host: a loopback address to listen on.
        port: the port; 0 picks a free one.
        delay_s: simulated generation time per reply (0: answer at once). It stands in
            for a real model's latency when one wants the LLM's share to look realistic.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay_s: float = 0.0) -> None:
        if not is_loopback(host):
            raise ValueError(f"the LLM stand-in listens on loopback only, not {host!r}")
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_BoundServer", (_Server,), {"address_family": family})
        self._server: _Server = server_class((host, port), _Handler)
        self._server.delay_s = delay_s
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give the openai client (``http://127.0.0.1:PORT/v1``)."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/v1"

    def start(self) -> LLMStandIn:
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="otel-rerank-llm-standin",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (for a stand-alone process)."""
        try:
            self._server.serve_forever(poll_interval=0.5)
        finally:
            self._server.server_close()

    def __enter__(self) -> LLMStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
