"""What changed between two graphs: edges and nodes that came or went, edges whose errors or latency moved.

Nodes and edges are matched by id (an edge's id is ``source->target:protocol``), so both graphs should be
of the same type; a result notes it when they are not. An idle edge (known, but silent in its window)
counts as present: an edge that went quiet is not "removed", it is changed, by the ``activity`` rule.

Rules for an edge in both graphs (each that fires is named in ``rules``):

- ``error_pct``: the error share moved by at least ``error_pct_threshold`` percentage points, either
  way; only judged when the edge had requests in both windows (an idle edge has no error share).
- ``p95``: the p95 latency moved by at least ``p95_ratio_threshold`` of its earlier value, either way
  (0.5: +50%, or down to half), and the larger of the two is at least ``p95_min_ms``, so that sub-10 ms
  jitter is not news; only judged when both windows timed requests (never for TCP).
- ``activity``: the edge went idle, or came back.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import networkx as nx

from servicegraph.graphjson import edge_id, from_json

# The figures an edge carries into the result, added or removed or either side of a change.
EDGE_FIGURES = ("protocol", "requests", "rps", "error_pct", "p95_ms", "health", "idle")
NODE_FIGURES = ("kind", "name", "namespace", "health", "idle")

GraphInput: TypeAlias = "nx.MultiDiGraph | dict[str, Any]"


def diff_graphs(
    before: GraphInput,
    after: GraphInput,
    error_pct_threshold: float = 5.0,
    p95_ratio_threshold: float = 0.5,
    p95_min_ms: float = 10.0,
) -> dict[str, Any]:
    """Compare two graphs (networkx, or ``graphjson.to_json`` documents); pure, no I/O.

    Returns ``{"thresholds", "graph_type", "warnings", "nodes_added", "nodes_removed", "edges_added",
    "edges_removed", "edges_changed", "edges_unchanged"}``; the lists are sorted by id, and
    ``edges_unchanged`` counts the edges in both that no rule flagged. Raises ValueError for a negative
    threshold or a document that is not a graph.
    """
    for name, value in (
        ("error_pct_threshold", error_pct_threshold),
        ("p95_ratio_threshold", p95_ratio_threshold),
        ("p95_min_ms", p95_min_ms),
    ):
        if not value >= 0:
            raise ValueError(f"{name}: must be zero or more, got {value}")
    old, new = _graph(before), _graph(after)
    old_type, new_type = old.graph.get("graph_type"), new.graph.get("graph_type")
    warnings = []
    if old_type != new_type:
        warnings.append(f"the graphs are of different types ({old_type} and {new_type}): their ids do not match")

    old_edges, new_edges = _edges(old), _edges(new)
    changed = []
    for key in sorted(old_edges.keys() & new_edges.keys()):
        change = _edge_change(old_edges[key], new_edges[key], error_pct_threshold, p95_ratio_threshold, p95_min_ms)
        if change is not None:
            changed.append({"id": key, "source": old_edges[key][0], "target": old_edges[key][1], **change})
    return {
        "thresholds": {
            "error_pct_points": error_pct_threshold,
            "p95_ratio": p95_ratio_threshold,
            "p95_min_ms": p95_min_ms,
        },
        "graph_type": {"before": old_type, "after": new_type},
        "warnings": warnings,
        "nodes_added": _node_list(new, new.nodes - old.nodes),
        "nodes_removed": _node_list(old, old.nodes - new.nodes),
        "edges_added": [_edge_entry(key, new_edges[key]) for key in sorted(new_edges.keys() - old_edges.keys())],
        "edges_removed": [_edge_entry(key, old_edges[key]) for key in sorted(old_edges.keys() - new_edges.keys())],
        "edges_changed": changed,
        "edges_unchanged": len(old_edges.keys() & new_edges.keys()) - len(changed),
    }


def _graph(value: GraphInput) -> nx.MultiDiGraph:
    if isinstance(value, nx.MultiDiGraph):
        return value
    return from_json(value)


Edge: TypeAlias = tuple[str, str, dict[str, Any]]


def _edges(graph: nx.MultiDiGraph) -> dict[str, Edge]:
    return {
        edge_id(source, target, key): (source, target, attrs)
        for source, target, key, attrs in graph.edges(keys=True, data=True)
    }


def _figures(attrs: dict[str, Any]) -> dict[str, Any]:
    return {name: attrs.get(name) for name in EDGE_FIGURES}


def _edge_entry(key: str, edge: Edge) -> dict[str, Any]:
    source, target, attrs = edge
    return {"id": key, "source": source, "target": target, **_figures(attrs)}


def _node_list(graph: nx.MultiDiGraph, nodes: set[str]) -> list[dict[str, Any]]:
    return [{"id": node, **{name: graph.nodes[node].get(name) for name in NODE_FIGURES}} for node in sorted(nodes)]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _active(attrs: dict[str, Any]) -> bool:
    if "idle" in attrs:
        return not attrs["idle"]
    return (_number(attrs.get("requests")) or 0.0) > 0


def _edge_change(
    old: Edge, new: Edge, error_points: float, p95_ratio: float, p95_min_ms: float
) -> dict[str, Any] | None:
    before, after = old[2], new[2]
    rules: list[str] = []
    change: dict[str, Any] = {}
    was_active, is_active = _active(before), _active(after)
    if was_active != is_active:
        rules.append("activity")
        change["activity"] = "became active" if is_active else "became idle"
    old_errors, new_errors = _number(before.get("error_pct")), _number(after.get("error_pct"))
    if was_active and is_active and old_errors is not None and new_errors is not None:
        delta = new_errors - old_errors
        change["error_pct_delta"] = delta
        if abs(delta) >= error_points:
            rules.append("error_pct")
    old_p95, new_p95 = _number(before.get("p95_ms")), _number(after.get("p95_ms"))
    if old_p95 is not None and new_p95 is not None:
        ratio = (new_p95 - old_p95) / old_p95 if old_p95 > 0 else (float("inf") if new_p95 > 0 else 0.0)
        change["p95_change_ratio"] = ratio
        if abs(ratio) >= p95_ratio and max(old_p95, new_p95) >= p95_min_ms:
            rules.append("p95")
    if not rules:
        return None
    return {"rules": rules, "before": _figures(before), "after": _figures(after), **change}


# For people.


def format_diff(result: dict[str, Any]) -> str:
    """The result of ``diff_graphs`` as text: one line per node or edge, the figures that moved."""
    thresholds = result["thresholds"]
    lines = [
        f"graph diff: errors moving >= {thresholds['error_pct_points']:g} points, p95 moving >= "
        f"{thresholds['p95_ratio'] * 100:g}% (when either is >= {thresholds['p95_min_ms']:g} ms)"
    ]
    lines += [f"warning: {warning}" for warning in result["warnings"]]
    sections = (
        ("nodes added", "+", result["nodes_added"], _node_line),
        ("nodes removed", "-", result["nodes_removed"], _node_line),
        ("edges added", "+", result["edges_added"], _edge_line),
        ("edges removed", "-", result["edges_removed"], _edge_line),
    )
    for title, sign, entries, line in sections:
        if entries:
            lines.append(f"{title} ({len(entries)}):")
            lines += [f"  {sign} {line(entry)}" for entry in entries]
    if result["edges_changed"]:
        lines.append(f"edges changed ({len(result['edges_changed'])}):")
        for entry in result["edges_changed"]:
            lines.append(f"  ~ {entry['source']} -> {entry['target']} ({entry['before'].get('protocol')})")
            lines += [f"      {detail}" for detail in _change_details(entry)]
    if len(lines) == 1 + len(result["warnings"]):
        lines.append("no changes")
    lines.append(f"{result['edges_unchanged']} edge(s) in both graphs unchanged")
    return "\n".join(lines) + "\n"


def _node_line(entry: dict[str, Any]) -> str:
    return f"{entry['id']} ({entry.get('kind') or '?'}, {entry.get('health') or '?'})"


def _edge_line(entry: dict[str, Any]) -> str:
    return f"{entry['source']} -> {entry['target']} ({entry.get('protocol')}): {_summary(entry)}"


def _summary(figures: dict[str, Any]) -> str:
    if figures.get("idle"):
        return "idle"
    parts = [f"{_text(figures.get('rps'), '.2f')} rps"]
    if figures.get("protocol") != "tcp":
        parts.append(f"{_text(figures.get('error_pct'), '.1f')}% errors")
        if figures.get("p95_ms") is not None:
            parts.append(f"p95 {_text(figures.get('p95_ms'), '.1f')} ms")
    return ", ".join(parts)


def _change_details(entry: dict[str, Any]) -> list[str]:
    before, after = entry["before"], entry["after"]
    details = []
    if "activity" in entry["rules"]:
        details.append(f"{entry['activity']}: {_summary(before)} -> {_summary(after)}")
    if "error_pct" in entry["rules"]:
        details.append(
            f"errors {_text(before['error_pct'], '.1f')}% -> {_text(after['error_pct'], '.1f')}% "
            f"({entry['error_pct_delta']:+.1f} points)"
        )
    if "p95" in entry["rules"]:
        details.append(
            f"p95 {_text(before['p95_ms'], '.1f')} ms -> {_text(after['p95_ms'], '.1f')} ms "
            f"({entry['p95_change_ratio'] * 100:+.0f}%)"
        )
    return details


def _text(value: object, spec: str) -> str:
    number = _number(value)
    return format(number, spec) if number is not None else "?"
