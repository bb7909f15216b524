"""Who called whom, how often, how often it failed: edges summed from the Istio metrics' series.

The metrics sink already aggregates every Record by its full label set; an edge is a coarser sum of
those series, so it is derived from them at read time instead of being counted a second time per
Record. An edge counts each call once: client-reported series own an edge, and server-reported series
count only for edges no client reported (traffic from outside the mesh, for instance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from telemetry.exporters.prometheus.istio_metrics import OVERFLOW, IstioMetrics
from telemetry.model import request_failed

EdgeKey = tuple[str, str, str, str, str]  # source workload, source namespace, service, service namespace, protocol


@dataclass
class EdgeTotals:
    requests: int = 0  # requests, or TCP connections
    errors: int = 0  # HTTP 5xx, gRPC non-OK, or no response at all
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms_sum: float = 0


def _edge_of(identity: tuple[object, ...], protocol: str) -> EdgeKey:
    # Label key order: reporter, source workload, source namespace, ..., service (11), name (12), namespace (13).
    return (str(identity[1]), str(identity[2]), str(identity[12]), str(identity[13]), protocol)


def edges_from_metrics(metrics: IstioMetrics) -> dict[EdgeKey, EdgeTotals]:
    by_reporter: dict[str, dict[EdgeKey, EdgeTotals]] = {"source": {}, "destination": {}}
    requests, tcp = metrics.snapshot()
    for series in requests:
        table = by_reporter.get(str(series.key[0]))
        if table is None:
            continue
        protocol, code, grpc_status = series.key[15], series.key[16], series.key[17]
        totals = table.setdefault(_edge_of(series.key, str(protocol)), EdgeTotals())
        totals.requests += series.count
        # The cardinality cap's overflow series has no response code to judge.
        if code != OVERFLOW and request_failed(str(protocol), int(code), str(grpc_status)):  # type: ignore[call-overload]
            totals.errors += series.count
        totals.bytes_sent += series.response_bytes
        totals.bytes_received += series.request_bytes
        totals.duration_ms_sum += series.duration_ms
    for connection in tcp:
        table = by_reporter.get(str(connection.key[0]))
        if table is None:
            continue
        totals = table.setdefault(_edge_of(connection.key, "tcp"), EdgeTotals())
        totals.requests += connection.connections
        totals.bytes_sent += connection.sent_bytes
        totals.bytes_received += connection.received_bytes
    edges = dict(by_reporter["destination"])
    edges.update(by_reporter["source"])
    return edges


def graph_json(edges: dict[EdgeKey, EdgeTotals]) -> dict[str, object]:
    nodes: dict[str, dict[str, str]] = {}
    out = []
    for (workload, namespace, service, service_namespace, protocol), totals in sorted(edges.items()):
        source = f"{namespace}/{workload}"
        target = f"{service_namespace}/{service}"
        nodes.setdefault(source, {"id": source, "kind": "workload", "name": workload, "namespace": namespace})
        nodes.setdefault(target, {"id": target, "kind": "service", "name": service, "namespace": service_namespace})
        out.append({"source": source, "target": target, "protocol": protocol, **asdict(totals)})
    return {"nodes": sorted(nodes.values(), key=lambda node: node["id"]), "edges": out}
