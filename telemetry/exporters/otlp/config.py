"""Config of the OTLP trace exporter (to Jaeger, which ingests OTLP natively, or any OTLP backend)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from telemetry.exporters.export_queue import TraceExporterConfig
from telemetry.exporters.otlp.settings import resolve_otlp


@dataclass
class OtlpConfig(TraceExporterConfig):
    enabled: bool = False
    # Each value left unset here ("", {}, null) is taken from the standard OTEL_EXPORTER_OTLP_TRACES_*
    # variable, then OTEL_EXPORTER_OTLP_*, then the default (see settings.py).
    # gRPC: host:port, http://host:port or https://host:port (TLS). HTTP: a base URL; /v1/traces is appended.
    # No default: Jaeger's OTLP ports are meshscope's own receiver ports, so a default would loop spans back.
    endpoint: str = ""
    protocol: Literal["", "grpc", "http/protobuf"] = ""  # default grpc
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds per request; default 10
    compression: Literal["", "none", "gzip"] = ""  # default none

    def resolve(self, environ: Mapping[str, str]) -> object:
        return resolve_otlp(self, environ)
