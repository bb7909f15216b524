"""OTLP/gRPC: opentelemetry.proto.collector.trace.v1.TraceService/Export.

Requests arrive as bytes and are decoded here rather than by grpc, as the ALS receiver does: an
undecodable request is then counted and answered INVALID_ARGUMENT like any other malformed input.
grpc itself handles ``grpc-encoding: gzip`` and holds the decompressed message to ``max_body_bytes``
(RESOURCE_EXHAUSTED beyond it).

A full pipeline is RESOURCE_EXHAUSTED with a ``google.rpc.RetryInfo``: the OTLP specification has clients
retry RESOURCE_EXHAUSTED only when the server sends RetryInfo (otherwise the data is dropped at the
sender). It goes out twice: inside the ``google.rpc.Status`` in ``grpc-status-details-bin`` (what the
Collector's exporters and grpc-status readers look at) and alone in ``google.rpc.retryinfo-bin`` (what the
OpenTelemetry Python SDK's exporter reads for its backoff).
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.receivers.grpcserver import GrpcServer, abort
from telemetry.receivers.otlp.config import OtlpGrpcConfig
from telemetry.receivers.otlp.export import GRPC_RECEIVER, export_response
from telemetry.receivers.serving import ServingReceiver
from telemetry.security.auth import UNAUTHENTICATED
from telemetry.selfmetrics import SelfStats
from telemetry.spans.otlp_lean import decode_request
from telemetry.traces import TraceIngest

SERVICE_NAME = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
_SHUTDOWN_GRACE = 2.0
# How long a refused client is asked to wait: the pipeline drains a batch in well under a second.
RETRY_DELAY_SECONDS = 1
FULL_PIPELINE = "collector pipeline is full: retry later"


def retry_trailers(delay_seconds: int = RETRY_DELAY_SECONDS) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata that makes a RESOURCE_EXHAUSTED answer retryable, with the delay to wait."""
    retry_info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=delay_seconds))
    detail = any_pb2.Any()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=FULL_PIPELINE, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
    )


class TraceService:
    def __init__(self, ingest: TraceIngest, stats: SelfStats) -> None:
        self._ingest = ingest
        self._stats = stats

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.export, response_serializer=ExportTraceServiceResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": method})

    def export(self, data: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            spans = decode_request(data)  # parsed lean, as the HTTP receiver does
        except DecodeError as error:
            self._stats.parse_error(GRPC_RECEIVER, "bad_protobuf")
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_protobuf: not an ExportTraceServiceRequest ({len(data)} bytes): {error}",
            )
        result = self._ingest.accept(spans, GRPC_RECEIVER)
        if result.refused:
            context.set_trailing_metadata(retry_trailers())
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, FULL_PIPELINE)
        return export_response(result)


class OtlpGrpcReceiver(ServingReceiver):
    def __init__(self, config: OtlpGrpcConfig, ingest: TraceIngest, stats: SelfStats) -> None:
        self._server = GrpcServer(
            "OTLP gRPC",
            config.endpoint,
            TraceService(ingest, stats).rpc_handler(),
            max_concurrent_rpcs=config.max_concurrent_requests,
            max_message_bytes=config.max_body_bytes,
            shutdown_grace=_SHUTDOWN_GRACE,
            auth=config.auth,
            tls=config.tls,
            refused=lambda: stats.parse_error(GRPC_RECEIVER, UNAUTHENTICATED),
        )
