"""One Record as one structured log event with ECS field names: what both log sinks send.

The Fluentd forward sink and the Elasticsearch sink write the same document, so Kibana reads either
the same way. Keys are flat dotted ECS names (``"http.request.method"``): cheaper to build than nested
objects, and both Fluentd's Elasticsearch output and Elasticsearch itself expand the dots into the
objects of the shipped mapping. A field with no value is left out rather than sent empty: an empty
string is not a valid ``ip`` or ``long`` for Elasticsearch. The mesh's own vocabulary (workloads,
principals, response flags) sits under ``meshscope.*`` so it can never collide with a future ECS field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from telemetry.model import UNKNOWN, Record, request_failed

Event = dict[str, Any]

DATASET = "meshscope.access"
_NS_PER_MS = 1_000_000


def now_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def split_address(address: str) -> tuple[str, int | None]:
    """``10.0.0.1:8080`` / ``[::1]:80`` -> (ip, port); a bare ip or a socket path keeps no port."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:]
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""
    return host, int(port) if port.isdigit() else None


def reporter_namespace(record: Record) -> str:
    """The namespace of the proxy that reported the Record: what an access-log tag or index is named by."""
    return record.source_namespace if record.reporter == "source" else record.destination_namespace


def _address(event: Event, side: str, address: str) -> None:
    if not address:
        return
    event[f"{side}.address"] = address
    ip, port = split_address(address)
    # Only an address that is an ip goes into the ip-typed field (a socket path or hostname would not index).
    if ip and (ip[0].isdigit() or ":" in ip):
        event[f"{side}.ip"] = ip
    if port is not None:
        event[f"{side}.port"] = port


def _known(event: Event, key: str, value: str) -> None:
    if value and value != UNKNOWN:
        event[key] = value


def record_event(record: Record, fallback_timestamp: str, include_original: bool = False) -> Event:
    """The ECS document for one Record; ``fallback_timestamp`` stands in when the proxy printed no start time."""
    failed = request_failed(record.protocol, record.response_code, record.grpc_status)
    event: Event = {
        "@timestamp": record.start_time or fallback_timestamp,
        "event.dataset": DATASET,
        "event.duration": record.duration_ms * _NS_PER_MS,
        "event.outcome": "failure" if failed else "success",
        "network.protocol": record.protocol,
        "source.bytes": record.bytes_received,
        "destination.bytes": record.bytes_sent,
        "meshscope.reporter": record.reporter,
        "meshscope.response_flags": record.response_flags,
        "meshscope.connection_security_policy": record.connection_security_policy,
    }
    if record.response_code:
        event["http.response.status_code"] = record.response_code
    if record.method:
        event["http.request.method"] = record.method
    if record.path:
        event["url.path"] = record.path
    if record.authority:
        event["url.domain"] = record.authority
    if record.request_id:
        event["http.request.id"] = record.request_id
    if record.user_agent:
        event["user_agent.original"] = record.user_agent
    if record.trace_id:
        event["trace.id"] = record.trace_id
    if record.span_id:
        event["span.id"] = record.span_id
    if record.grpc_status:
        event["meshscope.grpc_status"] = record.grpc_status
    if record.upstream_cluster:
        event["meshscope.upstream_cluster"] = record.upstream_cluster
    if record.route_name:
        event["meshscope.route_name"] = record.route_name
    _address(event, "source", record.source_address)
    _address(event, "destination", record.destination_address)
    _known(event, "destination.domain", record.destination_service)
    _known(event, "meshscope.source.workload", record.source_workload)
    _known(event, "meshscope.source.namespace", record.source_namespace)
    _known(event, "meshscope.source.app", record.source_app)
    _known(event, "meshscope.source.version", record.source_version)
    _known(event, "meshscope.source.principal", record.source_principal)
    _known(event, "meshscope.destination.workload", record.destination_workload)
    _known(event, "meshscope.destination.namespace", record.destination_namespace)
    _known(event, "meshscope.destination.app", record.destination_app)
    _known(event, "meshscope.destination.version", record.destination_version)
    _known(event, "meshscope.destination.principal", record.destination_principal)
    _known(event, "meshscope.destination.service_name", record.destination_service_name)
    _known(event, "meshscope.destination.service_namespace", record.destination_service_namespace)
    if include_original and record.original:
        event["event.original"] = record.original
    return event


def batch_events(records: Sequence[Record], include_original: bool = False) -> list[Event]:
    fallback = now_timestamp()
    return [record_event(record, fallback, include_original) for record in records]
