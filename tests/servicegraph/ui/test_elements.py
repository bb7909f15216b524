"""Cytoscape elements from the API's graph document: compact, labelled, classed by find and hide."""

from __future__ import annotations

from typing import Any

import pytest

from servicegraph.ui.elements import ElementView, build_elements, edge_text, edge_width, node_label
from servicegraph.ui.find import parse
from tests.servicegraph.ui.fakes import bookinfo_document

DETAILS_EDGE = "workload:default:productpage-v1->service:default:details:http"
RATINGS_GRPC = "service:default:ratings->workload:default:ratings-v1:grpc"
MYSQL_TCP = "service:default:mysqldb->workload:default:mysqldb-v1:tcp"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return bookinfo_document()


def by_id(elements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {element["data"]["id"]: element for element in elements}


def test_every_node_and_edge_of_the_document_becomes_an_element_with_its_api_id(document: dict[str, Any]) -> None:
    elements = build_elements(document, ElementView())
    assert [element["data"]["id"] for element in elements] == [
        element["data"]["id"] for element in document["elements"]
    ]


def test_elements_carry_no_positions_so_the_browser_keeps_its_own(document: dict[str, Any]) -> None:
    assert all("position" not in element for element in build_elements(document, ElementView()))


def test_elements_carry_only_what_drawing_needs_not_breakdowns(document: dict[str, Any]) -> None:
    edge = by_id(build_elements(document, ElementView()))[DETAILS_EDGE]["data"]
    assert set(edge) == {"id", "source", "target", "protocol", "health", "mtls", "width", "label", "bend"}


def test_the_same_figures_give_equal_elements(document: dict[str, Any]) -> None:
    assert build_elements(document, ElementView()) == build_elements(bookinfo_document(), ElementView())


def test_a_failing_edge_says_so_in_its_label_not_only_in_colour(document: dict[str, Any]) -> None:
    edge = by_id(build_elements(document, ElementView("none")))[DETAILS_EDGE]["data"]
    assert edge["health"] == "failing" and edge["label"] == "✖"


def test_node_labels_mark_degraded_failing_and_idle() -> None:
    assert node_label({"id": "x", "name": "ratings", "health": "failing"}) == "ratings ✖"
    assert node_label({"id": "x", "name": "productpage", "health": "degraded"}) == "productpage ⚠"
    assert node_label({"id": "x", "name": "old", "health": "idle"}) == "old (idle)"
    assert node_label({"id": "x", "name": "reviews", "health": "healthy"}) == "reviews"


def test_a_versioned_app_node_shows_its_version_on_a_second_line() -> None:
    assert (
        node_label({"id": "x", "kind": "app", "name": "reviews", "version": "v2", "health": "healthy"}) == "reviews\nv2"
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("rps", "12 rps"),
        ("share", "25%"),
        ("p50", "4.2 ms"),
        ("p95", "1.2 s"),
        ("p99", "2 s"),
        ("errors", "8.5% err"),
        ("throughput", "1.5 kB/s"),
        ("none", ""),
    ],
)
def test_edge_label_modes(mode: str, expected: str) -> None:
    edge = {
        "protocol": "http",
        "rps": 12.345,
        "p50_ms": 4.2,
        "p95_ms": 1250.0,
        "p99_ms": 2000.0,
        "error_pct": 8.5,
        "bytes_sent_per_s": 1000.0,
        "bytes_received_per_s": 500.0,
    }
    assert edge_text(edge, mode, source_out_rps=49.38) == expected


def test_labels_round_to_two_digits_so_small_changes_redraw_nothing() -> None:
    assert edge_text({"protocol": "http", "rps": 12.31}, "rps", None) == edge_text(
        {"protocol": "http", "rps": 12.44}, "rps", None
    )
    assert edge_text({"protocol": "http", "rps": 1234.0}, "rps", None) == "1.2k rps"


def test_only_edges_sharing_their_two_nodes_are_curved() -> None:
    document = {
        "elements": [
            {"data": {"id": "a"}},
            {"data": {"id": "b"}},
            {"data": {"id": "c"}},
            {"data": {"id": "a->b:http", "source": "a", "target": "b", "protocol": "http"}},
            {"data": {"id": "a->b:grpc", "source": "a", "target": "b", "protocol": "grpc"}},
            {"data": {"id": "c->b:http", "source": "c", "target": "b", "protocol": "http"}},
            {"data": {"id": "b->c:http", "source": "b", "target": "c", "protocol": "http"}},
            {"data": {"id": "a->c:http", "source": "a", "target": "c", "protocol": "http"}},
        ]
    }
    bends = {
        e["data"]["id"]: e["data"]["bend"] for e in build_elements(document, ElementView()) if "source" in e["data"]
    }
    assert bends == {"a->b:http": 1, "a->b:grpc": 1, "c->b:http": 1, "b->c:http": 1, "a->c:http": 0}


def test_tcp_edges_count_connections_and_have_no_error_share() -> None:
    edge = {"protocol": "tcp", "rps": 2.0}
    assert edge_text(edge, "rps", None) == "2 conn/s"
    assert edge_text(edge, "errors", None) == ""


def test_the_traffic_share_is_of_everything_the_source_sent(document: dict[str, Any]) -> None:
    elements = by_id(build_elements(document, ElementView("share")))
    productpage_out = [e for e in elements.values() if e["data"].get("source") == "workload:default:productpage-v1"]
    shares = [float(e["data"]["label"].rstrip("%✖⚠ ").split("%")[0]) for e in productpage_out]
    assert sum(shares) == pytest.approx(100, abs=1.5)


def test_edge_width_grows_with_rate_in_half_pixel_steps_and_is_thin_when_idle() -> None:
    widths = [edge_width(rps, "healthy") for rps in (0.1, 1, 10, 100, 1000, 1e6)]
    assert widths == sorted(widths) and widths[0] < widths[-1] == 8.0
    assert all(width * 2 == int(width * 2) for width in widths)
    assert edge_width(500, "idle") == 1.0


def test_an_edge_all_mutual_tls_gets_the_badge_flag() -> None:
    document = {
        "elements": [
            {"data": {"id": "a", "name": "a"}},
            {"data": {"id": "b", "name": "b"}},
            {
                "data": {
                    "id": "a->b:http",
                    "source": "a",
                    "target": "b",
                    "protocol": "http",
                    "rps": 1.0,
                    "mtls_pct": 100.0,
                }
            },
            {
                "data": {
                    "id": "b->a:http",
                    "source": "b",
                    "target": "a",
                    "protocol": "http",
                    "rps": 1.0,
                    "mtls_pct": 60.0,
                }
            },
        ]
    }
    elements = by_id(build_elements(document, ElementView()))
    assert elements["a->b:http"]["data"]["mtls"] == 1 and elements["b->a:http"]["data"]["mtls"] == 0


def test_find_highlights_matches_and_fades_the_rest(document: dict[str, Any]) -> None:
    elements = by_id(build_elements(document, ElementView(find=parse("protocol=grpc"))))
    assert elements[RATINGS_GRPC]["classes"] == "found"
    assert elements[MYSQL_TCP]["classes"] == "faded"
    assert elements["service:default:reviews"]["classes"] == "faded"


def test_hide_wins_over_find(document: dict[str, Any]) -> None:
    view = ElementView(find=parse("ratings"), hide=parse("kind=service"))
    elements = by_id(build_elements(document, view))
    assert elements["service:default:ratings"]["classes"] == "hidden"
    assert elements["workload:default:ratings-v1"]["classes"] == "found"


def test_without_find_or_hide_no_element_has_a_class(document: dict[str, Any]) -> None:
    assert {element["classes"] for element in build_elements(document, ElementView())} == {""}
