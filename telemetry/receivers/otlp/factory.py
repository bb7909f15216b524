"""Build the OTLP receivers from their config."""

from __future__ import annotations

from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.grpc_receiver import OtlpGrpcReceiver
from telemetry.receivers.otlp.http_receiver import OtlpHttpReceiver
from telemetry.receivers.otlp.receiver import OtlpReceiver
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceIngest


def create_receiver(config: OtlpConfig, ingest: TraceIngest, stats: SelfStats) -> OtlpReceiver:
    """gRPC and HTTP, each when enabled."""
    return OtlpReceiver(
        create_grpc_receiver(config.grpc, ingest, stats) if config.grpc.enabled else None,
        create_http_receiver(config.http, ingest, stats) if config.http.enabled else None,
    )


def create_grpc_receiver(config: OtlpGrpcConfig, ingest: TraceIngest, stats: SelfStats) -> OtlpGrpcReceiver:
    return OtlpGrpcReceiver(config, ingest, stats)


def create_http_receiver(config: OtlpHttpConfig, ingest: TraceIngest, stats: SelfStats) -> OtlpHttpReceiver:
    return OtlpHttpReceiver(config, ingest, stats)
