"""Sliding windows over the collector's own counters, with a clock the test controls."""

from __future__ import annotations

import pytest

from servicegraph.builder import build_graph
from servicegraph.sources.live import LiveSource
from servicegraph.traffic import REQUESTS
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import Record


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def call(source: str = "productpage-v1", service: str = "reviews", code: int = 200) -> Record:
    return Record(
        reporter="source", source_workload=source, source_namespace="default", source_app=source.split("-")[0],
        destination_service=f"{service}.default.svc.cluster.local", destination_service_name=service,
        destination_service_namespace="default", response_code=code, duration_ms=12,
    )  # fmt: skip


def requests_in(traffic) -> float:  # type: ignore[no-untyped-def]
    return float(traffic.http.values[:, REQUESTS].sum())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics() -> IstioMetrics:
    return IstioMetrics()


def advance(source: LiveSource, clock: Clock, seconds: float, step: float = 10.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now += step
        source.tick()


def test_a_window_counts_only_what_happened_within_it(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60, 300), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    metrics.consume([call()] * 10)
    advance(source, clock, 90)
    metrics.consume([call()] * 5)
    advance(source, clock, 10)
    assert requests_in(source.traffic(60)) == 5
    assert requests_in(source.traffic(300)) == 15
    minute = source.traffic(60)
    assert 60 <= minute.seconds <= 60 + 10  # a window is whole intervals: at most one interval longer


def test_rates_divide_by_the_time_the_window_really_covers(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60,), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    advance(source, clock, 120)
    metrics.consume([call()] * 120)
    advance(source, clock, 10)
    traffic = source.traffic(60)
    edge = build_graph(traffic).edges["workload:default:productpage-v1", "service:default:reviews", "http"]
    assert edge["rps"] == pytest.approx(120 / traffic.seconds)


def test_the_latest_partial_interval_counts_at_once(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60,), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    advance(source, clock, 20)
    metrics.consume([call()] * 3)
    clock.now += 2  # less than an interval: no cut yet, but a tick
    source.tick()
    assert requests_in(source.traffic(60)) == 3


def test_an_edge_silent_for_the_window_is_idle_then_leaves_after_idle_expiry(
    clock: Clock, metrics: IstioMetrics
) -> None:
    source = LiveSource(metrics, windows=(60,), points=6, idle_expiry=300, clock=clock)
    source.tick()
    metrics.consume([call()])
    advance(source, clock, 10)
    advance(source, clock, 120)
    idle = source.traffic(60)
    assert len(idle.http) == 1 and requests_in(idle) == 0
    assert build_graph(idle).edges["workload:default:productpage-v1", "service:default:reviews", "http"]["idle"]
    advance(source, clock, 300)
    assert len(source.traffic(60).http) == 0


def test_label_sets_that_appear_later_line_up_with_earlier_ones(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60,), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    metrics.consume([call()] * 4)
    advance(source, clock, 10)
    metrics.consume([call(code=503)] * 2 + [call(service="details")] * 3 + [call()])
    advance(source, clock, 10)
    traffic = source.traffic(60)
    counts = {
        (key[12], key[16]): value
        for key, value in zip(traffic.http.keys, traffic.http.values[:, REQUESTS], strict=True)
    }
    assert counts == {("reviews", "200"): 5, ("reviews", "503"): 2, ("details", "200"): 3}


def test_chart_points_are_the_window_intervals_oldest_first(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60,), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    for burst in (1, 2, 3):
        metrics.consume([call()] * burst)
        advance(source, clock, 10)
    points = source.traffic_series(60, 6)
    assert [requests_in(point) for point in points] == [1, 2, 3]
    assert [point.end - point.start for point in points] == [10, 10, 10]
    assert points[0].end <= points[1].start + 1e-9


def test_a_window_ending_in_the_past_reads_the_intervals_before_it(clock: Clock, metrics: IstioMetrics) -> None:
    source = LiveSource(metrics, windows=(60, 600), points=6, idle_expiry=3600, clock=clock)
    source.tick()
    metrics.consume([call()] * 7)
    advance(source, clock, 100)
    metrics.consume([call()] * 2)
    advance(source, clock, 100)
    then = source.traffic(100, end=clock.now - 100)
    assert requests_in(then) == 7
    assert requests_in(source.traffic(600)) == 9


def test_no_tick_yet_is_an_empty_window(clock: Clock, metrics: IstioMetrics) -> None:
    metrics.consume([call()])
    source = LiveSource(metrics, windows=(60,), clock=clock)
    traffic = source.traffic(60)
    assert len(traffic.http) == 0 and traffic.end == clock.now
