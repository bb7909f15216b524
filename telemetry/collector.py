"""The running collector: receivers -> pipeline -> sinks, built from one Config, stopped cleanly."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from telemetry.config import Config
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.prometheus.sink import PrometheusSink
from telemetry.pipeline import Pipeline, Receiver, Sink, tune_gc
from telemetry.selfmetrics import SelfStats
from telemetry.spans.correlation import RecentTraces, RequestTraceIndex
from telemetry.spans.normalize import SpanNormaliser
from telemetry.traces import SpanSink, TraceIngest, TraceSink

if TYPE_CHECKING:
    from servicegraph.runtime import GraphRuntime
    from telemetry.receivers.filelog.workers.outputs import EncodedOutput, WorkerOutputs

log = logging.getLogger(__name__)


@dataclass
class Collector:
    config: Config
    stats: SelfStats = field(default_factory=SelfStats)
    peers: PeerTable = field(default_factory=PeerTable)
    pipeline: Pipeline = field(init=False)
    metrics: PrometheusSink | None = field(init=False, default=None)
    recent_traces: RecentTraces = field(init=False)
    traces: TraceIngest = field(init=False)
    graph: GraphRuntime | None = field(init=False, default=None)
    receivers: list[tuple[str, Receiver]] = field(init=False, default_factory=list)
    # Sinks that keep Records on disk: a file-tailing checkpoint waits for them (see _sinks_durable).
    _durable_sinks: list[Sink] = field(init=False, default_factory=list)
    _encoded: EncodedOutput | None = field(init=False, default=None)  # the sink parsing workers encode for
    _stopped: bool = field(init=False, default=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        config = self.config
        correlation = config.correlation
        request_index = RequestTraceIndex(correlation.max_request_ids)
        self.recent_traces = RecentTraces(
            slowest=correlation.recent_traces_per_edge,
            failed=correlation.recent_traces_per_edge,
            max_edges=correlation.max_edges,
        )
        sinks: list[tuple[str, Sink]] = []
        if config.exporters.prometheus.enabled:
            self.metrics = PrometheusSink(config.exporters.prometheus, self.stats)
            sinks.append(("prometheus", self.metrics))
        sinks.append(("recent_traces", self.recent_traces))
        sinks.extend(self._log_sinks())
        span_sinks: list[tuple[str, SpanSink]] = []
        if config.graph.enabled:
            from servicegraph.runtime import GraphRuntime

            istio = self.metrics.metrics if self.metrics is not None else None
            self.graph = GraphRuntime(config.graph, self.stats, istio, self.recent_traces)
            if istio is None:
                sinks.append(("graph", self.graph.metrics_sink))
            if self.metrics is not None:
                self.metrics.registry.register(self.graph.span_metrics)
                self.metrics.registry.register(self.graph.self_metrics)
            span_sinks.append(("span_pairs", self.graph.pairer))
        self.pipeline = Pipeline(
            sinks,
            self.stats,
            queue_size=config.pipeline.queue_size,
            batch_size=config.pipeline.batch_size,
            batch_timeout=config.pipeline.batch_timeout,
            process=request_index.fill_trace_ids,
        )
        self.stats.watch_drops("peers", "evicted", lambda: self.peers.evicted)
        self.stats.watch_drops("trace_ids", "evicted", lambda: request_index.evicted)
        self.stats.watch_drops("recent_traces", "edge_limit", lambda: self.recent_traces.dropped)
        self._sink_names = [name for name, _ in sinks]
        self._request_index = request_index
        self.traces = TraceIngest(
            self.pipeline,
            self.stats,
            normalise=SpanNormaliser(self.peers, request_index=request_index),
            exporters=self._trace_exporters(),
            span_sinks=span_sinks,
        )
        self._add_receivers()

    def _log_sinks(self) -> list[tuple[str, Sink]]:
        sinks: list[tuple[str, Sink]] = []
        config = self.config.exporters
        if config.fluentforward.enabled:
            from telemetry.exporters.fluentforward.factory import NAME as FORWARD
            from telemetry.exporters.fluentforward.factory import create_sink as create_forward
            from telemetry.exporters.fluentforward.factory import encoded_output

            filelog = self.config.receivers.filelog
            workers = filelog.worker_count() if filelog.enabled else 0
            forward = create_forward(config.fluentforward, self.stats, workers)
            self._encoded = encoded_output(config.fluentforward, forward)
            if self.metrics is not None:
                self.metrics.registry.register(forward.metrics)
            if forward.durable or config.fluentforward.spool.enabled:  # on disk (or once its spool opens)
                self._durable_sinks.append(forward)
            sinks.append((FORWARD, forward))
        if config.elasticsearch.enabled:
            from telemetry.exporters.elasticsearch.factory import NAME as ELASTICSEARCH
            from telemetry.exporters.elasticsearch.factory import create_sink as create_elasticsearch

            sinks.append((ELASTICSEARCH, create_elasticsearch(config.elasticsearch, self.stats)))
        return sinks

    def _trace_exporters(self) -> list[tuple[str, TraceSink]]:
        exporters: list[tuple[str, TraceSink]] = []
        config = self.config.exporters
        if config.otlp.enabled:
            from telemetry.exporters.otlp.factory import create_exporter as create_otlp

            exporters.append(("otlp", create_otlp(config.otlp, self.stats)))
        if config.zipkin.enabled:
            from telemetry.exporters.zipkin.factory import create_exporter as create_zipkin

            exporters.append(("zipkin", create_zipkin(config.zipkin, self.stats)))
        return exporters

    def _add_receivers(self) -> None:
        # Imported here so that only the configured receivers' modules load.
        config = self.config.receivers
        if config.filelog.enabled:
            from telemetry.receivers.filelog.factory import create_receiver as create_filelog

            keep_original = self.config.exporters.keep_original_lines()
            filelog = create_filelog(
                config.filelog, self.pipeline, self.stats, self.peers, keep_original, self._filelog_outputs()
            )
            if self._durable_sinks:
                filelog.checkpoint_barrier = self._sinks_durable
            self.receivers.append(("filelog", filelog))
        if config.als.enabled:
            from telemetry.receivers.als.factory import create_receiver as create_als

            self.receivers.append(("als", create_als(config.als, self.pipeline, self.stats, self.peers)))
        if config.otlp.grpc.enabled or config.otlp.http.enabled:
            from telemetry.receivers.otlp.factory import create_receiver as create_otlp

            self.receivers.append(("otlp", create_otlp(config.otlp, self.traces, self.stats)))
        if config.zipkin.enabled:
            from telemetry.receivers.zipkin.factory import create_receiver as create_zipkin

            self.receivers.append(("zipkin", create_zipkin(config.zipkin, self.traces, self.stats)))

    def _sinks_durable(self, timeout: float = 5.0) -> bool:
        """Whether every Record handed to the pipeline so far is safe in the sinks that keep Records on disk."""
        deadline = time.monotonic() + timeout
        if not self.pipeline.drain(timeout):
            return False
        return all(sink.flush(max(0.0, deadline - time.monotonic())) for sink in self._durable_sinks)

    def _filelog_outputs(self) -> WorkerOutputs:
        """What parsing workers send back: totals for the Istio metrics, and the Records the other sinks need."""
        from telemetry.receivers.filelog.workers.outputs import METRICS_SINKS, WorkerOutputs, needs_of

        istio = self.metrics.metrics if self.metrics is not None else None
        if istio is None and self.graph is not None and self.graph.metrics_sink is not None:
            istio = self.graph.metrics_sink.metrics
        index = self._request_index
        return WorkerOutputs(
            metrics=istio,
            metrics_sinks=frozenset(self._sink_names) & METRICS_SINKS,
            records=needs_of(self._sink_names, self._encoded.sink if self._encoded else None),
            correlating=lambda: len(index) > 0,
            trace_id_of=index.trace_id_of,
            encoded=self._encoded,
        )

    def receiver(self, name: str) -> Receiver | None:
        return next((receiver for receiver_name, receiver in self.receivers if receiver_name == name), None)

    def start(self) -> None:
        tune_gc()
        if self.metrics is not None:
            self.metrics.start()
        self.pipeline.start()
        for _, receiver in self.receivers:
            receiver.start()
        if self.graph is not None:
            self.graph.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop receivers, drain the pipeline and the trace exporters, flush and stop every sink. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for name, receiver in self.receivers:
            try:
                receiver.shutdown()
            except Exception:
                log.exception("receiver %s failed to shut down", name)
        if self.graph is not None:
            self.graph.shutdown()
        deadline = time.monotonic() + timeout
        # Spans first: their Records still flow into the pipeline until the trace side has stopped.
        self.traces.shutdown(timeout / 2)
        self.pipeline.shutdown(max(1.0, deadline - time.monotonic()))


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
