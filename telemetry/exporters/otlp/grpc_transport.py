"""OTLP over gRPC: ``TraceService/Export`` through the opentelemetry-proto stub."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from telemetry.exporters.export_queue import ExportError, RetryConfig, SpanSlice
from telemetry.exporters.otlp.request import build_request
from telemetry.exporters.otlp.settings import OtlpSettings

# The codes the OTLP specification calls retryable, plus RESOURCE_EXHAUSTED (an overloaded backend
# that recovers; Jaeger answers it when its queue is full).
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class GrpcTransport:
    def __init__(self, settings: OtlpSettings, retry: RetryConfig) -> None:
        # gRPC's own reconnect backoff grows to 120 s by default; while it waits every call fails at
        # once, so a backend that is back would be seen late. Keep it within the exporter's backoff.
        options = [
            ("grpc.initial_reconnect_backoff_ms", max(1, int(retry.initial_backoff * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(1, int(retry.initial_backoff * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(1, int(retry.max_backoff * 1000))),
        ]
        compression = grpc.Compression.Gzip if settings.compression == "gzip" else grpc.Compression.NoCompression
        if settings.secure:
            credentials = grpc.ssl_channel_credentials()
            self._channel = grpc.secure_channel(settings.endpoint, credentials, options, compression)
        else:
            self._channel = grpc.insecure_channel(settings.endpoint, options, compression)
        self._export = TraceServiceStub(self._channel).Export
        self._timeout = settings.timeout
        self._metadata = settings.headers or None

    def send(self, batch: Sequence[SpanSlice]) -> int:
        request = build_request(batch)
        try:
            response = self._export(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise grpc_export_error(error) from None
        return response.partial_success.rejected_spans

    def close(self) -> None:
        self._channel.close()


def grpc_export_error(error: grpc.RpcError) -> ExportError:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    retryable = code in RETRYABLE_CODES
    retry_after = retry_info_delay(error) if retryable else None
    return ExportError(f"grpc_{code.name.lower()}", retryable, retry_after, details or "")


def retry_info_delay(error: grpc.RpcError) -> float | None:
    """The delay of a ``google.rpc.RetryInfo`` in the call's rich status, if the server sent one."""
    if not isinstance(error, grpc.Call):
        return None
    for key, value in error.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY:
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None
