"""Both OTLP receivers with the collector's own normaliser: proxy spans read from the lean parse become
Records, and an exporter still gets the request's ResourceSpans exactly as sent."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from traceharness import CountingSink, NormalisingIngest, RecordingExporter

from telemetry.pipeline import Pipeline
from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver
from telemetry.receivers.otlp.receiver import OtlpReceiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
NODE = "sidecar~10.244.0.11~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"


@dataclass
class Collector:
    receiver: OtlpReceiver
    pipeline: Pipeline
    sink: CountingSink
    exporter: RecordingExporter


@pytest.fixture
def collector() -> Iterator[Collector]:
    harness = NormalisingIngest.start()
    config = OtlpConfig(grpc=OtlpGrpcConfig(endpoint="127.0.0.1:0"), http=OtlpHttpConfig(endpoint="127.0.0.1:0"))
    receiver = create_receiver(config, harness.ingest, harness.stats)
    receiver.start()
    yield Collector(receiver, harness.pipeline, harness.sink, harness.exporter)
    receiver.shutdown()
    harness.close()


def proxy_request(status: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    group = request.resource_spans.add()
    group.resource.attributes.add(key="service.name", value=AnyValue(string_value="productpage.default"))
    span = group.scope_spans.add().spans.add(
        name="reviews.default.svc.cluster.local:9080/*", kind=3, trace_id=b"\x4b" * 16, span_id=b"\x02" * 8,
        start_time_unix_nano=1_714_564_800_000_000_000, end_time_unix_nano=1_714_564_800_021_000_000,
    )  # fmt: skip
    tags = {"component": "proxy", "node_id": NODE, "http.method": "GET", "http.status_code": status,
            "http.url": "http://reviews:9080/reviews/0", "response_flags": "-",
            "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local"}  # fmt: skip
    span.attributes.extend(KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in tags.items())
    return request


def check(collector: Collector, request: ExportTraceServiceRequest, status: int) -> None:
    assert collector.pipeline.flush(timeout=10)
    (record,) = collector.sink.records
    assert (record.reporter, record.source_workload, record.destination_service) == (
        "source",
        "productpage-v1",
        "reviews.default.svc.cluster.local",
    )
    assert (record.response_code, record.duration_ms, record.trace_id) == (status, 21, "4b" * 16)
    assert collector.exporter.requests == [[item.SerializeToString() for item in request.resource_spans]]


def test_a_proxy_span_posted_as_protobuf_becomes_a_record_and_reaches_the_exporter_as_sent(
    collector: Collector,
) -> None:
    request = proxy_request("503")
    connection = http.client.HTTPConnection("127.0.0.1", collector.receiver.http_port, timeout=10)
    try:
        connection.request(
            "POST", "/v1/traces", body=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
        )
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
    finally:
        connection.close()
    check(collector, request, 503)


def test_a_proxy_span_exported_over_grpc_becomes_a_record_and_reaches_the_exporter_as_sent(
    collector: Collector,
) -> None:
    request = proxy_request("200")
    with grpc.insecure_channel(f"127.0.0.1:{collector.receiver.grpc_port}") as channel:
        call = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        assert call(request.SerializeToString(), timeout=10) == ExportTraceServiceResponse()
    check(collector, request, 200)
