"""Totals taken from one IstioMetrics and merged into another equal consuming the Records there."""

from __future__ import annotations

import marshal
import random

from prometheus_client import CollectorRegistry, generate_latest

from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import Record


def exposition(metrics: IstioMetrics) -> list[str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return sorted(generate_latest(registry).decode().splitlines())


def records(count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        record = Record(
            reporter=rng.choice(["source", "destination"]),
            source_workload=f"w{rng.randrange(8)}",
            destination_service_name=f"s{rng.randrange(8)}",
            protocol=rng.choice(["http", "grpc", "tcp"]),
            response_code=rng.choice([200, 200, 404, 503, 0]),
            duration_ms=rng.choice([0, 1, 7, 300, 70_000, 4_000_000]),
            bytes_received=rng.randrange(0, 10**6),
            bytes_sent=rng.randrange(0, 10**9),
        )
        made.append(record)
    return made


def merged(parts: list[list[Record]], max_series: int) -> IstioMetrics:
    target = IstioMetrics(max_series)
    for part in parts:
        worker = IstioMetrics(1 << 62)
        worker.consume(part)
        requests, tcp = worker.take_delta()
        # Through marshal, as workers send them.
        target.merge(*marshal.loads(marshal.dumps((requests, tcp))))
        assert worker.series_count() == 0  # taking the totals starts the worker's aggregation afresh
    return target


def test_merged_totals_of_many_batches_equal_consuming_every_record() -> None:
    batches = [records(500, seed) for seed in range(6)]
    consumed = IstioMetrics()
    for batch in batches:
        consumed.consume(batch)
    assert exposition(merged(batches, 10_000)) == exposition(consumed)


def test_the_series_cap_folds_merged_series_into_overflow_counting_each_record() -> None:
    batch = records(2000, 3)
    consumed = IstioMetrics(max_series_per_metric=20)
    consumed.consume(batch)
    result = merged([batch], 20)
    assert exposition(result) == exposition(consumed)
    assert result.overflowed["istio_requests_total"] == consumed.overflowed["istio_requests_total"] > 0
    assert result.overflowed["istio_tcp_connections_opened_total"] > 0
