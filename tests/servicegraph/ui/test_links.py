"""Links out: traces in Jaeger and Zipkin, each node's Grafana dashboard with the UI's window."""

from __future__ import annotations

import urllib.parse

import pytest

from servicegraph.ui.links import grafana_dashboard, jaeger_trace, zipkin_trace

GRAFANA = "http://grafana:3000/"


def dashboard(node: dict[str, str], window: str = "5m") -> tuple[str, dict[str, str]]:
    url = grafana_dashboard(GRAFANA, node, window)
    assert url is not None
    parts = urllib.parse.urlsplit(url)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


def test_trace_links_open_the_trace_in_jaeger_and_zipkin() -> None:
    assert jaeger_trace("http://jaeger:16686/", "4bf92f3577b34da6") == "http://jaeger:16686/trace/4bf92f3577b34da6"
    assert zipkin_trace("http://zipkin:9411", "4bf92f3577b34da6") == "http://zipkin:9411/zipkin/traces/4bf92f3577b34da6"


def test_no_url_configured_means_no_link() -> None:
    assert jaeger_trace("", "abc") is None and zipkin_trace("", "abc") is None
    assert grafana_dashboard("", {"kind": "service", "service": "reviews"}, "5m") is None


def test_a_workload_opens_the_workload_dashboard() -> None:
    path, query = dashboard({"kind": "workload", "namespace": "default", "workload": "reviews-v1"})
    assert path == "/d/meshscope-workload"
    assert query == {"var-namespace": "default", "var-workload": "reviews-v1", "from": "now-5m", "to": "now"}


def test_a_gateway_is_a_workload_too() -> None:
    path, query = dashboard({"kind": "gateway", "namespace": "istio-system", "workload": "istio-ingressgateway"})
    assert path == "/d/meshscope-workload" and query["var-workload"] == "istio-ingressgateway"


def test_a_versioned_app_selects_app_and_version() -> None:
    path, query = dashboard({"kind": "app", "namespace": "default", "app": "reviews", "version": "v2"})
    assert path == "/d/meshscope-workload" and query["var-app"] == "reviews" and query["var-version"] == "v2"


def test_a_service_opens_the_service_dashboard() -> None:
    path, query = dashboard({"kind": "service", "namespace": "default", "service": "ratings"})
    assert path == "/d/meshscope-service" and query["var-service"] == "ratings"


@pytest.mark.parametrize("kind", ["external", "database", "messaging", "unknown"])
def test_nodes_outside_the_mesh_open_the_mesh_dashboard(kind: str) -> None:
    path, query = dashboard({"kind": kind, "namespace": ""})
    assert path == "/d/meshscope-mesh" and set(query) == {"from", "to"}


@pytest.mark.parametrize(
    ("window", "span"), [("1m", "now-1m"), ("90s", "now-90s"), ("1h", "now-1h"), ("1m30s", "now-90s")]
)
def test_the_window_becomes_grafanas_time_range_in_one_unit(window: str, span: str) -> None:
    assert dashboard({"kind": "unknown"}, window)[1]["from"] == span
