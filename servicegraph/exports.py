"""The graph in other tools' formats: Cytoscape.js elements, Graphviz DOT, GraphML, and files of each.

Every export reads the attributes ``servicegraph.model`` names, so a graph from any source and of any
type exports the same way.

DOT drawing conventions (Kiali's vocabulary where it has one):

- shape by node kind: workload ``ellipse``, app ``box`` (rounded), service ``triangle``, gateway
  ``house``, external host ``diamond``, database ``cylinder``, messaging ``cds``, unknown ``octagon``;
- colour by health, for nodes and edges: healthy green, degraded orange, failing red, idle grey;
- node label: the name, and the version on a second line for versioned apps; tooltip: the node id;
- edge label: rps (``conn/s`` for TCP), error % and p95 for request protocols; idle edges dashed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import networkx as nx
import orjson

from servicegraph.graphjson import edge_id, to_json
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

SHAPES: dict[str, str] = {
    WORKLOAD: "ellipse",
    APP: "box",
    SERVICE: "triangle",
    GATEWAY: "house",
    EXTERNAL: "diamond",
    DATABASE: "cylinder",
    MESSAGING: "cds",
    UNKNOWN_NODE: "octagon",
}
COLOURS: dict[str, str] = {HEALTHY: "#3f9c35", DEGRADED: "#ec7a08", FAILING: "#cc0000", IDLE: "#8a8d90"}
_NO_HEALTH_COLOUR = "#4d5258"

EXTENSIONS = (".json", ".dot", ".gv", ".graphml")


# Cytoscape.js


def to_cytoscape(graph: nx.MultiDiGraph) -> list[dict[str, Any]]:
    """Cytoscape.js elements, nodes first, each sorted by id, as dash-cytoscape takes them.

    ``data`` carries every attribute of the node or edge (breakdowns stay dicts, copied); ``classes``
    holds the kind (nodes), the protocol (edges) and the health, for stylesheet selectors such as
    ``.failing`` or ``.idle``.
    """
    elements: list[dict[str, Any]] = []
    for node, attrs in sorted(graph.nodes(data=True), key=lambda item: item[0]):
        data = {"id": node, **_copied(attrs)}
        elements.append({"data": data, "classes": _classes(attrs.get("kind"), attrs.get("health"))})
    for source, target, key, attrs in sorted(graph.edges(keys=True, data=True), key=lambda item: item[:3]):
        data = {"id": edge_id(source, target, key), "source": source, "target": target, **_copied(attrs)}
        elements.append({"data": data, "classes": _classes(attrs.get("protocol", key), attrs.get("health"))})
    return elements


def _copied(attrs: dict[str, Any]) -> dict[str, Any]:
    return {name: dict(value) if isinstance(value, dict) else value for name, value in attrs.items()}


def _classes(*words: object) -> str:
    return " ".join(str(word) for word in words if word)


# Graphviz DOT


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string.

    Graphviz's lexer knows two escapes in a quoted string, ``\\"`` and ``\\\\`` (so that a backslash
    before the closing quote cannot swallow it); both are written, which keeps distinct texts distinct.
    A line break becomes ``\\n`` (a line break in a label), other control characters a space.
    """
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char < " " or char == "\x7f":
            out.append(" ")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _dot_attrs(attrs: dict[str, str]) -> str:
    return "[" + ", ".join(f"{name}={dot_quote(value)}" for name, value in attrs.items()) + "]"


def to_dot(graph: nx.MultiDiGraph, name: str = "meshscope") -> str:
    """A Graphviz ``digraph`` of the graph, drawn by the conventions in this module's docstring."""
    graph_type = graph.graph.get("graph_type", "")
    window = graph.graph.get("window")
    title = f"{graph_type} graph" if graph_type else "service graph"
    if isinstance(window, int | float):
        title += f", {window:g} s window"
    lines = [
        f"digraph {dot_quote(name)} {{",
        f"  graph {_dot_attrs({'rankdir': 'LR', 'label': title, 'labelloc': 't'})};",
        f"  node {_dot_attrs({'fontname': 'Helvetica', 'fontsize': '11'})};",
        f"  edge {_dot_attrs({'fontname': 'Helvetica', 'fontsize': '9'})};",
    ]
    for node, attrs in sorted(graph.nodes(data=True), key=lambda item: item[0]):
        kind = str(attrs.get("kind", UNKNOWN_NODE))
        style = {
            "label": _node_label(node, attrs),
            "tooltip": node,
            "shape": SHAPES.get(kind, "ellipse"),
            "color": COLOURS.get(str(attrs.get("health")), _NO_HEALTH_COLOUR),
        }
        if kind == APP:
            style["style"] = "rounded"
        if attrs.get("idle"):
            style["style"] = "dashed,rounded" if kind == APP else "dashed"
        lines.append(f"  {dot_quote(node)} {_dot_attrs(style)};")
    for source, target, key, attrs in sorted(graph.edges(keys=True, data=True), key=lambda item: item[:3]):
        colour = COLOURS.get(str(attrs.get("health")), _NO_HEALTH_COLOUR)
        style = {"label": _edge_label(str(attrs.get("protocol", key)), attrs), "color": colour, "fontcolor": colour}
        if attrs.get("idle"):
            style["style"] = "dashed"
        lines.append(f"  {dot_quote(source)} -> {dot_quote(target)} {_dot_attrs(style)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_label(node: str, attrs: dict[str, Any]) -> str:
    label = str(attrs.get("name") or node)
    version = attrs.get("version")
    if attrs.get("kind") == APP and version:
        label += f"\n{version}"
    return label


def _edge_label(protocol: str, attrs: dict[str, Any]) -> str:
    if attrs.get("idle"):
        return f"{protocol}: idle"
    rps = attrs.get("rps")
    if protocol == "tcp":
        return f"{_number(rps)} conn/s"
    parts = [f"{_number(rps)} rps", f"{_number(attrs.get('error_pct'), 1)}% err"]
    p95 = attrs.get("p95_ms")
    if isinstance(p95, int | float):
        parts.append(f"p95 {_number(p95, 1)} ms")
    return "\n".join(parts)


def _number(value: object, decimals: int = 2) -> str:
    return f"{value:.{decimals}f}" if isinstance(value, int | float) else "?"


# GraphML

# Breakdowns (dicts) are written as JSON text, which GraphML can hold; the graph attribute
# ``json_attributes`` names them, so a reader knows which strings to decode.
_JSON_ATTRIBUTES = "json_attributes"


def to_graphml(graph: nx.MultiDiGraph) -> bytes:
    """GraphML (UTF-8) through networkx.

    GraphML holds only scalars: dict attributes are JSON-encoded strings (listed in the graph attribute
    ``json_attributes``), None values are left out. GraphML tools (Gephi, yEd) identify an edge by its
    ``id``, which must be unique, so an edge's id is ``graphjson.edge_id`` and its networkx key, the
    protocol, is the ``protocol`` attribute: ``nx.read_graphml`` gives every edge back with that id as
    its key.
    """
    encoded: set[str] = set()
    plain = nx.MultiDiGraph()
    plain.graph.update(_scalars(graph.graph, encoded))
    for node, attrs in graph.nodes(data=True):
        plain.add_node(node, **_scalars(attrs, encoded))
    for source, target, key, attrs in graph.edges(keys=True, data=True):
        scalars = _scalars(attrs, encoded)
        scalars.setdefault("protocol", str(key))
        plain.add_edge(source, target, key=edge_id(source, target, key), **scalars)
    if encoded:
        plain.graph[_JSON_ATTRIBUTES] = ",".join(sorted(encoded))
    buffer = io.BytesIO()
    nx.write_graphml(plain, buffer, encoding="utf-8", prettyprint=True)
    return buffer.getvalue()


def _scalars(attrs: dict[str, Any], encoded: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, dict | list | tuple):
            encoded.add(name)
            out[name] = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
        else:
            out[name] = value
    return out


# Files


def write_graph(graph: nx.MultiDiGraph, path: str | os.PathLike[str]) -> None:
    """Write the graph in the format its extension names: ``.json``, ``.dot``/``.gv`` or ``.graphml``."""
    target = Path(path)
    extension = target.suffix.lower()
    if extension == ".json":
        data = orjson.dumps(to_json(graph), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    elif extension in (".dot", ".gv"):
        data = to_dot(graph).encode()
    elif extension == ".graphml":
        data = to_graphml(graph)
    else:
        raise ValueError(
            f"{target}: unknown graph file extension {extension or '(none)'!r}; use one of {', '.join(EXTENSIONS)}"
        )
    target.write_bytes(data)
