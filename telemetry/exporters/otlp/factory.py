"""Build the OTLP trace exporter from its config."""

from __future__ import annotations

import os
from collections.abc import Mapping

from telemetry.exporters.export_queue import ExportQueue, Transport
from telemetry.exporters.otlp.config import OtlpConfig
from telemetry.exporters.otlp.settings import resolve_otlp
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceSink

NAME = "otlp"


def create_exporter(config: OtlpConfig, stats: SelfStats, environ: Mapping[str, str] | None = None) -> TraceSink:
    """Raises ValueError("key: message") when the endpoint (from the config or OTEL_*) is unusable."""
    settings = resolve_otlp(config, os.environ if environ is None else environ)
    transport: Transport
    if settings.protocol == "grpc":
        # Imported here: grpc is only loaded when the exporter speaks gRPC.
        from telemetry.exporters.otlp.grpc_transport import GrpcTransport

        transport = GrpcTransport(settings, config.retry)
    else:
        from telemetry.exporters.otlp.http_transport import HttpTransport

        transport = HttpTransport(settings)
    return ExportQueue(NAME, transport, config, stats, target=settings.endpoint)
