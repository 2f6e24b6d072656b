"""Ctrl-C on the example service with shadow work queued: a prompt, clean exit.

``examples/rag_service.py`` runs as a real process in ``shadow`` mode over the proxy
cross-encoder; 40 concurrent questions of 40 candidates each queue far more shadow work
than the worker can finish, then the process gets SIGINT. It must exit normally (status 0:
no SIGABRT "terminate called without an active exception" from a worker thread still inside
native model code at interpreter teardown) and promptly: no draining of the shadow queue
(30 s before the fix). Tearing down an interpreter that has imported torch, faiss and
sentence-transformers takes seconds by itself on a busy machine, so a control process that
imports the same libraries and exits measures that teardown, and the bound is on top of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests._collectors import free_port

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Seconds the service may take beyond plain interpreter teardown: uvicorn's shutdown, the
#: pipeline's bounded close (1 s) and otel-rerank's exit deadline (4 s).
SHUTDOWN_ALLOWANCE_S = 7.0

_TEARDOWN_CONTROL = """
import atexit, time
import faiss, fastapi, openai, sentence_transformers, torch, uvicorn
atexit.register(lambda: print(time.monotonic(), flush=True))
"""


def _ask(url: str) -> None:
    request = urllib.request.Request(
        url + "/ask",
        data=json.dumps({"query": "How do I parse a date string?"}).encode(),
        headers={"content-type": "application/json"},
    )
    with contextlib.suppress(OSError):  # an answer is not what this test checks
        urllib.request.urlopen(request, timeout=60).read()


@pytest.mark.slow
def test_ctrl_c_with_queued_shadow_work_exits_promptly_and_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_RERANK_MODE="shadow",
        OTEL_RERANK_TRACES_FILE=str(tmp_path / "traces.jsonl"),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    service = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "rag_service.py"),
            *("--port", str(port), "--passages", "40", "--k", "40"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).read()
                break
            except OSError:
                assert service.poll() is None, service.communicate()[1][-2000:]
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        askers = [threading.Thread(target=_ask, args=(url,)) for _ in range(40)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        interrupted = time.monotonic()
        service.send_signal(signal.SIGINT)
        _, err = service.communicate(timeout=120)
        exit_s = time.monotonic() - interrupted
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    control = subprocess.run(
        [sys.executable, "-c", _TEARDOWN_CONTROL],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    teardown_s = time.monotonic() - float(control.stdout.strip().splitlines()[-1])
    assert "terminate called" not in err, err[-2000:]
    assert service.returncode == 0, (service.returncode, err[-2000:])
    assert exit_s < teardown_s + SHUTDOWN_ALLOWANCE_S, (exit_s, teardown_s)
