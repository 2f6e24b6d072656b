"""configure() and the embedded default exporter, each in a fresh interpreter.

Global providers can be set once per process, so every case runs a small script in a
subprocess with a controlled environment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from otel_rerank._file_exporter import spans_to_otlp_json


def _run(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "PYTHONPATH"}
    base.update({"HF_HUB_OFFLINE": "1"}, **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_endpoint_writes_otlp_json_lines_that_parse_back(tmp_path: Path) -> None:
    script = """
        import otel_rerank.auto
        import otel_rerank
        from opentelemetry import trace

        @otel_rerank.rerank(model="bge")
        def rerank(query, documents):
            return [0.2, 0.9]

        with trace.get_tracer("app").start_as_current_span("request"):
            rerank("q", ["a", "b"])
        otel_rerank.auto.configured.force_flush()
        print(otel_rerank.auto.configured.traces_file)
    """
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "otel-rerank-traces.jsonl"
    lines = (tmp_path / "otel-rerank-traces.jsonl").read_text().splitlines()
    spans = [
        span
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"request", "rerank bge"}
    child, root = by_name["rerank bge"], by_name["request"]
    assert child["parentSpanId"] == root["spanId"]
    assert child["traceId"] == root["traceId"]
    assert len(root["traceId"]) == 32 and len(root["spanId"]) == 16  # hex, as OTLP/JSON says
    attrs = {a["key"]: a["value"] for a in child["attributes"]}
    assert attrs["gen_ai.operation.name"] == {"stringValue": "rerank"}


def test_traces_file_location_comes_from_the_environment(tmp_path: Path) -> None:
    target = tmp_path / "out" / "spans.jsonl"
    script = """
        import otel_rerank
        configured = otel_rerank.configure()
        with otel_rerank.retrieval(data_source="x"):
            pass
        configured.force_flush()
    """
    result = _run(script, tmp_path, OTEL_RERANK_TRACES_FILE=str(target))
    assert result.returncode == 0, result.stderr
    assert "retrieval x" in target.read_text()


def test_an_existing_provider_is_not_replaced(tmp_path: Path) -> None:
    script = """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        mine = TracerProvider()
        trace.set_tracer_provider(mine)
        import otel_rerank
        configured = otel_rerank.configure()
        assert configured.tracer_provider is None
        assert trace.get_tracer_provider() is mine
        print("KEPT")
    """
    result = _run(script, tmp_path)
    assert "KEPT" in result.stdout, result.stderr


def test_sdk_disabled_installs_nothing(tmp_path: Path) -> None:
    script = """
        import otel_rerank
        from opentelemetry import trace
        configured = otel_rerank.configure()
        assert configured.tracer_provider is None
        assert not trace.get_tracer_provider().get_tracer("x").start_span("y").is_recording()
        print("DISABLED")
    """
    result = _run(script, tmp_path, OTEL_SDK_DISABLED="true")
    assert "DISABLED" in result.stdout, result.stderr
    assert not (tmp_path / "otel-rerank-traces.jsonl").exists()


@pytest.mark.parametrize(
    ("protocol", "exporter_module"),
    [
        ("grpc", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
        ("http/protobuf", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
    ],
)
def test_endpoint_and_protocol_pick_the_otlp_exporter(
    tmp_path: Path, protocol: str, exporter_module: str
) -> None:
    script = """
        import otel_rerank
        configured = otel_rerank.configure()
        processor = configured.tracer_provider._active_span_processor._span_processors[0]
        exporter = processor._batch_processor._exporter
        print(type(exporter).__module__)
        print(configured.meter_provider is not None)
    """
    result = _run(
        script,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRIC_EXPORT_INTERVAL="600000",
    )
    assert result.returncode == 0, result.stderr
    module, has_metrics = result.stdout.split()
    assert module == exporter_module
    assert has_metrics == "True"


def test_service_name_resource_attributes_and_sampler_are_honoured(tmp_path: Path) -> None:
    script = """
        import otel_rerank
        configured = otel_rerank.configure()
        provider = configured.tracer_provider
        print(provider.resource.attributes["service.name"])
        print(provider.resource.attributes["deployment.environment.name"])
        print(type(provider.sampler).__name__)
    """
    result = _run(
        script,
        tmp_path,
        OTEL_SERVICE_NAME="docs-assistant",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=staging",
        OTEL_TRACES_SAMPLER="traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["docs-assistant", "staging", "TraceIdRatioBased"]


def test_service_instance_id_is_per_process_unless_set(tmp_path: Path) -> None:
    """Replicas behind one collector need distinct ids; a user-set id is kept as is."""
    script = """
        import uuid
        import otel_rerank
        configured = otel_rerank.configure()
        attributes = configured.tracer_provider.resource.attributes
        print(attributes.get("service.instance.id"))
        print(configured.meter_provider._sdk_config.resource.attributes.get("service.instance.id"))
    """
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SERVICE_NAME": "rag"}
    first = _run(script, tmp_path, **env)
    second = _run(script, tmp_path, **env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    first_trace_id, first_metric_id = first.stdout.split()
    assert first_trace_id == first_metric_id  # one id per process, on both signals
    assert str(uuid.UUID(first_trace_id)) == first_trace_id
    assert second.stdout.split()[0] != first_trace_id  # each replica its own
    user_set = _run(script, tmp_path, **env, OTEL_RESOURCE_ATTRIBUTES="service.instance.id=pod-7")
    assert user_set.returncode == 0, user_set.stderr
    assert user_set.stdout.split() == ["pod-7", "pod-7"]


def test_unsupported_protocol_is_a_clear_error(tmp_path: Path) -> None:
    script = """
        import otel_rerank
        try:
            otel_rerank.configure()
        except otel_rerank.ConfigurationError as error:
            print("ERROR:", error)
    """
    result = _run(
        script,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
    )
    assert "ERROR: OTEL_EXPORTER_OTLP_PROTOCOL='http/json' is not supported" in result.stdout


def test_auto_import_never_raises_and_still_instruments_on_bad_configuration(
    tmp_path: Path,
) -> None:
    script = """
        import otel_rerank.auto
        print("APP STARTED", otel_rerank.auto.configured, otel_rerank.auto.instrumented)
    """
    result = _run(script, tmp_path, OTEL_TRACES_EXPORTER="zipkin-v0")
    assert result.returncode == 0
    assert "APP STARTED None" in result.stdout
    assert "'sentence_transformers'" in result.stdout


def test_encoder_writes_hex_ids_for_links_too() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Link

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("a") as a:
        pass
    with tracer.start_as_current_span("b", links=[Link(a.get_span_context())]) as b:
        pass
    doc = spans_to_otlp_json([a, b])  # type: ignore[list-item]
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    link = spans[1]["links"][0]
    assert link["spanId"] == format(a.get_span_context().span_id, "016x")
    assert link["traceId"] == format(a.get_span_context().trace_id, "032x")


def test_an_export_cut_short_by_shutdown_is_one_line() -> None:
    """The SDK logs an in-flight export that shutdown closed under it with a traceback."""
    from otel_rerank import _sdk

    try:
        raise ValueError("Cannot invoke RPC on closed channel!")
    except ValueError:
        record = logging.LogRecord(
            _sdk._SDK_EXPORT_LOGGER, logging.ERROR, __file__, 1,
            "Exception while exporting %s.", ("Span",), sys.exc_info(),
        )  # fmt: skip
    assert _sdk._EXPORT_CUT_SHORT.filter(record)
    assert record.exc_info is None
    assert logging.Formatter().format(record) == (
        "Exception while exporting Span. at shutdown (ValueError)"
    )
