"""Simulated entries as Envoy's gRPC Access Log Service messages (envoy.data.accesslog.v3)."""

from __future__ import annotations

from envoy.config.core.v3.address_pb2 import SocketAddress
from envoy.config.core.v3.base_pb2 import Node, RequestMethod
from envoy.data.accesslog.v3.accesslog_pb2 import (
    AccessLogCommon,
    HTTPAccessLogEntry,
    ResponseFlags,
    TCPAccessLogEntry,
    TLSProperties,
)
from google.protobuf.struct_pb2 import Struct

from telemetry.demo.entries import LogEntry
from telemetry.demo.topology import Pod

# Envoy's short response flags -> the ResponseFlags message's fields.
_FLAG_FIELDS = {
    "LH": "failed_local_healthcheck",
    "UH": "no_healthy_upstream",
    "UT": "upstream_request_timeout",
    "LR": "local_reset",
    "UR": "upstream_remote_reset",
    "UF": "upstream_connection_failure",
    "UC": "upstream_connection_termination",
    "UO": "upstream_overflow",
    "NR": "no_route_found",
    "DI": "delay_injected",
    "FI": "fault_injected",
    "RL": "rate_limited",
    "DC": "downstream_connection_termination",
    "URX": "upstream_retry_limit_exceeded",
    "SI": "stream_idle_timeout",
}


def node_of(pod: Pod) -> Node:
    """The Node an Istio proxy announces: Istio's node id and the metadata istio-agent fills in."""
    metadata = Struct()
    metadata.update(
        {
            "NAME": pod.pod_name,
            "NAMESPACE": pod.namespace,
            "WORKLOAD_NAME": pod.workload,
            "SERVICE_ACCOUNT": pod.service_account,
            "INSTANCE_IPS": pod.pod_ip,
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "LABELS": {
                "app": pod.app,
                "version": pod.version,
                "service.istio.io/canonical-name": pod.app,
                "service.istio.io/canonical-revision": pod.version,
            },
        }
    )
    return Node(id=pod.node_id, cluster=f"{pod.app}.{pod.namespace}", metadata=metadata)


def _socket(address: SocketAddress, text: str | None) -> None:
    if not text:
        return
    host, _, port = text.rpartition(":")
    address.address = host.strip("[]")
    address.port_value = int(port)


def _common(common: AccessLogCommon, entry: LogEntry) -> None:
    fields = entry.fields
    # Whole milliseconds, as the text log prints them (a float's nanoseconds would not round-trip).
    common.start_time.FromMilliseconds(int(entry.start_ms))
    duration_ns = int(fields["duration"]) * 1_000_000
    common.duration.FromNanoseconds(duration_ns)
    common.time_to_last_downstream_tx_byte.FromNanoseconds(duration_ns)
    _socket(
        common.downstream_remote_address.socket_address,
        fields.get("downstream_remote_address"),
    )
    _socket(
        common.downstream_local_address.socket_address,
        fields.get("downstream_local_address"),
    )
    _socket(common.upstream_remote_address.socket_address, fields.get("upstream_host"))
    _socket(
        common.upstream_local_address.socket_address,
        fields.get("upstream_local_address"),
    )
    common.upstream_cluster = fields.get("upstream_cluster", "")
    common.route_name = fields.get("route_name", "")
    flags = fields.get("response_flags", "-")
    if flags != "-":
        _set_flags(common.response_flags, flags)
    sni = fields.get("requested_server_name", "")
    peer = fields.get("downstream_peer_uri_san", "")
    if sni or peer:
        tls = common.tls_properties
        tls.tls_version = TLSProperties.TLSv1_3
        tls.tls_sni_hostname = sni
        if peer:
            tls.peer_certificate_properties.subject_alt_name.add(uri=peer)
            tls.local_certificate_properties.subject_alt_name.add(uri=entry.pod.principal)


def _set_flags(message: ResponseFlags, flags: str) -> None:
    for flag in flags.split(","):
        name = _FLAG_FIELDS.get(flag)
        if name is not None:
            setattr(message, name, True)


def http_entry(entry: LogEntry) -> HTTPAccessLogEntry:
    fields = entry.fields
    message = HTTPAccessLogEntry()
    _common(message.common_properties, entry)
    message.protocol_version = (
        HTTPAccessLogEntry.HTTP2 if fields.get("protocol") == "HTTP/2" else HTTPAccessLogEntry.HTTP11
    )
    request = message.request
    request.request_method = RequestMethod.Value(fields.get("method", "GET"))
    request.scheme = "http"
    request.authority = fields.get("authority", "")
    request.path = fields.get("path", "")
    request.user_agent = fields.get("user_agent", "")
    request.forwarded_for = fields.get("x_forwarded_for", "")
    request.request_id = fields.get("request_id", "")
    request.request_body_bytes = int(fields.get("bytes_received", "0"))
    # Trace headers are what an Istio mesh adds with additional_request_headers_to_log.
    if fields.get("trace_id"):
        request.request_headers["x-b3-traceid"] = fields["trace_id"]
    if fields.get("span_id"):
        request.request_headers["x-b3-spanid"] = fields["span_id"]
    response = message.response
    response.response_code.value = int(fields.get("response_code", "0"))
    response.response_body_bytes = int(fields.get("bytes_sent", "0"))
    response.response_code_details = fields.get("response_code_details", "")
    if fields.get("upstream_service_time"):
        response.response_headers["x-envoy-upstream-service-time"] = fields["upstream_service_time"]
    if fields.get("grpc_status"):
        request.request_headers["content-type"] = "application/grpc"
        response.response_trailers["grpc-status"] = fields["grpc_status"]
    return message


def tcp_entry(entry: LogEntry) -> TCPAccessLogEntry:
    message = TCPAccessLogEntry()
    _common(message.common_properties, entry)
    message.connection_properties.received_bytes = int(entry.fields.get("bytes_received", "0"))
    message.connection_properties.sent_bytes = int(entry.fields.get("bytes_sent", "0"))
    return message
