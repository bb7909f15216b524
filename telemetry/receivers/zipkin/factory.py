"""Build the Zipkin receiver from its config."""

from __future__ import annotations

from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.receiver import ZipkinReceiver
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceIngest


def create_receiver(config: ZipkinConfig, ingest: TraceIngest, stats: SelfStats) -> ZipkinReceiver:
    return ZipkinReceiver(config, ingest, stats)
