"""The stylesheet: a shape per node kind, health by colour and by line style, find and hide classes."""

from __future__ import annotations

from typing import Any

from servicegraph.exports import COLOURS
from servicegraph.model import HEALTH_ORDER, NODE_KINDS
from servicegraph.ui.stylesheet import stylesheet


def rule(selector: str) -> dict[str, Any]:
    matches = [item["style"] for item in stylesheet() if item["selector"] == selector]
    assert len(matches) == 1, f"expected one rule for {selector!r}, got {len(matches)}"
    return matches[0]


def test_every_node_kind_has_its_own_shape() -> None:
    shapes = [rule(f'node[kind = "{kind}"]')["shape"] for kind in NODE_KINDS]
    assert len(set(shapes)) == len(NODE_KINDS)


def test_every_health_has_its_own_colour_and_its_own_border_style() -> None:
    styles = [rule(f'node[health = "{health}"]') for health in HEALTH_ORDER]
    assert [style["border-color"] for style in styles] == [COLOURS[health] for health in HEALTH_ORDER]
    # Told apart without colour too.
    assert len({style["border-style"] for style in styles}) == len(HEALTH_ORDER)


def test_edges_take_the_health_colour_and_idle_ones_are_dotted() -> None:
    assert rule('edge[health = "failing"]')["line-color"] == COLOURS["failing"]
    assert rule('edge[health = "idle"]')["line-style"] == "dotted"


def test_edge_width_and_labels_come_from_the_elements_data() -> None:
    edge = rule("edge")
    assert edge["width"] == "data(width)" and edge["label"] == "data(label)"
    assert rule("node")["label"] == "data(label)"


def test_edges_are_straight_unless_they_share_their_nodes_with_another() -> None:
    assert rule("edge")["curve-style"] == "straight" and rule("edge[bend = 1]")["curve-style"] == "bezier"


def test_mutual_tls_edges_carry_a_badge_at_their_middle() -> None:
    assert rule("edge[mtls = 1]")["mid-target-arrow-shape"] == "square"


def test_hidden_elements_are_not_displayed_and_faded_ones_are_see_through() -> None:
    assert rule(".hidden")["display"] == "none"
    assert rule(".faded")["opacity"] < 0.5


def test_labels_vanish_when_zoomed_out_to_keep_large_graphs_fast() -> None:
    assert rule("node")["min-zoomed-font-size"] > 0 and rule("edge")["min-zoomed-font-size"] > 0
