"""Where Records are aggregated into Istio's standard metrics.

The hot path adds each Record to plain dicts keyed by label tuples; prometheus-client sees the totals
only at scrape time, through this custom collector. Series per metric are capped: past the cap a new
label set is folded into one ``overflow`` series and counted, so a flood of unique paths or peers
cannot grow memory without bound.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from operator import add
from typing import NamedTuple

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from telemetry.model import IDENTITY_FIELDS, Record

# Istio's default buckets: request duration in milliseconds, request and response sizes in bytes.
DURATION_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
)  # fmt: skip
SIZE_BUCKETS_BYTES: tuple[float, ...] = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000)

# Label names in the order of Record[:IDENTITY_FIELDS], as Istio names them.
IDENTITY_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "connection_security_policy",
)
REQUEST_LABELS = (*IDENTITY_LABELS, "request_protocol", "response_code", "grpc_response_status", "response_flags")
TCP_LABELS = (*IDENTITY_LABELS, "request_protocol", "response_flags")
# Derived at scrape time, as Istio sets them: canonical service/revision default to app/version.
EXTRA_LABELS = (
    "source_canonical_service",
    "source_canonical_revision",
    "destination_canonical_service",
    "destination_canonical_revision",
    "source_cluster",
    "destination_cluster",
)

OVERFLOW = "overflow"

# Bucket positions of the common small values, looked up instead of bisected (a list index is about half
# a bisect_left call, and the aggregation pays three per Record): durations up to 1 s, sizes up to 10 kB.
_DURATION_INDEX = [bisect_left(DURATION_BUCKETS_MS, value) for value in range(1001)]
_SIZE_INDEX = [bisect_left(SIZE_BUCKETS_BYTES, value) for value in range(10_001)]

_PROTOCOL = IDENTITY_FIELDS  # Record index of protocol; the request fields follow it in this order
_CODE = _PROTOCOL + 1
_GRPC = _PROTOCOL + 2
_FLAGS = _PROTOCOL + 3
_DURATION = _PROTOCOL + 4
_RECEIVED = _PROTOCOL + 5
_SENT = _PROTOCOL + 6
assert Record._fields[_PROTOCOL : _SENT + 1] == (
    "protocol", "response_code", "grpc_status", "response_flags", "duration_ms", "bytes_received", "bytes_sent",
)  # fmt: skip


class RequestSeries(NamedTuple):
    key: tuple[object, ...]  # label values in REQUEST_LABELS order
    count: int
    duration_ms: float
    duration_buckets: list[int]
    request_bytes: int
    request_buckets: list[int]
    response_bytes: int
    response_buckets: list[int]


class TcpSeries(NamedTuple):
    key: tuple[object, ...]  # label values in TCP_LABELS order
    connections: int
    received_bytes: int
    sent_bytes: int


class IstioMetrics(Collector):
    def __init__(self, max_series_per_metric: int = 10_000, cluster: str = "Kubernetes") -> None:
        self._max_series = max_series_per_metric
        self._cluster = cluster
        self._lock = threading.Lock()
        # One entry per HTTP/gRPC label set: [count, duration sum, duration buckets,
        # request bytes sum, request bucket counts, response bytes sum, response bucket counts].
        self._requests: dict[tuple[object, ...], list] = {}
        # One entry per TCP label set: [connections, bytes received, bytes sent].
        self._tcp: dict[tuple[object, ...], list[int]] = {}
        self.overflowed: dict[str, int] = {}

    def consume(self, batch: Sequence[Record]) -> None:
        requests = self._requests
        tcp = self._tcp
        duration_buckets = DURATION_BUCKETS_MS
        size_buckets = SIZE_BUCKETS_BYTES
        duration_index = _DURATION_INDEX
        size_index = _SIZE_INDEX
        with self._lock:
            for record in batch:
                if record[_PROTOCOL] == "tcp":
                    key = record[:_CODE] + (record[_FLAGS],)
                    entry = tcp.get(key)
                    if entry is None:
                        entry = self._new_tcp_series(key)
                    entry[0] += 1
                    entry[1] += record[_RECEIVED]
                    entry[2] += record[_SENT]
                    continue
                key = record[:_DURATION]
                entry = requests.get(key)
                if entry is None:
                    entry = self._new_request_series(key)
                entry[0] += 1
                duration = record[_DURATION]
                entry[1] += duration
                entry[2][duration_index[duration] if duration <= 1000 else bisect_left(duration_buckets, duration)] += 1
                received = record[_RECEIVED]
                entry[3] += received
                entry[4][size_index[received] if received <= 10_000 else bisect_left(size_buckets, received)] += 1
                sent = record[_SENT]
                entry[5] += sent
                entry[6][size_index[sent] if sent <= 10_000 else bisect_left(size_buckets, sent)] += 1

    def _new_request_series(self, key: tuple[object, ...], records: int = 1) -> list:
        if len(self._requests) >= self._max_series - 1:  # one slot is kept for the overflow series
            key = _overflow_key(key)
            self.overflowed["istio_requests_total"] = self.overflowed.get("istio_requests_total", 0) + records
            entry = self._requests.get(key)
            if entry is not None:
                return entry
        entry = [0, 0, [0] * (len(DURATION_BUCKETS_MS) + 1), 0, [0] * (len(SIZE_BUCKETS_BYTES) + 1), 0,
                 [0] * (len(SIZE_BUCKETS_BYTES) + 1)]  # fmt: skip
        self._requests[key] = entry
        return entry

    def _new_tcp_series(self, key: tuple[object, ...], records: int = 1) -> list[int]:
        if len(self._tcp) >= self._max_series - 1:
            key = _overflow_key(key)
            self.overflowed["istio_tcp_connections_opened_total"] = (
                self.overflowed.get("istio_tcp_connections_opened_total", 0) + records
            )
            entry = self._tcp.get(key)
            if entry is not None:
                return entry
        entry = [0, 0, 0]
        self._tcp[key] = entry
        return entry

    def take_delta(self) -> tuple[list[tuple[tuple[object, ...], list]], list[tuple[tuple[object, ...], list[int]]]]:
        """Every series as (key, entry) pairs, and start afresh: what a parsing worker hands to ``merge``.

        An entry is the aggregation's own list (see ``__init__``), so it is plain data (marshal-able).
        """
        with self._lock:
            requests, self._requests = self._requests, {}
            tcp, self._tcp = self._tcp, {}
            self.overflowed = {}
        return list(requests.items()), list(tcp.items())

    def merge(
        self,
        requests: Sequence[tuple[tuple[object, ...], list]],
        tcp: Sequence[tuple[tuple[object, ...], list[int]]],
    ) -> None:
        """Add another aggregation's series (from ``take_delta``): counts, sums and buckets are sums, so the
        result is what ``consume`` of the same Records would have made. The series cap applies here as in
        ``consume``: a label set that does not fit is folded into ``overflow``, counted once per Record."""
        own_requests = self._requests
        own_tcp = self._tcp
        with self._lock:
            for key, (count, duration, duration_buckets, received, received_buckets, sent, sent_buckets) in requests:
                entry = own_requests.get(key)
                if entry is None:
                    entry = self._new_request_series(key, count)
                entry[0] += count
                entry[1] += duration
                entry[2] = list(map(add, entry[2], duration_buckets))
                entry[3] += received
                entry[4] = list(map(add, entry[4], received_buckets))
                entry[5] += sent
                entry[6] = list(map(add, entry[6], sent_buckets))
            for key, (connections, received_bytes, sent_bytes) in tcp:
                entry = own_tcp.get(key)
                if entry is None:
                    entry = self._new_tcp_series(key, connections)
                entry[0] += connections
                entry[1] += received_bytes
                entry[2] += sent_bytes

    def series_count(self) -> int:
        return len(self._requests) + len(self._tcp)

    def snapshot(self) -> tuple[list[RequestSeries], list[TcpSeries]]:
        """A consistent copy of every series, taken under the lock."""
        with self._lock:
            requests = [RequestSeries(key, e[0], e[1], list(e[2]), e[3], list(e[4]), e[5], list(e[6]))
                        for key, e in self._requests.items()]  # fmt: skip
            tcp = [TcpSeries(key, *entry) for key, entry in self._tcp.items()]
        return requests, tcp

    def rows(self) -> tuple[list[tuple[object, ...]], list[list[float]], list[tuple[object, ...]], list[list[int]]]:
        """Request keys and rows, TCP keys and rows, in insertion order (a key keeps its position).

        A request row is [count, duration sum, request bytes sum, response bytes sum, *duration buckets]
        (buckets not cumulative); a TCP row is [connections, bytes received, bytes sent].
        """
        with self._lock:
            request_keys = list(self._requests)
            request_rows = [[e[0], e[1], e[3], e[5], *e[2]] for e in self._requests.values()]
            tcp_keys = list(self._tcp)
            tcp_rows = [list(entry) for entry in self._tcp.values()]
        return request_keys, request_rows, tcp_keys, tcp_rows

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests, tcp = self.snapshot()
        with self._lock:
            overflowed = dict(self.overflowed)
        request_labels = [*REQUEST_LABELS, *EXTRA_LABELS]
        tcp_labels = [*TCP_LABELS, *EXTRA_LABELS]
        total = CounterMetricFamily("istio_requests", "Requests seen by the mesh's proxies.", labels=request_labels)
        duration = HistogramMetricFamily(
            "istio_request_duration_milliseconds", "Request duration in milliseconds.", labels=request_labels
        )
        request_bytes = HistogramMetricFamily("istio_request_bytes", "Request sizes in bytes.", labels=request_labels)
        response_bytes = HistogramMetricFamily(
            "istio_response_bytes", "Response sizes in bytes.", labels=request_labels
        )
        for key, count, duration_sum, duration_buckets, req_sum, req_buckets, resp_sum, resp_buckets in requests:
            values = self._label_values(key)
            total.add_metric(values, count)
            duration.add_metric(values, cumulative_buckets(_DURATION_TEXT, duration_buckets), duration_sum)
            request_bytes.add_metric(values, cumulative_buckets(_SIZE_TEXT, req_buckets), req_sum)
            response_bytes.add_metric(values, cumulative_buckets(_SIZE_TEXT, resp_buckets), resp_sum)
        yield from (total, duration, request_bytes, response_bytes)

        opened = CounterMetricFamily("istio_tcp_connections_opened", "TCP connections opened.", labels=tcp_labels)
        closed = CounterMetricFamily("istio_tcp_connections_closed", "TCP connections closed.", labels=tcp_labels)
        received = CounterMetricFamily(
            "istio_tcp_received_bytes", "Bytes received during request on TCP connections.", labels=tcp_labels
        )
        sent = CounterMetricFamily(
            "istio_tcp_sent_bytes", "Bytes sent during response on TCP connections.", labels=tcp_labels
        )
        for key, connections, received_bytes, sent_bytes in tcp:
            values = self._label_values(key)
            # An access-log entry for a TCP connection is written when it closes: it was opened too.
            opened.add_metric(values, connections)
            closed.add_metric(values, connections)
            received.add_metric(values, received_bytes)
            sent.add_metric(values, sent_bytes)
        yield from (opened, closed, received, sent)

        folded = CounterMetricFamily(
            "meshscope_metric_series_overflow",
            "Records whose label set was folded into the overflow series by the cardinality cap.",
            labels=["metric"],
        )
        for metric, count in sorted(overflowed.items()):
            folded.add_metric([metric], count)
        yield folded

    def _label_values(self, key: tuple[object, ...]) -> list[str]:
        values = [str(value) for value in key]
        return [*values, values[4], values[5], values[9], values[10], self._cluster, self._cluster]


def _overflow_key(key: tuple[object, ...]) -> tuple[object, ...]:
    # The reporter is kept so that source- and destination-reported totals stay separable.
    return (key[0],) + (OVERFLOW,) * (len(key) - 1)


def cumulative_buckets(bounds: Sequence[str], counts: Sequence[float]) -> list[tuple[str, float]]:
    """Per-bucket counts (one more than ``bounds``: +Inf last) as Prometheus's cumulative (le, count) pairs."""
    running = 0.0
    buckets = []
    for bound, count in zip(bounds, counts, strict=False):
        running += count
        buckets.append((bound, running))
    buckets.append(("+Inf", running + counts[-1]))
    return buckets


def _format_bound(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


# Bucket bounds as the exposition writes them, formatted once.
_DURATION_TEXT = tuple(_format_bound(bound) for bound in DURATION_BUCKETS_MS)
_SIZE_TEXT = tuple(_format_bound(bound) for bound in SIZE_BUCKETS_BYTES)
