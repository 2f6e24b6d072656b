"""A back-end server whose port is taken before it binds moves to fresh ports, not fails.

``free_port()`` hands out a port that was free a moment ago; between then and the server's
bind another process can take it (the CI failure this guards: a gateway exiting with
``bind: address already in use``). These tests take the port themselves, a listening
socket on the very address a server was given, and show that ``backend.running`` still
brings the stack up: the server moves to fresh ports, and the servers that name it (in
their environment, or in a config rendered for the test) follow it, restarted if they were
already running, so traffic still flows end to end. They also show what happens when the
retries run out, or when a server fails for another reason, and that ``free_port()``
never hands out a port twice.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests import _backend as backend
from tests import _collectors

TRACE_SPANS = 5  # collector/loadgen.py: a root span and four stage spans per request
REQUESTS = 4


@contextlib.contextmanager
def taken(address: str) -> Iterator[socket.socket]:
    """Another process's listener on ``address`` ("127.0.0.1:PORT"), as in the race."""
    host, port = address.rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, int(port)))
        squatter.listen()
        yield squatter


def test_free_port_never_hands_out_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    given = _collectors.free_port()
    fresh = given
    while fresh == given or fresh in _collectors._handed_out:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            fresh = probe.getsockname()[1]
    offered = [given, fresh]  # the OS offers the port it gave a moment ago, then another

    class Probe:
        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def bind(self, address: tuple[str, int]) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", offered.pop(0))

    monkeypatch.setattr(_collectors, "socket", SimpleNamespace(socket=Probe))
    assert _collectors.free_port() == fresh
    assert not offered  # it asked twice
    monkeypatch.undo()
    ports = [_collectors.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_retarget_moves_exactly_the_moved_ports(tmp_path: Path) -> None:
    config = tmp_path / "rendered.yaml"
    config.write_text("hostnames: [127.0.0.1:4100, 127.0.0.1:41000]\n", encoding="utf-8")
    server = backend.Server(
        "peer",
        ["bin", "--listen=127.0.0.1:4100", "--other=10.127.0.0.1:4100"],
        {"A": "127.0.0.1:4100", "B": "http://127.0.0.1:41000/x", "C": "4100"},
        tmp_path / "peer.log",
        files=[config],
    )
    assert server.retarget({4100: 5200})
    assert server.argv == ["bin", "--listen=127.0.0.1:5200", "--other=10.127.0.0.1:4100"]
    # A bare port is only ever the server's own (see Server.move): a peer's is left alone.
    assert {k: server.env[k] for k in "ABC"} == {
        "A": "127.0.0.1:5200",
        "B": "http://127.0.0.1:41000/x",
        "C": "4100",
    }
    assert config.read_text("utf-8") == "hostnames: [127.0.0.1:5200, 127.0.0.1:41000]\n"
    assert not server.retarget({4100: 5200})  # nothing left to move


def test_move_gives_every_bound_port_a_fresh_one(tmp_path: Path) -> None:
    server = backend.Server(
        "otelcol",
        ["bin"],
        {"ENDPOINT": "127.0.0.1:4100", "TELEMETRY_PORT": "4200", "PEER": "127.0.0.1:4300"},
        tmp_path / "otelcol.log",
        listen=[4100, 4200],
    )
    moved = server.move()
    assert set(moved) == {4100, 4200}
    assert server.listen == [moved[4100], moved[4200]]
    assert server.env["ENDPOINT"] == f"127.0.0.1:{moved[4100]}"
    assert server.env["TELEMETRY_PORT"] == str(moved[4200])
    assert server.env["PEER"] == "127.0.0.1:4300"  # a peer's port: not this server's to move


def agent_config(tmp: Path, gateway: str) -> Path:
    """collector/otelcol-agent.yaml load-balancing to one gateway named statically."""
    config = yaml.safe_load((backend.COLLECTOR / "otelcol-agent.yaml").read_text("utf-8"))
    config["exporters"]["load_balancing"]["resolver"] = {"static": {"hostnames": [gateway]}}
    path = tmp / "otelcol-agent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.live
@pytest.mark.slow
def test_stack_comes_up_when_the_ports_it_was_given_are_taken(tmp_path: Path) -> None:
    """agent → gateway → Jaeger, started agent first, with the gateway's and Jaeger's OTLP
    ports taken: both move; the agent's rendered config and the gateway's environment
    follow them (each restarted, being already up), and the traces still reach Jaeger."""
    jaeger = backend.jaeger(tmp_path)
    gateway = backend.collector(
        "otelcol-config.yaml",
        tmp_path,
        name="gateway",
        OTELCOL_JAEGER_ENDPOINT=jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"],
    )
    old_gateway = gateway.env["OTELCOL_OTLP_GRPC_ENDPOINT"]
    old_jaeger = jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"]
    agent = backend.collector(agent_config(tmp_path, old_gateway), tmp_path, name="agent")
    logs = [agent.log, gateway.log, jaeger.log]
    with (
        taken(old_gateway),
        taken(old_jaeger),
        backend.running(agent, gateway, jaeger),
    ):
        new_gateway = gateway.env["OTELCOL_OTLP_GRPC_ENDPOINT"]
        new_jaeger = jaeger.env["JAEGER_OTLP_GRPC_ENDPOINT"]
        assert new_gateway != old_gateway and new_jaeger != old_jaeger
        assert gateway.env["OTELCOL_JAEGER_ENDPOINT"] == new_jaeger
        resolver = yaml.safe_load((tmp_path / "otelcol-agent.yaml").read_text("utf-8"))
        assert resolver["exporters"]["load_balancing"]["resolver"] == {
            "static": {"hostnames": [new_gateway]}
        }
        # Each of the three went through one failed start and one good one (the agent and
        # the gateway restarted to follow their peer, the gateway and Jaeger on new ports).
        assert gateway.text().count(backend.BIND_FAILED) >= 1, gateway.text()
        assert jaeger.text().count(backend.BIND_FAILED) >= 1, jaeger.text()
        for server in (agent, gateway):
            assert server.text().count(backend.READY_LINE) == 2, server.text()
        assert jaeger.text().count(backend.READY_LINE) == 1, jaeger.text()

        endpoint = backend.otlp_endpoints(agent)["grpc"]
        app = backend.loadgen(
            tmp_path, "ports-moved", endpoint, "grpc",
            "--requests", str(REQUESTS), "--rate", "4", "--rerank-ms", "5",
        )  # fmt: skip
        try:
            assert app.wait(timeout=60) == 0
        finally:
            if app.poll() is None:
                app.kill()

        def whole_traces() -> list[dict[str, Any]]:
            traces = backend.jaeger_traces(jaeger, "ports-moved")
            whole = [t for t in traces if len(t["spans"]) == TRACE_SPANS]
            return whole if len(whole) == REQUESTS else []

        backend.wait_for("every trace through the moved stack", whole_traces, 60, logs)


@pytest.mark.live
@pytest.mark.slow
def test_retries_exhausted_fail_quoting_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    otelcol = backend.collector("otelcol-config.yaml", tmp_path)
    otelcol.env["OTELCOL_JAEGER_ENDPOINT"] = f"127.0.0.1:{_collectors.free_port()}"
    health = otelcol.env["OTELCOL_HEALTH_CHECK_ENDPOINT"]
    with taken(health):
        # Every fresh port it is moved to is the taken one too.
        monkeypatch.setattr(backend, "free_port", lambda: int(health.rsplit(":", 1)[1]))
        with pytest.raises(pytest.fail.Exception) as failure, backend.running(otelcol):
            pass
    message = str(failure.value)
    assert message.startswith(
        f"otelcol: a port it was given was taken ({backend.BIND_FAILED}) on each of its "
        f"{backend.START_TRIES} starts"
    ), message
    assert re.search(rf"listen tcp {re.escape(health)}: bind: address already in use", message)
    starts = [line for line in otelcol.text().splitlines() if line.startswith("Error:")]
    assert len(starts) == backend.START_TRIES, otelcol.text()
    assert not otelcol.running()


@pytest.mark.live
@pytest.mark.slow
def test_a_server_failing_for_another_reason_is_not_retried(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("receivers:\n  no_such_receiver:\n", encoding="utf-8")
    otelcol = backend.collector(config, tmp_path)
    with pytest.raises(pytest.fail.Exception) as failure, backend.running(otelcol):
        pass
    message = str(failure.value)
    assert message.startswith("otelcol exited during start-up (status 1):"), message
    assert "no_such_receiver" in message
    assert otelcol.text().count("Error:") == 1, otelcol.text()
