"""The Cytoscape elements the page draws, built from the API's ``/api/graph?format=cytoscape`` document.

Elements are compact: only what the stylesheet, the labels and a tap need, figures already written
as label text. Ids are the API's own (stable across refreshes), and no element carries a position, so
Cytoscape keeps every existing node where it is and only new nodes need placing. Two refreshes with
the same figures (to the digits a label shows) give equal elements, which the page does not redraw.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from servicegraph.model import APP, DEGRADED, FAILING, IDLE
from servicegraph.ui import formatting
from servicegraph.ui.find import MTLS_FULL_PCT, Query

EDGE_LABELS: dict[str, str] = {
    "rps": "Request rate",
    "share": "% of traffic",
    "p50": "Latency p50",
    "p95": "Latency p95",
    "p99": "Latency p99",
    "errors": "Error %",
    "throughput": "Throughput",
    "none": "None",
}
HEALTH_MARKS: dict[str, str] = {DEGRADED: " ⚠", FAILING: " ✖", IDLE: " (idle)"}

FOUND, FADED, HIDDEN = "found", "faded", "hidden"


@dataclass(frozen=True)
class ElementView:
    edge_label: str = "rps"
    find: Query = field(default_factory=Query)
    hide: Query = field(default_factory=Query)


def build_elements(document: Mapping[str, Any], view: ElementView) -> list[dict[str, Any]]:
    raw = document.get("elements") or []
    found = view.find.matching_ids(raw) if view.find else set()
    hidden = view.hide.matching_ids(raw) if view.hide else set()
    out_rps = {
        element["data"]["id"]: element["data"].get("out_rps") for element in raw if "source" not in element["data"]
    }
    pairs = Counter(frozenset((e["data"]["source"], e["data"]["target"])) for e in raw if "source" in e["data"])
    elements = []
    for element in raw:
        data = element["data"]
        if "source" in data:
            shared = pairs[frozenset((data["source"], data["target"]))] > 1
            drawn = _edge(data, view.edge_label, out_rps.get(data["source"]), shared)
        else:
            drawn = _node(data)
        elements.append({"data": drawn, "classes": _classes(data["id"], found, hidden, bool(view.find))})
    return elements


def _classes(element_id: str, found: set[str], hidden: set[str], finding: bool) -> str:
    if element_id in hidden:
        return HIDDEN
    if element_id in found:
        return FOUND
    return FADED if finding else ""


def node_label(data: Mapping[str, Any]) -> str:
    label = str(data.get("name") or data["id"])
    if data.get("kind") == APP and data.get("version"):
        label += f"\n{data['version']}"
    return label + HEALTH_MARKS.get(str(data.get("health")), "")


def _node(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": data["id"],
        "name": data.get("name", ""),
        "namespace": data.get("namespace", ""),
        "kind": data.get("kind", "unknown"),
        "health": data.get("health", IDLE),
        "label": node_label(data),
    }


def _edge(data: Mapping[str, Any], mode: str, source_out_rps: float | None, shared: bool) -> dict[str, Any]:
    health = str(data.get("health", IDLE))
    text = edge_text(data, mode, source_out_rps)
    mark = HEALTH_MARKS.get(health, "").strip() if health != IDLE else ""
    return {
        "id": data["id"],
        "source": data["source"],
        "target": data["target"],
        "protocol": data.get("protocol", ""),
        "health": health,
        "mtls": 1 if (data.get("mtls_pct") or 0) >= MTLS_FULL_PCT else 0,
        "width": edge_width(data.get("rps"), health),
        "label": f"{text} {mark}".strip(),
        # Edges that share their two nodes with another (both ways, or several protocols) are drawn
        # curved so they do not overlap; the rest straight, which is far cheaper to redraw.
        "bend": 1 if shared else 0,
    }


def edge_width(rps: float | None, health: str) -> float:
    """1 to 8 px, growing with the log of the rate, in half-pixel steps (so small changes redraw nothing)."""
    if health == IDLE or not rps or rps <= 0:
        return 1.0
    return min(8.0, round(2 * (1.0 + 1.75 * math.log10(1.0 + rps))) / 2)


def edge_text(data: Mapping[str, Any], mode: str, source_out_rps: float | None) -> str:
    protocol = str(data.get("protocol", ""))
    rps = data.get("rps")
    digits = formatting.compact
    if mode == "rps":
        return formatting.rate(rps, protocol, digits) if rps else ""
    if mode == "share":
        if not rps or not source_out_rps:
            return ""
        return formatting.percent(min(100.0, 100.0 * rps / source_out_rps), digits)
    if mode in ("p50", "p95", "p99"):
        value = data.get(f"{mode}_ms")
        return formatting.millis(value, digits) if value is not None else ""
    if mode == "errors":
        if protocol == "tcp" or not rps:
            return ""
        return f"{formatting.percent(data.get('error_pct') or 0.0, digits)} err"
    if mode == "throughput":
        total = (data.get("bytes_sent_per_s") or 0.0) + (data.get("bytes_received_per_s") or 0.0)
        return formatting.bytes_rate(total, digits) if total else ""
    return ""
