"""Exports of the graph: Cytoscape.js elements, Graphviz DOT (escaping checked by a strict reader), GraphML, files."""

from __future__ import annotations

import io
import json
import re
from bisect import bisect_left
from pathlib import Path

import networkx as nx
import numpy as np
import orjson
import pytest

from servicegraph.builder import GraphOptions, build_graph
from servicegraph.exports import COLOURS, SHAPES, to_cytoscape, to_dot, to_graphml, write_graph
from servicegraph.graphjson import edge_id, to_json
from servicegraph.traffic import BUCKETS, HTTP_WIDTH, SPAN_WIDTH, TCP_WIDTH, Table, Traffic
from telemetry.exporters.prometheus.istio_metrics import DURATION_BUCKETS_MS

# A small mesh, as Istio's series would count it over 10 s: each call reported by both proxies.

WINDOW = 10.0


def _call(
    source: str, service: str, destination: str, count: int, ms: float, code: str = "200", source_ns: str = "default"
) -> list[tuple[tuple[str, ...], np.ndarray]]:
    rows: list[tuple[tuple[str, ...], np.ndarray]] = []
    for reporter in ("source", "destination"):
        key = (
            reporter, source, source_ns, "unknown", source.rsplit("-", 1)[0], source.rsplit("-", 1)[-1],
            destination, "default", "unknown", destination.rsplit("-", 1)[0], destination.rsplit("-", 1)[-1],
            f"{service}.default.svc.cluster.local", service, "default", "mutual_tls", "http", code, "", "-",
        )  # fmt: skip
        values = np.zeros(HTTP_WIDTH)
        values[:4] = (count, count * ms, count * 100, count * 1000)
        values[BUCKETS + bisect_left(DURATION_BUCKETS_MS, ms)] = count
        rows.append((key, values))
    return rows


def mesh_traffic(reviews_ms: float = 20.0, ratings_failures: int = 0) -> Traffic:
    rows = [
        *_call("istio-ingressgateway", "productpage", "productpage-v1", 100, 30.0, source_ns="istio-system"),
        *_call("productpage-v1", "reviews", "reviews-v1", 40, reviews_ms),
        *_call("productpage-v1", "reviews", "reviews-v2", 60, reviews_ms),
        *_call("reviews-v2", "ratings", "ratings-v1", 60 - ratings_failures, 5.0),
        *_call("productpage-v1", "details", "details-v1", 0, 5.0),  # known from before the window: idle
    ]
    if ratings_failures:
        rows += _call("reviews-v2", "ratings", "ratings-v1", ratings_failures, 5.0, code="503")
    tcp_key = (
        "destination", "ratings-v1", "default", "unknown", "ratings", "v1", "mysqldb-v1", "default", "unknown",
        "mysqldb", "v1", "mysqldb.default.svc.cluster.local", "mysqldb", "default", "mutual_tls", "tcp", "-",
    )  # fmt: skip
    http = Table([key for key, _ in rows], np.array([values for _, values in rows]))
    tcp = Table([tcp_key], np.array([[5.0, 5000.0, 20000.0]]))
    assert tcp.values.shape[1] == TCP_WIDTH
    return Traffic(http, tcp, Table.empty(SPAN_WIDTH), 1000.0, 1000.0 + WINDOW)


@pytest.fixture
def graph() -> nx.MultiDiGraph:
    return build_graph(mesh_traffic(ratings_failures=12))


# Cytoscape.js


def test_cytoscape_elements_carry_every_node_and_edge_with_graphjson_ids(graph: nx.MultiDiGraph) -> None:
    elements = to_cytoscape(graph)
    nodes = [element["data"] for element in elements if "source" not in element["data"]]
    edges = [element["data"] for element in elements if "source" in element["data"]]
    assert [node["id"] for node in nodes] == sorted(graph.nodes)
    assert elements[: len(nodes)] == [element for element in elements if "source" not in element["data"]]
    assert {edge["id"] for edge in edges} == {edge_id(s, t, k) for s, t, k in graph.edges(keys=True)}
    ratings = next(edge for edge in edges if edge["id"] == "workload:default:reviews-v2->service:default:ratings:http")
    assert ratings["source"] == "workload:default:reviews-v2" and ratings["target"] == "service:default:ratings"
    assert ratings["rps"] == pytest.approx(6.0)
    assert ratings["error_pct"] == pytest.approx(20.0)
    assert ratings["response_codes"] == {"200": 48.0, "503": 12.0}
    reviews_v2 = next(node for node in nodes if node["id"] == "workload:default:reviews-v2")
    assert reviews_v2["kind"] == "workload" and reviews_v2["app"] == "reviews" and reviews_v2["version"] == "v2"


def test_cytoscape_classes_name_kind_or_protocol_and_health(graph: nx.MultiDiGraph) -> None:
    by_id = {element["data"]["id"]: element["classes"] for element in to_cytoscape(graph)}
    assert by_id["service:default:ratings"] == "service failing"
    assert by_id["workload:default:productpage-v1->service:default:details:http"] == "http idle"
    assert by_id["service:default:mysqldb->workload:default:mysqldb-v1:tcp"] == "tcp healthy"


def test_cytoscape_breakdowns_are_copies_of_the_graphs(graph: nx.MultiDiGraph) -> None:
    elements = to_cytoscape(graph)
    ratings = next(e["data"] for e in elements if e["data"]["id"].endswith("reviews-v2->service:default:ratings:http"))
    ratings["response_codes"]["503"] = 0.0
    assert graph.edges["workload:default:reviews-v2", "service:default:ratings", "http"]["response_codes"]["503"] == 12


# DOT, read back by a strict reader of the subset to_dot writes.

_TOKEN = re.compile(r'\s+|->|[{}\[\];,=]|"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*', re.DOTALL)
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None, f"DOT lexer stuck at {text[position : position + 30]!r}"
        if not match.group().isspace():
            tokens.append(match.group())
        position = match.end()
    return tokens


def _unquote(token: str) -> str:
    assert token.startswith('"') and token.endswith('"'), f"expected a quoted string, got {token!r}"
    body = token[1:-1]
    out, position = [], 0
    while position < len(body):
        if body[position] == "\\":
            pair = body[position : position + 2]
            assert pair in _ESCAPES, f"unexpected escape {pair!r}"
            out.append(_ESCAPES[pair])
            position += 2
        else:
            out.append(body[position])
            position += 1
    return "".join(out)


def read_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """Nodes and edges of a ``digraph``; fails on anything outside the grammar to_dot writes."""
    tokens = _tokens(text)
    assert tokens[0] == "digraph" and tokens[2] == "{" and tokens[-1] == "}", tokens[:3]
    _unquote(tokens[1])
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    position = 3

    def attributes() -> dict[str, str]:
        nonlocal position
        assert tokens[position] == "[", tokens[position]
        position += 1
        attrs = {}
        while tokens[position] != "]":
            name, equals, value = tokens[position : position + 3]
            assert re.fullmatch(r"[a-z]+", name) and equals == "=", (name, equals)
            attrs[name] = _unquote(value)
            position += 3
            if tokens[position] == ",":
                position += 1
        position += 1
        return attrs

    while position < len(tokens) - 1:
        head = tokens[position]
        if head in ("graph", "node", "edge"):
            position += 1
            attributes()
        elif tokens[position + 1] == "->":
            source, target = _unquote(head), _unquote(tokens[position + 2])
            position += 3
            edges.append((source, target, attributes()))
        else:
            position += 1
            nodes[_unquote(head)] = attributes()
        assert tokens[position] == ";", tokens[position]
        position += 1
    assert position == len(tokens) - 1
    return nodes, edges


STRANGE_IDS = [
    'workload:default:say "hi"',
    "back\\slash",
    "trailing backslash\\",
    'quote at the end"',
    "ünïcødé ✓ 服务",
    "two\nlines",
    "-> { } [ ] ; = , // # <b>html</b>",
    "\\N \\G \\L",  # Graphviz's label escapes, which must stay text
]


def test_dot_escaping_keeps_every_strange_id_and_label_intact() -> None:
    graph = nx.MultiDiGraph()
    for position, node in enumerate(STRANGE_IDS):
        graph.add_node(node, kind="workload", name=node, health="healthy", idle=False)
        graph.add_edge(node, STRANGE_IDS[position - 1], key="http", protocol="http", rps=1.0, error_pct=0.0)
    nodes, edges = read_dot(to_dot(graph))
    assert set(nodes) == set(STRANGE_IDS)
    assert all(nodes[node]["label"] == node and nodes[node]["tooltip"] == node for node in STRANGE_IDS)
    assert {(source, target) for source, target, _ in edges} == {(s, t) for s, t in graph.edges()}


def test_dot_draws_kind_health_and_traffic(graph: nx.MultiDiGraph) -> None:
    nodes, edges = read_dot(to_dot(graph))
    assert set(nodes) == set(graph.nodes)
    for node, attrs in graph.nodes(data=True):
        assert nodes[node]["shape"] == SHAPES[attrs["kind"]], node
        assert nodes[node]["color"] == COLOURS[attrs["health"]], node
    assert nodes["gateway:istio-system:istio-ingressgateway"]["label"] == "istio-ingressgateway"
    by_pair = {(source, target): attrs for source, target, attrs in edges}
    ratings = by_pair["workload:default:reviews-v2", "service:default:ratings"]
    assert ratings["label"] == "6.00 rps\n20.0% err\np95 4.8 ms"
    assert ratings["color"] == COLOURS["failing"]
    assert "style" not in ratings
    idle = by_pair["workload:default:productpage-v1", "service:default:details"]
    assert idle["style"] == "dashed" and idle["label"] == "http: idle"
    assert by_pair["service:default:mysqldb", "workload:default:mysqldb-v1"]["label"] == "0.50 conn/s"
    assert len(edges) == graph.number_of_edges()


def test_dot_labels_versioned_apps_with_their_version() -> None:
    graph = build_graph(mesh_traffic(), GraphOptions(graph_type="versioned_app"))
    nodes, _ = read_dot(to_dot(graph))
    assert nodes["app:default:reviews:v2"]["label"] == "reviews\nv2"
    assert nodes["app:default:reviews:v2"]["style"] == "rounded"


# GraphML


def test_graphml_reads_back_with_the_same_nodes_edges_and_figures(graph: nx.MultiDiGraph) -> None:
    back = nx.read_graphml(io.BytesIO(to_graphml(graph)), force_multigraph=True)
    assert isinstance(back, nx.MultiDiGraph)
    assert set(back.nodes) == set(graph.nodes)
    assert sorted(back.edges(keys=True)) == sorted((s, t, edge_id(s, t, k)) for s, t, k in graph.edges(keys=True))
    for source, target, key, attrs in graph.edges(keys=True, data=True):
        read = back.edges[source, target, edge_id(source, target, key)]
        assert read["protocol"] == key
        for name in ("requests", "rps", "errors", "error_pct", "p95_ms", "mtls_pct", "bytes_received_per_s"):
            if attrs[name] is None:
                assert name not in read, (source, target, name)
            else:
                assert read[name] == pytest.approx(attrs[name]), (source, target, name)
        assert read["idle"] is attrs["idle"]
        assert json.loads(read["response_codes"]) == attrs["response_codes"]
    for node, attrs in graph.nodes(data=True):
        assert back.nodes[node]["kind"] == attrs["kind"]
        assert back.nodes[node]["out_rps"] == pytest.approx(attrs["out_rps"])
    assert back.graph["graph_type"] == "workload" and back.graph["window"] == WINDOW
    assert back.graph["json_attributes"] == "grpc_statuses,response_codes,response_flags"


def test_graphml_keeps_parallel_edges_of_two_protocols_apart() -> None:
    graph = nx.MultiDiGraph()
    graph.add_edge("a", "b", key="http", protocol="http", rps=2.0)
    graph.add_edge("a", "b", key="tcp", protocol="tcp", rps=3.0, p95_ms=None)
    back = nx.read_graphml(io.BytesIO(to_graphml(graph)), force_multigraph=True)
    assert {key: attrs["rps"] for _, _, key, attrs in back.edges(keys=True, data=True)} == {
        "a->b:http": 2.0,
        "a->b:tcp": 3.0,
    }
    assert "p95_ms" not in back.edges["a", "b", "a->b:tcp"]


# Files


def test_write_graph_chooses_the_format_by_extension(graph: nx.MultiDiGraph, tmp_path: Path) -> None:
    for name in ("g.json", "g.dot", "g.GV", "g.graphml"):
        write_graph(graph, tmp_path / name)
    assert orjson.loads((tmp_path / "g.json").read_bytes()) == orjson.loads(orjson.dumps(to_json(graph)))
    assert (tmp_path / "g.json").read_text().startswith('{\n  "')  # indented
    assert (tmp_path / "g.dot").read_text() == to_dot(graph) == (tmp_path / "g.GV").read_text()
    read_dot((tmp_path / "g.dot").read_text())
    back = nx.read_graphml(tmp_path / "g.graphml", force_multigraph=True)
    assert back.number_of_edges() == graph.number_of_edges()


def test_write_graph_refuses_an_unknown_extension_naming_the_accepted_ones(
    graph: nx.MultiDiGraph, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"'\.svg'.*\.json, \.dot, \.gv, \.graphml"):
        write_graph(graph, tmp_path / "g.svg")
    with pytest.raises(ValueError, match=r"\(none\)"):
        write_graph(graph, tmp_path / "graph")
    assert list(tmp_path.iterdir()) == []
