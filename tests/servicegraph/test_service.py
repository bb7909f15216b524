"""Graphs are built once per source version and view, rebuilt after a tick for the views in use."""

from __future__ import annotations

import threading
import time

import pytest
from graphdata import case_traffic

from servicegraph.builder import GraphOptions
from servicegraph.service import GraphService
from servicegraph.traffic import Traffic


class CountingSource:
    def __init__(self, versioned: bool = True) -> None:
        self.reads = 0
        self._version = 1.0
        self.versioned = versioned
        self.delay = 0.0

    @property
    def version(self) -> float | None:
        return self._version if self.versioned else None

    def tick(self) -> None:
        self._version += 1

    def traffic(self, window: float, end: float | None = None) -> Traffic:
        self.reads += 1
        time.sleep(self.delay)
        return case_traffic("bookinfo")

    def traffic_series(self, window: float, points: int, end: float | None = None) -> list[Traffic]:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_graph_is_built_once_per_source_version() -> None:
    source = CountingSource()
    service = GraphService(source, "test")  # type: ignore[arg-type]
    first = service.graph(300, GraphOptions())
    assert service.graph(300, GraphOptions()) is first and source.reads == 1
    service.graph(300, GraphOptions(graph_type="app"))
    assert source.reads == 2  # another view is another graph
    source.tick()
    assert service.graph(300, GraphOptions()) is not first and source.reads == 3


def test_concurrent_requests_share_one_build() -> None:
    source = CountingSource()
    source.delay = 0.2
    service = GraphService(source, "test")  # type: ignore[arg-type]
    graphs = []
    threads = [threading.Thread(target=lambda: graphs.append(service.graph(60, GraphOptions()))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.reads == 1 and len({id(graph) for graph in graphs}) == 1


def test_refresh_rebuilds_the_views_in_use_and_forgets_the_rest() -> None:
    source, clock = CountingSource(), Clock()
    service = GraphService(source, "test", clock=clock, keep_seconds=30)  # type: ignore[arg-type]
    service.document(300, GraphOptions(), "size", lambda graph: str(graph.number_of_edges()).encode())
    clock.now = 20
    service.graph(60, GraphOptions(graph_type="service"))
    clock.now = 40  # the first view was last asked for 40 s ago
    source.tick()
    service.refresh()
    assert source.reads == 3  # only the service view was rebuilt
    reads = source.reads
    service.graph(60, GraphOptions(graph_type="service"))
    assert source.reads == reads  # the request found it ready


def test_with_stale_seconds_a_request_after_a_tick_gets_the_last_graph_until_the_refresh() -> None:
    source, clock = CountingSource(), Clock()
    service = GraphService(source, "test", clock=clock, stale_seconds=4)  # type: ignore[arg-type]
    first = service.graph(60, GraphOptions())
    source.tick()
    clock.now = 2
    assert service.graph(60, GraphOptions()) is first and source.reads == 1
    service.refresh()
    assert service.graph(60, GraphOptions()) is not first and source.reads == 2
    source.tick()
    clock.now = 10  # no refresh came: too stale to serve
    service.graph(60, GraphOptions())
    assert source.reads == 3


def test_a_source_without_versions_is_reread_after_cache_seconds() -> None:
    source, clock = CountingSource(versioned=False), Clock()
    service = GraphService(source, "test", cache_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    service.graph(60, GraphOptions())
    clock.now = 0.5
    service.graph(60, GraphOptions())
    assert source.reads == 1
    clock.now = 1.5
    service.graph(60, GraphOptions())
    assert source.reads == 2


def test_a_failed_build_is_reported_and_not_cached() -> None:
    source = CountingSource()
    service = GraphService(source, "test")  # type: ignore[arg-type]
    attempts = []

    def failing(window: float, end: float | None = None) -> Traffic:
        attempts.append(window)
        raise RuntimeError("backend down")

    source.traffic = failing  # type: ignore[method-assign]
    for _ in range(2):
        with pytest.raises(RuntimeError, match="backend down"):
            service.graph(60, GraphOptions())
    assert len(attempts) == 2  # the second request tried again rather than getting the cached failure


def test_views_kept_are_bounded_and_only_the_latest_asked_are_rebuilt_after_a_tick() -> None:
    source, clock = CountingSource(), Clock()
    service = GraphService(source, "test", clock=clock)  # type: ignore[arg-type]
    for seconds in range(60, 160):
        clock.now += 0.01
        service.graph(float(seconds), GraphOptions())
    assert len(service._cache) <= 64
    reads = source.reads
    source.tick()
    clock.now += 10
    service.refresh()
    assert source.reads - reads == 8
