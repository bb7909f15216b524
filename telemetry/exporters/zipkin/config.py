"""Config of the Zipkin trace exporter (v2 JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from telemetry.exporters.export_queue import TraceExporterConfig
from telemetry.exporters.zipkin.settings import resolve_zipkin


@dataclass
class ZipkinConfig(TraceExporterConfig):
    enabled: bool = False
    # A base URL (http://zipkin:9411; /api/v2/spans is appended) or the full spans URL. Unset: the
    # standard OTEL_EXPORTER_ZIPKIN_ENDPOINT. No default: 9411 is meshscope's own Zipkin receiver port.
    endpoint: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds per request; unset: OTEL_EXPORTER_ZIPKIN_TIMEOUT (ms), else 10
    compression: Literal["none", "gzip"] = "none"

    def resolve(self, environ: Mapping[str, str]) -> object:
        return resolve_zipkin(self, environ)
