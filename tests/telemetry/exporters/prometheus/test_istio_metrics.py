from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS, SIZE_BUCKETS_BYTES, IstioMetrics
from telemetry.model import Record


def exposition(metrics: IstioMetrics) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return generate_latest(registry).decode()


def sample(text: str, prefix: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {prefix} {labels}")


def test_requests_are_counted_per_label_set_with_istio_buckets() -> None:
    metrics = IstioMetrics()
    ok = Record(
        reporter="source",
        source_workload="a",
        destination_service_name="b",
        response_code=200,
        duration_ms=7,
        bytes_sent=150,
    )
    metrics.consume([ok, ok._replace(duration_ms=3000), ok._replace(response_code=503)])
    text = exposition(metrics)
    assert sample(text, "istio_requests_total", response_code="200", source_workload="a") == 2
    assert sample(text, "istio_requests_total", response_code="503") == 1
    assert sample(text, "istio_request_duration_milliseconds_bucket", response_code="200", le="10") == 1
    assert sample(text, "istio_request_duration_milliseconds_bucket", response_code="200", le="5000") == 2
    assert sample(text, "istio_request_duration_milliseconds_sum", response_code="200") == 3007
    assert sample(text, "istio_response_bytes_bucket", response_code="200", le="100") == 0
    assert sample(text, "istio_response_bytes_bucket", response_code="200", le="1000") == 2


def test_tcp_connections_count_bytes_both_ways() -> None:
    metrics = IstioMetrics()
    metrics.consume([Record(protocol="tcp", destination_service_name="db", bytes_received=10, bytes_sent=99)] * 2)
    text = exposition(metrics)
    assert sample(text, "istio_tcp_connections_opened_total", destination_service_name="db") == 2
    assert sample(text, "istio_tcp_connections_closed_total", destination_service_name="db") == 2
    assert sample(text, "istio_tcp_received_bytes_total", destination_service_name="db") == 20
    assert sample(text, "istio_tcp_sent_bytes_total", destination_service_name="db") == 198
    assert "istio_requests_total{" not in text


def test_canonical_labels_follow_app_and_version() -> None:
    metrics = IstioMetrics(cluster="east")
    metrics.consume(
        [Record(source_app="productpage", source_version="v1", destination_app="reviews", destination_version="v2")]
    )
    text = exposition(metrics)
    assert sample(text, "istio_requests_total", source_canonical_service="productpage", source_canonical_revision="v1",
                  destination_canonical_service="reviews", destination_canonical_revision="v2", source_cluster="east") == 1  # fmt: skip


def test_series_beyond_the_cap_fold_into_overflow_and_are_counted() -> None:
    metrics = IstioMetrics(max_series_per_metric=3)
    metrics.consume([Record(reporter="source", source_workload=f"w{i}") for i in range(10)])
    text = exposition(metrics)
    assert text.count("istio_requests_total{") == 3  # the cap counts the overflow series too
    assert sample(text, "istio_requests_total", source_workload="w1") == 1
    assert sample(text, "istio_requests_total", source_workload="overflow", reporter="source") == 8
    assert sample(text, "meshscope_metric_series_overflow_total", metric="istio_requests_total") == 8


def test_a_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    metrics = IstioMetrics()
    metrics.consume([Record(duration_ms=10, bytes_sent=100)])
    text = exposition(metrics)
    assert sample(text, "istio_request_duration_milliseconds_bucket", le="5") == 0
    assert sample(text, "istio_request_duration_milliseconds_bucket", le="10") == 1
    assert sample(text, "istio_response_bytes_bucket", le="10") == 0
    assert sample(text, "istio_response_bytes_bucket", le="100") == 1


def test_every_value_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    # Small values are looked up in a table, larger ones bisected: both must agree with the bounds.
    values = [*range(0, 12_000, 7), 999, 1000, 1001, 9_999, 10_000, 10_001, 29_999, 30_000, 30_001, 10**9]
    metrics = IstioMetrics()
    metrics.consume([Record(duration_ms=value, bytes_received=value, bytes_sent=value) for value in values])
    text = exposition(metrics)
    for bound in DURATION_BUCKETS_MS:
        expected = sum(value <= bound for value in values)
        assert sample(text, "istio_request_duration_milliseconds_bucket", le=str(bound)) == expected, bound
    for bound in SIZE_BUCKETS_BYTES:
        expected = sum(value <= bound for value in values)
        assert sample(text, "istio_request_bytes_bucket", le=str(bound)) == expected, bound
        assert sample(text, "istio_response_bytes_bucket", le=str(bound)) == expected, bound
