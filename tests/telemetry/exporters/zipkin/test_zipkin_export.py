"""Zipkin v2 JSON to a real HTTP server; and one exporter's down backend never holds up the other."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from telemetry.exporters.otlp.config import OtlpConfig
from telemetry.exporters.otlp.factory import create_exporter as create_otlp
from telemetry.exporters.zipkin.config import ZipkinConfig
from telemetry.exporters.zipkin.factory import create_exporter
from telemetry.exporters.zipkin.settings import resolve_zipkin
from telemetry.pipeline import Pipeline
from telemetry.selfmetrics import SelfStats
from telemetry.traces import Normalised, TraceIngest, TraceSink

from realparts import wait_for


@pytest.fixture
def exporters() -> Iterator[list[TraceSink]]:
    made: list[TraceSink] = []
    yield made
    for exporter in made:
        exporter.shutdown()


def zipkin_config(capture: ModuleType, **config: Any) -> ZipkinConfig:
    return ZipkinConfig(**{"enabled": True, "batch_timeout": 0.01, "retry": capture.FAST_RETRY, **config})


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_spans_are_posted_as_zipkin_v2_json_to_api_v2_spans(
    http_capture: Any, capture: ModuleType, exporters: list[TraceSink], compression: str
) -> None:
    stats = SelfStats()
    config = zipkin_config(capture, endpoint=http_capture.url, compression=compression, headers={"X-Tenant": "a"})
    exporters.append(exporter := create_exporter(config, stats, environ={}))
    exporter.consume([capture.resource_spans(5)])
    assert exporter.flush(10)
    assert http_capture.paths == ["/api/v2/spans"]
    headers = http_capture.captured.headers[0]
    assert headers["content-type"] == "application/json"
    assert headers["x-tenant"] == "a"
    spans = http_capture.captured.zipkin_spans()
    assert [span["id"] for span in spans] == [capture.span_id(n + 1).hex() for n in range(5)]
    second = spans[1]
    assert second["traceId"] == capture.trace_id(0).hex()
    assert second["parentId"] == capture.span_id(1).hex()
    assert "parentId" not in spans[0]
    assert second["kind"] == "CLIENT"
    assert second["timestamp"] == 1_714_564_800_123_458  # µs, rounded
    assert second["duration"] == 25_000
    assert second["localEndpoint"] == {"serviceName": "productpage"}
    assert second["remoteEndpoint"] == {"serviceName": "reviews"}
    assert second["tags"]["http.response.status_code"] == "503"
    assert second["tags"]["error"] == "upstream reset"
    assert second["tags"]["k8s.namespace.name"] == "default"
    assert second["annotations"][1] == {"timestamp": 1_714_564_800_123_460, "value": "done"}
    assert stats.exported == {"zipkin": 5}


def test_503_is_retried_and_400_given_up(http_capture: Any, capture: ModuleType, exporters: list[TraceSink]) -> None:
    stats = SelfStats()
    http_capture.captured.failures.extend([capture.Failure(http_status=503), capture.Failure(http_status=400)])
    exporters.append(exporter := create_exporter(zipkin_config(capture, endpoint=http_capture.url), stats))
    exporter.consume([capture.resource_spans(3)])
    assert exporter.flush(10)
    exporter.consume([capture.resource_spans(2, first=3)])
    assert exporter.flush(10)
    assert stats.export_failures == {("zipkin", "http_503"): 1, ("zipkin", "http_400"): 1, ("zipkin", "gave_up"): 1}
    assert stats.dropped == {("exporter:zipkin", "gave_up"): 3}
    assert [span["id"] for span in http_capture.captured.zipkin_spans()] == [
        capture.span_id(n + 1).hex() for n in range(3, 5)
    ]


def test_a_down_otlp_backend_does_not_hold_up_zipkin_delivery(
    http_capture: Any, capture: ModuleType, exporters: list[TraceSink]
) -> None:
    stats = SelfStats()
    down = capture.GrpcCapture()  # reserved port, never started
    otlp_config = OtlpConfig(
        enabled=True, endpoint=down.endpoint, batch_timeout=0.01, shutdown_timeout=0.1, retry=capture.FAST_RETRY
    )
    exporters.append(otlp := create_otlp(otlp_config, stats, environ={}))
    exporters.append(zipkin := create_exporter(zipkin_config(capture, endpoint=http_capture.url), stats, environ={}))
    ingest = TraceIngest(
        Pipeline([], stats), stats, lambda batch: Normalised([], []), exporters=[("otlp", otlp), ("zipkin", zipkin)]
    )
    for first in range(0, 2000, 200):
        ingest.accept([capture.resource_spans(200, first=first)], "otlp_grpc")
    wait_for(lambda: len(http_capture.captured.zipkin_spans()) == 2000, what="all spans at Zipkin")
    # The exporter counts a batch once Zipkin's answer is back, a moment after Zipkin has it.
    wait_for(lambda: stats.exported.get("zipkin") == 2000, what="every delivered span counted")
    assert stats.exported == {"zipkin": 2000}
    assert stats.export_failures.get(("otlp", "grpc_unavailable"), 0) >= 1
    assert stats.queue_depth("exporter:otlp") == 2000  # every span still queued for Jaeger, none lost
    assert stats.dropped == {}


def test_base_url_gets_the_spans_path_and_the_standard_variable_is_used_as_is() -> None:
    assert resolve_zipkin(ZipkinConfig(endpoint="http://zipkin:9411"), {}).url == "http://zipkin:9411/api/v2/spans"
    assert resolve_zipkin(ZipkinConfig(endpoint="zipkin:9411/custom"), {}).url == "http://zipkin:9411/custom"
    environ = {"OTEL_EXPORTER_ZIPKIN_ENDPOINT": "http://z:9411/api/v2/spans", "OTEL_EXPORTER_ZIPKIN_TIMEOUT": "2000"}
    settings = resolve_zipkin(ZipkinConfig(), environ)
    assert (settings.url, settings.timeout) == ("http://z:9411/api/v2/spans", 2.0)
    with pytest.raises(ValueError, match="endpoint: not set"):
        resolve_zipkin(ZipkinConfig(), {})
