"""The graph API's routes: /api/graph (JSON, Cytoscape, DOT, GraphML), nodes, edges, diff, legacy paths."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import networkx as nx
import orjson
from flask import Blueprint, Flask, Response, request

from servicegraph.api.params import BadRequest, options_of, window_of
from servicegraph.builder import GraphOptions
from servicegraph.exports import to_cytoscape, to_dot, to_graphml
from servicegraph.graphjson import to_json
from servicegraph.health import HealthConfig
from servicegraph.service import GraphService, NotFound, summary

log = logging.getLogger(__name__)


def _json(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _json_document(built: nx.MultiDiGraph) -> bytes:
    return orjson.dumps({**to_json(built), "summary": summary(built)})


def _cytoscape_document(built: nx.MultiDiGraph) -> bytes:
    return orjson.dumps({**built.graph, "summary": summary(built), "elements": to_cytoscape(built)})


_DOCUMENTS: dict[str, Callable[[nx.MultiDiGraph], bytes]] = {"json": _json_document, "cytoscape": _cytoscape_document}


def graph_blueprint(service: GraphService, health: HealthConfig, default_window: float) -> Blueprint:
    api = Blueprint("graph_api", __name__)

    def current() -> tuple[float, GraphOptions]:
        return window_of(request.args, default_window), options_of(request.args, health)

    def serve(form: str, render: Callable[[nx.MultiDiGraph], bytes], mimetype: str) -> Response:
        window, options = current()
        return Response(service.document(window, options, form, render), mimetype=mimetype)

    @api.errorhandler(BadRequest)
    def bad_request(error: BadRequest) -> Response:
        return _error(400, str(error))

    @api.errorhandler(NotFound)
    def not_found(error: NotFound) -> Response:
        return _error(404, str(error))

    @api.get("/api/graph")
    def graph() -> Response:
        fmt = request.args.get("format", "json")
        if fmt not in _DOCUMENTS:
            raise BadRequest(f"format: expected json or cytoscape, got {fmt!r}")
        return serve(fmt, _DOCUMENTS[fmt], "application/json")

    @api.get("/api/graph.dot")
    def graph_dot() -> Response:
        return serve("dot", lambda built: to_dot(built).encode(), "text/vnd.graphviz")

    @api.get("/api/graph.graphml")
    def graph_graphml() -> Response:
        return serve("graphml", to_graphml, "application/graphml+xml")

    @api.get("/api/node/<node>")
    def node(node: str) -> Response:
        window = window_of(request.args, default_window)
        return _json(service.node_detail(node, window, options_of(request.args, health)))

    @api.get("/api/edge/<source>/<target>")
    def edge(source: str, target: str) -> Response:
        window = window_of(request.args, default_window)
        return _json(service.edge_detail(source, target, window, options_of(request.args, health)))

    @api.get("/api/graph/diff")
    def diff() -> Response:
        from servicegraph.diff import diff_graphs

        window = window_of(request.args, default_window)
        options = options_of(request.args, health)
        now = time.time()
        before = service.graph(window, options, end=now - _ago(request.args.get("from"), "from", default=window))
        after = service.graph(window, options, end=now - _ago(request.args.get("to"), "to", default=0.0))
        return _json(diff_graphs(before, after))

    @api.get("/api/health")
    def health_check() -> Response:
        return _json({"status": "ok", "source": service.source_name})

    @api.get("/api/status")
    def status() -> Response:
        if service.status is None and service.unreachable is None:
            return _error(404, "no collector runs in this process: its status is at the collector's own API")
        document: dict[str, Any] = dict(service.status()) if service.status is not None else {}
        document["unreachable"] = unreachable_list(service.unreachable() if service.unreachable is not None else {})
        return _json(document)

    return api


def unreachable_list(unreachable: dict[str, tuple[str, float]]) -> list[dict[str, Any]]:
    """``SelfStats.unreachable()`` as /api/status lists it: ``[{name, detail, since}]`` by name."""
    return [{"name": name, "detail": detail, "since": since} for name, (detail, since) in sorted(unreachable.items())]


def _ago(raw: str | None, name: str, default: float) -> float:
    """``from``/``to`` are how long ago each graph's window ends: ``10m``, ``1h``, or ``now``."""
    if raw is None:
        return default
    if raw in ("now", "0"):
        return 0.0
    return window_of({name: raw.removeprefix("-")}, default, name)


def legacy_blueprint(service: GraphService, health: HealthConfig) -> Blueprint:
    """Istio's old servicegraph addon paths: /graph, /d3graph, /dotgraph, /dotviz, as that addon shaped them."""
    from servicegraph import legacy

    api = Blueprint("legacy_graph", __name__)

    @api.errorhandler(BadRequest)
    def bad_request(error: BadRequest) -> Response:
        return _error(400, str(error))

    def serve(path: str) -> Response:
        try:
            window = legacy.parse_time_horizon(request.args.get("time_horizon"))
        except ValueError as error:
            raise BadRequest(str(error)) from None
        # The addon drew app/version nodes.
        built = service.graph(window, GraphOptions("versioned_app", health=health))
        body, content_type = legacy.render(path, built, legacy.parse_filter_empty(request.args.get("filter_empty")))
        return Response(body, content_type=content_type)

    for path in legacy.ENDPOINTS:
        api.add_url_rule(path, path.strip("/"), lambda path=path: serve(path), methods=["GET"])
    return api


def create_app(service: GraphService, health: HealthConfig, default_window: float) -> Flask:
    app = Flask("meshscope")
    app.register_blueprint(graph_blueprint(service, health, default_window))
    app.register_blueprint(legacy_blueprint(service, health))

    @app.errorhandler(Exception)
    def failed(error: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):
            return _error(error.code or 500, error.description or error.name)
        from servicegraph.sources.prometheus import PrometheusSourceError

        if isinstance(error, PrometheusSourceError):
            return _error(502, str(error))
        log.exception("graph API request failed")
        return _error(500, f"internal error: {type(error).__name__}: {error}")

    return app
