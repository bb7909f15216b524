"""/api/status names the backends that do not answer; a Prometheus graph source reports its own reachability.

A Prometheus source down at start or later: the graph API keeps serving (a JSON 502 for graphs, never a
traceback), /api/status lists it with a one-line reason, and the entry goes when Prometheus answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from flask import Flask

from servicegraph.api.routes import create_app
from servicegraph.config import GraphConfig
from servicegraph.health import HealthConfig
from servicegraph.runtime import GraphRuntime
from servicegraph.service import GraphService
from servicegraph.sources.prometheus import PrometheusSource, PrometheusSourceError
from telemetry.selfmetrics import SelfStats
from tests.servicegraph.ui.fakes import BookinfoSource, serve

import realparts
from conftest import require_program
from realparts import free_port


def status_of(app: Flask) -> dict[str, object]:
    answer = app.test_client().get("/api/status")
    assert answer.status_code == 200, answer.data
    return orjson.loads(answer.data)  # type: ignore[no-any-return]


def test_status_lists_unreachable_backends_beside_the_collectors_rates() -> None:
    stats = SelfStats()
    stats.reachability("otlp", False, "127.0.0.1:4317: gRPC UNAVAILABLE: Connection refused")
    stats.reachability("zipkin", True)
    stats.reachability("fluentd", False, "127.0.0.1:24224: Connection refused")
    service = GraphService(
        BookinfoSource(), "test", status=lambda: {"records_per_s": 2.0}, unreachable=stats.unreachable
    )  # type: ignore[arg-type]
    status = status_of(create_app(service, HealthConfig(), 300.0))
    assert status["records_per_s"] == 2.0
    unreachable = status["unreachable"]
    assert isinstance(unreachable, list)
    assert [(entry["name"], entry["detail"]) for entry in unreachable] == [
        ("fluentd", "127.0.0.1:24224: Connection refused"),
        ("otlp", "127.0.0.1:4317: gRPC UNAVAILABLE: Connection refused"),
    ]
    assert all(isinstance(entry["since"], float) and entry["since"] > 0 for entry in unreachable)
    stats.reachability("otlp", True)
    assert [entry["name"] for entry in status_of(create_app(service, HealthConfig(), 300.0))["unreachable"]] == [  # type: ignore[union-attr]
        "fluentd"
    ]


def test_without_a_collector_or_dependencies_there_is_no_status() -> None:
    app = create_app(GraphService(BookinfoSource(), "test"), HealthConfig(), 300.0)  # type: ignore[arg-type]
    assert app.test_client().get("/api/status").status_code == 404


@pytest.fixture
def runtime_over_closed_prometheus() -> Iterator[tuple[GraphRuntime, SelfStats, str]]:
    url = f"http://127.0.0.1:{free_port()}"
    stats = SelfStats()
    config = GraphConfig(endpoint="127.0.0.1:0", source=f"prometheus={url}", ui_enabled=False, resolution=0.2)
    runtime = GraphRuntime(config, stats, None)
    runtime.start()  # its first tick finds nothing to read; it must start all the same
    try:
        yield runtime, stats, url
    finally:
        runtime.shutdown()


def test_a_collector_whose_prometheus_is_down_keeps_serving_and_names_it(
    runtime_over_closed_prometheus: tuple[GraphRuntime, SelfStats, str],
) -> None:
    runtime, stats, url = runtime_over_closed_prometheus
    client = runtime.app.test_client()
    graph = client.get("/api/graph")
    assert graph.status_code == 502 and graph.mimetype == "application/json"
    error = orjson.loads(graph.data)["error"]
    assert f"{url}/api/v1/query failed: cannot connect: Connection refused" in error and "Traceback" not in error
    assert client.get("/api/health").status_code == 200
    (entry,) = status_of(runtime.app)["unreachable"]  # type: ignore[misc]
    assert entry["name"] == "prometheus" and entry["detail"] == f"{url}: cannot connect: Connection refused"
    assert stats.unreachable()["prometheus"][0] == entry["detail"]


def test_a_prometheus_that_comes_up_later_is_reachable_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = require_program("prometheus", "prometheus")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stats = SelfStats()
    source = PrometheusSource(url, timeout=2, stats=stats)
    try:
        with pytest.raises(PrometheusSourceError):
            source.traffic(60)
        assert stats.unreachable()["prometheus"][0] == f"{url}: cannot connect: Connection refused"
        monkeypatch.setattr(realparts, "free_port", lambda: port)  # the real Prometheus on that very port
        with realparts.prometheus(binary, tmp_path, []) as started:
            assert started == url
            source.traffic(60)
            assert stats.unreachable() == {}
    finally:
        source.close()


def test_a_refused_query_is_an_error_but_not_an_outage() -> None:
    app = Flask("refusing")
    refusal = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    app.add_url_rule("/api/v1/query", "query", lambda: (refusal, 400), methods=["GET", "POST"])
    stats = SelfStats()
    for url in serve(app):
        source = PrometheusSource(url, stats=stats)
        try:
            with pytest.raises(PrometheusSourceError, match="HTTP 400: bad_data: parse error") as raised:
                source.traffic(60)
        finally:
            source.close()
        assert not raised.value.unreachable and stats.unreachable() == {}
