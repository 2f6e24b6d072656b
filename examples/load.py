"""Drive the example service at a fixed request rate for a fixed time, then summarize.

::

    python examples/load.py --url http://127.0.0.1:8000 --rate 2 --duration 30

Open loop, as real traffic is: request ``i`` is sent at ``start + i / rate`` whether or not
earlier ones have returned, so a slow service shows up as latency rather than as a lower
rate. At most ``--concurrency`` requests are in flight; one due while that many are
outstanding is skipped and counted, never queued. The run is bounded in both count
(``--max-requests``, and ``rate * duration``) and time (``--duration``, plus one request
timeout to drain). Only loopback URLs are accepted: this is a tool for your own machine,
not for loading somebody else's service.

It prints requests sent / ok / failed / skipped, client-side latency percentiles, and the
trace id of the slowest request, to look up in the trace file or in Jaeger.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from otel_rerank.demo import DEMO_QUERIES, is_loopback
from otel_rerank.report import percentile

MAX_RATE = 50.0
MAX_DURATION_S = 600.0
MAX_REQUESTS = 10_000


@dataclass
class Summary:
    """What a run did."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    slowest: tuple[float, str | None] = (0.0, None)
    errors: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        lines = [
            f"requests: {self.sent} sent, {self.ok} ok, {self.failed} failed, "
            f"{self.skipped} skipped (too many in flight)"
        ]
        if self.latencies_ms:
            p50, p95, p99 = (percentile(self.latencies_ms, q) for q in (50, 95, 99))
            lines.append(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}")
            lines.append(f"slowest: {self.slowest[0]:.1f} ms, trace id {self.slowest[1]}")
        for error, count in sorted(self.errors.items()):
            lines.append(f"error: {count} x {error}")
        return "\n".join(lines)


def check_url(url: str) -> str:
    """The ``/ask`` URL for ``url``; raises ValueError unless it is http(s) on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not is_loopback(parts.hostname):
        raise ValueError(
            f"refusing non-loopback host {parts.hostname!r}: load only your own machine"
        )
    return url.rstrip("/") + "/ask"


async def run_load(
    url: str,
    rate: float,
    duration_s: float,
    max_requests: int,
    concurrency: int = 8,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Summary:
    """Send ``min(max_requests, rate * duration_s)`` requests to ``url`` at ``rate`` per second."""
    ask = check_url(url)
    total = min(max_requests, max(1, int(rate * duration_s)))
    summary = Summary()
    in_flight: set[asyncio.Task[None]] = set()

    async def one(client: httpx.AsyncClient, query: str) -> None:
        started = time.perf_counter()
        try:
            response = await client.post(ask, json={"query": query})
            response.raise_for_status()
            trace_id = response.json().get("trace_id")
        except (httpx.HTTPError, ValueError) as exc:
            summary.failed += 1
            name = type(exc).__name__
            summary.errors[name] = summary.errors.get(name, 0) + 1
            return
        elapsed = (time.perf_counter() - started) * 1000
        summary.ok += 1
        summary.latencies_ms.append(elapsed)
        if elapsed > summary.slowest[0]:
            summary.slowest = (elapsed, trace_id)

    async with httpx.AsyncClient(timeout=timeout_s, transport=transport) as client:
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= concurrency:
                summary.skipped += 1
                continue
            summary.sent += 1
            task = asyncio.create_task(one(client, DEMO_QUERIES[i % len(DEMO_QUERIES)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=timeout_s)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service (loopback)")
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to send for")
    parser.add_argument("--max-requests", type=int, default=1000, help="stop after this many")
    parser.add_argument("--concurrency", type=int, default=8, help="most requests in flight")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args(argv)
    problems = []
    if not 0 < args.rate <= MAX_RATE:
        problems.append(f"--rate must be in (0, {MAX_RATE:g}]")
    if not 0 < args.duration <= MAX_DURATION_S:
        problems.append(f"--duration must be in (0, {MAX_DURATION_S:g}]")
    if not 0 < args.max_requests <= MAX_REQUESTS:
        problems.append(f"--max-requests must be in [1, {MAX_REQUESTS}]")
    if args.concurrency < 1 or args.timeout <= 0:
        problems.append("--concurrency must be >= 1 and --timeout > 0")
    try:
        check_url(args.url)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        print(f"load.py: error: {'; '.join(problems)}", file=sys.stderr)
        return 2
    summary = asyncio.run(
        run_load(
            args.url, args.rate, args.duration, args.max_requests, args.concurrency, args.timeout
        )
    )
    print(summary.text())
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
