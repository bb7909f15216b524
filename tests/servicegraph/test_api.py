"""The graph's HTTP API on a real port of a real collector, read with a plain HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import networkx as nx
import pytest
from graphdata import GRAPHS, records_of, spans_of

from telemetry.collector import Collector
from tests.servicegraph.graphonly import start_graph_collector


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = start_graph_collector({"resolution": 3600}, metrics=True)
    assert collector.graph is not None
    try:
        records = records_of(GRAPHS / "bookinfo" / "records.json")
        failing = [r._replace(trace_id=f"{n:032x}", start_time=f"2024-05-04T17:22:{n:02d}.000Z") for n, r in
                   enumerate(records) if r.response_code >= 500]  # fmt: skip
        assert collector.pipeline.submit(records + failing, "test", wait=5)
        collector.graph.pairer.consume(spans_of(GRAPHS / "bookinfo" / "spans.json"))
        collector.pipeline.flush(5)
        collector.graph.pairer.expire(now=float("inf"))
        collector.graph.tick()
        yield collector
    finally:
        collector.shutdown()


@pytest.fixture(scope="module")
def api(collector: Collector) -> str:
    assert collector.graph is not None
    return f"http://127.0.0.1:{collector.graph.port}"


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def get_json(url: str) -> Any:
    status, content_type, body = get(url)
    assert status == 200, body
    assert content_type.startswith("application/json")
    return json.loads(body)


def test_the_graph_has_every_figure_on_every_node_and_edge(api: str) -> None:
    graph = get_json(f"{api}/api/graph?window=5m")
    assert graph["graph_type"] == "workload" and graph["source"] == "live"
    figures = {"rps", "error_pct", "client_error_pct", "p50_ms", "p95_ms", "p99_ms", "mtls_pct", "response_codes",
               "response_flags", "grpc_statuses", "bytes_sent_per_s", "bytes_received_per_s", "health", "idle"}  # fmt: skip
    assert graph["edges"] and all(figures <= set(edge) for edge in graph["edges"])
    assert graph["nodes"] and all(figures <= set(node) for node in graph["nodes"])
    details = next(
        e for e in graph["edges"] if e["id"] == "workload:default:productpage-v1->service:default:details:http"
    )
    assert details["health"] == "failing" and details["response_codes"] == {"200": 80.0, "500": 40.0}
    assert graph["summary"]["nodes_failing"] >= 1 and 0 < graph["summary"]["success_pct"] < 100


def test_graph_types_namespaces_and_idle_filters_apply(api: str) -> None:
    service = get_json(f"{api}/api/graph?graph_type=service")
    assert {node["kind"] for node in service["nodes"]} <= {"service", "gateway", "unknown", "external", "database",
                                                           "messaging"}  # fmt: skip
    shop = get_json(f"{api}/api/graph?namespace=shop,nothing&hide_idle=1")
    assert shop["nodes"] and all("default" not in node["id"] for node in shop["nodes"] if node["namespace"])


def test_cytoscape_elements_dot_and_graphml_describe_the_same_graph(api: str) -> None:
    plain = get_json(f"{api}/api/graph?graph_type=app")
    elements = get_json(f"{api}/api/graph?graph_type=app&format=cytoscape")["elements"]
    assert {e["data"]["id"] for e in elements} == {n["id"] for n in plain["nodes"]} | {e["id"] for e in plain["edges"]}
    status, content_type, dot = get(f"{api}/api/graph.dot?graph_type=app")
    assert status == 200 and content_type.startswith("text/vnd.graphviz") and dot.startswith(b"digraph")
    status, _, graphml = get(f"{api}/api/graph.graphml?graph_type=app")
    read = nx.read_graphml(__import__("io").BytesIO(graphml))
    assert set(read.nodes) == {n["id"] for n in plain["nodes"]}


def test_a_node_has_neighbours_and_time_series(api: str) -> None:
    node = get_json(f"{api}/api/node/service:default:reviews?window=5m")
    assert node["node"]["kind"] == "service" and node["node"]["requests"] == 100
    assert node["inbound"] == ["workload:default:productpage-v1"]
    assert set(node["outbound"]) == {"workload:default:reviews-v1", "workload:default:reviews-v2"}
    assert isinstance(node["series"], list)
    missing = get(f"{api}/api/node/service:default:nothing")
    assert missing[0] == 404 and b"nothing" in missing[2]


def test_an_edge_has_series_recent_traces_and_failing_requests(api: str) -> None:
    source, target = "workload:default:productpage-v1", "service:default:details"
    edge = get_json(f"{api}/api/edge/{source}/{target}")
    assert [e["protocol"] for e in edge["edges"]] == ["http"]
    assert set(edge["series"]) == {"http"}
    assert edge["traces"]["failed"] and all(t["error"] for t in edge["traces"]["failed"])
    assert edge["failures"] and all("500" in f["line"] for f in edge["failures"])
    assert get(f"{api}/api/edge/{target}/{source}")[0] == 404


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("window=5x", "window"),
        ("window=-1m", "window"),
        ("graph_type=mesh", "graph_type"),
        ("hide_idle=maybe", "hide_idle"),
        ("format=xml", "format"),
    ],
)
def test_bad_parameters_are_a_400_that_names_them(api: str, query: str, named: str) -> None:
    status, content_type, body = get(f"{api}/api/graph?{query}")
    assert status == 400 and content_type.startswith("application/json")
    assert json.loads(body)["error"].startswith(named)


def test_the_legacy_servicegraph_endpoints_answer_in_their_shapes(api: str) -> None:
    graph = get_json(f"{api}/graph?time_horizon=10m&filter_empty=true")
    assert isinstance(graph["nodes"], dict) and graph["edges"]
    assert all(set(edge) == {"source", "target", "labels"} for edge in graph["edges"])
    d3 = get_json(f"{api}/d3graph")
    assert all(isinstance(link["source"], int) for link in d3["links"])
    status, _, dot = get(f"{api}/dotgraph")
    assert status == 200 and dot.startswith(b'digraph "istio-servicegraph"')
    status, content_type, page = get(f"{api}/dotviz")
    assert status == 200 and content_type.startswith("text/html") and b"istio-servicegraph" in page
    bad = get(f"{api}/graph?time_horizon=soon")
    assert bad[0] == 400 and b"time_horizon" in bad[2]


def test_diff_of_the_graph_with_itself_is_empty(api: str) -> None:
    diff = get_json(f"{api}/api/graph/diff?window=1h&from=now&to=now")
    assert diff["edges_added"] == [] and diff["edges_removed"] == [] and diff["edges_changed"] == []


def test_the_metrics_endpoint_carries_the_connector_and_graph_metrics(api: str, collector: Collector) -> None:
    assert collector.metrics is not None
    text = get(f"http://127.0.0.1:{collector.metrics.port}/metrics")[2].decode()
    assert 'traces_service_graph_request_total{client="web",client_k8s_namespace_name="shop"' in text
    assert 'meshscope_graph_series{table="http"} ' in text and "meshscope_span_pairs_waiting 0.0" in text


def test_status_reports_the_collectors_own_health(api: str) -> None:
    status = get_json(f"{api}/api/status")
    submitted = len(records_of(GRAPHS / "bookinfo" / "records.json"))
    assert status["records_total"] > submitted and status["dropped_total"] == 0
    assert set(status) >= {"records_per_s", "parse_errors_per_s", "drops_per_s"}
