"""Build the Zipkin trace exporter from its config."""

from __future__ import annotations

import os
from collections.abc import Mapping

from telemetry.exporters.export_queue import ExportQueue
from telemetry.exporters.zipkin.config import ZipkinConfig
from telemetry.exporters.zipkin.settings import resolve_zipkin
from telemetry.exporters.zipkin.transport import ZipkinTransport
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceSink

NAME = "zipkin"


def create_exporter(config: ZipkinConfig, stats: SelfStats, environ: Mapping[str, str] | None = None) -> TraceSink:
    """Raises ValueError("key: message") when the endpoint (from the config or OTEL_*) is unusable."""
    settings = resolve_zipkin(config, os.environ if environ is None else environ)
    return ExportQueue(NAME, ZipkinTransport(settings), config, stats, target=settings.url)
