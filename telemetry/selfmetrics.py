"""The collector's own metrics: what came in, what could not be parsed, what was dropped and why.

Components count into plain dicts (once per batch, never per record) and a prometheus-client custom
collector turns them into families at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class SelfStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records_received: dict[str, int] = {}
        self.parse_errors: dict[tuple[str, str], int] = {}
        self.dropped: dict[tuple[str, str], int] = {}
        self.exported: dict[str, int] = {}
        self.export_failures: dict[tuple[str, str], int] = {}
        self._queue_depths: dict[str, Callable[[], int]] = {}

    def received(self, receiver: str, count: int) -> None:
        with self._lock:
            self.records_received[receiver] = self.records_received.get(receiver, 0) + count

    def parse_error(self, receiver: str, reason: str, count: int = 1) -> None:
        key = (receiver, reason)
        with self._lock:
            self.parse_errors[key] = self.parse_errors.get(key, 0) + count

    def drop(self, stage: str, reason: str, count: int = 1) -> None:
        key = (stage, reason)
        with self._lock:
            self.dropped[key] = self.dropped.get(key, 0) + count

    def export_done(self, exporter: str, count: int) -> None:
        with self._lock:
            self.exported[exporter] = self.exported.get(exporter, 0) + count

    def export_failure(self, exporter: str, reason: str, count: int = 1) -> None:
        key = (exporter, reason)
        with self._lock:
            self.export_failures[key] = self.export_failures.get(key, 0) + count

    def watch_queue(self, stage: str, depth: Callable[[], int]) -> None:
        self._queue_depths[stage] = depth

    def queue_depth(self, stage: str) -> int:
        depth = self._queue_depths.get(stage)
        return depth() if depth else 0

    def total_parse_errors(self) -> int:
        return sum(self.parse_errors.values())

    def total_dropped(self) -> int:
        return sum(self.dropped.values())


class SelfStatsCollector(Collector):
    def __init__(self, stats: SelfStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats
        with stats._lock:
            received = dict(stats.records_received)
            errors = dict(stats.parse_errors)
            dropped = dict(stats.dropped)
            exported = dict(stats.exported)
            failures = dict(stats.export_failures)
        family = CounterMetricFamily(
            "meshscope_records_received", "Records accepted from each receiver.", labels=["receiver"]
        )
        for receiver, value in sorted(received.items()):
            family.add_metric([receiver], value)
        yield family
        family = CounterMetricFamily(
            "meshscope_parse_errors",
            "Input that could not be turned into a record, by receiver and reason.",
            labels=["receiver", "reason"],
        )
        for labels, value in sorted(errors.items()):
            family.add_metric(list(labels), value)
        yield family
        family = CounterMetricFamily(
            "meshscope_dropped", "Records or series dropped, by pipeline stage and reason.", labels=["stage", "reason"]
        )
        for labels, value in sorted(dropped.items()):
            family.add_metric(list(labels), value)
        yield family
        family = CounterMetricFamily("meshscope_exported", "Items delivered by each exporter.", labels=["exporter"])
        for exporter, value in sorted(exported.items()):
            family.add_metric([exporter], value)
        yield family
        family = CounterMetricFamily(
            "meshscope_export_failures",
            'Failed export attempts, by exporter and reason (give-ups are reason="gave_up").',
            labels=["exporter", "reason"],
        )
        for labels, value in sorted(failures.items()):
            family.add_metric(list(labels), value)
        yield family
        gauge = GaugeMetricFamily("meshscope_queue_depth", "Items waiting in each bounded queue.", labels=["stage"])
        for stage, depth in sorted(stats._queue_depths.items()):
            gauge.add_metric([stage], depth())
        yield gauge
