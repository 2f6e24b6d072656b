"""The real back end on loopback: our Collector distribution, Jaeger v2, Prometheus 3.

``scripts/build-backend.sh`` (run by ``make test``) builds the binaries from Go modules into
``.backend/bin`` (or ``$OTEL_RERANK_BACKEND_BIN``); a test that needs one that is absent
skips and names it. Every server runs a config from collector/ *as shipped*: the configs
spell each listen address and peer as ``${env:VAR:-default}``, and these helpers only set
those variables to free loopback ports. Each process logs to a file in the test's temporary
folder, which assertion messages quote, and is stopped when its context ends.

A port from :func:`free_port` is only free until someone binds it, and the Go binaries
cannot be handed an open socket: another process (or an outgoing connection of another
server, whose ephemeral port the OS draws from the same range) can take it first. So
:func:`running` starts the servers one at a time and waits for each to be up; one that
fails with ``address already in use`` gets fresh ports and is started again (a bounded
number of tries), and every server of the stack whose environment, arguments or rendered
config named an old address is pointed at the new one (and restarted if it was running).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
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
LOOPBACK = "127.0.0.1"
# A loopback address as the tests write it into environments, arguments and configs
# ("127.0.0.1:PORT", also inside URLs); the port is group 1.
LOOPBACK_ADDRESS = re.compile(r"(?<![\w.])127\.0\.0\.1:(\d+)(?!\d)")
BIND_FAILED = "address already in use"
# The Collector and Jaeger log this once every component has started, so after every bind.
READY_LINE = "Everything is ready"
START_TRIES = 3
START_TIMEOUT_S = 60.0


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


def logged_ready(server: Server) -> bool:
    """Readiness of a Collector or Jaeger: it logged that every component has started."""
    return READY_LINE in server.output()


class Server:
    """One back-end process: a binary, its config, its environment and its log.

    ``listen`` are the loopback ports it binds (moved by :func:`launch` when one is taken),
    ``files`` the configs rendered for this test that may name other servers' addresses,
    and ``ready(server)`` tells when it has started (by default: :func:`logged_ready`).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log: Path,
        listen: Sequence[int] = (),
        files: Sequence[Path] = (),
        ready: Callable[[Server], bool] = logged_ready,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(log.parent), **env}
        self.log = log
        self.listen = list(listen)
        self.files = list(files)
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> Server:
        """Start the process on its current ports (no retry: see :func:`launch`)."""
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
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

    def output(self) -> str:
        """What the process has logged since it was last started."""
        with self.log.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def move(self) -> dict[int, int]:
        """Fresh ports for every port it binds, everywhere it names them; ``{old: new}``."""
        moved = {port: free_port() for port in self.listen}
        self.listen = list(moved.values())
        # A bare port is its own (the telemetry readers take host and port apart).
        self.env = {
            key: str(moved[int(value)]) if value.isdigit() and int(value) in moved else value
            for key, value in self.env.items()
        }
        self.retarget(moved)
        return moved

    def retarget(self, moved: Mapping[int, int]) -> bool:
        """Point every loopback address on a moved port at its new port, in the environment,
        the arguments and the rendered configs; whether anything changed."""

        def sub(text: str) -> str:
            def port(match: re.Match[str]) -> str:
                old = int(match.group(1))
                return f"{LOOPBACK}:{moved.get(old, old)}"

            return LOOPBACK_ADDRESS.sub(port, text)

        env = {key: sub(value) for key, value in self.env.items()}
        argv = [sub(arg) for arg in self.argv]
        changed = env != self.env or argv != self.argv
        self.env, self.argv = env, argv
        for path in self.files:
            text = path.read_text(encoding="utf-8")
            retargeted = sub(text)
            if retargeted != text:
                path.write_text(retargeted, encoding="utf-8")
                changed = True
        return changed


def ports(*names: str) -> dict[str, str]:
    """``{VAR: "127.0.0.1:PORT"}`` for each listen-address variable."""
    return {name: f"{LOOPBACK}:{free_port()}" for name in names}


def listen_ports(env: Mapping[str, str]) -> list[int]:
    """The ports of the loopback addresses in ``env``'s values."""
    return [int(m.group(1)) for value in env.values() for m in LOOPBACK_ADDRESS.finditer(value)]


def collector(config: str | Path, tmp: Path, name: str = "otelcol", **env: str) -> Server:
    """Our Collector distribution with a config, every port moved to loopback.

    ``config`` is the name of a shipped config in collector/, or the path of one rendered
    for the test (which :func:`launch` rewrites if a peer it names moves).
    """
    path = config if isinstance(config, Path) else COLLECTOR / config
    listen = ports(
        "OTELCOL_OTLP_GRPC_ENDPOINT",
        "OTELCOL_OTLP_HTTP_ENDPOINT",
        "OTELCOL_PROMETHEUS_ENDPOINT",
        "OTELCOL_HEALTH_CHECK_ENDPOINT",
    )
    telemetry = free_port()
    bound = [*listen_ports(listen), telemetry]
    listen |= {"OTELCOL_TELEMETRY_HOST": LOOPBACK, "OTELCOL_TELEMETRY_PORT": str(telemetry)}
    argv = [binary("otelcol-rerank"), f"--config={path}"]
    files = [path] if isinstance(config, Path) else []
    return Server(name, argv, listen | env, tmp / f"{name}.log", bound, files)


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
    telemetry = free_port()
    bound = [*listen_ports(listen), telemetry]
    listen |= {"JAEGER_TELEMETRY_HOST": LOOPBACK, "JAEGER_TELEMETRY_PORT": str(telemetry)}
    # No Prometheus in a test that does not need the Monitor tab: a port nobody listens on.
    listen["JAEGER_PROMETHEUS_URL"] = prometheus_url or f"http://{LOOPBACK}:{free_port()}"
    argv = [binary("jaeger"), "--config", str(COLLECTOR / "jaeger-config.yaml")]
    return Server(name, argv, listen, tmp / f"{name}.log", bound)


def prometheus(tmp: Path, config: Path, name: str = "prometheus") -> Server:
    """Prometheus 3 with a config rendered for the test (which may be written after this
    call, before the server starts), listening on a loopback port, logging warnings only."""
    port = free_port()
    argv = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--log.level=warn",
    ]

    def ready(server: Server) -> bool:
        # It binds its one port before it opens its storage; /-/ready answers 503 until then.
        return bool(get_text(f"{prometheus_url(server)}/-/ready", timeout=1))

    return Server(name, argv, {}, tmp / f"{name}.log", [port], [config], ready)


def prometheus_url(server: Server) -> str:
    """The base URL of a :func:`prometheus` server (follows it when its port moves)."""
    (address,) = [a.split("=", 1)[1] for a in server.argv if a.startswith("--web.listen-address=")]
    return f"http://{address}"


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


def _settle(server: Server, timeout: float) -> str | None:
    """Wait until a just-started server is ready (``None``) or has failed: then stop it and
    return what it logged since it started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running() or BIND_FAILED in server.output():
            server.stop()
            return server.output()
        # Not answering yet, or (before it bound) someone else answering on its port.
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            if server.ready(server):
                return None
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"{server.name} not ready after {timeout:.0f} s:\n{server.output()[-3000:]}")


def launch(
    server: Server,
    stack: Sequence[Server],
    tries: int = START_TRIES,
    timeout: float = START_TIMEOUT_S,
) -> None:
    """Start ``server`` and wait until it is ready, moving it to fresh ports when one it was
    given is taken (``tries`` starts at most). Every other server of ``stack`` that names a
    moved address is pointed at the new one, and restarted the same way if it is running.
    """
    failed = ""
    for attempt in range(1, tries + 1):
        server.start()
        output = _settle(server, timeout)
        if output is None:
            return
        failed = output
        if BIND_FAILED not in failed:
            assert server.proc is not None
            pytest.fail(
                f"{server.name} exited during start-up (status {server.proc.returncode}):\n"
                f"{failed[-3000:]}"
            )
        if attempt == tries:
            break
        moved = server.move()
        for peer in stack:
            if peer is not server and peer.retarget(moved) and peer.running():
                peer.stop()
                launch(peer, stack, tries, timeout)
    pytest.fail(
        f"{server.name}: a port it was given was taken ({BIND_FAILED}) on each of its "
        f"{tries} starts (new ports each time); its log of the last start:\n{failed[-3000:]}"
    )


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Start the servers in order, each ready (see :func:`launch`) before the next starts;
    stop them in reverse order, whatever happens."""
    try:
        for server in servers:
            launch(server, servers)
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
