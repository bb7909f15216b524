"""ALS log entries -> ``EnvoyFields``: what Envoy's text or JSON access log would have printed for them.

Both kinds of entry share ``AccessLogCommon`` (addresses, timings, cluster, flags, TLS); HTTP entries
add request and response, TCP entries the connection's byte counts. Values are rendered the way
Envoy's own command operators render them, so the shared RecordAssembler treats them like log lines.
"""

from __future__ import annotations

from envoy.config.core.v3.address_pb2 import Address
from envoy.config.core.v3.base_pb2 import RequestMethod
from envoy.data.accesslog.v3.accesslog_pb2 import (
    AccessLogCommon,
    HTTPAccessLogEntry,
    TCPAccessLogEntry,
)
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from telemetry.envoy.errors import ParseError
from telemetry.envoy.operators import EnvoyFields
from telemetry.envoy.timestamps import start_time_text
from telemetry.receivers.als.flags import short_flags

_HTTP_VERSIONS = {
    HTTPAccessLogEntry.HTTP10: "HTTP/1.0",
    HTTPAccessLogEntry.HTTP11: "HTTP/1.1",
    HTTPAccessLogEntry.HTTP2: "HTTP/2",
    HTTPAccessLogEntry.HTTP3: "HTTP/3",
}

# METHOD_UNSPECIFIED (0) stays out: an entry without a method prints "".
_METHODS = {number: name for name, number in RequestMethod.items() if number}

_NANOS_PER_MS = 1_000_000
_NANOS_PER_SECOND = 1_000_000_000


def address_text(address: Address) -> str:
    """``ip:port`` as Envoy prints it (``[::1]:80`` for IPv6), a pipe's path, or "" when unset."""
    kind = address.WhichOneof("address")
    if kind == "socket_address":
        socket = address.socket_address
        host = f"[{socket.address}]" if ":" in socket.address else socket.address
        port = socket.port_value if socket.WhichOneof("port_specifier") == "port_value" else socket.named_port
        return f"{host}:{port}"
    if kind == "pipe":
        return address.pipe.path
    if kind == "envoy_internal_address":
        internal = address.envoy_internal_address
        return f"envoy://{internal.server_listener_name}/{internal.endpoint_id}"
    return ""


def timestamp_text(stamp: Timestamp) -> str:
    """RFC 3339 with milliseconds in UTC, as Envoy prints %START_TIME%: ``2024-05-01T12:00:00.123Z``."""
    if not 0 <= stamp.nanos < _NANOS_PER_SECOND:
        raise ParseError("bad_start_time", f"start_time has nanos {stamp.nanos} out of range")
    return start_time_text(stamp.seconds, stamp.nanos, "bad_start_time")


def duration_ms(duration: Duration) -> int:
    millis = duration.seconds * 1000 + duration.nanos // _NANOS_PER_MS
    if millis < 0 or duration.nanos < 0:
        raise ParseError("bad_duration", f"negative duration {duration.seconds}s {duration.nanos}ns")
    return millis


def _total_duration(common: AccessLogCommon) -> str:
    # ``duration`` (newer Envoys) is exactly what %DURATION% prints; older ones only send the
    # per-phase timings, of which the last byte sent downstream marks the end of the request.
    for name in ("duration", "time_to_last_downstream_tx_byte", "time_to_last_upstream_rx_byte"):
        if common.HasField(name):
            return str(duration_ms(getattr(common, name)))
    return "0"


def _common_fields(common: AccessLogCommon) -> dict[str, str]:
    tls = common.tls_properties
    peer_san = ""
    for alt_name in tls.peer_certificate_properties.subject_alt_name:
        if alt_name.WhichOneof("san") == "uri":
            peer_san = alt_name.uri
            break
    return {
        "start_time": timestamp_text(common.start_time) if common.HasField("start_time") else "",
        "response_flags": short_flags(common.response_flags) if common.HasField("response_flags") else "",
        "connection_termination_details": common.connection_termination_details,
        "upstream_transport_failure_reason": common.upstream_transport_failure_reason,
        "duration": _total_duration(common),
        "upstream_host": address_text(common.upstream_remote_address),
        "upstream_cluster": common.upstream_cluster,
        "upstream_local_address": address_text(common.upstream_local_address),
        "downstream_local_address": address_text(common.downstream_local_address),
        "downstream_remote_address": address_text(common.downstream_remote_address),
        "requested_server_name": tls.tls_sni_hostname,
        "route_name": common.route_name,
        "downstream_peer_uri_san": peer_san,
    }


def _require_common(entry: HTTPAccessLogEntry | TCPAccessLogEntry) -> AccessLogCommon:
    if not entry.HasField("common_properties"):
        raise ParseError("missing_common_properties", "entry has no common_properties")
    return entry.common_properties


def _response_code(entry: HTTPAccessLogEntry) -> str:
    response = entry.response
    if not response.HasField("response_code"):
        return ""
    code = response.response_code.value
    # 0 is Envoy's "no response was sent"; anything else outside HTTP's range is not a status.
    if code and not 100 <= code <= 599:
        raise ParseError("bad_response_code", f"response_code {code} is not an HTTP status")
    return str(code)


def http_fields(entry: HTTPAccessLogEntry) -> EnvoyFields:
    common = _require_common(entry)
    request = entry.request
    response = entry.response
    request_headers = request.request_headers
    response_headers = response.response_headers
    return EnvoyFields(
        **_common_fields(common),
        method=_METHODS.get(request.request_method, ""),
        path=request.original_path or request.path,
        protocol=_HTTP_VERSIONS.get(entry.protocol_version, ""),
        response_code=_response_code(entry),
        response_code_details=response.response_code_details,
        # Body bytes, as %BYTES_RECEIVED% / %BYTES_SENT% print them and Istio's size metrics measure.
        bytes_received=str(request.request_body_bytes),
        bytes_sent=str(response.response_body_bytes),
        upstream_service_time=response_headers.get("x-envoy-upstream-service-time", ""),
        x_forwarded_for=request.forwarded_for,
        user_agent=request.user_agent,
        request_id=request.request_id,
        authority=request.authority,
        # A trailers-only gRPC response carries its status in the headers.
        grpc_status=response.response_trailers.get("grpc-status") or response_headers.get("grpc-status", ""),
        trace_id=request_headers.get("x-b3-traceid", ""),
        span_id=request_headers.get("x-b3-spanid", ""),
        traceparent=request_headers.get("traceparent", ""),
    )


def tcp_fields(entry: TCPAccessLogEntry) -> EnvoyFields:
    common = _require_common(entry)
    connection = entry.connection_properties
    return EnvoyFields(
        **_common_fields(common),
        bytes_received=str(connection.received_bytes),
        bytes_sent=str(connection.sent_bytes),
    )
