"""The real back end on loopback: our Collector distribution, Jaeger v2, Prometheus 3.

``scripts/build-backend.sh`` (run by ``make test``) builds the binaries from Go modules into
``.backend/bin`` (or ``$OTEL_RERANK_BACKEND_BIN``); a test that needs one that is absent
skips and names it. Every server runs a config from collector/ *as shipped*: the configs
spell each listen address and peer as ``${env:VAR:-default}``, and these helpers only set
those variables to free loopback ports. Each process logs to a file in the test's temporary
folder, which assertion messages quote, and is stopped when its context ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests._collectors import free_port

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
BIN_DIR = Path(os.environ.get("OTEL_RERANK_BACKEND_BIN") or ROOT / ".backend" / "bin")


def binary(name: str) -> str:
    """The path of a back-end binary, or skip the test naming the one that is missing."""
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        pytest.skip(f"{name} is not built in {BIN_DIR}: run scripts/build-backend.sh")
    return str(path)


def get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def get_text(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    logs: Sequence[Path] = (),
    every: float = 0.5,
) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with the logs after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            last = check()
            if last:
                return last
        time.sleep(every)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
    pytest.fail(f"{what}: not after {timeout:.0f} s (last: {last!r})\n{tails}")


class Server:
    """One back-end process: a binary, its config, its environment and its log."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(log.parent), **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash case, nothing flushed."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def ports(*names: str) -> dict[str, str]:
    """``{VAR: "127.0.0.1:PORT"}`` for each listen-address variable."""
    return {name: f"127.0.0.1:{free_port()}" for name in names}


def collector(config: str | Path, tmp: Path, name: str = "otelcol", **env: str) -> Server:
    """Our Collector distribution with a shipped config, every port moved to loopback."""
    path = config if isinstance(config, Path) else COLLECTOR / config
    listen = ports(
        "OTELCOL_OTLP_GRPC_ENDPOINT",
        "OTELCOL_OTLP_HTTP_ENDPOINT",
        "OTELCOL_PROMETHEUS_ENDPOINT",
        "OTELCOL_HEALTH_CHECK_ENDPOINT",
    )
    listen |= {"OTELCOL_TELEMETRY_HOST": "127.0.0.1", "OTELCOL_TELEMETRY_PORT": str(free_port())}
    argv = [binary("otelcol-rerank"), f"--config={path}"]
    return Server(name, argv, listen | env, tmp / f"{name}.log")


def wait_healthy(server: Server, timeout: float = 60) -> None:
    url = f"http://{server.env['OTELCOL_HEALTH_CHECK_ENDPOINT']}/"

    def healthy() -> bool:
        assert server.running(), f"{server.name} exited"
        return bool(get_text(url) is not None)

    wait_for(f"{server.name} healthy at {url}", healthy, timeout, [server.log])


def jaeger(tmp: Path, prometheus_url: str | None = None, name: str = "jaeger") -> Server:
    """Jaeger v2 with collector/jaeger-config.yaml, every port moved to loopback."""
    listen = ports(
        "JAEGER_OTLP_GRPC_ENDPOINT",
        "JAEGER_OTLP_HTTP_ENDPOINT",
        "JAEGER_QUERY_HTTP_ENDPOINT",
        "JAEGER_QUERY_GRPC_ENDPOINT",
    )
    listen |= {"JAEGER_TELEMETRY_HOST": "127.0.0.1", "JAEGER_TELEMETRY_PORT": str(free_port())}
    # No Prometheus in a test that does not need the Monitor tab: a port nobody listens on.
    listen["JAEGER_PROMETHEUS_URL"] = prometheus_url or f"http://127.0.0.1:{free_port()}"
    argv = [binary("jaeger"), "--config", str(COLLECTOR / "jaeger-config.yaml")]
    return Server(name, argv, listen, tmp / f"{name}.log")


def jaeger_api(server: Server) -> str:
    return f"http://{server.env['JAEGER_QUERY_HTTP_ENDPOINT']}/api"


def wait_jaeger(server: Server, timeout: float = 60) -> None:
    def ready() -> bool:
        assert server.running(), f"{server.name} exited"
        return "data" in get_json(f"{jaeger_api(server)}/services")

    wait_for(f"{server.name} serving its API", ready, timeout, [server.log])


def jaeger_traces(server: Server, service: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The traces Jaeger holds for ``service`` (none when it has never seen the service)."""
    query = urllib.parse.urlencode({"service": service, "limit": limit, "lookback": "1h"})
    try:
        return list(get_json(f"{jaeger_api(server)}/traces?{query}")["data"] or [])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


def loadgen(
    tmp: Path, service: str, endpoint: str, protocol: str = "http/protobuf", *args: str
) -> subprocess.Popen[bytes]:
    """collector/loadgen.py exporting OTLP to ``endpoint`` through ``otel_rerank.configure()``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    log = (tmp / f"loadgen-{service}-{protocol.replace('/', '-')}.log").open("ab")
    with log:
        return subprocess.Popen(
            [sys.executable, str(COLLECTOR / "loadgen.py"), "--service-name", service, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


def otlp_endpoints(server: Server) -> dict[str, str]:
    """``{protocol: endpoint URL}`` of a collector's OTLP receiver, as an app would set them."""
    return {
        "grpc": f"http://{server.env['OTELCOL_OTLP_GRPC_ENDPOINT']}",
        "http/protobuf": f"http://{server.env['OTELCOL_OTLP_HTTP_ENDPOINT']}",
    }


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Start the servers in order; stop them in reverse order, whatever happens."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in reversed(servers):
            server.stop()


def prometheus_samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The samples of ``name`` in a Prometheus text exposition whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((dict(sample.labels), float(sample.value)))
    return found
