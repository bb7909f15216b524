"""The collector's own metrics: what came in, what could not be parsed, what was dropped and why.

Components count into plain dicts (once per batch, never per record) and a prometheus-client custom
collector turns them into families at scrape time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
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
        self.restarts: dict[str, int] = {}  # helper processes (parsing workers) that died and were restarted
        self._queue_depths: dict[str, Callable[[], int]] = {}
        self._drop_counts: dict[tuple[str, str], Callable[[], int]] = {}
        self._dependencies: dict[str, tuple[bool, str, float]] = {}  # name -> (reachable, why not, since)

    def _add(self, counts: dict, key: object, count: int) -> None:  # type: ignore[type-arg]
        with self._lock:
            counts[key] = counts.get(key, 0) + count

    def received(self, receiver: str, count: int) -> None:
        self._add(self.records_received, receiver, count)

    def parse_error(self, receiver: str, reason: str, count: int = 1) -> None:
        self._add(self.parse_errors, (receiver, reason), count)

    def drop(self, stage: str, reason: str, count: int = 1) -> None:
        self._add(self.dropped, (stage, reason), count)

    def export_done(self, exporter: str, count: int) -> None:
        self._add(self.exported, exporter, count)

    def export_failure(self, exporter: str, reason: str, count: int = 1) -> None:
        self._add(self.export_failures, (exporter, reason), count)

    def restarted(self, component: str, count: int = 1) -> None:
        self._add(self.restarts, component, count)

    def reachability(self, dependency: str, reachable: bool, detail: str = "") -> None:
        """A backend (Jaeger, Zipkin, Fluentd, Elasticsearch, a Prometheus graph source) answered or did not.

        Called by the component that talks to it on every attempt's outcome; cheap when nothing changed.
        ``detail`` says why it is unreachable, in words for the UI's banner (never a traceback).
        """
        known = self._dependencies.get(dependency)
        if known is not None and known[0] == reachable and known[1] == detail:
            return
        with self._lock:
            since = known[2] if known is not None and known[0] == reachable else time.time()
            self._dependencies[dependency] = (reachable, detail, since)

    def reached(self, dependency: str) -> bool:
        """Whether ``dependency`` answered its last attempt (True before any)."""
        known = self._dependencies.get(dependency)
        return known is None or known[0]

    def unreachable(self) -> dict[str, tuple[str, float]]:
        """Each backend that did not answer its last attempt: name -> (why, since when, Unix seconds)."""
        with self._lock:
            return {name: (detail, since) for name, (up, detail, since) in self._dependencies.items() if not up}

    def watch_drops(self, stage: str, reason: str, count: Callable[[], int]) -> None:
        """A component that counts its own evictions: read at scrape time into meshscope_dropped_total."""
        self._drop_counts[(stage, reason)] = count

    def watch_queue(self, stage: str, depth: Callable[[], int]) -> None:
        self._queue_depths[stage] = depth

    def queue_depth(self, stage: str) -> int:
        depth = self._queue_depths.get(stage)
        return depth() if depth else 0

    def total_parse_errors(self) -> int:
        with self._lock:
            return sum(self.parse_errors.values())

    def total_dropped(self) -> int:
        """Everything dropped, counted here or by the components that count their own evictions."""
        with self._lock:
            counted = sum(self.dropped.values())
            watched = list(self._drop_counts.values())
        return counted + sum(count() for count in watched)

    def total_received(self) -> int:
        with self._lock:
            return sum(self.records_received.values())


class IngestRates:
    """The collector's own health for a status bar: per-second rates over the last ``span`` seconds."""

    def __init__(self, stats: SelfStats, span: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._span = span
        self._clock = clock
        self._samples: deque[tuple[float, int, int, int]] = deque()
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Called on a timer (the graph's ticker); ``status`` only reads what it has taken."""
        stats = self._stats
        with self._lock:
            now = self._clock()
            point = (now, stats.total_received(), stats.total_parse_errors(), stats.total_dropped())
            self._samples.append(point)
            while len(self._samples) > 2 and now - self._samples[1][0] >= self._span:
                self._samples.popleft()

    def status(self) -> dict[str, float]:
        with self._lock:
            if not self._samples:
                return {"records_per_s": 0.0, "parse_errors_per_s": 0.0, "drops_per_s": 0.0,
                        "records_total": 0, "parse_errors_total": 0, "dropped_total": 0}  # fmt: skip
            first, last = self._samples[0], self._samples[-1]
        seconds = last[0] - first[0]

        def rate(index: int) -> float:
            return (last[index] - first[index]) / seconds if seconds > 0 else 0.0

        return {
            "records_per_s": rate(1), "parse_errors_per_s": rate(2), "drops_per_s": rate(3),
            "records_total": last[1], "parse_errors_total": last[2], "dropped_total": last[3],
        }  # fmt: skip


class SelfStatsCollector(Collector):
    def __init__(self, stats: SelfStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats
        with stats._lock:
            counters = [
                ("meshscope_records_received", "Records accepted from each receiver.", ["receiver"],
                 dict(stats.records_received)),
                ("meshscope_parse_errors", "Input that could not be turned into a record, by receiver and reason.",
                 ["receiver", "reason"], dict(stats.parse_errors)),
                ("meshscope_dropped", "Records, spans, series or cache entries dropped, by stage and reason.",
                 ["stage", "reason"], {**dict(stats.dropped), **{key: count() for key, count in stats._drop_counts.items()}}),
                ("meshscope_exported", "Items delivered by each exporter.", ["exporter"], dict(stats.exported)),
                ("meshscope_export_failures",
                 'Failed export attempts, by exporter and reason (give-ups are reason="gave_up").',
                 ["exporter", "reason"], dict(stats.export_failures)),
                ("meshscope_restarts", "Helper processes (e.g. parsing workers) that died and were restarted.",
                 ["component"], dict(stats.restarts)),
            ]  # fmt: skip
        for name, documentation, labels, values in counters:
            family = CounterMetricFamily(name, documentation, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
            yield family
        with stats._lock:
            dependencies = {name: up for name, (up, _, _) in stats._dependencies.items()}
        up = GaugeMetricFamily("meshscope_dependency_up", "1 when a backend answered its last attempt, else 0.",
                               labels=["dependency"])  # fmt: skip
        for name, reachable in sorted(dependencies.items()):
            up.add_metric([name], 1.0 if reachable else 0.0)
        yield up
        gauge = GaugeMetricFamily("meshscope_queue_depth", "Items waiting in each bounded queue.", labels=["stage"])
        for stage, depth in sorted(stats._queue_depths.items()):
            gauge.add_metric([stage], depth())
        yield gauge
