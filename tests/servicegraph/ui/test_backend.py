"""Backends: the graph API over HTTP and in-process give the same documents; errors name the URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from servicegraph.ui.backend import (
    BackendError,
    CachedBackend,
    HttpBackend,
    LocalBackend,
    edge_path,
    graph_path,
    node_path,
)
from tests.servicegraph.ui.fakes import bookinfo_api, serve

from realparts import free_port


@pytest.fixture(scope="module")
def api_app() -> Flask:
    return bookinfo_api()


@pytest.fixture(scope="module")
def api_url(api_app: Flask) -> Iterator[str]:
    yield from serve(api_app)


def test_http_and_local_backends_read_the_same_graph(api_app: Flask, api_url: str) -> None:
    over_http = HttpBackend(api_url).graph("5m", "app", ["default"], True)
    in_process = LocalBackend(api_app).graph("5m", "app", ["default"], True)
    assert over_http == in_process
    assert over_http["graph_type"] == "app" and over_http["summary"]["nodes"] == len(
        [e for e in over_http["elements"] if "source" not in e["data"]]
    )


def test_node_and_edge_details_are_read_by_id(api_url: str) -> None:
    backend = HttpBackend(api_url)
    node = backend.node("service:default:reviews", "5m", "workload")
    assert node["node"]["name"] == "reviews" and node["outbound"] == [
        "workload:default:reviews-v1",
        "workload:default:reviews-v2",
    ]
    edge = backend.edge("service:default:reviews", "workload:default:reviews-v1", "5m", "workload")
    assert [e["protocol"] for e in edge["edges"]] == ["http"] and len(edge["series"]["http"]) == 3


def test_an_api_refusal_is_an_error_naming_the_url_and_the_apis_reason(api_url: str) -> None:
    with pytest.raises(BackendError, match=rf"{api_url}/api/node/service:default:nothing: HTTP 404: no node") as caught:
        HttpBackend(api_url).node("service:default:nothing", "5m", "workload")
    assert caught.value.status == 404


def test_a_bad_parameter_is_reported_with_the_apis_message(api_app: Flask) -> None:
    with pytest.raises(BackendError, match="HTTP 400: graph_type: expected one of"):
        LocalBackend(api_app).graph("5m", "galaxy", [], False)


def test_an_api_without_a_status_endpoint_gives_unknown_health(api_app: Flask, api_url: str) -> None:
    assert HttpBackend(api_url).status() is None
    assert LocalBackend(api_app).status() is None


def test_collector_status_is_read_where_the_api_has_it() -> None:
    app = Flask("status")
    document: dict[str, Any] = {"records_per_s": 12.5, "parse_errors_per_s": 0.0, "drops_per_s": 0.0}
    app.get("/api/status")(lambda: document)
    assert LocalBackend(app).status() == document


def test_an_unreachable_api_is_an_error_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError, match=f"cannot reach {url}"):
        HttpBackend(url, timeout=2).graph("5m", "workload", [], False)


def test_a_non_http_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an http"):
        HttpBackend("127.0.0.1:8050")


def test_paths_carry_the_view_and_escape_ids() -> None:
    assert graph_path("5m", "app", ["default", "shop"], True) == (
        "/api/graph?format=cytoscape&window=5m&graph_type=app&hide_idle=1&namespace=default%2Cshop"
    )
    assert (
        node_path("external::my host", "1m", "workload")
        == "/api/node/external::my%20host?window=1m&graph_type=workload"
    )
    assert edge_path("a:b", "c/d", "1m", "service").startswith("/api/edge/a:b/c%2Fd?")


class CountingBackend:
    def __init__(self) -> None:
        self.calls = 0

    def graph(self, window: str, graph_type: str, namespaces: list[str], hide_idle: bool) -> dict[str, Any]:
        self.calls += 1
        return {"call": self.calls}


def test_the_cache_answers_repeated_graph_requests_within_its_ttl() -> None:
    now = [0.0]
    counting = CountingBackend()
    cached = CachedBackend(counting, ttl=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cached.graph("5m", "app", ["b", "a"], False) == {"call": 1}
    assert cached.graph("5m", "app", ["a", "b"], False) == {"call": 1}  # the same namespaces in another order
    assert cached.graph("5m", "service", [], False) == {"call": 2}
    now[0] = 1.5
    assert cached.graph("5m", "app", ["a", "b"], False) == {"call": 3}


def test_the_last_graph_of_a_view_outlives_its_ttl_for_when_the_source_fails() -> None:
    now = [0.0]
    counting = CountingBackend()
    cached = CachedBackend(counting, ttl=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cached.last_graph("5m", "app", [], False) is None
    cached.graph("5m", "app", ["a"], False)
    now[0] = 60.0
    assert cached.last_graph("5m", "app", ["a"], False) == {"call": 1}
    assert cached.last_graph("5m", "service", ["a"], False) is None  # another view: nothing to show
