"""Live: the collector crashes mid-run and comes back; the app neither raises nor stalls.

Two apps (collector/loadgen.py, one exporting over gRPC, one over HTTP/protobuf) send a
steady stream of traced requests to our Collector (otelcol-config.yaml as shipped, ports set
by environment), which forwards to Jaeger v2. Mid-run the collector is SIGKILLed, left dead
for a few seconds, and started again on the same ports. Each app must finish its requests on
schedule with exit status 0 (nothing raised), no request may take much longer than its own
work (exporting is never on the request path), and traces started after the restart must
reach Jaeger. Bounded: about 40 s once the binaries are built.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests import _backend as backend

pytestmark = [pytest.mark.live, pytest.mark.slow]

REQUESTS = 100
RATE = 5.0  # 20 s of traffic
DEAD_S = 4.0
# A request's time beyond its own sleeps; a blocked export would add its 2 s timeout.
MAX_OVERHEAD_MS = 500


def test_collector_restart_mid_run(tmp_path: Path) -> None:
    jaeger = backend.jaeger(tmp_path)
    otelcol = backend.collector("otelcol-config.yaml", tmp_path)
    otelcol.env["OTELCOL_JAEGER_ENDPOINT"] = jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"]
    logs = [jaeger.log, otelcol.log]
    with backend.running(jaeger, otelcol):
        backend.wait_jaeger(jaeger)
        backend.wait_healthy(otelcol)
        endpoints = backend.otlp_endpoints(otelcol)
        apps = {
            protocol: backend.loadgen(
                tmp_path, f"faults-{protocol.split('/')[0]}", endpoints[protocol], protocol,
                "--requests", str(REQUESTS), "--rate", str(RATE), "--rerank-ms", "5",
            )
            for protocol in endpoints
        }  # fmt: skip
        try:
            time.sleep(6)  # traffic flowing, some of it exported
            otelcol.kill()
            time.sleep(DEAD_S)
            otelcol.start()
            backend.wait_healthy(otelcol)
            restarted_us = time.time() * 1e6
            for protocol, app in apps.items():
                assert app.wait(timeout=REQUESTS / RATE + 60) == 0, protocol
        finally:
            for app in apps.values():
                if app.poll() is None:
                    app.kill()
        for protocol in apps:
            service = f"faults-{protocol.split('/')[0]}"
            log = (tmp_path / f"loadgen-{service}-{protocol.replace('/', '-')}.log").read_text()
            assert "Traceback" not in log, log
            match = re.search(r"sent (\d+) requests, max overhead (\d+) ms", log)
            assert match, log
            assert int(match.group(1)) == REQUESTS
            assert int(match.group(2)) < MAX_OVERHEAD_MS, log

            def after_restart(service: str = service) -> int:
                traces = backend.jaeger_traces(jaeger, service)
                return sum(
                    1
                    for t in traces
                    if min(s["startTime"] for s in t["spans"]) > restarted_us
                    and len(t["spans"]) == 5
                )

            backend.wait_for(f"{service}: traces sent after the restart", after_restart, 60, logs)
