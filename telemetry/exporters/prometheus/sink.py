"""The metrics sink: Istio metrics and the collector's own, served for Prometheus to scrape."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from telemetry.endpoints import split_endpoint
from telemetry.exporters.prometheus.config import PrometheusConfig
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import Record
from telemetry.selfmetrics import SelfStats, SelfStatsCollector

log = logging.getLogger(__name__)


class PrometheusSink:
    def __init__(self, config: PrometheusConfig, stats: SelfStats, serve: bool = True) -> None:
        self.config = config
        self.metrics = IstioMetrics(config.max_series_per_metric)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.metrics)
        self.registry.register(SelfStatsCollector(stats))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._serve = serve
        self._stopped = False
        self.port = 0

    def start(self) -> None:
        if not self._serve:
            return
        host, port = split_endpoint(self.config.endpoint, "exporters.prometheus.endpoint")
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        log.info("serving metrics on http://%s:%d/metrics", host, self.port)

    def consume(self, batch: Sequence[Record]) -> None:
        self.metrics.consume(batch)

    def flush(self, timeout: float) -> bool:
        return True  # aggregation happens in consume; nothing is buffered

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
