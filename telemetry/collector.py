"""The running collector: receivers -> pipeline -> sinks, built from one Config, stopped cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from telemetry.config import Config
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.prometheus.sink import PrometheusSink
from telemetry.pipeline import Pipeline, Receiver, Sink, tune_gc
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)


@dataclass
class Collector:
    config: Config
    stats: SelfStats = field(default_factory=SelfStats)
    peers: PeerTable = field(default_factory=PeerTable)
    pipeline: Pipeline = field(init=False)
    metrics: PrometheusSink | None = field(init=False, default=None)
    receivers: list[tuple[str, Receiver]] = field(init=False, default_factory=list)
    _stopped: bool = field(init=False, default=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        config = self.config
        sinks: list[tuple[str, Sink]] = []
        if config.exporters.prometheus.enabled:
            self.metrics = PrometheusSink(config.exporters.prometheus, self.stats)
            sinks.append(("prometheus", self.metrics))
        self.pipeline = Pipeline(
            sinks,
            self.stats,
            queue_size=config.pipeline.queue_size,
            batch_size=config.pipeline.batch_size,
            batch_timeout=config.pipeline.batch_timeout,
        )
        # Imported here so that a receiver's optional dependencies load only when it is configured.
        if config.receivers.filelog.enabled:
            from telemetry.receivers.filelog.factory import create_receiver as create_filelog

            self.receivers.append(
                ("filelog", create_filelog(config.receivers.filelog, self.pipeline, self.stats, self.peers))
            )
        if config.receivers.als.enabled:
            from telemetry.receivers.als.factory import create_receiver as create_als

            self.receivers.append(("als", create_als(config.receivers.als, self.pipeline, self.stats, self.peers)))

    def start(self) -> None:
        tune_gc()
        if self.metrics is not None:
            self.metrics.start()
        self.pipeline.start()
        for _, receiver in self.receivers:
            receiver.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop receivers, drain the pipeline into every sink, flush and stop the sinks. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for name, receiver in self.receivers:
            try:
                receiver.shutdown()
            except Exception:
                log.exception("receiver %s failed to shut down", name)
        self.pipeline.shutdown(timeout)


def run_until_signalled(
    collector: Collector,
    on_start: Callable[[], None] | None = None,
    duration: float | None = None,
    before_stop: Callable[[], None] | None = None,
) -> None:
    """Start, wait for SIGINT or SIGTERM (or ``duration`` seconds), then shut down with every sink flushed."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, flushing and stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector.start()
        if on_start is not None:
            on_start()
        stop.wait(duration)
    finally:
        try:
            if before_stop is not None:
                before_stop()
        finally:
            collector.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
