"""The graph as JSON: what /api/graph answers, ``ingest --graph-out x.json`` writes and ``graph diff`` reads."""

from __future__ import annotations

from typing import Any

import networkx as nx


def to_json(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """``{**graph attributes, "nodes": [{"id", ...}], "edges": [{"id", "source", "target", ...}]}``.

    An edge's id is ``source->target:protocol``; nodes and edges are sorted by id, so equal graphs
    serialise equally.
    """
    nodes = [{"id": node, **attrs} for node, attrs in sorted(graph.nodes(data=True))]
    edges = [
        {"id": edge_id(source, target, protocol), "source": source, "target": target, **attrs}
        for source, target, protocol, attrs in sorted(graph.edges(keys=True, data=True), key=lambda e: e[:3])
    ]
    return {**graph.graph, "nodes": nodes, "edges": edges}


def from_json(document: dict[str, Any]) -> nx.MultiDiGraph:
    """The inverse of ``to_json``; raises ValueError naming what is missing."""
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("nodes"), list)
        or not isinstance(document.get("edges"), list)
    ):
        raise ValueError("not a meshscope graph: expected an object with 'nodes' and 'edges' lists")
    graph = nx.MultiDiGraph()
    graph.graph.update({k: v for k, v in document.items() if k not in ("nodes", "edges")})
    for position, node in enumerate(document["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise ValueError(f"nodes[{position}]: expected an object with an 'id'")
        graph.add_node(node["id"], **{k: v for k, v in node.items() if k != "id"})
    for position, edge in enumerate(document["edges"]):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise ValueError(f"edges[{position}]: expected an object with 'source' and 'target'")
        attrs = {k: v for k, v in edge.items() if k not in ("id", "source", "target")}
        graph.add_edge(edge["source"], edge["target"], key=attrs.get("protocol", ""), **attrs)
    return graph


def edge_id(source: str, target: str, protocol: str) -> str:
    return f"{source}->{target}:{protocol}"
