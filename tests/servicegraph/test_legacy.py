"""Istio's old servicegraph addon's endpoints (/graph, /d3graph, /dotgraph, /dotviz) from our graphs.

Golden files under tests/testdata/graphs/legacy; regenerate after an intended change with
MESHSCOPE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from bisect import bisect_left
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from servicegraph.builder import GraphOptions, build_graph
from servicegraph.legacy import (
    d3graph_endpoint,
    dotgraph_endpoint,
    dotviz_endpoint,
    graph_endpoint,
    legacy_graph,
    parse_filter_empty,
    parse_time_horizon,
    render,
)
from servicegraph.traffic import BUCKETS, HTTP_WIDTH, SPAN_WIDTH, TCP_WIDTH, Table, Traffic
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

GOLDEN = Path(__file__).parents[1] / "testdata" / "graphs" / "legacy"
UPDATE = os.environ.get("MESHSCOPE_UPDATE_GOLDEN") == "1"
WINDOW = 10.0

Row = tuple[tuple[str, ...], np.ndarray]


def _identity(source: str, destination: str, service: str, host: str = "", source_ns: str = "default") -> list[str]:
    def app_version(workload: str) -> tuple[str, str]:
        app, _, version = workload.rpartition("-")
        return (app, version) if re.fullmatch(r"v\d+", version) else (workload, "unknown")

    source_app, source_version = app_version(source)
    destination_app, destination_version = app_version(destination)
    if destination == "unknown":
        destination_app = destination_version = "unknown"
    host = host or f"{service}.default.svc.cluster.local"
    return [
        source, source_ns, "unknown", source_app, source_version, destination, "default", "unknown",
        destination_app, destination_version, host, service, "default", "mutual_tls",
    ]  # fmt: skip


def http_call(
    source: str,
    service: str,
    destination: str,
    count: int,
    reporters: tuple[str, ...] = ("source", "destination"),
    source_ns: str = "default",
) -> list[Row]:
    rows: list[Row] = []
    for reporter in reporters:
        values = np.zeros(HTTP_WIDTH)
        values[:4] = (count, count * 20.0, count * 100, count * 1000)
        values[BUCKETS + bisect_left(DURATION_BUCKETS_MS, 20.0)] = count
        key = (reporter, *_identity(source, destination, service, source_ns=source_ns), "http", "200", "", "-")
        rows.append((key, values))
    return rows


def tcp_call(source: str, service: str, destination: str, connections: int, received: int, host: str = "") -> Row:
    key = ("source", *_identity(source, destination, service, host), "tcp", "-")
    return key, np.array([connections, received, 4.0 * received])


def traffic(http: list[Row], tcp: list[Row]) -> Traffic:
    def table(rows: list[Row], width: int) -> Table:
        return Table([key for key, _ in rows], np.array([values for _, values in rows]).reshape(len(rows), width))

    return Traffic(table(http, HTTP_WIDTH), table(tcp, TCP_WIDTH), Table.empty(SPAN_WIDTH), 0.0, WINDOW)


def bookinfo() -> Traffic:
    """Bookinfo-shaped: ratings has two callers and two versions; details is called from outside the mesh."""
    http = [
        *http_call("istio-ingressgateway", "productpage", "productpage-v1", 100, source_ns="istio-system"),
        *http_call("productpage-v1", "reviews", "reviews-v1", 40),
        *http_call("productpage-v1", "reviews", "reviews-v2", 60),
        *http_call("reviews-v2", "ratings", "ratings-v1", 45),
        *http_call("reviews-v2", "ratings", "ratings-v2", 15),
        *http_call("reviews-v3", "ratings", "ratings-v1", 15),
        *http_call("reviews-v3", "ratings", "ratings-v2", 5),
        *http_call("unknown", "details", "details-v1", 10, reporters=("destination",)),
        *http_call("productpage-v1", "details", "details-v1", 0),  # seen before the window: idle
    ]
    tcp = [
        tcp_call("ratings-v1", "mysqldb", "mysqldb-v1", 2, 3000),
        tcp_call("productpage-v1", "PassthroughCluster", "unknown", 1, 500, host="203.0.113.10:443"),
    ]
    return traffic(http, tcp)


@pytest.fixture(scope="module")
def workload_graph() -> nx.MultiDiGraph:
    return build_graph(bookinfo())


def check_golden(name: str, got: str) -> None:
    expected_file = GOLDEN / name
    if UPDATE:
        expected_file.parent.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(got)
    assert got == expected_file.read_text()


def as_json(document: object) -> str:
    return json.dumps(document, indent=1) + "\n"


# The shapes.


@pytest.mark.parametrize("graph_type", ["workload", "versioned_app"])
@pytest.mark.parametrize("filter_empty", [False, True])
def test_graph_endpoint_matches_the_golden_shape(graph_type: str, filter_empty: bool) -> None:
    graph = build_graph(bookinfo(), GraphOptions(graph_type=graph_type))  # type: ignore[arg-type]
    suffix = ".filter_empty" if filter_empty else ""
    check_golden(f"graph.{graph_type}{suffix}.json", as_json(graph_endpoint(graph, filter_empty)))


def test_graph_endpoint_names_nodes_app_workload_and_labels_rates_as_text(workload_graph: nx.MultiDiGraph) -> None:
    document = graph_endpoint(workload_graph)
    assert set(document) == {"nodes", "edges"}
    assert document["nodes"]["productpage (productpage-v1)"] == {}
    assert "unknown (unknown)" in document["nodes"]
    assert "203.0.113.10:443 (unknown)" in document["nodes"]
    assert not any(name.startswith("service:") or " (" not in name for name in document["nodes"])
    edges = {(edge["source"], edge["target"]): edge["labels"] for edge in document["edges"]}
    assert edges["istio-ingressgateway (istio-ingressgateway)", "productpage (productpage-v1)"] == {
        "reqs/sec": "10.000000"
    }
    assert edges["productpage (productpage-v1)", "reviews (reviews-v2)"] == {"reqs/sec": "6.000000"}
    assert edges["ratings (ratings-v1)", "mysqldb (mysqldb-v1)"] == {"bytes/sec": "300.000000"}
    assert edges["unknown (unknown)", "details (details-v1)"] == {"reqs/sec": "1.000000"}
    assert all(set(edge) == {"source", "target", "labels"} for edge in document["edges"])


def test_a_service_hop_is_shared_among_its_callers_in_proportion(workload_graph: nx.MultiDiGraph) -> None:
    rates = {(edge.source, edge.target): edge.value for edge in legacy_graph(workload_graph).edges}
    # ratings-v1 served 60 requests in 10 s; reviews-v2 sent 60 of the 80 that reached ratings.
    assert rates["reviews (reviews-v2)", "ratings (ratings-v1)"] == pytest.approx(4.5)
    assert rates["reviews (reviews-v3)", "ratings (ratings-v1)"] == pytest.approx(1.5)
    assert rates["reviews (reviews-v2)", "ratings (ratings-v2)"] == pytest.approx(1.5)
    assert rates["reviews (reviews-v3)", "ratings (ratings-v2)"] == pytest.approx(0.5)


def test_filter_empty_drops_silent_edges_and_the_nodes_only_they_touch(workload_graph: nx.MultiDiGraph) -> None:
    everything = graph_endpoint(workload_graph, filter_empty=False)
    filtered = graph_endpoint(workload_graph, filter_empty=True)
    pair = ("productpage (productpage-v1)", "details (details-v1)")
    assert {"reqs/sec": "0.000000"} in [e["labels"] for e in everything["edges"] if (e["source"], e["target"]) == pair]
    assert pair not in {(e["source"], e["target"]) for e in filtered["edges"]}
    assert all(float(next(iter(edge["labels"].values()))) > 0 for edge in filtered["edges"])
    assert len(filtered["edges"]) == len(everything["edges"]) - 1
    assert set(filtered["nodes"]) == {name for edge in filtered["edges"] for name in (edge["source"], edge["target"])}


def test_filter_empty_of_a_silent_mesh_leaves_nothing() -> None:
    silent = traffic(http_call("productpage-v1", "reviews", "reviews-v1", 0), [])
    graph = build_graph(silent)
    assert graph_endpoint(graph, filter_empty=True) == {"nodes": {}, "edges": []}
    assert set(graph_endpoint(graph)["nodes"]) == {"productpage (productpage-v1)", "reviews (reviews-v1)"}


def test_the_service_graph_keeps_its_service_nodes() -> None:
    graph = build_graph(bookinfo(), GraphOptions(graph_type="service"))
    names = set(graph_endpoint(graph)["nodes"])
    assert {"reviews (unknown)", "ratings (unknown)", "details (unknown)"} <= names


def test_d3graph_links_index_into_its_node_list(workload_graph: nx.MultiDiGraph) -> None:
    document = d3graph_endpoint(workload_graph)
    check_golden("d3graph.workload.json", as_json(document))
    assert set(document) == {"nodes", "links"}
    names = [node["name"] for node in document["nodes"]]
    assert all(set(node) == {"name"} for node in document["nodes"])
    as_graph = graph_endpoint(workload_graph)
    assert sorted(names) == sorted(as_graph["nodes"])
    linked = [
        {"source": names[link["source"]], "target": names[link["target"]], "labels": link["labels"]}
        for link in document["links"]
    ]
    assert linked == as_graph["edges"]


def test_dotgraph_is_the_addons_digraph(workload_graph: nx.MultiDiGraph) -> None:
    text = dotgraph_endpoint(workload_graph)
    check_golden("dotgraph.workload.dot", text)
    lines = text.splitlines()
    assert lines[0] == 'digraph "istio-servicegraph" {' and lines[-1] == "}"
    assert '"productpage (productpage-v1)" -> "reviews (reviews-v2)" [label="reqs/sec: 6.000000"];' in lines
    assert '"ratings (ratings-v1)" [label="ratings (ratings-v1)"];' in lines
    assert len(lines) == 2 + len(graph_endpoint(workload_graph)["edges"]) + len(graph_endpoint(workload_graph)["nodes"])


def test_dotgraph_quotes_names_with_quotes_and_backslashes() -> None:
    graph = nx.MultiDiGraph()
    graph.add_node("a", kind="workload", app='say "hi"', workload="w\\1", name="w\\1")
    graph.add_node("b", kind="workload", app="b", workload="b-v1", name="b-v1")
    graph.add_edge("a", "b", key="http", protocol="http", rps=1.5)
    assert '"say \\"hi\\" (w\\\\1)" -> "b (b-v1)" [label="reqs/sec: 1.500000"];' in dotgraph_endpoint(graph)


def test_dotviz_embeds_the_dot_escaped_for_html(workload_graph: nx.MultiDiGraph) -> None:
    page = dotviz_endpoint(workload_graph)
    match = re.search(r'<pre id="dot" hidden>(.*?)</pre>', page, re.DOTALL)
    assert match is not None
    assert html.unescape(match.group(1)) == dotgraph_endpoint(workload_graph)
    assert "viz.js" in page and "Viz(dot.textContent" in page


def test_dotviz_cannot_be_broken_out_of_by_a_node_name() -> None:
    graph = nx.MultiDiGraph()
    graph.add_node("x", kind="workload", app="</pre><script>alert(1)</script>", workload="w", name="w")
    graph.add_edge("x", "x", key="http", protocol="http", rps=1.0)
    page = dotviz_endpoint(graph)
    assert "<script>alert(1)" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_render_gives_each_endpoints_body_and_content_type(workload_graph: nx.MultiDiGraph) -> None:
    body, content_type = render("/graph", workload_graph, True)
    assert content_type == "application/json"
    assert json.loads(body) == graph_endpoint(workload_graph, True)
    assert render("/d3graph", workload_graph)[1] == "application/json"
    assert render("/dotgraph", workload_graph) == (
        dotgraph_endpoint(workload_graph).encode(),
        "text/plain; charset=utf-8",
    )
    assert render("/dotviz", workload_graph)[1] == "text/html; charset=utf-8"
    with pytest.raises(ValueError, match="/force"):
        render("/force", workload_graph)


def test_simulated_bookinfo_access_logs_give_the_addons_bookinfo_graph() -> None:
    from telemetry.demo.entries import generate
    from telemetry.demo.files import PodLogWriter
    from telemetry.envoy.render import compile_renderer
    from telemetry.ingest import ingest

    render_line = compile_renderer("istio")
    with tempfile.TemporaryDirectory() as folder:
        writers: dict[str, PodLogWriter] = {}
        for entry in generate(200):
            writer = writers.get(entry.pod.workload)
            if writer is None:
                writer = writers[entry.pod.workload] = PodLogWriter(Path(folder) / "pods", entry.pod)
            writer.write([render_line(entry.fields)])
        for writer in writers.values():
            writer.close()
        result = ingest([str(writer.path) for writer in writers.values()])
    graph = build_graph(result.traffic, GraphOptions(graph_type="versioned_app"))
    document = graph_endpoint(graph, filter_empty=True)
    reviews = {edge["target"] for edge in document["edges"] if edge["source"] == "productpage (v1)"}
    assert {"reviews (v1)", "reviews (v2)", "reviews (v3)", "details (v1)"} <= reviews
    callers_of_ratings = {edge["source"] for edge in document["edges"] if edge["target"] == "ratings (v1)"}
    assert callers_of_ratings == {"reviews (v2)", "reviews (v3)"}  # v1 shows no stars


# Query parameters.


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("30s", 30), ("1h", 3600), ("1m30s", 90), ("2d4h", 187200), ("1w", 604800), ("1y", 31536000),
     ("1500ms", 1.5), ("1s500ms", 1.5), ("", 300), (None, 300)],
)  # fmt: skip
def test_time_horizon_reads_prometheus_durations(text: str | None, seconds: float) -> None:
    assert parse_time_horizon(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "m", "5 m", "1.5h", "30s1m", "5mm", "-5m", "5M", "0s", "0", "1h "])
def test_time_horizon_refuses_anything_else_naming_the_parameter(text: str) -> None:
    with pytest.raises(ValueError, match="^time_horizon: "):
        parse_time_horizon(text)


def test_filter_empty_is_on_only_for_exactly_true() -> None:
    assert parse_filter_empty("true") is True
    assert [parse_filter_empty(text) for text in ("True", "1", "yes", "", None)] == [False] * 5
