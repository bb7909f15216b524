"""OTLP/gRPC: the SDK's gRPC exporter and a raw grpc channel against the receiver."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from traceharness import TraceHarness, check_otlp_sample_trace, emit_sample_trace

from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver
from telemetry.selfmetrics import SelfStats

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def raw_export(otlp: Any, data: bytes, compression: grpc.Compression | None = None) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(otlp.grpc_target) as channel:
        call = channel.unary_unary(EXPORT, response_deserializer=ExportTraceServiceResponse.FromString)
        return call(data, timeout=10, compression=compression)


def test_sdk_grpc_exporter_spans_reach_the_normaliser_intact(otlp: Any) -> None:
    sent = emit_sample_trace(OTLPSpanExporter(endpoint=otlp.grpc_target, insecure=True))
    check_otlp_sample_trace(otlp.normaliser, sent)
    assert otlp.harness.pipeline.flush(timeout=10)
    assert sorted(record.span_id for record in otlp.harness.sink.records) == sorted(
        f"{context.span_id:016x}" for context in (sent.server, sent.client)
    )


def test_sdk_grpc_exporter_with_gzip_is_decoded(otlp: Any) -> None:
    sent = emit_sample_trace(
        OTLPSpanExporter(endpoint=otlp.grpc_target, insecure=True, compression=grpc.Compression.Gzip)
    )
    check_otlp_sample_trace(otlp.normaliser, sent)


def test_rejected_spans_are_answered_as_partial_success(otlp: Any) -> None:
    otlp.normaliser.reject, otlp.normaliser.error = 2, "2 spans have no trace id"
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)

    response = raw_export(otlp, request.SerializeToString())

    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "2 spans have no trace id"
    assert otlp.stats.parse_errors[("otlp_grpc", "bad_span")] == 2


def test_accepted_export_answers_without_partial_success(otlp: Any) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    response = raw_export(otlp, request.SerializeToString(), grpc.Compression.Gzip)
    assert not response.HasField("partial_success")
    assert [span.name for span in otlp.normaliser.spans()] == ["x"]


def test_undecodable_request_is_invalid_argument_counted_and_the_server_keeps_serving(otlp: Any) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        raw_export(otlp, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bad_protobuf" in raised.value.details()
    assert otlp.stats.parse_errors[("otlp_grpc", "bad_protobuf")] == 1

    raw_export(otlp, ExportTraceServiceRequest().SerializeToString())


def test_full_pipeline_is_resource_exhausted(make_otlp: Any) -> None:
    otlp = make_otlp(start_pipeline=False, queue_size=1)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    data = request.SerializeToString()
    raw_export(otlp, data)  # an empty queue takes any batch; the next one finds it full

    with pytest.raises(grpc.RpcError) as raised:
        raw_export(otlp, data)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert otlp.stats.dropped[("pipeline", "queue_full")] == 1


def test_request_over_the_limit_is_refused(make_otlp: Any) -> None:
    otlp = make_otlp(max_body_bytes=1024)
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x" * 4096)
    with pytest.raises(grpc.RpcError) as raised:
        raw_export(otlp, request.SerializeToString(), grpc.Compression.Gzip)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert otlp.normaliser.spans() == []


def test_receivers_listen_on_free_ports_and_shut_down_idempotently() -> None:
    harness = TraceHarness.create()
    config = OtlpConfig(OtlpGrpcConfig(endpoint="127.0.0.1:0"), OtlpHttpConfig(enabled=False))
    receiver = create_receiver(config, harness.ingest, SelfStats())
    assert receiver.http is None
    receiver.start()
    assert receiver.grpc_port > 0
    receiver.shutdown()
    receiver.shutdown()
    harness.close()


def test_config_validation_names_the_bad_keys() -> None:
    assert OtlpGrpcConfig().validate() == []
    assert OtlpHttpConfig().validate() == []
    assert OtlpGrpcConfig(endpoint="nowhere", max_body_bytes=0).validate() == [
        "endpoint: expected host:port, got 'nowhere'",
        "max_body_bytes: must be at least 1",
    ]
    assert OtlpHttpConfig(max_connections=0).validate() == ["max_connections: must be at least 1"]
