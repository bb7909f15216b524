"""The service graph inside a running collector: span pairing, the graph's source, the API server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from servicegraph.api.routes import create_app
from servicegraph.api.server import GraphServer
from servicegraph.config import GraphConfig
from servicegraph.connector_metrics import ServiceGraphMetrics
from servicegraph.durations import parse_duration
from servicegraph.recent import EdgeRecents
from servicegraph.service import GraphService
from servicegraph.sources import GraphSource
from servicegraph.sources.live import LiveSource
from servicegraph.spanpairs import SpanPairer
from telemetry.exporters.prometheus.config import PrometheusConfig
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.exporters.prometheus.sink import PrometheusSink
from telemetry.selfmetrics import IngestRates, SelfStats
from telemetry.spans.correlation import RecentTraces

log = logging.getLogger(__name__)


class GraphSelfMetrics(Collector):
    """The graph's own size: series its windows track, spans waiting for a partner."""

    def __init__(self, runtime: GraphRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runtime = self._runtime
        if runtime.live is not None:
            series = GaugeMetricFamily(
                "meshscope_graph_series", "Label sets the live graph's windows track, by table.", labels=["table"]
            )
            for table, count in sorted(runtime.live.series_counts().items()):
                series.add_metric([table], count)
            yield series
        yield GaugeMetricFamily(
            "meshscope_span_pairs_waiting", "Spans waiting in the pairing store for their partner.",
            value=runtime.pairer.waiting,
        )  # fmt: skip


class GraphRuntime:
    """``istio``: the metrics sink's aggregation to read; None when Prometheus export is off, and then
    ``metrics_sink`` is a non-serving sink the collector must add to its pipeline."""

    def __init__(
        self,
        config: GraphConfig,
        stats: SelfStats,
        istio: IstioMetrics | None,
        recent_traces: RecentTraces | None = None,
    ) -> None:
        self.config = config
        self.metrics_sink: PrometheusSink | None = None
        if istio is None:
            self.metrics_sink = PrometheusSink(PrometheusConfig(), stats, serve=False)
            istio = self.metrics_sink.metrics
        self.span_metrics = ServiceGraphMetrics(config.max_span_pair_series)
        self.self_metrics = GraphSelfMetrics(self)
        self.pairer = SpanPairer(config.span_pairing, self.span_metrics)
        stats.watch_drops("span_pairs", "store_full", lambda: self.span_metrics.dropped)
        stats.watch_drops("span_pairs", "series_limit", lambda: self.span_metrics.overflowed)
        # Lookup-only spans (already paired) evicted early from a full store: a late child may miss its parent.
        stats.watch_drops("span_pairs", "evicted", lambda: self.span_metrics.evicted)
        windows = config.window_seconds
        self.live: LiveSource | None = None
        source: GraphSource
        if config.prometheus_url:
            from servicegraph.sources.prometheus import PrometheusSource

            source = PrometheusSource(config.prometheus_url, config.prometheus_selector, stats=stats)
            name = f"prometheus {source.shown_url}"
        else:
            self.live = LiveSource(
                istio, self.span_metrics, windows, config.points_per_window, parse_duration(config.idle_expiry)
            )
            source = self.live
            name = "live"
        self.rates = IngestRates(stats)
        self.service = GraphService(
            source,
            name,
            config.points_per_window,
            cache_seconds=min(1.0, config.resolution),
            stale_seconds=2 * config.resolution,
            recents=EdgeRecents(recent_traces) if recent_traces is not None else None,
            status=self.rates.status,
            unreachable=stats.unreachable,
        )
        self.app = create_app(self.service, config.health, parse_duration(config.default_window))
        if config.ui_enabled:
            from servicegraph.ui.app import attach_ui
            from servicegraph.ui.backend import LocalBackend

            attach_ui(self.app, LocalBackend(self.app), config.ui_settings())
        self.server = GraphServer(self.app, config.endpoint, config.auth, config.tls)
        self._stopped = False
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._run, name="graph-ticker", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.tick()
        self._ticker.start()
        self.server.start()

    def tick(self) -> None:
        """Expire unpaired spans, sample the collector's rates, cut the live windows, rebuild the graphs in use."""
        live_tick = self.live.tick if self.live is not None else None
        for step in (self.pairer.expire, self.rates.sample, live_tick, self.service.refresh):
            if step is None:
                continue
            try:
                step()
            except Exception:
                log.exception("graph tick step %s failed", getattr(step, "__qualname__", step))

    def _run(self) -> None:
        while not self._stop.wait(self.config.resolution):
            self.tick()

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        close = getattr(self.service.source, "close", None)
        if close is not None:
            close()
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
