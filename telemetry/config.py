"""The collector's whole config: one typed class per component, assembled here."""

from __future__ import annotations

from dataclasses import dataclass, field

from servicegraph.config import GraphConfig
from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.exporters.fluentforward.config import FluentForwardConfig
from telemetry.exporters.otlp.config import OtlpConfig as OtlpExporterConfig
from telemetry.exporters.prometheus.config import PrometheusConfig
from telemetry.exporters.zipkin.config import ZipkinConfig as ZipkinExporterConfig
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.otlp.config import OtlpConfig as OtlpReceiverConfig
from telemetry.receivers.zipkin.config import ZipkinConfig as ZipkinReceiverConfig


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
    otlp: OtlpReceiverConfig = field(default_factory=OtlpReceiverConfig)
    zipkin: ZipkinReceiverConfig = field(default_factory=ZipkinReceiverConfig)


@dataclass
class CorrelationConfig:
    """Trace ids for access-log Records from proxy spans' x-request-id, and recent traces per edge."""

    max_request_ids: int = 100_000
    recent_traces_per_edge: int = 10
    max_edges: int = 10_000

    def validate(self) -> list[str]:
        return [f"{name}: must be at least 1" for name, value in vars(self).items() if value < 1]


@dataclass
class ExportersConfig:
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    otlp: OtlpExporterConfig = field(default_factory=OtlpExporterConfig)  # to Jaeger, or any OTLP backend
    zipkin: ZipkinExporterConfig = field(default_factory=ZipkinExporterConfig)
    fluentforward: FluentForwardConfig = field(default_factory=FluentForwardConfig)  # access logs to Fluentd
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)  # or straight to Elasticsearch

    def keep_original_lines(self) -> bool:
        """Whether a log sink wants each Record's access-log line as read."""
        return any(sink.enabled and sink.include_original for sink in (self.fluentforward, self.elasticsearch))


@dataclass
class Config:
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    exporters: ExportersConfig = field(default_factory=ExportersConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)  # the live service graph, its HTTP API and UI
