"""A refresh sends what changed: whole-graph layouts only when the view asks, elements only when different."""

from __future__ import annotations

from typing import Any

import pytest

from servicegraph.ui.refresh import FIND_HELP, Refresh, plan_refresh
from tests.servicegraph.ui.fakes import bookinfo_document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return bookinfo_document()


def plan(document: dict[str, Any], memory: dict[str, Any], **changes: Any) -> Refresh:
    arguments: dict[str, Any] = {
        "graph_type": "workload",
        "layout": "hierarchy",
        "relayout_clicks": 0,
        "edge_label": "rps",
        "find": "",
        "hide": "",
        "known_namespaces": [],
        "selected_namespaces": [],
    }
    arguments.update(changes)
    return plan_refresh(document, memory, **arguments)


def test_the_first_graph_is_laid_out_whole_by_the_server(document: dict[str, Any]) -> None:
    first = plan(document, {})
    assert first.elements and first.layout is not None and first.layout["name"] == "preset"
    node_ids = {e["data"]["id"] for e in first.elements if "source" not in e["data"]}
    assert set(first.layout["positions"]) == node_ids


def test_a_browser_layout_is_sent_as_options_without_positions(document: dict[str, Any]) -> None:
    laid_out = plan(document, {}, layout="cose").layout
    assert laid_out is not None and laid_out["name"] == "cose" and "positions" not in laid_out


def test_an_empty_graph_is_not_laid_out_and_the_first_nodes_then_are(document: dict[str, Any]) -> None:
    empty = plan({"elements": []}, {})
    assert empty.layout is None
    assert plan(document, empty.memory).layout is not None


def test_a_plain_refresh_keeps_the_layout_and_sends_nothing_when_nothing_changed(document: dict[str, Any]) -> None:
    first = plan(document, {})
    again = plan(document, first.memory)
    assert again.layout is None and again.elements is None and again.nodes is None


def test_changed_figures_send_elements_but_no_layout(document: dict[str, Any]) -> None:
    first = plan(document, {})
    relabelled = plan(document, first.memory, edge_label="p95")
    assert relabelled.elements is not None and relabelled.layout is None


@pytest.mark.parametrize("change", [{"graph_type": "app"}, {"layout": "dagre"}, {"relayout_clicks": 1}])
def test_another_graph_type_layout_or_a_relayout_click_lays_out_again(
    document: dict[str, Any], change: dict[str, Any]
) -> None:
    first = plan(document, {})
    assert first.layout is not None
    changed = plan(document, first.memory, **change)
    assert changed.layout is not None and changed.layout["run"] == first.layout["run"] + 1
    assert changed.elements is not None


def test_namespaces_seen_stay_offered_with_the_selected_ones(document: dict[str, Any]) -> None:
    refreshed = plan(document, {}, known_namespaces=["old"], selected_namespaces=["picked"])
    assert refreshed.namespaces == ["default", "istio-system", "old", "picked", "shop"]


def test_node_choices_are_sent_when_the_node_set_changes(document: dict[str, Any]) -> None:
    first = plan(document, {})
    assert first.nodes is not None
    assert {"label": "reviews (service, default)", "value": "service:default:reviews"} in first.nodes
    fewer = {
        **document,
        "elements": [
            e for e in document["elements"] if e["data"]["id"] != "unknown" and e["data"].get("source") != "unknown"
        ],
    }
    assert plan(fewer, first.memory).nodes is not None


def test_the_message_counts_what_find_and_hide_matched(document: dict[str, Any]) -> None:
    refreshed = plan(document, {}, find="protocol=grpc", hide="kind=app")
    assert refreshed.message == "found: 0 nodes, 2 edges; hidden: 3 nodes, 0 edges"


def test_a_bad_find_expression_is_reported_and_the_graph_still_drawn(document: dict[str, Any]) -> None:
    refreshed = plan(document, {}, find="rt>fast")
    assert refreshed.message.startswith("Find: rt: expected a number")
    assert refreshed.elements and {element["classes"] for element in refreshed.elements} == {""}


def test_without_find_or_hide_the_message_explains_the_syntax(document: dict[str, Any]) -> None:
    assert plan(document, {}).message == FIND_HELP
