"""Build the direct Elasticsearch log sink from its config."""

from __future__ import annotations

from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.exporters.elasticsearch.sink import NAME, ElasticsearchSink
from telemetry.pipeline import Sink
from telemetry.selfmetrics import SelfStats

__all__ = ["NAME", "create_sink"]


def create_sink(config: ElasticsearchConfig, stats: SelfStats) -> Sink:
    """The sink starts its sender at once; it connects (and installs the templates) on the first batch."""
    return ElasticsearchSink(config, stats)
