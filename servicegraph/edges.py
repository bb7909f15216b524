"""Who called whom, how often, how often it failed: edges aggregated from Records.

The live graph (windows, health, views) grows from this; today it feeds the ingest summary and the
graph file. A Record counts once per edge: client-reported entries own an edge, and server-reported
entries count only for edges no client reported (traffic from outside the mesh, for instance).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from telemetry.model import Record


@dataclass
class EdgeTotals:
    requests: int = 0
    errors: int = 0  # HTTP 5xx, gRPC non-OK, or no response at all
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms_sum: int = 0


EdgeKey = tuple[str, str, str, str, str]  # source workload, source namespace, service, service namespace, protocol


def is_error(record: Record) -> bool:
    if record.grpc_status:
        return record.grpc_status != "0"
    code = record.response_code
    return (code >= 500 or code == 0) and record.protocol != "tcp"


_EDGE_KEY = itemgetter(
    *(Record._fields.index(name) for name in
      ("source_workload", "source_namespace", "destination_service_name", "destination_service_namespace", "protocol"))
)  # fmt: skip


class EdgeTable:
    def __init__(self, max_edges: int = 100_000) -> None:
        self._max_edges = max_edges
        self._lock = threading.Lock()
        # Per reporter: edge -> [requests, errors, bytes sent, bytes received, duration sum].
        self._by_reporter: dict[str, dict[EdgeKey, list[int]]] = {"source": {}, "destination": {}}
        self.dropped = 0

    def consume(self, batch: Sequence[Record]) -> None:
        edge_of = _EDGE_KEY
        with self._lock:
            by_reporter = self._by_reporter
            for record in batch:
                table = by_reporter.get(record[0])
                if table is None:
                    continue
                key = edge_of(record)
                totals = table.get(key)
                if totals is None:
                    if len(table) >= self._max_edges:
                        self.dropped += 1
                        continue
                    totals = table[key] = [0, 0, 0, 0, 0]
                totals[0] += 1
                if is_error(record):
                    totals[1] += 1
                totals[2] += record.bytes_sent
                totals[3] += record.bytes_received
                totals[4] += record.duration_ms

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass

    def edges(self) -> dict[EdgeKey, EdgeTotals]:
        with self._lock:
            edges = dict(self._by_reporter["destination"])
            edges.update(self._by_reporter["source"])
            return {key: EdgeTotals(*totals) for key, totals in edges.items()}

    def to_json(self) -> dict[str, object]:
        edges = self.edges()
        nodes: dict[str, dict[str, str]] = {}
        out = []
        for (workload, namespace, service, service_namespace, protocol), totals in sorted(edges.items()):
            source = f"{namespace}/{workload}"
            target = f"{service_namespace}/{service}"
            nodes.setdefault(source, {"id": source, "kind": "workload", "name": workload, "namespace": namespace})
            nodes.setdefault(target, {"id": target, "kind": "service", "name": service, "namespace": service_namespace})
            out.append({"source": source, "target": target, "protocol": protocol, **vars(totals)})
        return {"nodes": sorted(nodes.values(), key=lambda node: node["id"]), "edges": out}
