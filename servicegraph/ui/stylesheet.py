"""The Cytoscape stylesheet: shape by node kind, colour and line style by health, width by rate.

Health is never told by colour alone: a node's border style (solid, dashed, double, dotted) and its
label mark (⚠ degraded, ✖ failing, "(idle)") say it too, and an edge's label carries the same mark.
An edge whose traffic was all mutual TLS carries a hollow square badge at its middle.
"""

from __future__ import annotations

from typing import Any

from servicegraph.exports import COLOURS
from servicegraph.model import (
    APP,
    DATABASE,
    DEGRADED,
    EXTERNAL,
    FAILING,
    GATEWAY,
    HEALTHY,
    IDLE,
    MESSAGING,
    SERVICE,
    UNKNOWN_NODE,
    WORKLOAD,
)
from servicegraph.ui.elements import FADED, FOUND, HIDDEN

# Cytoscape shapes, close to the DOT export's (Kiali's vocabulary where it has one).
NODE_SHAPES: dict[str, str] = {
    WORKLOAD: "ellipse",
    APP: "round-rectangle",
    SERVICE: "triangle",
    GATEWAY: "round-pentagon",
    EXTERNAL: "diamond",
    DATABASE: "barrel",
    MESSAGING: "rhomboid",
    UNKNOWN_NODE: "octagon",
}
BORDER_STYLES: dict[str, tuple[str, float]] = {
    HEALTHY: ("solid", 2.0),
    DEGRADED: ("dashed", 3.0),
    FAILING: ("double", 5.0),
    IDLE: ("dotted", 2.0),
}
FILLS: dict[str, str] = {HEALTHY: "#e8f5e6", DEGRADED: "#fdebd9", FAILING: "#fadcdc", IDLE: "#f0f0f0"}
HIGHLIGHT = "#0066cc"
TEXT = "#1f2328"


def stylesheet() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "selector": "node",
            "style": {
                "label": "data(label)",
                "width": 34,
                "height": 34,
                "background-color": FILLS[IDLE],
                "border-width": 2,
                "border-color": COLOURS[IDLE],
                "font-family": "DejaVu Sans, Helvetica, Arial, sans-serif",
                "font-size": 11,
                "color": TEXT,
                "text-valign": "bottom",
                "text-halign": "center",
                "text-margin-y": 4,
                "text-wrap": "wrap",
                "text-max-width": 140,
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.8,
                "text-background-padding": 1,
                # Labels vanish when zoomed out far enough to be unreadable: the biggest saving at scale.
                "min-zoomed-font-size": 7,
            },
        },
        {
            "selector": "edge",
            "style": {
                "width": "data(width)",
                "line-color": COLOURS[IDLE],
                "target-arrow-color": COLOURS[IDLE],
                "target-arrow-shape": "triangle",
                "arrow-scale": 0.9,
                "curve-style": "straight",
                "label": "data(label)",
                "font-family": "DejaVu Sans, Helvetica, Arial, sans-serif",
                "font-size": 9,
                "color": TEXT,
                "text-rotation": "autorotate",
                # Above the line, so the line and its mTLS badge stay visible.
                "text-margin-y": -9,
                "text-background-color": "#ffffff",
                "text-background-opacity": 0.85,
                "text-background-padding": 1,
                "min-zoomed-font-size": 7,
            },
        },
    ]
    for kind, shape in NODE_SHAPES.items():
        rules.append({"selector": f'node[kind = "{kind}"]', "style": {"shape": shape}})
    for health, (line, width) in BORDER_STYLES.items():
        rules.append(
            {
                "selector": f'node[health = "{health}"]',
                "style": {
                    "background-color": FILLS[health],
                    "border-color": COLOURS[health],
                    "border-style": line,
                    "border-width": width,
                },
            }
        )
        edge = {
            "line-color": COLOURS[health],
            "target-arrow-color": COLOURS[health],
            "line-style": "dotted" if health == IDLE else "solid",
        }
        rules.append({"selector": f'edge[health = "{health}"]', "style": edge})
    rules += [
        {
            "selector": "edge[mtls = 1]",
            "style": {
                "mid-target-arrow-shape": "square",
                "mid-target-arrow-color": TEXT,
                "mid-target-arrow-fill": "hollow",
            },
        },
        {"selector": "edge[bend = 1]", "style": {"curve-style": "bezier"}},
        {"selector": f".{FADED}", "style": {"opacity": 0.25}},
        {
            "selector": f"node.{FOUND}",
            # An outline follows the node's shape, around the border that tells its health.
            "style": {
                "outline-width": 4,
                "outline-color": HIGHLIGHT,
                "outline-offset": 3,
                "outline-opacity": 0.85,
                "font-weight": "bold",
            },
        },
        {
            "selector": f"edge.{FOUND}",
            "style": {"underlay-color": HIGHLIGHT, "underlay-opacity": 0.35, "underlay-padding": 5},
        },
        {"selector": f".{HIDDEN}", "style": {"display": "none"}},
        {
            "selector": ":selected",
            "style": {"overlay-color": HIGHLIGHT, "overlay-opacity": 0.2, "overlay-padding": 6},
        },
    ]
    return rules
