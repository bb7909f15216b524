"""The graph's vocabulary: node kinds, node ids, graph types, health, and the figures on nodes and edges.

A built graph is a ``networkx.MultiDiGraph`` (one edge per source, destination and protocol, the
protocol being the edge key) whose node and edge attributes are the plain values named here, so every
export (JSON, Cytoscape, DOT, GraphML, the legacy servicegraph shapes) reads the same attributes.

Node attributes: ``kind``, ``name``, ``namespace``, ``app``, ``version``, ``workload``, ``service``,
``virtual`` (a peer that reports nothing: a database, a broker, an uninstrumented or external host),
``health``, ``idle``, the figures of the traffic it received (``FIGURES``) and, prefixed ``out_``, the
rps/error figures of the traffic it sent.
Edge attributes: ``protocol``, ``health``, ``idle``, ``origin`` (``mesh``: proxies' Records;
``spans``: client/server span pairs), and ``FIGURES``.
Graph attributes: ``graph_type``, ``window`` (seconds), ``start``, ``end`` (unix seconds), ``source``.
"""

from __future__ import annotations

from typing import Literal

GraphType = Literal["workload", "app", "versioned_app", "service"]
GRAPH_TYPES: tuple[GraphType, ...] = ("workload", "app", "versioned_app", "service")

# Node kinds. A versioned app is an "app" node with a version.
WORKLOAD = "workload"
APP = "app"
SERVICE = "service"
GATEWAY = "gateway"
EXTERNAL = "external"
DATABASE = "database"
MESSAGING = "messaging"
UNKNOWN_NODE = "unknown"
NODE_KINDS = (WORKLOAD, APP, SERVICE, GATEWAY, EXTERNAL, DATABASE, MESSAGING, UNKNOWN_NODE)

UNKNOWN_ID = "unknown"  # the one node for callers the mesh cannot name (outside the mesh, or unlabelled)

Health = Literal["healthy", "degraded", "failing", "idle"]
HEALTHY: Health = "healthy"
DEGRADED: Health = "degraded"
FAILING: Health = "failing"
IDLE: Health = "idle"
HEALTH_ORDER: dict[str, int] = {IDLE: 0, HEALTHY: 1, DEGRADED: 2, FAILING: 3}

ORIGIN_MESH = "mesh"
ORIGIN_SPANS = "spans"

# Figures over the window, on every edge and (for received traffic) every node. Rates are per second,
# percentages 0-100, latencies in milliseconds (None when nothing was timed), breakdowns map a response
# code, gRPC status or Envoy response flag to a request count.
FIGURES = (
    "requests",  # requests, or TCP connections
    "rps",  # requests (or connections) per second
    "errors",  # HTTP 5xx, no response, gRPC non-OK; for span pairs, failed pairs
    "error_pct",
    "client_errors",  # HTTP 4xx
    "client_error_pct",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mtls_pct",  # share of requests/connections with connection_security_policy mutual_tls
    "bytes_sent_per_s",  # by the destination (responses, or TCP bytes sent)
    "bytes_received_per_s",  # by the destination (requests, or TCP bytes received)
    "response_codes",
    "grpc_statuses",
    "response_flags",
)
OUT_FIGURES = ("out_requests", "out_rps", "out_errors", "out_error_pct")


def node_id(kind: str, namespace: str, name: str, version: str = "") -> str:
    """``workload:default:reviews-v1``, ``app:default:reviews:v1``, ``database::mysql:ratings``, ``unknown``."""
    if kind == UNKNOWN_NODE:
        return UNKNOWN_ID
    # Ids go in URL paths (/api/node/<id>, /api/edge/<source>/<destination>): no "/" in them.
    name = name.replace("/", ":")
    return f"{kind}:{namespace}:{name}:{version}" if version else f"{kind}:{namespace}:{name}"
