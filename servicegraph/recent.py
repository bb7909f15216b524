"""Recent traces and failing requests for an edge of any graph type, from the collector's per-edge store.

The store keys what it keeps by source workload and namespace -> destination service host, as proxies
report it; a graph edge names its ends by workload, app or service. An edge's recent traces are those
of every stored key whose source matches the edge's source node and whose service matches the
service the edge leads into (or, for a service -> workload edge, comes out of).
"""

from __future__ import annotations

from typing import Any

from servicegraph.model import APP, GATEWAY, SERVICE, UNKNOWN_NODE, WORKLOAD
from telemetry.model import UNKNOWN
from telemetry.spans.correlation import RecentTraces

_LIMIT = 10


class EdgeRecents:
    def __init__(self, traces: RecentTraces) -> None:
        self._traces = traces

    def for_edge(self, source: dict[str, Any], target: dict[str, Any]) -> dict[str, list[dict[str, object]]]:
        into_service = target if target.get("kind") == SERVICE else source if source.get("kind") == SERVICE else target
        from_service = source.get("kind") == SERVICE and target.get("kind") != SERVICE
        found: dict[str, list[dict[str, object]]] = {"slowest": [], "failed": [], "failures": []}
        for edge in self._traces.edges():
            if not _serves(edge.destination_service, into_service):
                continue
            if not from_service and not _calls(edge.source_workload, edge.source_namespace, source):
                continue
            answer = self._traces.query((edge.source_workload, edge.source_namespace), edge.destination_service)
            for name, entries in answer.items():
                found[name].extend(entries)
        found["slowest"].sort(key=lambda entry: -int(entry["duration_ms"]))  # type: ignore[call-overload]
        found["failed"].sort(key=lambda entry: str(entry["start_time"]), reverse=True)
        found["failures"].sort(key=lambda entry: str(entry["start_time"]), reverse=True)
        return {name: entries[:_LIMIT] for name, entries in found.items()}


def _calls(workload: str, namespace: str, node: dict[str, Any]) -> bool:
    kind = node.get("kind")
    if kind == UNKNOWN_NODE:
        return workload == UNKNOWN
    if node.get("namespace") and namespace != node["namespace"]:
        return False
    if kind in (WORKLOAD, GATEWAY):
        return workload == node.get("workload")
    # An app or service node stands for its workloads, named "<app>-<version>" by convention.
    name = str(node.get("app") or node.get("service") or node.get("name"))
    return kind in (APP, SERVICE) and (workload == name or workload.startswith(name + "-"))


def _serves(host: str, node: dict[str, Any]) -> bool:
    service = str(node.get("service") or node.get("name") or "")
    if not service:
        return False
    name, _, rest = host.partition(".")
    namespace = rest.partition(".")[0]
    return (host == service or name == service) and (
        not namespace or not node.get("namespace") or namespace == node["namespace"]
    )
