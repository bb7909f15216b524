"""The legend: node shapes, health (colour, border and mark), edge width, idle and mTLS edges.

Symbols are small inline SVG images, so they look like the graph whatever fonts the browser has.
"""

from __future__ import annotations

import urllib.parse

from dash import html
from dash.development.base_component import Component

from servicegraph.exports import COLOURS
from servicegraph.model import DEGRADED, FAILING, HEALTHY, IDLE
from servicegraph.ui.elements import HEALTH_MARKS
from servicegraph.ui.stylesheet import BORDER_STYLES, FILLS, NODE_SHAPES, TEXT

_SHAPE_SVG: dict[str, str] = {
    "ellipse": '<ellipse cx="10" cy="10" rx="8" ry="8"/>',
    "round-rectangle": '<rect x="2" y="3" width="16" height="14" rx="4"/>',
    "triangle": '<polygon points="10,2 18,17 2,17"/>',
    "round-pentagon": '<polygon points="10,2 18,8 15,18 5,18 2,8" stroke-linejoin="round"/>',
    "diamond": '<polygon points="10,1 19,10 10,19 1,10"/>',
    "barrel": '<path d="M4,3 Q10,1 16,3 Q18,10 16,17 Q10,19 4,17 Q2,10 4,3 Z"/>',
    "rhomboid": '<polygon points="6,3 19,3 14,17 1,17"/>',
    "octagon": '<polygon points="7,2 13,2 18,7 18,13 13,18 7,18 2,13 2,7"/>',
}
_DASHES = {"solid": "", "dashed": ' stroke-dasharray="4 2"', "dotted": ' stroke-dasharray="1.5 2"', "double": ""}
KIND_NAMES = {
    "workload": "Workload",
    "app": "App",
    "service": "Service",
    "gateway": "Gateway",
    "external": "External host",
    "database": "Database",
    "messaging": "Messaging",
    "unknown": "Unknown caller",
}


def _image(svg_body: str, alt: str, width: int = 20) -> Component:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" viewBox="0 0 {width} 20">{svg_body}</svg>'
    )
    return html.Img(src="data:image/svg+xml," + urllib.parse.quote(svg), alt=alt, width=width, height=20)


def _node_symbol(shape: str, health: str) -> str:
    line, width = BORDER_STYLES[health]
    style = f'fill="{FILLS[health]}" stroke="{COLOURS[health]}" stroke-width="{min(width, 3)}"{_DASHES[line]}'
    return f"<g {style}>{_SHAPE_SVG[shape]}</g>"


def legend() -> Component:
    kinds = [
        html.Li([_image(_node_symbol(shape, HEALTHY), ""), KIND_NAMES.get(kind, kind)])
        for kind, shape in NODE_SHAPES.items()
    ]
    health = [
        html.Li(
            [
                _image(_node_symbol("ellipse", state), ""),
                f"{state}{HEALTH_MARKS.get(state, ' ✔' if state == HEALTHY else '')}",
            ]
        )
        for state in (HEALTHY, DEGRADED, FAILING, IDLE)
    ]
    arrow = f'<polygon points="30,10 24,6 24,14" fill="{COLOURS[HEALTHY]}"/>'
    edges = [
        html.Li(
            [
                _image(
                    f'<line x1="1" y1="10" x2="25" y2="10" stroke="{COLOURS[HEALTHY]}" stroke-width="1.5"/>{arrow}',
                    "",
                    32,
                ),
                "low rate",
            ]
        ),
        html.Li(
            [
                _image(
                    f'<line x1="1" y1="10" x2="25" y2="10" stroke="{COLOURS[HEALTHY]}" stroke-width="6"/>{arrow}',
                    "",
                    32,
                ),
                "high rate (width grows with rate)",
            ]
        ),
        html.Li(
            [
                _image(
                    f'<line x1="1" y1="10" x2="25" y2="10" stroke="{COLOURS[IDLE]}" stroke-width="2" stroke-dasharray="1.5 2"/>',
                    "",
                    32,
                ),
                "idle (dotted)",
            ]
        ),
        html.Li(
            [
                _image(
                    f'<line x1="1" y1="10" x2="25" y2="10" stroke="{COLOURS[HEALTHY]}" stroke-width="2"/>'
                    f'<rect x="9" y="6" width="8" height="8" fill="white" stroke="{TEXT}" stroke-width="1.5"/>{arrow}',
                    "",
                    32,
                ),
                "all traffic mutual TLS (hollow square)",
            ]
        ),
    ]
    return html.Details(
        [
            html.Summary("Legend"),
            html.Div(
                [
                    html.Div([html.H3("Node kind"), html.Ul(kinds)], className="legend-row"),
                    html.Div(
                        [html.H3("Health"), html.Ul(health), html.Span("edges too: colour and mark", className="hint")],
                        className="legend-row",
                    ),
                    html.Div([html.H3("Edges"), html.Ul(edges)], className="legend-row"),
                ],
                className="legend-columns",
            ),
        ],
        id="legend",
        className="legend",
        open=True,
    )
