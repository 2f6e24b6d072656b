"""A fake LLM HTTP API for the client tests: mock transports, a delay, a failure status.

Subclasses say which client classes to build, where they point and what a response is
(``_respond``); this base records the requests, sleeps the configured delay (blocking for
the sync transport, awaited for the async one, so async spans are seen to cover the await)
and builds sync and async clients over ``http.MockTransport`` with retries off.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


class MockLLMServer:
    """Base of the per-library fakes; set the class attributes, implement ``_respond``."""

    http: Any  # the HTTP library the client is built on (httpx2 or httpx)
    client_class: Any
    async_client_class: Any
    base_url: str
    api_key: str

    def __init__(self, status: int = 200, delay_s: float = 0.0, stream_error: bool = False):
        self.status = status
        self.delay_s = delay_s
        self.stream_error = stream_error
        self.requests: list[Any] = []

    def _respond(self, request: Any) -> Any:
        raise NotImplementedError

    def handler(self, request: Any) -> Any:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.requests.append(request)
        return self._respond(request)

    async def async_handler(self, request: Any) -> Any:
        await asyncio.sleep(self.delay_s)
        self.requests.append(request)
        return self._respond(request)

    def client(self) -> Any:
        return self.client_class(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,
            http_client=self.http.Client(transport=self.http.MockTransport(self.handler)),
        )

    def async_client(self) -> Any:
        transport = self.http.MockTransport(self.async_handler)
        return self.async_client_class(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,
            http_client=self.http.AsyncClient(transport=transport),
        )
