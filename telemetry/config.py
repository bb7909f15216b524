"""The collector's whole config: one typed class per component, assembled here."""

from __future__ import annotations

from dataclasses import dataclass, field

from telemetry.exporters.prometheus.config import PrometheusConfig
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.filelog.config import FileLogConfig


@dataclass
class PipelineConfig:
    queue_size: int = 200_000
    batch_size: int = 8192
    batch_timeout: float = 0.2

    def validate(self) -> list[str]:
        errors = []
        if self.queue_size < 1:
            errors.append("queue_size: must be at least 1")
        if self.batch_size < 1:
            errors.append("batch_size: must be at least 1")
        return errors


@dataclass
class ReceiversConfig:
    filelog: FileLogConfig = field(default_factory=FileLogConfig)
    als: AlsConfig = field(default_factory=AlsConfig)


@dataclass
class ExportersConfig:
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)


@dataclass
class Config:
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    exporters: ExportersConfig = field(default_factory=ExportersConfig)
