"""Where the graph is built: the Traffic of a window in, a networkx graph of one of Kiali's four types out.

Each Istio series row is one path through the underlying workload graph: source workload -> service ->
destination workload. A graph type is a way of naming the path's ends (the workload, the app, the
app and version, or the service), so all four types come from the same rows, and their figures add
up the same way.

Counting each call once:
- Rows reported by the client-side proxy (``reporter="source"``) own an edge. Rows reported by the
  server side count only when no client side reported that source workload -> service -> protocol in the
  window (callers outside the mesh, or without a sidecar).
- Proxy rows (the mesh) own meshed edges. Span pairs add only what the mesh did not see: a span pair
  whose client and server already have mesh traffic between them in the window is left out (counted in
  the graph attribute ``span_pairs_seen_by_mesh``); pairs to databases, brokers and uninstrumented peers,
  and calls between services without sidecars, become edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from servicegraph.health import HealthConfig, worst
from servicegraph.model import (
    APP,
    DATABASE,
    EXTERNAL,
    GATEWAY,
    IDLE,
    MESSAGING,
    ORIGIN_MESH,
    ORIGIN_SPANS,
    SERVICE,
    UNKNOWN_ID,
    UNKNOWN_NODE,
    WORKLOAD,
    GraphType,
    node_id,
)
from servicegraph.quantiles import quantiles
from servicegraph.spanpairs import VIRTUAL_NAMESPACE
from servicegraph.traffic import (
    BUCKETS,
    CONNECTION_DATABASE,
    CONNECTION_MESSAGING,
    CONNECTIONS,
    DURATION_MS_SUM,
    N_BUCKETS,
    REQUEST_BYTES_SUM,
    REQUESTS,
    RESPONSE_BYTES_SUM,
    SPAN_CLIENT_BUCKETS,
    SPAN_CLIENT_MS_SUM,
    SPAN_FAILED,
    SPAN_REQUESTS,
    SPAN_SERVER_BUCKETS,
    SPAN_SERVER_MS_SUM,
    TCP_RECEIVED_BYTES,
    TCP_SENT_BYTES,
    Table,
    Traffic,
)
from telemetry.envoy.clusters import BLACKHOLE, INBOUND_PASSTHROUGH, PASSTHROUGH
from telemetry.exporters.prometheus.istio_metrics import OVERFLOW
from telemetry.model import UNKNOWN, request_failed

# Columns of the per-edge (and per-node) sums.
_REQ, _ERR, _4XX, _MTLS, _DUR, _RECEIVED, _SENT, _CONN = range(8)
_BUCKET0 = 8
_WIDTH = _BUCKET0 + N_BUCKETS

_BREAKDOWNS = ("response_codes", "grpc_statuses", "response_flags")
_NO_SERVICE = {UNKNOWN, PASSTHROUGH, BLACKHOLE, INBOUND_PASSTHROUGH}
_VIRTUAL_PEERS = {"", UNKNOWN, "user"}

NodeSpec = tuple[str, dict[str, object]]

# Label sets repeat from one build to the next (a live window's rows are the same series every second):
# their paths are worked out once. Bounded: a full memo starts over.
_PATHS: dict[tuple[str, str, tuple[str, ...]], tuple[list[NodeSpec], list[str], float, float]] = {}
_MAX_PATHS = 500_000


@dataclass(frozen=True)
class GraphOptions:
    graph_type: GraphType = "workload"
    namespaces: frozenset[str] = frozenset()  # empty: every namespace
    hide_idle: bool = False
    health: HealthConfig = field(default_factory=HealthConfig)
    node: str = ""  # when set, only the rows whose path touches this node id


def build_graph(traffic: Traffic, options: GraphOptions | None = None, source: str = "live") -> nx.MultiDiGraph:
    options = options or GraphOptions()
    builder = _Builder(options)
    builder.add_mesh(traffic)
    builder.add_span_pairs(traffic)
    graph = builder.finish(traffic)
    graph.graph.update(
        graph_type=options.graph_type,
        window=traffic.end - traffic.start,
        start=traffic.start,
        end=traffic.end,
        source=source,
        span_pairs_seen_by_mesh=builder.span_pairs_seen_by_mesh,
        requests=float(builder.calls[0]),
        errors=float(builder.calls[1]),
    )
    return graph


def _is_gateway(workload: str, app: str) -> bool:
    return "ingressgateway" in workload or "egressgateway" in workload or app.endswith("gateway")


class _Builder:
    def __init__(self, options: GraphOptions) -> None:
        self.options = options
        self.nodes: dict[str, dict[str, object]] = {}
        self.edge_index: dict[tuple[str, str, str], int] = {}
        self.edge_origin: list[str] = []
        self.edge_rows: list[int] = []  # per (row, edge) pair: the edge
        self.row_of_pair: list[int] = []  # ... the row of the contribution matrix
        self.weights: list[float] = []  # ... and the share of the row that is on the edge
        self.contributions: list[np.ndarray] = []
        self.breakdowns: dict[int, dict[str, dict[str, float]]] = {}
        self.span_pairs_seen_by_mesh = 0
        # What the mesh rows tell about names, for span pairs and for the service graph's sources.
        self.served_by: dict[tuple[str, str], str] = {}  # (namespace, workload) -> service name
        self.workloads_of_app: dict[tuple[str, str], set[str]] = {}
        self.namespaces_of_name: dict[str, set[str]] = {}
        self.mesh_pairs: set[tuple[str, str, str, str]] = set()
        self.mesh_pairs_by_name: set[tuple[str, str]] = set()
        self.mesh_destinations: set[str] = set()  # names of whatever received mesh traffic
        self._offset = 0
        self._match_spans = False
        self.calls = np.zeros(2)  # requests and errors, each call once: on its first hop

    # Nodes, named per graph type.

    def _node(self, spec: NodeSpec) -> str:
        node, attrs = spec
        if node not in self.nodes:
            self.nodes[node] = attrs
        return node

    def _source_node(self, workload: str, namespace: str, app: str, version: str) -> NodeSpec:
        if workload in (UNKNOWN, ""):
            return _unknown()
        if _is_gateway(workload, app):
            return _spec(GATEWAY, namespace, workload, workload=workload, app=app, version=version)
        graph_type = self.options.graph_type
        if graph_type == "service":
            service = self.served_by.get((namespace, workload))
            if service:
                return _spec(SERVICE, namespace, service, service=service)
        if graph_type in ("app", "versioned_app") and app != UNKNOWN:
            version_id = version if graph_type == "versioned_app" else ""
            return _spec(APP, namespace, app, version_id, app=app, version=version_id)
        return _spec(WORKLOAD, namespace, workload, workload=workload, app=app, version=version)

    def _destination_path(self, key: tuple[str, ...]) -> list[NodeSpec]:
        host, service, service_ns = key[11], key[12], key[13]
        workload, namespace, app, version = key[6], key[7], key[9], key[10]
        if service in (PASSTHROUGH, BLACKHOLE) or (
            workload == UNKNOWN and service_ns == UNKNOWN and service != UNKNOWN
        ):
            # Outside the mesh registry (PassthroughCluster), or a ServiceEntry host: named by its host.
            return [_spec(EXTERNAL, "", host, service=host)]
        path: list[NodeSpec] = []
        if service not in _NO_SERVICE:
            path.append(_spec(SERVICE, service_ns, service, service=service))
        if workload != UNKNOWN and (self.options.graph_type != "service" or not path):
            path.append(self._source_node(workload, namespace, app, version))
        return path or [_unknown()]

    # Rows in.

    def _wanted(self, *namespaces: str) -> bool:
        wanted = self.options.namespaces
        return not wanted or any(namespace in wanted for namespace in namespaces)

    def add_mesh(self, traffic: Traffic) -> None:
        http, tcp = traffic.http, traffic.tcp
        self._match_spans = len(traffic.spans) > 0
        tables = (http, tcp)
        for table in tables:
            for key in table.keys:
                if key[6] != UNKNOWN and key[12] not in _NO_SERVICE:
                    self.served_by.setdefault((key[7], key[6]), key[12])
        counted = _Counted(tables)
        self._add_mesh_table(http.keys, http.values, counted, tcp=False)
        self._add_mesh_table(tcp.keys, tcp.values, counted, tcp=True)

    def _add_mesh_table(self, keys: list[tuple[str, ...]], values: np.ndarray, counted: _Counted, tcp: bool) -> None:
        selected: list[int] = []
        hops_of_row: list[list[tuple[tuple[str, str], float]]] = []
        first_hops: list[float] = []  # the share of each row's requests that are calls on their first hop
        flags: list[tuple[float, float, float]] = []
        for row, key in enumerate(keys):
            if key[1] == OVERFLOW:
                continue  # the cardinality cap's fold: no peers to draw
            key = counted.as_client_named(key)
            if not self._wanted(key[2], key[13], key[7]):
                continue
            path, ids, failed, client_error = self._path_of(key, tcp)
            hops = counted.hops(key, ids)
            if self.options.node:
                hops = [hop for hop in hops if self.options.node in hop[0]]
            if not hops:
                continue
            first_hops.append(next((weight for hop, weight in hops if hop == (ids[0], ids[1])), 0.0))
            nodes = self.nodes
            for hop, _ in hops:
                for node in hop:
                    if node not in nodes:
                        nodes[node] = path[ids.index(node)][1]
            if self._match_spans:
                self._remember_mesh_pair(key)
            selected.append(row)
            hops_of_row.append(hops)
            flags.append((failed, client_error, counted.mtls_share(key)))
        if not selected:
            return
        rows = values[selected]
        flag = np.asarray(flags, dtype=np.float64)
        matrix = np.zeros((len(selected), _WIDTH))
        if tcp:
            matrix[:, _CONN] = rows[:, CONNECTIONS]
            matrix[:, _MTLS] = rows[:, CONNECTIONS] * flag[:, 2]
            matrix[:, _RECEIVED] = rows[:, TCP_RECEIVED_BYTES]
            matrix[:, _SENT] = rows[:, TCP_SENT_BYTES]
        else:
            requests = rows[:, REQUESTS]
            matrix[:, _REQ] = requests
            matrix[:, _ERR] = requests * flag[:, 0]
            matrix[:, _4XX] = requests * flag[:, 1]
            matrix[:, _MTLS] = requests * flag[:, 2]
            matrix[:, _DUR] = rows[:, DURATION_MS_SUM]
            matrix[:, _RECEIVED] = rows[:, REQUEST_BYTES_SUM]
            matrix[:, _SENT] = rows[:, RESPONSE_BYTES_SUM]
            matrix[:, _BUCKET0:] = rows[:, BUCKETS : BUCKETS + N_BUCKETS]
        self.calls += (matrix[:, [_REQ, _ERR]] * np.asarray(first_hops)[:, None]).sum(axis=0)
        for position, (row, hops) in enumerate(zip(selected, hops_of_row, strict=True)):
            key = keys[row]
            protocol = "tcp" if tcp else key[15]
            count = float(rows[position, CONNECTIONS if tcp else REQUESTS])
            for (source, target), weight in hops:
                edge = self._edge(source, target, protocol, ORIGIN_MESH)
                self.edge_rows.append(edge)
                self.row_of_pair.append(self._offset + position)
                self.weights.append(weight)
                if count:
                    self._count_breakdown(edge, key, tcp, count * weight)
        self.contributions.append(matrix)
        self._offset += len(selected)

    def _path_of(self, key: tuple[str, ...], tcp: bool) -> tuple[list[NodeSpec], list[str], float, float]:
        """The row's path in this graph type and whether it failed; memoised, as rows repeat every build."""
        served = ""
        if self.options.graph_type == "service":
            served = f"{self.served_by.get((key[2], key[1]), '')}|{self.served_by.get((key[7], key[6]), '')}"
        memo_key = (self.options.graph_type, served, key)
        memo = _PATHS.get(memo_key)
        if memo is None:
            path = [self._source_node(key[1], key[2], key[4], key[5]), *self._destination_path(key)]
            failed = client_error = 0.0
            if not tcp:
                code = int(key[16]) if key[16].isdigit() else 0
                failed = float(request_failed(key[15], code, key[17]))
                client_error = float(400 <= code < 500)
            memo = (path, [spec[0] for spec in path], failed, client_error)
            if len(_PATHS) >= _MAX_PATHS:
                _PATHS.clear()
            _PATHS[memo_key] = memo
        return memo

    def _count_breakdown(self, edge: int, key: tuple[str, ...], tcp: bool, count: float) -> None:
        tables = self.breakdowns.setdefault(edge, {})
        flags = tables.setdefault("response_flags", {})
        flag = key[16] if tcp else key[18]
        flags[flag] = flags.get(flag, 0.0) + count
        if tcp:
            return
        codes = tables.setdefault("response_codes", {})
        codes[key[16]] = codes.get(key[16], 0.0) + count
        if key[17]:
            statuses = tables.setdefault("grpc_statuses", {})
            statuses[key[17]] = statuses.get(key[17], 0.0) + count

    def _remember_mesh_pair(self, key: tuple[str, ...]) -> None:
        sources = {key[1], key[4]} - {UNKNOWN}
        destinations = {key[12], key[9], key[6]} - _NO_SERVICE
        for name, namespace in ((key[4], key[2]), (key[1], key[2]), (key[12], key[13]), (key[9], key[7])):
            if name != UNKNOWN and namespace != UNKNOWN:
                self.namespaces_of_name.setdefault(name, set()).add(namespace)
        if key[4] != UNKNOWN and key[1] != UNKNOWN:
            self.workloads_of_app.setdefault((key[2], key[4]), set()).add(key[1])
        if key[9] != UNKNOWN and key[6] != UNKNOWN:
            self.workloads_of_app.setdefault((key[7], key[9]), set()).add(key[6])
        self.mesh_destinations |= destinations
        for source in sources:
            for destination in destinations:
                self.mesh_pairs.add((source, key[2], destination, key[13]))
                self.mesh_pairs_by_name.add((source, destination))

    def add_span_pairs(self, traffic: Traffic) -> None:
        spans = traffic.spans
        selected: list[int] = []
        paths: list[tuple[str, str]] = []
        for row, (client, client_ns, server, server_ns, connection_type) in enumerate(spans.keys):
            if client == OVERFLOW:
                continue
            client_ns = self._namespace_of(client, client_ns)
            server_ns = self._namespace_of(server, server_ns)
            if not self._wanted(client_ns, server_ns):
                continue
            if self._seen_by_mesh(client, client_ns, server, server_ns):
                self.span_pairs_seen_by_mesh += 1
                continue
            source = self._span_node(client, client_ns, connection_type)
            target = self._span_node(server, server_ns, connection_type)
            if self.options.node and self.options.node not in (source[0], target[0]):
                continue
            selected.append(row)
            paths.append((self._node(source), self._node(target)))
        if not selected:
            return
        rows = spans.values[selected]
        matrix = np.zeros((len(selected), _WIDTH))
        matrix[:, _REQ] = rows[:, SPAN_REQUESTS]
        matrix[:, _ERR] = rows[:, SPAN_FAILED]
        server_buckets = rows[:, SPAN_SERVER_BUCKETS : SPAN_SERVER_BUCKETS + N_BUCKETS]
        client_buckets = rows[:, SPAN_CLIENT_BUCKETS : SPAN_CLIENT_BUCKETS + N_BUCKETS]
        # The server's own timing where there is one (as the connector's graph does), else the client's.
        has_server = server_buckets.sum(axis=1) > 0
        matrix[:, _BUCKET0:] = np.where(has_server[:, None], server_buckets, client_buckets)
        matrix[:, _DUR] = np.where(has_server, rows[:, SPAN_SERVER_MS_SUM], rows[:, SPAN_CLIENT_MS_SUM])
        self.calls += matrix[:, [_REQ, _ERR]].sum(axis=0)
        for position, (source, target) in enumerate(paths):
            edge = self._edge(source, target, "unknown", ORIGIN_SPANS)
            self.edge_rows.append(edge)
            self.row_of_pair.append(self._offset + position)
            self.weights.append(1.0)
        self.contributions.append(matrix)
        self._offset += len(selected)

    def _seen_by_mesh(self, client: str, client_ns: str, server: str, server_ns: str) -> bool:
        if (client, client_ns, server, server_ns) in self.mesh_pairs:
            return True
        # A side the spans could not name (a virtual peer, or no namespace) matches the mesh by name.
        if client_ns == VIRTUAL_NAMESPACE and client in _VIRTUAL_PEERS:
            return server in self.mesh_destinations
        vague = (VIRTUAL_NAMESPACE, UNKNOWN)
        return (client_ns in vague or server_ns in vague) and (client, server) in self.mesh_pairs_by_name

    def _namespace_of(self, name: str, namespace: str) -> str:
        if namespace != UNKNOWN:
            return namespace
        known = self.namespaces_of_name.get(name)
        return next(iter(known)) if known and len(known) == 1 else UNKNOWN

    def _span_node(self, name: str, namespace: str, connection_type: str) -> NodeSpec:
        """A pair's side: a service, or (namespace "") a peer that reports nothing itself."""
        if namespace == VIRTUAL_NAMESPACE:
            if name in _VIRTUAL_PEERS:
                return _unknown()
            if connection_type == CONNECTION_DATABASE:
                return _spec(DATABASE, "", name, service=name, virtual=True)
            if connection_type == CONNECTION_MESSAGING:
                return _spec(MESSAGING, "", name, service=name, virtual=True)
            return _spec(EXTERNAL, "", name, service=name, virtual=True)
        graph_type = self.options.graph_type
        if graph_type == "service":
            return _spec(SERVICE, namespace, name, service=name)
        if graph_type == "workload":
            workloads = self.workloads_of_app.get((namespace, name), set())
            if len(workloads) == 1:
                workload = next(iter(workloads))
                return _spec(WORKLOAD, namespace, workload, workload=workload, app=name)
        return _spec(APP, namespace, name, app=name)

    def _edge(self, source: str, target: str, protocol: str, origin: str) -> int:
        key = (source, target, protocol)
        edge = self.edge_index.get(key)
        if edge is None:
            edge = self.edge_index[key] = len(self.edge_index)
            self.edge_origin.append(origin)
        return edge

    # Figures out.

    def finish(self, traffic: Traffic) -> nx.MultiDiGraph:
        seconds = traffic.seconds
        edges = list(self.edge_index)
        sums = np.zeros((len(edges), _WIDTH))
        if self.contributions:
            contributions = np.concatenate(self.contributions)
            weighted = contributions[self.row_of_pair] * np.asarray(self.weights)[:, None]
            np.add.at(sums, np.asarray(self.edge_rows, dtype=np.intp), weighted)
        node_ids = list(self.nodes)
        position = {node: index for index, node in enumerate(node_ids)}
        inbound = np.zeros((len(node_ids), _WIDTH))
        outbound = np.zeros((len(node_ids), _WIDTH))
        if edges:
            np.add.at(inbound, [position[target] for _, target, _ in edges], sums)
            np.add.at(outbound, [position[source] for source, _, _ in edges], sums)
        edge_figures = _figures(sums, seconds)
        health = self.options.health

        graph = nx.MultiDiGraph()
        edge_health: dict[str, list[str]] = {}
        out_health: dict[str, list[str]] = {}
        for index, (source, target, protocol) in enumerate(edges):
            figures = edge_figures[index]
            figures.update(self._breakdowns(index))
            state = health.judge(protocol, figures["requests"], figures["error_pct"], figures["client_error_pct"])
            if self.options.hide_idle and state == IDLE:
                continue
            edge_health.setdefault(target, []).append(state)
            out_health.setdefault(source, []).append(state)
            graph.add_edge(
                source, target, key=protocol, protocol=protocol, origin=self.edge_origin[index],
                health=state, idle=state == IDLE, **figures,
            )  # fmt: skip
        node_breakdowns: dict[str, dict[str, dict[str, float]]] = {}
        for index, (_, target, _) in enumerate(edges):
            into = node_breakdowns.setdefault(target, {})
            for name, counts in self.breakdowns.get(index, {}).items():
                merged = into.setdefault(name, {})
                for value, count in counts.items():
                    merged[value] = merged.get(value, 0.0) + count
        node_in = _figures(inbound, seconds)
        node_out = _figures(outbound, seconds)
        for index, node in enumerate(node_ids):
            if node not in graph:
                if self.options.hide_idle:
                    continue
                graph.add_node(node)
            received, sent = node_in[index], node_out[index]
            states = [s for s in edge_health.get(node, []) if s != IDLE] or [
                s for s in out_health.get(node, []) if s != IDLE
            ]
            state = worst(*states) if states else IDLE
            breakdowns = node_breakdowns.get(node, {})
            received.update({name: breakdowns.get(name, {}) for name in _BREAKDOWNS})
            graph.add_node(
                node, **self.nodes[node], health=state, idle=state == IDLE, **received,
                out_requests=sent["requests"], out_rps=sent["rps"], out_errors=sent["errors"],
                out_error_pct=sent["error_pct"],
            )  # fmt: skip
        return graph

    def _breakdowns(self, edge: int) -> dict[str, dict[str, float]]:
        tables = self.breakdowns.get(edge, {})
        return {name: dict(tables.get(name, {})) for name in _BREAKDOWNS}


class _Counted:
    """Which proxy's rows count for which hop, so that each call is counted once per hop.

    A row is the path caller -> service -> destination workload. The second hop (service -> workload)
    belongs to the server side's rows, which always know who served; the client side's rows count for
    it only when the service has no server-side proxy (a database, a host outside the mesh).

    The first hop (caller -> service) belongs to the client side's rows. A server side's row counts for
    it when no client side reported that caller -> service (a caller without a sidecar). Rows whose
    caller the server side could not name are the hard case: they may be calls from outside the mesh,
    or calls some client side did report but the server side failed to attribute. They count for only
    the share the client sides cannot explain: the service's unknown-caller requests beyond those the
    client sides reported and the server side did not attribute to a known caller.

    mTLS is known only by the server side: a client-side row takes the share its server side saw.
    """

    def __init__(self, tables: Iterable[Table]) -> None:
        self.client_reported: set[tuple[str, str, str, str]] = set()
        # Caller -> serving workload -> the service the client side called, for server sides that name
        # the service otherwise (from :authority, where there was no mesh SNI to read it from).
        self.client_service: dict[tuple[str, str, str, str, str], tuple[str, str, str]] = {}
        self.server_reported_services: set[tuple[str, str]] = set()
        client_total: dict[tuple[str, str], float] = {}
        attributed: dict[tuple[str, str], float] = {}
        unknown: dict[tuple[str, str], float] = {}
        mtls: dict[tuple[str, str, str, str], list[float]] = {}
        rows = [
            (key, count) for table in tables for key, count in zip(table.keys, table.values[:, 0].tolist(), strict=True)
        ]
        for key, count in rows:
            if key[0] == "source":
                self.client_reported.add((key[1], key[2], key[11], key[15]))
                if key[6] != UNKNOWN:
                    self.client_service[(key[1], key[2], key[6], key[7], key[15])] = (key[11], key[12], key[13])
                client_total[(key[11], key[15])] = client_total.get((key[11], key[15]), 0.0) + count
        for key, count in rows:
            if key[0] == "source":
                continue
            key = self.as_client_named(key)
            service = (key[11], key[15])
            self.server_reported_services.add(service)
            caller = (key[1], key[2], key[11], key[15])
            if key[1] == UNKNOWN:
                unknown[service] = unknown.get(service, 0.0) + count
            elif self._reported_by_client(key):
                attributed[service] = attributed.get(service, 0.0) + count
            share = mtls.setdefault(caller, [0.0, 0.0])
            share[0] += count if key[14] == "mutual_tls" else 0.0
            share[1] += count
        self._mtls = {caller: seen / total for caller, (seen, total) in mtls.items() if total > 0}
        self._unknown_share: dict[tuple[str, str], float] = {}
        for service, total in unknown.items():
            unexplained = max(0.0, client_total.get(service, 0.0) - attributed.get(service, 0.0))
            self._unknown_share[service] = max(0.0, total - unexplained) / total if total > 0 else 1.0

    def hops(self, key: tuple[str, ...], ids: list[str]) -> list[tuple[tuple[str, str], float]]:
        """The row's hops, each with the share of the row's traffic that counts on it."""
        first, second = (ids[0], ids[1]), ((ids[1], ids[2]) if len(ids) > 2 else None)
        service = (key[11], key[15])
        if key[0] == "source":
            hops = [(first, 1.0)]
            if second is not None and service not in self.server_reported_services:
                hops.append((second, 1.0))
            return hops
        hops = [(second, 1.0)] if second is not None else []
        if key[1] == UNKNOWN:
            share = self._unknown_share.get(service, 1.0)
        else:
            share = 0.0 if self._reported_by_client(key) else 1.0
        if share > 0:
            hops.insert(0, (first, share))
        return hops

    def _reported_by_client(self, key: tuple[str, ...]) -> bool:
        return (key[1], key[2], key[11], key[15]) in self.client_reported or (
            key[1],
            key[2],
            key[6],
            key[7],
            key[15],
        ) in self.client_service

    def as_client_named(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """A server side's row, its service named as the client side named it (when they differ)."""
        if key[0] == "source":
            return key
        service = self.client_service.get((key[1], key[2], key[6], key[7], key[15]))
        if service is None or service == key[11:14]:
            return key
        return key[:11] + service + key[14:]

    def mtls_share(self, key: tuple[str, ...]) -> float:
        if key[0] != "source":
            return 1.0 if key[14] == "mutual_tls" else 0.0
        return self._mtls.get((key[1], key[2], key[11], key[15]), 0.0)


def _figures(sums: np.ndarray, seconds: float) -> list[dict[str, object]]:
    """The figures of each row of ``sums``; ``requests`` counts connections where there are no requests."""
    requests = sums[:, _REQ]
    connections = sums[:, _CONN]
    counted = np.where(requests > 0, requests, connections)
    with np.errstate(divide="ignore", invalid="ignore"):
        error_pct = np.where(requests > 0, 100.0 * sums[:, _ERR] / requests, 0.0)
        client_error_pct = np.where(requests > 0, 100.0 * sums[:, _4XX] / requests, 0.0)
        total = requests + connections
        mtls_pct = np.where(total > 0, 100.0 * sums[:, _MTLS] / total, 0.0)
    p50, p95, p99 = quantiles(sums[:, _BUCKET0:], (0.5, 0.95, 0.99))
    columns = zip(
        counted.tolist(), (counted / seconds).tolist(), sums[:, _ERR].tolist(), error_pct.tolist(),
        sums[:, _4XX].tolist(), client_error_pct.tolist(), p50, p95, p99, mtls_pct.tolist(),
        (sums[:, _SENT] / seconds).tolist(), (sums[:, _RECEIVED] / seconds).tolist(), strict=True,
    )  # fmt: skip
    return [
        {
            "requests": req,
            "rps": rps,
            "errors": err,
            "error_pct": err_pct,
            "client_errors": c4,
            "client_error_pct": c4_pct,
            "p50_ms": q50,
            "p95_ms": q95,
            "p99_ms": q99,
            "mtls_pct": mtls,
            "bytes_sent_per_s": sent,
            "bytes_received_per_s": received,
        }  # fmt: skip
        for req, rps, err, err_pct, c4, c4_pct, q50, q95, q99, mtls, sent, received in columns
    ]


def _spec(kind: str, namespace: str, name: str, id_version: str = "", **attrs: object) -> NodeSpec:
    base: dict[str, object] = {
        "kind": kind, "name": name, "namespace": namespace, "app": "", "version": "",
        "workload": "", "service": "", "virtual": False,
    }  # fmt: skip
    base.update(attrs)
    return node_id(kind, namespace, name, id_version), base


def _unknown() -> NodeSpec:
    return UNKNOWN_ID, {
        "kind": UNKNOWN_NODE, "name": UNKNOWN, "namespace": "", "app": "", "version": "",
        "workload": "", "service": "", "virtual": True,
    }  # fmt: skip


def neighbours(graph: nx.MultiDiGraph, node: str) -> dict[str, list[str]]:
    return {"inbound": sorted(set(graph.predecessors(node))), "outbound": sorted(set(graph.successors(node)))}
