"""ServiceGraphMetrics: the connector's exposition, the graph's table, the series cap."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from servicegraph.connector_metrics import DURATION_BUCKETS_SECONDS, OVERFLOW_KEY, ServiceGraphMetrics
from servicegraph.traffic import (
    N_BUCKETS,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_FAILED,
    SPAN_LABELS,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    SPAN_SERVER_MS_SUM,
    SPAN_WIDTH,
)
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

EDGE = ("productpage", "default", "reviews", "default", "")
DB = ("ratings", "default", "mysql/ratings", "", "database")


def test_exposition_parses_back_with_the_connector_names_labels_and_second_buckets() -> None:
    metrics = ServiceGraphMetrics()
    metrics.add_pair(*EDGE, failed=False, client_ms=3, server_ms=1)  # client (1,5], server (0.5,1]
    metrics.add_pair(*EDGE, failed=True, client_ms=120, server_ms=100)  # client (100,250], server (50,100]
    metrics.add_pair(*DB, failed=False, client_ms=4_000_000, server_ms=4_000_000)  # past the last bound
    metrics.record_unpaired("productpage", "")
    metrics.record_unpaired("", "details", count=2)
    metrics.record_dropped(3)
    registry = CollectorRegistry()
    registry.register(metrics)

    families = {family.name: family for family in text_string_to_metric_families(generate_latest(registry).decode())}

    assert {name: family.type for name, family in families.items()} == {
        "traces_service_graph_request": "counter",
        "traces_service_graph_request_failed": "counter",
        "traces_service_graph_request_server_seconds": "histogram",
        "traces_service_graph_request_client_seconds": "histogram",
        "traces_service_graph_unpaired_spans": "counter",
        "traces_service_graph_dropped_spans": "counter",
    }
    edge_labels = dict(zip(SPAN_LABELS, EDGE, strict=True))
    totals = {
        sample.name: sample
        for sample in families["traces_service_graph_request"].samples
        if sample.labels == edge_labels
    }
    assert totals["traces_service_graph_request_total"].value == 2
    failed = [s for s in families["traces_service_graph_request_failed"].samples if s.name.endswith("_total")]
    assert {tuple(s.labels[label] for label in SPAN_LABELS): s.value for s in failed} == {EDGE: 1, DB: 0}

    client = [
        s for s in families["traces_service_graph_request_client_seconds"].samples if s.labels["server"] == "reviews"
    ]
    buckets = {float(s.labels["le"]): s.value for s in client if s.name.endswith("_bucket")}
    assert list(buckets) == [*DURATION_BUCKETS_SECONDS, float("inf")]
    assert buckets[0.001] == 0 and buckets[0.005] == 1 and buckets[0.1] == 1 and buckets[0.25] == 2
    assert buckets[float("inf")] == 2
    by_name = {s.name: s.value for s in client if not s.name.endswith("_bucket")}
    assert by_name["traces_service_graph_request_client_seconds_count"] == 2
    assert by_name["traces_service_graph_request_client_seconds_sum"] == pytest.approx(0.123)

    server = [
        s for s in families["traces_service_graph_request_server_seconds"].samples if s.labels["server"] == "reviews"
    ]
    server_buckets = {float(s.labels["le"]): s.value for s in server if s.name.endswith("_bucket")}
    assert server_buckets[0.0005] == 0 and server_buckets[0.001] == 1 and server_buckets[0.05] == 1
    assert server_buckets[0.1] == 2
    database = [
        s
        for s in families["traces_service_graph_request_server_seconds"].samples
        if s.labels["server"] == "mysql/ratings"
    ]
    database_buckets = {float(s.labels["le"]): s.value for s in database if s.name.endswith("_bucket")}
    assert database_buckets[3600.0] == 0 and database_buckets[float("inf")] == 1
    assert database[0].labels["connection_type"] == "database" and database[0].labels["server_k8s_namespace_name"] == ""

    unpaired = {
        (s.labels["client"], s.labels["server"]): s.value
        for s in families["traces_service_graph_unpaired_spans"].samples
        if s.name.endswith("_total")
    }
    assert unpaired == {("productpage", ""): 1, ("", "details"): 2}
    dropped = [s for s in families["traces_service_graph_dropped_spans"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in dropped] == [({}, 3)]
    assert (metrics.unpaired, metrics.dropped) == (3, 3)


def test_table_columns_are_per_bucket_milliseconds_with_inf_last() -> None:
    metrics = ServiceGraphMetrics()
    metrics.add_pair(*EDGE, failed=True, client_ms=5, server_ms=0.2)  # a value on a bound falls in that bucket
    metrics.add_pair(*EDGE, failed=False, client_ms=7_200_000, server_ms=10)

    table = metrics.table()

    assert table.keys == [EDGE] and table.values.dtype == np.float64 and table.values.shape == (1, SPAN_WIDTH)
    row = table.values[0]
    assert (row[SPAN_REQUESTS], row[SPAN_FAILED]) == (2, 1)
    assert (row[SPAN_CLIENT_MS_SUM], row[SPAN_SERVER_MS_SUM]) == (7_200_005, 10.2)
    client = row[SPAN_CLIENT_BUCKETS : SPAN_CLIENT_BUCKETS + N_BUCKETS]
    server = row[SPAN_SERVER_BUCKETS : SPAN_SERVER_BUCKETS + N_BUCKETS]
    assert client[DURATION_BUCKETS_MS.index(5)] == 1 and client[-1] == 1 and client.sum() == 2
    assert server[0] == 1 and server[DURATION_BUCKETS_MS.index(10)] == 1 and server.sum() == 2


def test_table_rows_keep_their_index_as_keys_are_added() -> None:
    metrics = ServiceGraphMetrics()
    metrics.add_pair(*EDGE, failed=False, client_ms=1, server_ms=1)
    first = metrics.table()
    metrics.add_pairs([(*DB, False, 2.0, 2.0), (*EDGE, False, 1.0, 1.0)])
    second = metrics.table()

    assert first.keys == [EDGE] and second.keys == [EDGE, DB]
    assert second.values[0, SPAN_REQUESTS] == 2 and second.values[1, SPAN_REQUESTS] == 1
    assert first.values[0, SPAN_REQUESTS] == 1  # a copy: later pairs do not change an earlier table
    assert all(isinstance(label, str) for key in second.keys for label in key)


def test_empty_table_has_the_span_width() -> None:
    table = ServiceGraphMetrics().table()
    assert len(table) == 0 and table.values.shape == (0, SPAN_WIDTH)


def test_series_cap_folds_new_label_sets_into_overflow() -> None:
    metrics = ServiceGraphMetrics(max_series=3)
    for n in range(5):
        metrics.add_pair(f"svc{n}", "default", "reviews", "default", "", failed=n == 4, client_ms=1, server_ms=1)
    metrics.add_pair("svc0", "default", "reviews", "default", "", failed=False, client_ms=1, server_ms=1)

    table = metrics.table()
    assert [key[0] for key in table.keys] == ["svc0", "svc1", "overflow"]
    assert table.keys[2] == OVERFLOW_KEY
    assert table.values[:, SPAN_REQUESTS].tolist() == [2, 1, 3]  # svc2, svc3, svc4 folded
    assert table.values[2, SPAN_FAILED] == 1
    assert metrics.overflowed == 3


def test_unpaired_series_are_capped_too() -> None:
    metrics = ServiceGraphMetrics(max_series=2)
    metrics.record_unpaired_many([(("a", ""), 1), (("b", ""), 2), (("", "c"), 4)])
    family = next(f for f in metrics.collect() if f.name == "traces_service_graph_unpaired_spans")
    assert {(s.labels["client"], s.labels["server"]): s.value for s in family.samples} == {
        ("a", ""): 1,
        ("overflow", ""): 2,
        ("", "overflow"): 4,
    }
    assert metrics.unpaired == 7 and metrics.overflowed == 6
