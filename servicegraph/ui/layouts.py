"""The graph layouts offered, as Cytoscape layout options.

A layout runs over the whole graph only when the view asks for it (first graph, another graph type,
another layout, the re-layout button); refreshes keep every node where it is. ``run`` distinguishes
two requests for the same layout, so Cytoscape sees a changed layout and runs it again.

The default, hierarchical left to right, is computed by the server (servicegraph.ui.hierarchy) and
sent as a ``preset`` layout with every node's position: it takes milliseconds where dagre in the
browser takes tens of seconds at a few hundred nodes. The others run in the browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from servicegraph.ui.hierarchy import hierarchical_positions

HIERARCHY = "hierarchy"
LAYOUTS: dict[str, tuple[str, dict[str, Any]]] = {
    HIERARCHY: ("Hierarchical, left to right", {"name": "preset"}),
    "dagre": (
        "Dagre, left to right (small graphs)",
        {"name": "dagre", "rankDir": "LR", "nodeSep": 24, "rankSep": 110, "edgeSep": 8},
    ),
    "breadthfirst": ("Breadth first, top down", {"name": "breadthfirst", "directed": True, "spacingFactor": 1.1}),
    "cose": ("Force directed (cose)", {"name": "cose", "nodeRepulsion": 40000, "idealEdgeLength": 90, "numIter": 1000}),
}
DEFAULT_LAYOUT = HIERARCHY
IDLE_LAYOUT: dict[str, Any] = {"name": "preset", "fit": False}


def layout_options(name: str, run: int, nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, Any]:
    _, options = LAYOUTS.get(name, LAYOUTS[DEFAULT_LAYOUT])
    laid_out = {**options, "animate": False, "fit": True, "padding": 30, "run": run}
    if options["name"] == "preset":
        laid_out["positions"] = hierarchical_positions(nodes, edges)
    return laid_out
