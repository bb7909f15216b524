"""The page: summary bar, controls, the graph, the side panel and the legend.

Every control has a visible label tied to it and is reachable by Tab; the graph canvas, which a
keyboard cannot click, has a keyboard route to the same side panel ("Details of").
"""

from __future__ import annotations

from typing import Any

import dash_cytoscape as cyto
from dash import dcc, html
from dash.development.base_component import Component

from servicegraph.model import GRAPH_TYPES
from servicegraph.ui.elements import EDGE_LABELS
from servicegraph.ui.layouts import IDLE_LAYOUT, LAYOUTS
from servicegraph.ui.legend import legend
from servicegraph.ui.settings import UiSettings
from servicegraph.ui.stylesheet import stylesheet
from servicegraph.ui.viewstate import ViewState, refresh_choices

GRAPH_TYPE_NAMES = {"workload": "Workloads", "app": "Apps", "versioned_app": "Versioned apps", "service": "Services"}


def default_view(settings: UiSettings) -> ViewState:
    return ViewState(window=settings.default_window, refresh=settings.refresh_seconds)


def refresh_label(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


def refresh_options(seconds: list[float]) -> list[dict[str, Any]]:
    return [{"label": f"every {refresh_label(value)}", "value": value} for value in seconds]


def _control(label: str, control_id: str, control: Component, class_name: str = "") -> Component:
    return html.Div(
        [html.Label(label, htmlFor=control_id, id=f"{control_id}-label"), control],
        className=f"control {class_name}".strip(),
    )


def _dropdown(control_id: str, options: list[dict[str, Any]], value: Any, **extra: Any) -> Component:
    return dcc.Dropdown(id=control_id, options=options, value=value, clearable=False, searchable=False, **extra)


def _switch(control_id: str, label: str, checked: bool) -> Component:
    return dcc.Checklist(
        id=control_id,
        options=[{"label": label, "value": "on"}],
        value=["on"] if checked else [],
        className="switch",
    )


def controls(settings: UiSettings, view: ViewState) -> Component:
    return html.Div(
        [
            _control(
                "Graph",
                "graph-type",
                _dropdown(
                    "graph-type", [{"label": GRAPH_TYPE_NAMES[t], "value": t} for t in GRAPH_TYPES], view.graph_type
                ),
            ),
            _control(
                "Namespaces",
                "namespaces",
                dcc.Dropdown(
                    id="namespaces", options=[], value=list(view.namespaces), multi=True, placeholder="all namespaces"
                ),
                "wide",
            ),
            _control(
                "Window",
                "window",
                _dropdown(
                    "window", [{"label": f"last {w}", "value": w} for w in settings.window_choices()], view.window
                ),
            ),
            _control(
                "Refresh", "refresh", _dropdown("refresh", refresh_options(refresh_choices(view.refresh)), view.refresh)
            ),
            html.Div(
                [_switch("paused", "Pause", view.paused), _switch("hide-idle", "Hide idle", view.hide_idle)],
                className="control switches",
            ),
            _control(
                "Edge labels",
                "edge-labels",
                _dropdown(
                    "edge-labels", [{"label": name, "value": key} for key, name in EDGE_LABELS.items()], view.edge_label
                ),
            ),
            _control(
                "Layout",
                "layout",
                html.Div(
                    [
                        _dropdown(
                            "layout", [{"label": name, "value": key} for key, (name, _) in LAYOUTS.items()], view.layout
                        ),
                        html.Button(
                            "Re-layout",
                            id="relayout",
                            n_clicks=0,
                            className="button",
                            title="Lay the whole graph out again",
                        ),
                    ],
                    className="inline",
                ),
                "wide",
            ),
            _control(
                "Find",
                "find",
                dcc.Input(
                    id="find",
                    type="search",
                    value=view.find,
                    debounce=0.5,
                    placeholder="rt>500 %err>1",
                    className="text",
                ),
            ),
            _control(
                "Hide",
                "hide",
                dcc.Input(
                    id="hide",
                    type="search",
                    value=view.hide,
                    debounce=0.5,
                    placeholder="idle or protocol=tcp",
                    className="text",
                ),
            ),
            _control(
                "Details of",
                "inspect",
                dcc.Dropdown(id="inspect", options=[], value=None, placeholder="choose a node…"),
                "wide",
            ),
            html.Div(id="find-message", className="find-message", role="status", **{"aria-live": "polite"}),
        ],
        className="controls",
        role="group",
        **{"aria-label": "Graph controls"},
    )


def page(settings: UiSettings) -> Component:
    view = default_view(settings)
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="memory", data={}),
            dcc.Store(id="selection", data=None),
            dcc.Store(id="selection-drawn", data=None),
            dcc.Store(id="panel-keys", data={}),
            dcc.Store(id="known-namespaces", data=[]),
            dcc.Interval(id="tick", interval=int(view.refresh * 1000), disabled=view.paused),
            html.Header(
                [
                    html.H1(["meshscope", html.Span(" service graph", className="subtitle")]),
                    html.Div(
                        id="summary",
                        className="summary",
                        role="status",
                        **{"aria-live": "polite", "aria-label": "Mesh summary"},
                    ),
                ],
                className="top",
            ),
            # What the collector cannot reach (callbacks fill it from /api/status); hidden when all answer.
            html.Div(id="banner", className="banner", role="alert", hidden=True),
            controls(settings, view),
            html.Main(
                [
                    html.Div(
                        [
                            html.Div(
                                cyto.Cytoscape(
                                    id="graph",
                                    elements=[],
                                    stylesheet=stylesheet(),
                                    layout=IDLE_LAYOUT,
                                    autoRefreshLayout=False,
                                    minZoom=0.05,
                                    maxZoom=4,
                                    wheelSensitivity=0.3,
                                    boxSelectionEnabled=False,
                                    responsive=True,
                                    style={"width": "100%", "height": "100%"},
                                ),
                                className="graph-area",
                                role="img",
                                **{
                                    "aria-label": "Service graph. Use 'Details of' to open a node's details from the keyboard."
                                },
                            ),
                            legend(),
                        ],
                        className="graph-column",
                    ),
                    html.Aside(
                        [
                            html.Button(
                                "✕",
                                id="panel-close",
                                n_clicks=0,
                                className="close",
                                title="Close the details",
                                **{"aria-label": "Close the details"},
                            ),
                            html.Div(id="panel-head"),
                            html.Div(id="panel-figures"),
                            html.Div(
                                dcc.Graph(
                                    id="panel-chart",
                                    figure={},
                                    config={"displayModeBar": False, "responsive": True},
                                    className="chart",
                                ),
                                id="panel-chart-box",
                                hidden=True,
                                role="img",
                                **{"aria-label": "Request rate, error percentage and latency over the window"},
                            ),
                            html.Div(id="panel-breakdowns"),
                            html.Div(id="panel-traces"),
                            html.Div(id="panel-nav"),
                        ],
                        id="panel",
                        className="panel",
                        hidden=True,
                        **{"aria-label": "Details"},
                    ),
                ],
                className="main",
            ),
        ],
        className="page",
    )
