"""Traffic over a time window: the rows every graph is built from, whatever the source.

A graph source (the live collector, or a Prometheus) answers "what happened between ``start`` and
``end``" with three tables of rows. Each row is one label set of a metric family and the totals of
that label set over the window; the rows are exactly the series of Istio's standard metrics and of the
OpenTelemetry servicegraph connector's metrics, so the live collector and a Prometheus scraping any
number of collectors describe the same traffic in the same shape, and one builder turns either into a
graph.

- ``http``: ``istio_requests_total`` and its histograms; keys in ``REQUEST_LABELS`` order (reporter,
  source_workload, ..., connection_security_policy, request_protocol, response_code,
  grpc_response_status, response_flags), every value a ``str``.
- ``tcp``: ``istio_tcp_*``; keys in ``TCP_LABELS`` order (..., request_protocol, response_flags).
- ``spans``: client/server span pairs (``traces_service_graph_*``); keys in ``SPAN_LABELS`` order.

Histograms are bucket counts (not cumulative) over Istio's duration buckets, so they merge by addition
and percentiles are read from merged buckets, never from stored samples. Span-pair latencies use the
same buckets (in milliseconds here; exposed in seconds by the connector metrics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS, REQUEST_LABELS, TCP_LABELS

# Columns of ``http`` rows. The buckets follow the sums: BUCKETS is the first bucket's column, and
# there is one more bucket than bounds (+Inf).
REQUESTS = 0
DURATION_MS_SUM = 1
REQUEST_BYTES_SUM = 2
RESPONSE_BYTES_SUM = 3
BUCKETS = 4
N_BUCKETS = len(DURATION_BUCKETS_MS) + 1
HTTP_WIDTH = BUCKETS + N_BUCKETS

# Columns of ``tcp`` rows.
CONNECTIONS = 0
TCP_RECEIVED_BYTES = 1  # bytes the destination received (istio_tcp_received_bytes_total)
TCP_SENT_BYTES = 2  # bytes the destination sent back (istio_tcp_sent_bytes_total)
TCP_WIDTH = 3

# Columns of ``spans`` rows: a pair's count, failures, latency sums and buckets of both sides.
SPAN_REQUESTS = 0
SPAN_FAILED = 1
SPAN_CLIENT_MS_SUM = 2
SPAN_SERVER_MS_SUM = 3
SPAN_CLIENT_BUCKETS = 4
SPAN_SERVER_BUCKETS = SPAN_CLIENT_BUCKETS + N_BUCKETS
SPAN_WIDTH = SPAN_SERVER_BUCKETS + N_BUCKETS

# connection_type values, as the OpenTelemetry servicegraph connector names them ("" for a plain pair).
CONNECTION_DIRECT = ""
CONNECTION_DATABASE = "database"
CONNECTION_MESSAGING = "messaging_system"
CONNECTION_VIRTUAL = "virtual_node"
SPAN_LABELS = ("client", "client_k8s_namespace_name", "server", "server_k8s_namespace_name", "connection_type")

HTTP_LABELS = REQUEST_LABELS
TCP_ROW_LABELS = TCP_LABELS


@dataclass
class Table:
    """Rows of one metric family: ``keys[i]`` labels ``values[i]``."""

    keys: list[tuple[str, ...]]
    values: np.ndarray  # float64, shape (len(keys), width)

    @classmethod
    def empty(cls, width: int) -> Table:
        return cls([], np.zeros((0, width)))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class Traffic:
    """Everything the mesh did between ``start`` and ``end`` (unix seconds).

    Rows with all-zero values are idle label sets: seen before the window (within the source's idle
    retention) but silent during it. The graph shows them as idle edges, or hides them.
    """

    http: Table
    tcp: Table
    spans: Table
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    @classmethod
    def empty(cls, start: float, end: float) -> Traffic:
        return cls(Table.empty(HTTP_WIDTH), Table.empty(TCP_WIDTH), Table.empty(SPAN_WIDTH), start, end)
