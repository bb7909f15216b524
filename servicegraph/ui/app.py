"""The Dash app of the live service graph, mounted on the Flask app that serves the graph API."""

from __future__ import annotations

from pathlib import Path

import dash
import dash_cytoscape as cyto
from flask import Flask, abort

from servicegraph.ui.backend import CachedBackend, GraphBackend
from servicegraph.ui.callbacks import register
from servicegraph.ui.layout import page
from servicegraph.ui.settings import UiSettings

ASSETS = Path(__file__).parent / "assets"


def attach_ui(server: Flask, backend: GraphBackend, settings: UiSettings) -> dash.Dash:
    """The UI at ``/`` of ``server``, next to its ``/api/...`` routes, reading graphs from ``backend``."""
    problems = settings.validate()
    if problems:
        raise ValueError("graph.ui: " + "; ".join(problems))
    # The extra bundle brings the dagre and klay layouts (served from the package, not a CDN).
    cyto.load_extra_layouts()
    app = dash.Dash(
        "meshscope",
        server=server,
        url_base_pathname="/",
        assets_folder=str(ASSETS),
        title="meshscope · service graph",
        update_title=None,
        serve_locally=True,
    )
    app.layout = page(settings)
    register(app, CachedBackend(backend), settings)
    _no_catch_all(server)
    return app


def _no_catch_all(server: Flask) -> None:
    # Dash answers every unknown GET path with its page (for multi-page apps); here that would turn
    # a mistyped /api/... URL into a 200 HTML page. The page lives at / only; the rest is a real 404.
    if "/<path:path>" in server.view_functions:
        server.view_functions["/<path:path>"] = lambda path: abort(404)
