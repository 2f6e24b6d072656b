"""The OpenAI overhead benchmark's own machinery: switching patches, and its estimator.

The benchmark compares instrumentations by switching each one's patches in and out of the
same process; if switching off left a wrapper behind, the "bare" phase would be timed
instrumented and every overhead it prints would be wrong. These tests hold that switch to
account with our own instrumentor (the peers live in their own virtualenvs).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from openai.resources.chat.completions import Completions
from openai.resources.embeddings import Embeddings

import otel_rerank
from tests.conftest import Otel, make_otel

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
_SCRIPT = _BENCHMARKS / "openai_overhead.py"


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def bench(monkeypatch_module: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch_module.syspath_prepend(str(_BENCHMARKS))  # as when run as a script
    spec = importlib.util.spec_from_file_location("openai_overhead", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sdk() -> Iterator[Otel]:
    sdk = make_otel()
    try:
        yield sdk
    finally:
        otel_rerank.uninstrument()
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


def _call_both(client: object) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[])  # type: ignore[attr-defined]
    client.embeddings.create(model="text-embedding-3-small", input="x")  # type: ignore[attr-defined]


def test_patches_switch_the_instrumentation_off_and_on_exactly(
    bench: ModuleType, sdk: Otel
) -> None:
    client = bench._client()
    _call_both(client)  # the modules the calls use are imported before the snapshot
    originals = (vars(Completions)["create"], vars(Embeddings)["create"])

    patches = bench._Patches(lambda: sdk.instrument(libraries=["openai"]))

    # Left off: the very same function objects as before, and no spans.
    assert (vars(Completions)["create"], vars(Embeddings)["create"]) == originals
    assert len(patches) >= 4  # chat create/parse/stream and embeddings, sync and async
    _call_both(client)
    assert sdk.spans() == []

    patches.on()
    assert vars(Completions)["create"] is not originals[0]
    _call_both(client)
    assert sorted(s.name for s in sdk.spans()) == [
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
    ]

    patches.off()
    sdk.exporter.clear()
    assert vars(Completions)["create"] is originals[0]
    assert vars(Embeddings)["create"] is originals[1]
    _call_both(client)
    assert sdk.spans() == []


def test_quantile_is_the_low_order_statistic_in_microseconds(bench: ModuleType) -> None:
    samples = [10_000 * i for i in range(1, 21)]  # 10 µs .. 200 µs, shuffled below
    samples = samples[7:] + samples[:7]
    assert bench.quantile_us(samples, 0.1) == 30.0  # the third smallest of twenty
    assert bench.quantile_us(samples, 0.0) == 10.0
    assert bench.quantile_us(samples, 1.0) == 200.0
