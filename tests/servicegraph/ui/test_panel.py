"""The side panel: figures, a chart, breakdowns, neighbours, traces with links, failing requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dash import html
from dash.development.base_component import Component

from servicegraph.ui.backend import LocalBackend
from servicegraph.ui.panel import PanelView, edge_panel, node_panel
from servicegraph.ui.settings import UiSettings
from tests.servicegraph.ui.fakes import bookinfo_api

SETTINGS = UiSettings(
    jaeger_url="http://jaeger:16686", zipkin_url="http://zipkin:9411", grafana_url="http://grafana:3000"
)


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = (
        getattr(node, "children", None) if isinstance(node, Component) else node if isinstance(node, list) else None
    )
    if isinstance(children, list):
        for child in children:
            yield from walk(child)
    elif children is not None:
        yield from walk(children)


def parts(view: PanelView) -> list[Any]:
    return [*view.head, *view.figures, *view.breakdowns, *view.traces, *view.nav]


def texts(tree: Any) -> list[str]:
    if isinstance(tree, PanelView):
        tree = parts(tree)
    return [item for item in walk(tree) if isinstance(item, str)]


def links(tree: Any) -> dict[str, str]:
    if isinstance(tree, PanelView):
        tree = parts(tree)
    return {str(item.children): item.href for item in walk(tree) if isinstance(item, html.A)}


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(bookinfo_api())


@pytest.fixture(scope="module")
def graph(backend: LocalBackend) -> dict[str, Any]:
    return backend.graph("5m", "workload", [], False)


def test_a_node_panel_shows_its_figures_chart_breakdowns_and_neighbours(
    backend: LocalBackend, graph: dict[str, Any]
) -> None:
    panel = node_panel(backend.node("service:default:details", "5m", "workload"), graph, "5m", SETTINGS)
    words = texts(panel)
    assert "details" in words and "Request rate" in words and "Latency p95" in words
    figure = panel.chart
    assert figure is not None
    assert [row.text for row in figure.layout.annotations] == ["Rate (/s)", "Errors (%)", "Latency (ms)"]
    assert [trace.name for trace in figure.data] == ["rps", "error_pct", "p50", "p95", "p99"]
    assert len(figure.data[0].y) == 3 and all(rate > 0 for rate in figure.data[0].y)
    # What the node received, from the edges into it.
    assert "Response codes" in words and "500" in words and "18.7%" in words
    neighbours = {
        item.id["node"] for item in walk(panel.nav) if isinstance(item, html.Button) and isinstance(item.id, dict)
    }
    assert neighbours == {"workload:default:productpage-v1", "unknown", "workload:default:details-v1"}


def test_a_node_panel_links_to_its_grafana_dashboard(backend: LocalBackend, graph: dict[str, Any]) -> None:
    panel = node_panel(backend.node("service:default:details", "5m", "workload"), graph, "5m", SETTINGS)
    assert links(panel)["Grafana dashboard"].startswith("http://grafana:3000/d/meshscope-service?var-namespace=default")


def test_an_edge_panel_names_both_ends_and_shows_each_protocol(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.edge("workload:default:reviews-v2", "service:default:ratings", "5m", "workload")
    words = texts(edge_panel(detail, graph, "5m", SETTINGS))
    assert "reviews-v2 → ratings" in words and "edge · grpc" in words and "gRPC statuses" in words


TRACES = {
    "slowest": [
        {
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "duration_ms": 2310,
            "error": False,
            "response_code": 200,
            "start_time": "2026-11-24T22:20:27.938123Z",
        }
    ],
    "failed": [
        {
            "trace_id": "00f067aa0ba902b7aaaaaaaaaaaaaaaa",
            "duration_ms": 4,
            "error": True,
            "response_code": 503,
            "start_time": "2026-11-24T22:21:57.645Z",
        }
    ],
}


def test_an_edge_panel_links_its_slowest_and_failed_traces_to_jaeger_and_zipkin(
    backend: LocalBackend, graph: dict[str, Any]
) -> None:
    detail = backend.edge("workload:default:reviews-v2", "service:default:ratings", "5m", "workload")
    panel = edge_panel({**detail, "traces": TRACES, "failures": []}, graph, "5m", SETTINGS)
    hrefs = [item.href for item in walk(parts(panel)) if isinstance(item, html.A)]
    assert "http://jaeger:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736" in hrefs
    assert "http://zipkin:9411/zipkin/traces/00f067aa0ba902b7aaaaaaaaaaaaaaaa" in hrefs
    assert "503 ✖" in texts(panel)


def test_an_edge_panel_lists_recent_failing_requests(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.edge("workload:default:reviews-v2", "service:default:ratings", "5m", "workload")
    failures = ['[2026-11-24T22:21:57.645Z] "GET /ratings/0 HTTP/1.1" 503 FI', {"response_code": 503, "path": "/r/1"}]
    words = texts(edge_panel({**detail, "traces": TRACES, "failures": failures}, graph, "5m", SETTINGS))
    assert failures[0] in words and "response_code=503 path=/r/1" in words


def test_an_edge_panel_says_when_the_source_keeps_no_traces(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.edge("workload:default:reviews-v2", "service:default:ratings", "5m", "workload")
    detail = {key: value for key, value in detail.items() if key not in ("traces", "failures")}
    words = texts(edge_panel(detail, graph, "5m", SETTINGS))
    assert "This source records no traces." in words and "This source keeps no access-log lines." in words


def test_without_link_urls_the_panel_has_no_links(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.edge("workload:default:reviews-v2", "service:default:ratings", "5m", "workload")
    none = UiSettings(jaeger_url="", zipkin_url="", grafana_url="")
    assert links(edge_panel({**detail, "traces": TRACES}, graph, "5m", none)) == {}


def test_section_keys_change_only_with_their_content(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.node("service:default:details", "5m", "workload")
    first = node_panel(detail, graph, "5m", SETTINGS)
    moved = {**detail, "node": {**detail["node"], "rps": 99.0}, "series": detail["series"][:1]}
    again = node_panel(moved, graph, "5m", SETTINGS)
    assert again.keys["nav"] == first.keys["nav"] and again.keys["head"] == first.keys["head"]
    fewer = node_panel({**detail, "inbound": detail["inbound"][:1]}, graph, "5m", SETTINGS)
    assert fewer.keys["nav"] != first.keys["nav"]
    failing = node_panel({**detail, "node": {**detail["node"], "health": "healthy"}}, graph, "5m", SETTINGS)
    assert failing.keys["head"] != first.keys["head"]


def test_a_panel_without_series_has_no_chart(backend: LocalBackend, graph: dict[str, Any]) -> None:
    detail = backend.node("service:default:details", "5m", "workload")
    assert node_panel({**detail, "series": []}, graph, "5m", SETTINGS).chart is None
