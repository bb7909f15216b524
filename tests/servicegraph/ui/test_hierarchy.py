"""The server's hierarchical layout: callers left of callees, cycles survived, parts apart, no overlap."""

from __future__ import annotations

import random

from servicegraph.ui.hierarchy import NODE_SEP, RANK_SEP, hierarchical_positions


def test_every_callee_is_right_of_its_callers() -> None:
    edges = [("gateway", "web"), ("web", "api"), ("api", "db"), ("web", "cache"), ("gateway", "api")]
    positions = hierarchical_positions(["gateway", "web", "api", "db", "cache"], edges)
    assert all(positions[source]["x"] < positions[target]["x"] for source, target in edges)
    assert positions["api"]["x"] == 2 * RANK_SEP  # the longest path from the gateway decides


def test_a_cycle_is_drawn_without_failing_and_without_overlap() -> None:
    positions = hierarchical_positions(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    spots = {(p["x"], p["y"]) for p in positions.values()}
    assert len(spots) == 3


def test_no_two_nodes_share_a_spot_in_a_large_random_mesh() -> None:
    rng = random.Random(3)
    nodes = [f"n{i}" for i in range(400)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(1600)]
    positions = hierarchical_positions(nodes, edges)
    assert set(positions) == set(nodes)
    assert len({(p["x"], p["y"]) for p in positions.values()}) == len(nodes)


def test_ordering_removes_the_crossing_of_two_parallel_chains() -> None:
    # a1->b1 and a2->b2 drawn crossed would put b2 above b1; the sweeps keep the chains straight.
    positions = hierarchical_positions(
        ["a1", "a2", "b2", "b1"], [("a1", "b1"), ("a2", "b2"), ("root", "a1"), ("root", "a2")]
    )
    assert (positions["a1"]["y"] < positions["a2"]["y"]) == (positions["b1"]["y"] < positions["b2"]["y"])


def test_separate_parts_are_stacked_and_lone_nodes_go_below() -> None:
    positions = hierarchical_positions(["x", "y", "p", "q", "r", "alone"], [("x", "y"), ("p", "q"), ("q", "r")])
    assert positions["p"]["y"] < positions["x"]["y"]  # the larger part first
    assert positions["alone"]["y"] > max(positions[n]["y"] for n in "xypqr")
    assert abs(positions["x"]["y"] - positions["p"]["y"]) >= NODE_SEP
