"""What an OTLP Export answers, whichever transport carried it."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.traces import Normalised

GRPC_RECEIVER = "otlp_grpc"
HTTP_RECEIVER = "otlp_http"


def export_response(result: Normalised) -> ExportTraceServiceResponse:
    """An empty response, or a partial success naming how many spans were rejected and why."""
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.error or f"{result.rejected} spans could not be read"
    return response
