"""The endpoints of Istio's old servicegraph addon (``addons/servicegraph``, removed in Istio 1.1), from our graph.

What the addon answered (istio/istio ``addons/servicegraph``: ``servicegraph.go``, ``d3graph.go``,
``dot/dot.go``, ``promgen/promgen.go``, ``cmd/server/main.go``):

- ``/graph``: ``{"nodes": {"<name>": {}, ...}, "edges": [{"source": "<name>", "target": "<name>",
  "labels": {"reqs/sec": "1.234567"}}, ...]}``: nodes are a map to empty objects; each edge carries
  one label, ``reqs/sec`` (HTTP/gRPC requests) or ``bytes/sec`` (TCP bytes received by the destination),
  the rate as text with six decimals. A peer pair with both kinds of traffic has two edges.
- ``/d3graph``: ``{"nodes": [{"name": "<name>"}], "links": [{"source": <index>, "target": <index>,
  "labels": {...}}]}``, indexes into ``nodes`` (what the addon's ``force/forcegraph.html`` drew).
- ``/dotgraph``: ``digraph "istio-servicegraph" {`` then ``"a" -> "b" [label="reqs/sec: 1.234567"];``
  per edge and ``"a" [label="<name>"];`` per node (text/plain).
- ``/dotviz``: an HTML page rendering that DOT with viz.js.

Every endpoint took ``time_horizon`` (a Prometheus duration, default ``5m``, checked with Prometheus's
``model.ParseDuration``) and ``filter_empty=true`` (only edges with a non-zero rate, and their nodes).

Node names: Istio 1.0's addon named a node ``app (workload)`` (``reviews (reviews-v1)``); Istio 0.8's
named it ``service (version)``. So the workload graph gives ``app (workload)`` names and the versioned-app
graph ``app (version)`` ones; the unknown caller is ``unknown (unknown)`` as in Istio; a node without a
workload behind it (an external host, a database, a service nobody serves) is ``name (unknown)``.

The addon's edges went straight from workload to workload (it summed ``reporter="destination"`` series
by source and destination workload), while our graph routes a call through its service node. So a
service node is collapsed: the traffic of its ``service -> workload`` hop (as the destination reported
it) is shared among the callers in proportion to their ``caller -> service`` traffic. That is exact
whenever a service has one caller or one serving workload; otherwise it assumes every caller spreads
over the workloads alike. A service node with no edge out of it stays a node. Edges whose two names
coincide (the addon's grouping ignored namespaces) add up.

Deviations: names are sorted (the addon's order was Go map order); DOT ids are the quoted names
themselves, where the addon replaced ``/``, ``.`` and spaces with ``_`` (which could merge two nodes).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import orjson

from servicegraph.exports import dot_quote
from servicegraph.model import APP, GATEWAY, SERVICE, UNKNOWN_NODE, WORKLOAD

REQS = "reqs/sec"
BYTES = "bytes/sec"
DEFAULT_TIME_HORIZON = "5m"
DOT_GRAPH_NAME = "istio-servicegraph"
VIZ_JS = "https://cdn.jsdelivr.net/npm/viz.js@1.8.2/viz.js"


@dataclass(frozen=True)
class LegacyEdge:
    source: str
    target: str
    label: str  # REQS or BYTES
    value: float


@dataclass(frozen=True)
class LegacyGraph:
    nodes: list[str]  # sorted
    edges: list[LegacyEdge]  # sorted by source, target, label


# Query parameters.

_UNITS = (("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
_DURATION = re.compile(r"".join(rf"(?:(\d+){unit})?" for unit, _ in _UNITS[:-1]) + r"(?:(\d+)s)?(?:(\d+)ms)?")


def parse_time_horizon(text: str | None) -> float:
    """A ``time_horizon`` value in seconds: Prometheus's duration syntax, as the addon validated it.

    Whole numbers with units from largest to smallest, each at most once: ``y`` (365 d), ``w``, ``d``,
    ``h``, ``m``, ``s``, ``ms``, e.g. ``30s``, ``5m``, ``1h``, ``1m30s``. Empty or missing means the
    addon's default, ``5m``. Raises ValueError naming ``time_horizon`` otherwise, or for zero.
    """
    if text is None or text == "":
        text = DEFAULT_TIME_HORIZON
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(
            f"time_horizon: {text!r} is not a duration; expected whole numbers with units y, w, d, h, m, s, ms "
            "from largest to smallest, e.g. 30s, 5m, 1h, 1m30s"
        )
    factors = [factor for _, factor in _UNITS] + [0.001]
    seconds = sum(int(amount) * factor for amount, factor in zip(match.groups(), factors, strict=True) if amount)
    if seconds <= 0:
        raise ValueError(f"time_horizon: {text!r} must be longer than zero")
    return seconds


def parse_filter_empty(text: str | None) -> bool:
    """The addon's reading of ``filter_empty``: exactly ``true`` turns it on; anything else is off."""
    return text == "true"


# Our graph -> the addon's graph.


def legacy_name(node: str, attrs: dict[str, Any]) -> str:
    kind = attrs.get("kind")
    name = str(attrs.get("name") or node)
    if kind == UNKNOWN_NODE:
        return "unknown (unknown)"
    if kind in (WORKLOAD, GATEWAY):
        return f"{attrs.get('app') or 'unknown'} ({attrs.get('workload') or name})"
    if kind == APP:
        version = attrs.get("version")
        return f"{attrs.get('app') or name} ({version})" if version else str(attrs.get("app") or name)
    return f"{name} (unknown)"


def _label_and_value(protocol: str, attrs: dict[str, Any]) -> tuple[str, float]:
    if protocol == "tcp":
        return BYTES, float(attrs.get("bytes_received_per_s") or 0.0)
    return REQS, float(attrs.get("rps") or 0.0)


def legacy_graph(graph: nx.MultiDiGraph, filter_empty: bool = False) -> LegacyGraph:
    """The addon's graph (names, and edges with one rate each) from one of ours."""
    collapse = graph.graph.get("graph_type") != "service"
    services = {node for node, kind in graph.nodes(data="kind") if kind == SERVICE} if collapse else set()
    names = {node: legacy_name(node, attrs) for node, attrs in graph.nodes(data=True)}
    # (source, target, label) -> value, between our node ids, after collapsing services.
    hops: dict[tuple[str, str, str], float] = {}
    kept_nodes = {node for node in graph.nodes if node not in services}

    def add(source: str, target: str, label: str, value: float) -> None:
        hops[source, target, label] = hops.get((source, target, label), 0.0) + value

    for source, target, protocol, attrs in graph.edges(keys=True, data=True):
        if source in services or target in services:
            continue
        add(source, target, *_label_and_value(str(protocol), attrs))
    for service in sorted(services):
        # protocol -> (callers, callees), each with the traffic of its hop
        by_protocol: dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]] = {}
        for caller, _, protocol, attrs in graph.in_edges(service, keys=True, data=True):
            by_protocol.setdefault(str(protocol), ([], []))[0].append((caller, _label_and_value(protocol, attrs)[1]))
        for _, callee, protocol, attrs in graph.out_edges(service, keys=True, data=True):
            by_protocol.setdefault(str(protocol), ([], []))[1].append((callee, _label_and_value(protocol, attrs)[1]))
        for protocol, (callers, callees) in sorted(by_protocol.items()):
            label = _label_and_value(protocol, {})[0]
            inbound = sum(value for _, value in callers)
            outbound = sum(value for _, value in callees)
            if callers and callees and (inbound > 0 or outbound == 0):
                for caller, caller_value in callers:
                    share = caller_value / inbound if inbound > 0 else 0.0
                    for callee, callee_value in callees:
                        add(caller, callee, label, callee_value * share)
                continue
            # Nothing to share out (no caller, no workload behind, or callers silent while the workload was
            # not): the service stays a node.
            kept_nodes.add(service)
            for caller, value in callers:
                add(caller, service, label, value)
            for callee, value in callees:
                add(service, callee, label, value)

    merged: dict[tuple[str, str, str], float] = {}
    for (source, target, label), value in hops.items():
        key = (names[source], names[target], label)
        merged[key] = merged.get(key, 0.0) + value
    edges = [
        LegacyEdge(source, target, label, value)
        for (source, target, label), value in sorted(merged.items())
        if value > 0 or not filter_empty
    ]
    if filter_empty:
        nodes = {name for edge in edges for name in (edge.source, edge.target)}
    else:
        nodes = {names[node] for node in kept_nodes} | {name for edge in edges for name in (edge.source, edge.target)}
    return LegacyGraph(sorted(nodes), edges)


def _rate(value: float) -> str:
    # Go's strconv.FormatFloat(value, 'f', 6, 64).
    return f"{value:.6f}"


# The endpoints.


def graph_endpoint(graph: nx.MultiDiGraph, filter_empty: bool = False) -> dict[str, Any]:
    """``/graph``."""
    legacy = legacy_graph(graph, filter_empty)
    return {
        "nodes": {name: {} for name in legacy.nodes},
        "edges": [
            {"source": edge.source, "target": edge.target, "labels": {edge.label: _rate(edge.value)}}
            for edge in legacy.edges
        ],
    }


def d3graph_endpoint(graph: nx.MultiDiGraph, filter_empty: bool = False) -> dict[str, Any]:
    """``/d3graph``."""
    legacy = legacy_graph(graph, filter_empty)
    index = {name: position for position, name in enumerate(legacy.nodes)}
    return {
        "nodes": [{"name": name} for name in legacy.nodes],
        "links": [
            {"source": index[edge.source], "target": index[edge.target], "labels": {edge.label: _rate(edge.value)}}
            for edge in legacy.edges
        ],
    }


def dotgraph_endpoint(graph: nx.MultiDiGraph, filter_empty: bool = False) -> str:
    """``/dotgraph``."""
    legacy = legacy_graph(graph, filter_empty)
    lines = [f"digraph {dot_quote(DOT_GRAPH_NAME)} {{"]
    for edge in legacy.edges:
        label = f"{edge.label}: {_rate(edge.value)}"
        lines.append(f"{dot_quote(edge.source)} -> {dot_quote(edge.target)} [label={dot_quote(label)}];")
    for name in legacy.nodes:
        lines.append(f"{dot_quote(name)} [label={dot_quote(name)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_DOTVIZ_PAGE = """\
<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>Istio servicegraph (meshscope)</title>
  </head>
  <body>
    <pre id="dot" hidden>{dot}</pre>
    <script src="{viz}"></script>
    <script>
      var dot = document.getElementById("dot");
      if (typeof Viz === "function") {{
        document.body.insertAdjacentHTML("beforeend", Viz(dot.textContent, {{format: "svg"}}));
      }} else {{
        dot.hidden = false;  // viz.js did not load (offline): show the DOT itself
      }}
    </script>
  </body>
</html>
"""


def dotviz_endpoint(graph: nx.MultiDiGraph, filter_empty: bool = False) -> str:
    """``/dotviz``: the DOT of ``/dotgraph`` drawn in the browser by viz.js (loaded from a CDN).

    The DOT sits HTML-escaped in a hidden ``<pre>`` and is read back with ``textContent``, so no node
    name can close a tag or run as script.
    """
    return _DOTVIZ_PAGE.format(dot=html.escape(dotgraph_endpoint(graph, filter_empty)), viz=html.escape(VIZ_JS))


def _json(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document) + b"\n"


# endpoint path -> (body of graph and filter_empty, content type)
ENDPOINTS: dict[str, tuple[Callable[[nx.MultiDiGraph, bool], bytes], str]] = {
    "/graph": (lambda graph, empty: _json(graph_endpoint(graph, empty)), "application/json"),
    "/d3graph": (lambda graph, empty: _json(d3graph_endpoint(graph, empty)), "application/json"),
    "/dotgraph": (lambda graph, empty: dotgraph_endpoint(graph, empty).encode(), "text/plain; charset=utf-8"),
    "/dotviz": (lambda graph, empty: dotviz_endpoint(graph, empty).encode(), "text/html; charset=utf-8"),
}


def render(endpoint: str, graph: nx.MultiDiGraph, filter_empty: bool = False) -> tuple[bytes, str]:
    """The body and content type of one endpoint (``/graph``, ``/d3graph``, ``/dotgraph``, ``/dotviz``)."""
    try:
        body, content_type = ENDPOINTS[endpoint]
    except KeyError:
        raise ValueError(f"unknown servicegraph endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}") from None
    return body(graph, filter_empty), content_type
