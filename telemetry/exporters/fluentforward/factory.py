"""Build the Fluentd forward log sink from its config."""

from __future__ import annotations

from telemetry.exporters.fluentforward.config import FluentForwardConfig
from telemetry.exporters.fluentforward.process import ProcessForwardSink
from telemetry.exporters.fluentforward.sink import NAME, ForwardSink
from telemetry.receivers.filelog.workers.outputs import EncodedOutput
from telemetry.selfmetrics import SelfStats

__all__ = ["NAME", "create_sink", "encoded_output"]


def create_sink(
    config: FluentForwardConfig, stats: SelfStats, parsing_workers: int = 0
) -> ForwardSink | ProcessForwardSink:
    """The sink; its ``metrics`` (a prometheus Collector) belong on the collector's registry, and when it is
    ``durable`` a file-tailing checkpoint should wait for its ``flush``. ``parsing_workers``: file tailing's,
    which decide ``helper_process: auto``."""
    if config.uses_helper(parsing_workers):
        return ProcessForwardSink(config, stats)
    return ForwardSink(config, stats)


def encoded_output(config: FluentForwardConfig, sink: ForwardSink | ProcessForwardSink) -> EncodedOutput:
    """What file tailing's parsing workers need to encode the sink's events themselves (and where they go)."""
    return EncodedOutput(NAME, config.tag, config.include_original, sink.consume)
