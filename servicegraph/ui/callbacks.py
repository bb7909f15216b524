"""The page's callbacks: URL <-> controls, refreshes of the graph and summary, selection, side panel.

Each callback is a thin adapter: the decisions live in pure functions (viewstate, refresh, panel,
summary) that are tested without a browser.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, no_update

from servicegraph.ui.backend import BackendError, CachedBackend, GraphBackend
from servicegraph.ui.banner import banner
from servicegraph.ui.layout import default_view, refresh_options
from servicegraph.ui.panel import PanelView, edge_panel, message_panel, node_panel
from servicegraph.ui.refresh import plan_refresh
from servicegraph.ui.settings import UiSettings
from servicegraph.ui.summary import summary_items
from servicegraph.ui.viewstate import (
    CONTROLS,
    controls_of_view,
    from_query,
    refresh_choices,
    to_query,
    view_of_controls,
)

log = logging.getLogger(__name__)


def _on(value: Any) -> bool:
    return bool(value) and "on" in value


def register(app: dash.Dash, backend: CachedBackend, settings: UiSettings) -> None:
    defaults = default_view(settings)
    windows = settings.window_choices()
    last_failure = [""]  # logged once, not at every refresh of every open page

    @app.callback(
        Output("url", "search"),
        *[Output(component, prop) for component, prop in CONTROLS],
        Output("refresh", "options"),
        Input("url", "search"),
        *[Input(component, prop) for component, prop in CONTROLS],
    )
    def sync_url(search: str | None, *values: Any) -> tuple[Any, ...]:
        # One callback both ways (Dash allows a cycle inside one callback): the URL sets the controls
        # when it changes (page load, back/forward), the controls set the URL otherwise.
        if ctx.triggered_id in (None, "url"):
            view = from_query(search, defaults, windows)
            options = refresh_options(refresh_choices(view.refresh))
            return (no_update, *controls_of_view(view), options)
        query = to_query(view_of_controls(values, defaults), defaults)
        return (query if query != (search or "") else no_update, *[no_update] * len(CONTROLS), no_update)

    @app.callback(
        Output("tick", "interval"),
        Output("tick", "disabled"),
        Input("refresh", "value"),
        Input("paused", "value"),
    )
    def pace(refresh: float | None, paused: list[str] | None) -> tuple[int, bool]:
        return int(1000 * float(refresh or defaults.refresh)), _on(paused)

    @app.callback(
        Output("graph", "elements"),
        Output("graph", "layout"),
        Output("memory", "data"),
        Output("summary", "children"),
        Output("namespaces", "options"),
        Output("known-namespaces", "data"),
        Output("inspect", "options"),
        Output("find-message", "children"),
        Output("banner", "children"),
        Output("banner", "hidden"),
        Input("tick", "n_intervals"),
        Input("graph-type", "value"),
        Input("namespaces", "value"),
        Input("window", "value"),
        Input("hide-idle", "value"),
        Input("find", "value"),
        Input("hide", "value"),
        Input("edge-labels", "value"),
        Input("layout", "value"),
        Input("relayout", "n_clicks"),
        State("memory", "data"),
        State("known-namespaces", "data"),
        prevent_initial_call=True,
    )
    def refresh(
        _tick: int | None,
        graph_type: str,
        namespaces: list[str] | None,
        window: str,
        hide_idle: list[str] | None,
        find: str | None,
        hide: str | None,
        edge_label: str,
        layout: str,
        relayout: int | None,
        memory: dict[str, Any] | None,
        known: list[str] | None,
    ) -> tuple[Any, ...]:
        status = _status(backend)
        view = (window, graph_type, list(namespaces or []), _on(hide_idle))
        failure, unreachable_api = "", ""
        document: dict[str, Any] | None
        try:
            document = backend.graph(*view)
        except BackendError as error:
            failure = str(error)
            unreachable_api = failure if error.status is None else ""  # no answer at all, not a refusal
            if failure != last_failure[0]:
                log.warning("the UI cannot read the graph: %s", error)
            # The last good graph stays on the page (also for a page opened during the outage).
            document = backend.last_graph(*view)
        last_failure[0] = failure
        shown_banner = banner(status, unreachable_api)
        # While the source fails, the bar says so rather than showing the old graph's figures.
        bar = summary_items(document.get("summary") if document and not failure else None, status, failure)
        if document is None:
            return (*[no_update] * 3, bar, *[no_update] * 4, *shown_banner)
        planned = plan_refresh(
            document,
            memory or {},
            graph_type=graph_type,
            layout=layout,
            relayout_clicks=int(relayout or 0),
            edge_label=edge_label,
            find=find or "",
            hide=hide or "",
            known_namespaces=known or [],
            selected_namespaces=namespaces or [],
        )
        return (
            planned.elements if planned.elements is not None else no_update,
            planned.layout if planned.layout is not None else no_update,
            planned.memory,
            bar,
            planned.namespaces,
            planned.namespaces,
            planned.nodes if planned.nodes is not None else no_update,
            planned.message,
            *shown_banner,
        )

    @app.callback(
        Output("selection", "data"),
        Input("graph", "tapNodeData"),
        Input("graph", "tapEdgeData"),
        Input("inspect", "value"),
        Input({"type": "neighbour", "node": ALL}, "n_clicks"),
        Input("panel-close", "n_clicks"),
        Input("graph-type", "value"),
        prevent_initial_call=True,
    )
    def select(
        tap_node: dict[str, Any] | None,
        tap_edge: dict[str, Any] | None,
        inspected: str | None,
        _neighbours: list[int | None],
        _close: int,
        _graph_type: str,
    ) -> dict[str, Any] | None:
        trigger = ctx.triggered[0] if ctx.triggered else {}
        prop = str(trigger.get("prop_id", ""))
        if prop == "graph.tapNodeData" and tap_node:
            return {"kind": "node", "id": tap_node["id"]}
        if prop == "graph.tapEdgeData" and tap_edge:
            return {"kind": "edge", "id": tap_edge["id"], "source": tap_edge["source"], "target": tap_edge["target"]}
        if prop == "inspect.value":
            return {"kind": "node", "id": inspected} if inspected else no_update
        if isinstance(ctx.triggered_id, dict) and ctx.triggered_id.get("type") == "neighbour":
            # New buttons appear with every panel refresh; only a real click (n_clicks >= 1) selects.
            return {"kind": "node", "id": ctx.triggered_id["node"]} if trigger.get("value") else no_update
        return None

    app.clientside_callback(
        dash.ClientsideFunction(namespace="meshscope", function_name="showSelection"),
        Output("selection-drawn", "data"),
        Input("selection", "data"),
    )

    @app.callback(
        Output("panel-head", "children"),
        Output("panel-figures", "children"),
        Output("panel-chart", "figure"),
        Output("panel-chart-box", "hidden"),
        Output("panel-breakdowns", "children"),
        Output("panel-traces", "children"),
        Output("panel-nav", "children"),
        Output("panel", "hidden"),
        Output("panel-keys", "data"),
        Input("selection", "data"),
        Input("tick", "n_intervals"),
        Input("window", "value"),
        State("graph-type", "value"),
        State("namespaces", "value"),
        State("hide-idle", "value"),
        State("panel-keys", "data"),
    )
    def panel(
        selection: dict[str, Any] | None,
        _tick: int | None,
        window: str,
        graph_type: str,
        namespaces: list[str] | None,
        hide_idle: list[str] | None,
        shown: dict[str, str] | None,
    ) -> tuple[Any, ...]:
        if not selection:
            return [], [], {}, True, [], [], [], True, {}
        view = _panel_view(backend, settings, selection, window, graph_type, list(namespaces or []), _on(hide_idle))
        shown = shown or {}

        def unless_shown(section: str, content: Any) -> Any:
            return no_update if view.keys.get(section) == shown.get(section) else content

        return (
            unless_shown("head", view.head),
            view.figures,
            view.chart if view.chart is not None else {},
            view.chart is None,
            view.breakdowns,
            unless_shown("traces", view.traces),
            unless_shown("nav", view.nav),
            False,
            view.keys,
        )


def _panel_view(
    backend: GraphBackend,
    settings: UiSettings,
    selection: dict[str, Any],
    window: str,
    graph_type: str,
    namespaces: list[str],
    hide_idle: bool,
) -> PanelView:
    try:
        graph = backend.graph(window, graph_type, namespaces, hide_idle)
        if selection["kind"] == "node":
            return node_panel(backend.node(selection["id"], window, graph_type), graph, window, settings)
        detail = backend.edge(selection["source"], selection["target"], window, graph_type)
        return edge_panel(detail, graph, window, settings)
    except BackendError as error:
        return message_panel(f"{'Node' if selection['kind'] == 'node' else 'Edge'} not available", str(error))


def _status(backend: GraphBackend) -> dict[str, Any] | None:
    try:
        return backend.status()
    except BackendError as error:
        log.debug("collector status: %s", error)
        return None
