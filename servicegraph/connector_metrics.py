"""Span-pair totals, exposed as the OpenTelemetry Collector's servicegraph connector exposes them.

``SpanPairer`` hands every client/server pair to ``add_pair``/``add_pairs``; the totals live in plain
dicts keyed by the label tuple (one flat list of numbers per label set, laid out as the ``spans`` rows
of ``servicegraph.traffic``) and prometheus-client sees them only at scrape time, through this custom
collector:

- ``traces_service_graph_request_total`` and ``traces_service_graph_request_failed_total`` (counters),
- ``traces_service_graph_request_server_seconds`` and ``traces_service_graph_request_client_seconds``
  (histograms in seconds, on Istio's duration buckets divided by 1000, so a Prometheus query can merge
  them with the graph's millisecond buckets bucket by bucket),

all labelled ``client``, ``client_k8s_namespace_name``, ``server``, ``server_k8s_namespace_name``,
``connection_type`` (``SPAN_LABELS``), plus

- ``traces_service_graph_unpaired_spans_total{client, server}``: spans that expired without a partner.
  As the connector does, only the side that was seen is named; the other label is empty, which
  Prometheus treats as absent.
- ``traces_service_graph_dropped_spans_total``: spans the pairer could not store because its store was
  full. Unlabelled (a decision): a full store is a capacity problem of the collector, not of one
  service, and a per-service label would be one more unbounded label set to cap.

The number of label sets is capped (``max_series``, request series and unpaired series each): past
the cap a new label set is folded into one ``overflow`` series and the folded pairs are counted in
``overflowed``. ``table()`` is the graph's live view of the same totals.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from servicegraph.traffic import (
    CONNECTION_DIRECT,
    N_BUCKETS,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_FAILED,
    SPAN_LABELS,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    SPAN_SERVER_MS_SUM,
    SPAN_WIDTH,
    Table,
)
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS, OVERFLOW, cumulative_buckets

# client, client namespace, server, server namespace, connection_type, failed, client ms, server ms
Pair = tuple[str, str, str, str, str, bool, float, float]
SpanKey = tuple[str, str, str, str, str]  # label values in SPAN_LABELS order

UNPAIRED_LABELS = ("client", "server")
DURATION_BUCKETS_SECONDS: tuple[float, ...] = tuple(bound / 1000 for bound in DURATION_BUCKETS_MS)
# The overflow series is an edge between two "overflow" nodes; connection_type stays a known value.
OVERFLOW_KEY: SpanKey = (OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW, CONNECTION_DIRECT)

_BOUND_TEXT = tuple(floatToGoString(bound) for bound in DURATION_BUCKETS_SECONDS)


class ServiceGraphMetrics(Collector):
    def __init__(self, max_series: int = 10_000) -> None:
        if max_series < 2:
            raise ValueError("max_series: must be at least 2 (one slot is kept for the overflow series)")
        self._max_series = max_series
        self._lock = threading.Lock()
        # Insertion-ordered and never pruned, so a label set keeps its row index in table() forever.
        self._series: dict[SpanKey, list[float]] = {}
        self._unpaired: dict[tuple[str, str], int] = {}
        self.overflowed = 0  # pairs and unpaired spans folded into an overflow series
        self.unpaired = 0  # spans that expired without a partner
        self.dropped = 0  # spans not stored because the pairing store was full
        self.expired = 0  # spans that left the pairing store by age (paired, unpaired or kept for lookups)
        self.evicted = 0  # lookup-only spans removed early to make room in a full store

    # -- recording ------------------------------------------------------------------------------------

    def add_pair(
        self,
        client: str,
        client_ns: str,
        server: str,
        server_ns: str,
        connection_type: str,
        failed: bool,
        client_ms: float,
        server_ms: float,
    ) -> None:
        self.add_pairs(((client, client_ns, server, server_ns, connection_type, failed, client_ms, server_ms),))

    def add_pairs(self, pairs: Iterable[Pair]) -> None:
        """Add many pairs under one lock acquisition (the pairer's per-batch call)."""
        series = self._series
        bounds = DURATION_BUCKETS_MS
        with self._lock:
            for pair in pairs:
                key = pair[:5]
                row = series.get(key)
                if row is None:
                    row = self._new_series(key)
                client_ms = pair[6]
                server_ms = pair[7]
                row[SPAN_REQUESTS] += 1
                if pair[5]:
                    row[SPAN_FAILED] += 1
                row[SPAN_CLIENT_MS_SUM] += client_ms
                row[SPAN_SERVER_MS_SUM] += server_ms
                row[SPAN_CLIENT_BUCKETS + bisect_left(bounds, client_ms)] += 1
                row[SPAN_SERVER_BUCKETS + bisect_left(bounds, server_ms)] += 1

    def _new_series(self, key: SpanKey) -> list[float]:
        if len(self._series) >= self._max_series - 1:  # one slot is kept for the overflow series
            self.overflowed += 1
            row = self._series.get(OVERFLOW_KEY)
            if row is not None:
                return row
            key = OVERFLOW_KEY
        row = [0.0] * SPAN_WIDTH
        self._series[key] = row
        return row

    def record_unpaired(self, client: str, server: str, count: int = 1) -> None:
        """``count`` spans of ``client`` (or of ``server``; the other is "") expired without a partner."""
        self.record_unpaired_many((((client, server), count),))

    def record_unpaired_many(self, counts: Iterable[tuple[tuple[str, str], int]]) -> None:
        unpaired = self._unpaired
        with self._lock:
            for key, count in counts:
                if key not in unpaired and len(unpaired) >= self._max_series - 1:
                    self.overflowed += count
                    key = (OVERFLOW, "") if key[0] else ("", OVERFLOW)
                unpaired[key] = unpaired.get(key, 0) + count
                self.unpaired += count

    def record_dropped(self, count: int = 1) -> None:
        with self._lock:
            self.dropped += count

    def record_expired(self, count: int = 1) -> None:
        with self._lock:
            self.expired += count

    def record_evicted(self, count: int = 1) -> None:
        with self._lock:
            self.evicted += count

    # -- reading --------------------------------------------------------------------------------------

    def series_count(self) -> int:
        return len(self._series)

    def table(self) -> Table:
        """A consistent copy of the cumulative rows: keys in ``SPAN_LABELS`` order, SPAN_* columns.

        Row ``i`` is the ``i``-th label set ever seen (insertion order); new label sets append.
        Buckets are per bucket (not cumulative), in ``DURATION_BUCKETS_MS`` bounds, the last one +Inf.
        """
        with self._lock:
            keys = list(self._series)
            values = np.array(list(self._series.values()), dtype=np.float64)
        if not keys:
            return Table.empty(SPAN_WIDTH)
        return Table(keys, values)  # type: ignore[arg-type]

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        with self._lock:
            series = [(key, list(row)) for key, row in self._series.items()]
            unpaired = dict(self._unpaired)
            dropped = self.dropped
        labels = list(SPAN_LABELS)
        total = CounterMetricFamily(
            "traces_service_graph_request", "Total count of requests between two nodes.", labels=labels
        )
        failed = CounterMetricFamily(
            "traces_service_graph_request_failed", "Total count of failed requests between two nodes.", labels=labels
        )
        server = HistogramMetricFamily(
            "traces_service_graph_request_server_seconds",
            "Time for a request between two nodes as seen from the server.",
            labels=labels,
        )
        client = HistogramMetricFamily(
            "traces_service_graph_request_client_seconds",
            "Time for a request between two nodes as seen from the client.",
            labels=labels,
        )
        for key, row in series:
            values = list(key)
            total.add_metric(values, row[SPAN_REQUESTS])
            failed.add_metric(values, row[SPAN_FAILED])
            client.add_metric(
                values,
                cumulative_buckets(_BOUND_TEXT, row[SPAN_CLIENT_BUCKETS : SPAN_CLIENT_BUCKETS + N_BUCKETS]),
                row[SPAN_CLIENT_MS_SUM] / 1000,
            )
            server.add_metric(
                values,
                cumulative_buckets(_BOUND_TEXT, row[SPAN_SERVER_BUCKETS : SPAN_SERVER_BUCKETS + N_BUCKETS]),
                row[SPAN_SERVER_MS_SUM] / 1000,
            )
        yield from (total, failed, server, client)

        unpaired_family = CounterMetricFamily(
            "traces_service_graph_unpaired_spans",
            "Total count of unpaired spans: client or server spans whose partner never arrived.",
            labels=list(UNPAIRED_LABELS),
        )
        for pair_key, count in sorted(unpaired.items()):
            unpaired_family.add_metric(list(pair_key), count)
        yield unpaired_family
        dropped_family = CounterMetricFamily(
            "traces_service_graph_dropped_spans", "Total count of spans not stored because the store was full."
        )
        dropped_family.add_metric([], dropped)
        yield dropped_family
