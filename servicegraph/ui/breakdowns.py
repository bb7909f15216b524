"""Response codes, gRPC statuses and Envoy response flags of a node or an edge, summed and ranked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

BREAKDOWNS: dict[str, str] = {
    "response_codes": "Response codes",
    "grpc_statuses": "gRPC statuses",
    "response_flags": "Response flags",
}


def summed(edges: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Each breakdown summed over ``edges`` (edge attributes as the API gives them)."""
    totals: dict[str, dict[str, float]] = {name: {} for name in BREAKDOWNS}
    for edge in edges:
        for name, total in totals.items():
            for key, count in (edge.get(name) or {}).items():
                total[str(key)] = total.get(str(key), 0.0) + float(count)
    return totals


def inbound_edges(document: Mapping[str, Any], node_id: str) -> list[dict[str, Any]]:
    """The edges into ``node_id`` in a ``/api/graph?format=cytoscape`` document: a node's received traffic."""
    return [
        element["data"]
        for element in document.get("elements") or []
        if element["data"].get("target") == node_id and "source" in element["data"]
    ]


def ranked(counts: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """(key, count, share %) by count, largest first; the Envoy "no flag" ``-`` named for people."""
    total = sum(counts.values())
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [("- (none)" if key == "-" else key, count, 100.0 * count / total if total else 0.0) for key, count in rows]
