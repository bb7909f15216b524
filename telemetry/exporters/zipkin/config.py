"""Config of the Zipkin trace exporter (v2 JSON)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from telemetry.exporters.export_queue import ExportQueueConfig
from telemetry.exporters.zipkin.settings import resolve_zipkin


@dataclass
class ZipkinConfig(ExportQueueConfig):
    enabled: bool = False
    # A base URL (http://zipkin:9411; /api/v2/spans is appended) or the full spans URL. Unset: the
    # standard OTEL_EXPORTER_ZIPKIN_ENDPOINT. No default: 9411 is meshscope's own Zipkin receiver port.
    endpoint: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds per request; unset: OTEL_EXPORTER_ZIPKIN_TIMEOUT (ms), else 10
    compression: Literal["none", "gzip"] = "none"

    def validate(self) -> list[str]:
        errors = super().validate()
        if self.timeout is not None and self.timeout <= 0:
            errors.append("timeout: must be positive")
        if self.enabled and not errors:
            try:
                resolve_zipkin(self, os.environ)
            except ValueError as error:
                errors.append(str(error))
        return errors
