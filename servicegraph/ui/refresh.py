"""What one refresh sends the page: the elements (unless unchanged), a layout (only when the view asks
for a whole new one), the namespace and node choices, and a note on what find and hide matched.

``memory`` is what the page last received (kept in a dcc.Store in the browser); it holds digests and
counts, never the graph, so sending it back with each refresh costs a few bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from servicegraph.ui.elements import FOUND, HIDDEN, ElementView, build_elements
from servicegraph.ui.find import FindError, Query, parse
from servicegraph.ui.layouts import layout_options

FIND_HELP = "Find and hide take names and conditions: rt>500 (p95 ms), %err>5, rps<1, protocol=grpc, mtls, !healthy, kind=service, ns=default; side by side all must hold, 'or' for either."


@dataclass
class Refresh:
    elements: list[dict[str, Any]] | None  # None: the page already has these
    layout: dict[str, Any] | None  # None: keep every node where it is
    memory: dict[str, Any]
    namespaces: list[str]
    nodes: list[dict[str, str]] | None  # the "Details of" choices; None: unchanged
    message: str


def parse_filters(find: str, hide: str) -> tuple[Query, Query, list[str]]:
    problems = []
    queries = []
    for name, text in (("Find", find), ("Hide", hide)):
        try:
            queries.append(parse(text or ""))
        except FindError as error:
            queries.append(Query())
            problems.append(f"{name}: {error}")
    return queries[0], queries[1], problems


def plan_refresh(
    document: Mapping[str, Any],
    memory: Mapping[str, Any],
    *,
    graph_type: str,
    layout: str,
    relayout_clicks: int,
    edge_label: str,
    find: str,
    hide: str,
    known_namespaces: Sequence[str],
    selected_namespaces: Sequence[str],
) -> Refresh:
    found, hidden, problems = parse_filters(find, hide)
    elements = build_elements(document, ElementView(edge_label, found, hidden))
    node_data = [element["data"] for element in elements if "source" not in element["data"]]
    full_layout = bool(node_data) and (
        not memory.get("nodes")  # the first graph with anything in it
        or memory.get("graph_type") != graph_type
        or memory.get("layout") != layout
        or memory.get("relayout", 0) != relayout_clicks
    )
    run = int(memory.get("run", 0)) + (1 if full_layout else 0)
    digest = _digest(elements)
    ids = _digest([data["id"] for data in node_data])
    new_memory = {
        "graph_type": graph_type,
        "layout": layout,
        "relayout": relayout_clicks,
        "run": run,
        "nodes": len(node_data),
        "digest": digest,
        "ids": ids,
    }
    namespaces = {str(data["namespace"]) for data in node_data if data.get("namespace")}
    return Refresh(
        elements=elements if full_layout or digest != memory.get("digest") else None,
        layout=_layout(layout, run, elements) if full_layout else None,
        memory=new_memory,
        namespaces=sorted(namespaces | set(known_namespaces) | set(selected_namespaces)),
        nodes=_node_choices(node_data) if ids != memory.get("ids") else None,
        message="; ".join(problems) or _match_note(elements, bool(found), bool(hidden)) or FIND_HELP,
    )


def _layout(name: str, run: int, elements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    nodes = [element["data"]["id"] for element in elements if "source" not in element["data"]]
    edges = [
        (element["data"]["source"], element["data"]["target"]) for element in elements if "source" in element["data"]
    ]
    return layout_options(name, run, nodes, edges)


def _digest(value: Any) -> str:
    return hashlib.blake2b(orjson.dumps(value), digest_size=12).hexdigest()


def _node_choices(node_data: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    choices = [
        {
            "label": f"{data.get('name') or data['id']} ({data.get('kind')}{', ' + data['namespace'] if data.get('namespace') else ''})",
            "value": data["id"],
        }
        for data in node_data
    ]
    return sorted(choices, key=lambda choice: choice["label"].lower())


def _match_note(elements: Sequence[Mapping[str, Any]], finding: bool, hiding: bool) -> str:
    notes = []
    for active, cls, verb in ((finding, FOUND, "found"), (hiding, HIDDEN, "hidden")):
        if not active:
            continue
        nodes = sum(1 for element in elements if element["classes"] == cls and "source" not in element["data"])
        edges = sum(1 for element in elements if element["classes"] == cls and "source" in element["data"])
        notes.append(f"{verb}: {nodes} node{'s' * (nodes != 1)}, {edges} edge{'s' * (edges != 1)}")
    return "; ".join(notes)
