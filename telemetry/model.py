"""The Record: one request or TCP connection as one proxy saw it.

Field names follow Istio's attribute vocabulary so the metrics sink can map them to Istio's standard
labels one to one. A Record is a NamedTuple: parsers build it with one ``tuple.__new__`` call on the hot
path, sinks read fields by name, and it is immutable, so one Record can fan out to every sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

UNKNOWN = "unknown"
NO_FLAGS = "-"


class Record(NamedTuple):
    # Who called whom: the first IDENTITY_FIELDS fields depend only on the two peers and the route,
    # so parsers can build them once per peer pair and sinks can slice them as a label-key prefix.
    reporter: str = UNKNOWN  # "source" (client-side proxy) | "destination" (server-side proxy)
    source_workload: str = UNKNOWN
    source_namespace: str = UNKNOWN
    source_principal: str = UNKNOWN
    source_app: str = UNKNOWN
    source_version: str = UNKNOWN
    destination_workload: str = UNKNOWN
    destination_namespace: str = UNKNOWN
    destination_principal: str = UNKNOWN
    destination_app: str = UNKNOWN
    destination_version: str = UNKNOWN
    destination_service: str = UNKNOWN  # host, e.g. reviews.default.svc.cluster.local
    destination_service_name: str = UNKNOWN
    destination_service_namespace: str = UNKNOWN
    connection_security_policy: str = UNKNOWN  # mutual_tls | none | unknown
    # What happened on this request or connection.
    protocol: str = "http"  # http | grpc | tcp
    response_code: int = 0  # 0: no response was sent
    grpc_status: str = ""  # numeric gRPC status as text, "" when not gRPC
    response_flags: str = NO_FLAGS  # Envoy's short flags, comma separated: "URX,UF"
    duration_ms: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    method: str = ""
    authority: str = ""
    path: str = ""
    source_address: str = ""  # downstream remote address, ip:port
    destination_address: str = ""  # upstream host, ip:port
    upstream_cluster: str = ""
    trace_id: str = ""
    span_id: str = ""
    request_id: str = ""
    start_time: str = ""  # as the proxy printed it (RFC 3339)
    user_agent: str = ""
    route_name: str = ""
    original: str = ""  # the access-log line as read; kept only when a log sink asks for it


RECORD_FIELDS: tuple[str, ...] = Record._fields
IDENTITY_FIELDS = 15  # Record[:IDENTITY_FIELDS] is the peer-pair identity


def request_failed(protocol: str, response_code: int, grpc_status: str) -> bool:
    """Istio's and Kiali's error: an HTTP 5xx, no response at all, or a gRPC status other than OK."""
    if protocol == "tcp":
        return False
    if grpc_status:
        return grpc_status != "0"
    return response_code >= 500 or response_code == 0


@dataclass(frozen=True, slots=True)
class Workload:
    """The identity of a proxy or of a peer: who reported a Record, or who was on the other end."""

    name: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    principal: str = UNKNOWN
    gateway: bool = False  # an ingress/egress gateway ("router" node) always reports as source

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN


class Span(NamedTuple):
    """An application span, reduced to what the service graph pairs client and server spans by.

    Proxy spans become Records instead; the full span travels unchanged to the trace exporters.
    """

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str = ""
    kind: str = "unspecified"  # unspecified | internal | server | client | producer | consumer
    service: str = UNKNOWN  # resource service.name
    namespace: str = UNKNOWN  # resource k8s.namespace.name / service.namespace
    name: str = ""
    start_ns: int = 0
    end_ns: int = 0
    error: bool = False  # status ERROR, or an HTTP 5xx / gRPC non-OK result
    http_status: int = 0
    rpc_system: str = ""
    peer_service: str = ""  # peer.service, server.address or net.peer.name: who a client called
    db_system: str = ""
    db_name: str = ""
    messaging_system: str = ""
    messaging_destination: str = ""
