"""Build the direct Elasticsearch log sink from its config."""

from __future__ import annotations

from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.pipeline import Sink
from telemetry.selfmetrics import SelfStats

NAME = "elasticsearch"


def create_sink(config: ElasticsearchConfig, stats: SelfStats) -> Sink:
    raise NotImplementedError("the Elasticsearch sink is being built (issue 7)")
