"""OTLP/gRPC: opentelemetry.proto.collector.trace.v1.TraceService/Export.

Requests arrive as bytes and are decoded here rather than by grpc, as the ALS receiver does: an
undecodable request is then counted and answered INVALID_ARGUMENT like any other malformed input.
grpc itself handles ``grpc-encoding: gzip`` and holds the decompressed message to ``max_body_bytes``
(RESOURCE_EXHAUSTED beyond it).
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from telemetry.receivers.grpcserver import GrpcServer, abort
from telemetry.receivers.otlp.config import OtlpGrpcConfig
from telemetry.receivers.otlp.export import GRPC_RECEIVER, export_response
from telemetry.receivers.serving import ServingReceiver
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceIngest

SERVICE_NAME = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
_SHUTDOWN_GRACE = 2.0


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
            request = ExportTraceServiceRequest.FromString(data)
        except DecodeError as error:
            self._stats.parse_error(GRPC_RECEIVER, "bad_protobuf")
            abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"bad_protobuf: not an ExportTraceServiceRequest ({len(data)} bytes): {error}",
            )
        result = self._ingest.accept(request.resource_spans, GRPC_RECEIVER)
        if result.refused:
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "collector pipeline is full: retry later")
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
        )
