"""The graph builder: golden graphs of every type, each call counted once, health, spans beside the mesh."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from graphdata import GRAPHS, case_traffic, rounded

from servicegraph.builder import GraphOptions, build_graph
from servicegraph.graphjson import to_json
from servicegraph.health import HealthConfig, Thresholds
from servicegraph.model import GRAPH_TYPES
from servicegraph.traffic import Table, Traffic

UPDATE = os.environ.get("MESHSCOPE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("graph_type", GRAPH_TYPES)
def test_records_and_spans_build_the_expected_graph(graph_type: str) -> None:
    graph = build_graph(case_traffic("bookinfo"), GraphOptions(graph_type=graph_type))  # type: ignore[arg-type]
    got = rounded(to_json(graph))
    expected_file = GRAPHS / "bookinfo" / f"expected.{graph_type}.json"
    if UPDATE:
        expected_file.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(expected_file.read_text())


def edge(graph, source: str, target: str, protocol: str) -> dict:  # type: ignore[no-untyped-def]
    return graph.edges[source, target, protocol]


def test_each_call_is_counted_once_on_its_first_hop() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    # 100 gateway calls + 100 to reviews + 100 to details + 53 to ratings + 4 TCP (not requests) + 6 external
    # + 7 from outside the mesh, and span pairs the mesh did not see: user->web, web->checkout,
    # checkout->postgres and checkout->mailer (through kafka), 10 each.
    assert graph.graph["requests"] == 100 + 100 + 100 + 53 + 6 + 7 + 40
    into_reviews = edge(graph, "workload:default:productpage-v1", "service:default:reviews", "http")
    assert into_reviews["requests"] == 100  # client-side rows; the server side's 100 are the next hop
    assert edge(graph, "service:default:reviews", "workload:default:reviews-v1", "http")["requests"] == 50


def test_a_caller_outside_the_mesh_is_the_unknown_node() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    unknown = edge(graph, "unknown", "service:default:details", "http")
    assert unknown["requests"] == 7
    assert unknown["mtls_pct"] == 0.0
    # The server side's other 100 requests came from productpage, which reported them itself.
    assert edge(graph, "workload:default:productpage-v1", "service:default:details", "http")["requests"] == 100


def test_health_follows_kiali_defaults() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    details = edge(graph, "workload:default:productpage-v1", "service:default:details", "http")
    assert details["error_pct"] == pytest.approx(20.0)
    assert details["health"] == "failing"  # 5xx at >= 10%
    gateway = edge(graph, "gateway:istio-system:istio-ingressgateway", "service:default:productpage", "http")
    assert gateway["client_error_pct"] == pytest.approx(10.0)
    assert gateway["health"] == "degraded"  # 4xx at >= 10%, < 20%
    ratings = edge(graph, "workload:default:reviews-v2", "service:default:ratings", "grpc")
    assert ratings["error_pct"] == pytest.approx(100 * 8 / 53)
    assert ratings["grpc_statuses"] == {"0": 45.0, "14": 8.0}
    assert ratings["response_flags"] == {"-": 50.0, "UF": 3.0}
    assert ratings["health"] == "failing"
    assert graph.nodes["service:default:details"]["health"] == "failing"
    assert graph.nodes["workload:default:mysqldb-v1"]["health"] == "healthy"


def test_health_thresholds_are_configurable() -> None:
    lenient = HealthConfig(http_5xx=Thresholds(degraded=30.0, failing=50.0))
    graph = build_graph(case_traffic("bookinfo"), GraphOptions(health=lenient))
    assert edge(graph, "workload:default:productpage-v1", "service:default:details", "http")["health"] == "healthy"


def test_mtls_share_of_client_side_edges_comes_from_the_server_side() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    assert edge(graph, "workload:default:productpage-v1", "service:default:reviews", "http")["mtls_pct"] == 100.0
    assert edge(graph, "service:default:reviews", "workload:default:reviews-v2", "http")["mtls_pct"] == 100.0
    assert edge(graph, "workload:default:productpage-v1", "external::api.example.com", "http")["mtls_pct"] == 0.0


def test_tcp_edges_carry_bytes_per_second() -> None:
    graph = build_graph(case_traffic("bookinfo", seconds=100.0))
    tcp = edge(graph, "workload:default:ratings-v1", "service:default:mysqldb", "tcp")
    assert tcp["requests"] == 4  # connections
    assert tcp["bytes_sent_per_s"] == pytest.approx(4 * 20000 / 100)
    assert tcp["bytes_received_per_s"] == pytest.approx(4 * 5000 / 100)
    assert tcp["p95_ms"] is None


def test_percentiles_come_from_merged_buckets() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    reviews = edge(graph, "workload:default:productpage-v1", "service:default:reviews", "http")
    # 50 calls took 20 ms (bucket 10-25) and 50 took 30 ms (bucket 25-50): the median is the 10-25 bucket's top.
    assert reviews["p50_ms"] == pytest.approx(25.0)
    assert 25.0 < reviews["p95_ms"] <= 50.0
    assert reviews["p99_ms"] >= reviews["p95_ms"]


def test_span_pairs_add_what_the_mesh_did_not_see() -> None:
    graph = build_graph(case_traffic("bookinfo"))
    assert graph.graph["span_pairs_seen_by_mesh"] == 1  # productpage -> reviews: the mesh has it
    pair = edge(graph, "app:shop:web", "app:shop:checkout", "unknown")
    assert pair["origin"] == "spans"
    assert pair["requests"] == 10
    assert pair["errors"] == 1
    database = graph.nodes["database::postgresql:orders"]
    assert database["kind"] == "database" and database["virtual"]
    # A producer and its consumer pair like a client and its server; the broker is on the edge.
    assert edge(graph, "app:shop:checkout", "app:shop:mailer", "unknown")["requests"] == 10
    assert graph.has_edge("unknown", "app:shop:web")  # root server spans: callers outside the traces


@pytest.mark.parametrize(
    ("graph_type", "present", "absent"),
    [
        ("workload", "workload:default:reviews-v2", "app:default:reviews"),
        ("app", "app:default:reviews", "workload:default:reviews-v2"),
        ("versioned_app", "app:default:reviews:v2", "app:default:reviews"),
        ("service", "service:default:reviews", "workload:default:reviews-v2"),
    ],
)
def test_graph_types_name_the_same_traffic_differently(graph_type: str, present: str, absent: str) -> None:
    graph = build_graph(case_traffic("bookinfo"), GraphOptions(graph_type=graph_type))  # type: ignore[arg-type]
    assert present in graph
    assert absent not in graph
    assert graph.graph["requests"] == 406  # the same calls, whatever the names


def test_namespace_filter_keeps_edges_touching_the_namespaces() -> None:
    graph = build_graph(case_traffic("bookinfo"), GraphOptions(namespaces=frozenset({"shop"})))
    assert "app:shop:checkout" in graph
    assert "service:default:reviews" not in graph
    assert all("shop" in (graph.nodes[s]["namespace"], graph.nodes[t]["namespace"]) for s, t in graph.edges())


def test_idle_edges_are_shown_or_hidden() -> None:
    traffic = case_traffic("bookinfo")
    # The ingress gateway fell silent: its label sets are still known (within idle expiry), with no traffic.
    silent_rows = np.asarray([key[1] == "istio-ingressgateway" for key in traffic.http.keys])
    values = np.where(silent_rows[:, None], 0.0, traffic.http.values)
    silent = Traffic(Table(traffic.http.keys, values), traffic.tcp, traffic.spans, traffic.start, traffic.end)
    shown = build_graph(silent)
    into_productpage = edge(shown, "gateway:istio-system:istio-ingressgateway", "service:default:productpage", "http")
    assert into_productpage["idle"] and into_productpage["health"] == "idle" and into_productpage["requests"] == 0
    assert shown.nodes["gateway:istio-system:istio-ingressgateway"]["health"] == "idle"
    hidden = build_graph(silent, GraphOptions(hide_idle=True))
    assert "gateway:istio-system:istio-ingressgateway" not in hidden
    assert not [e for _, _, e in hidden.edges(data=True) if e["idle"]]


def test_a_server_side_naming_the_service_by_its_authority_joins_the_client_sides_service() -> None:
    traffic = case_traffic("bookinfo")
    # productpage's proxy saw the gateway's calls without a mesh SNI and named the service by :authority.
    renamed = [
        key[:11] + ("bookinfo.example.com", "bookinfo.example.com", "default") + key[14:]
        if key[0] == "destination" and key[12] == "productpage" else key
        for key in traffic.http.keys
    ]  # fmt: skip
    graph = build_graph(Traffic(Table(renamed, traffic.http.values), traffic.tcp, traffic.spans, 0, 100))
    assert "service:default:bookinfo.example.com" not in graph
    assert edge(graph, "service:default:productpage", "workload:default:productpage-v1", "http")["requests"] == 100
    assert graph.graph["requests"] == 406
