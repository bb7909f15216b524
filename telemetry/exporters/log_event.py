"""One Record as one structured log event with ECS field names: what both log sinks send.

The Fluentd forward sink and the Elasticsearch sink write the same document, so Kibana reads either
the same way. Keys are flat dotted ECS names (``"http.request.method"``): cheaper to build than nested
objects, and both Fluentd's Elasticsearch output and Elasticsearch itself expand the dots into the
objects of the shipped mapping. A field with no value is left out rather than sent empty: an empty
string is not a valid ``ip`` or ``long`` for Elasticsearch. The mesh's own vocabulary (workloads,
principals, response flags) sits under ``meshscope.*`` so it can never collide with a future ECS field.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from telemetry.model import UNKNOWN, Record, request_failed

Event = dict[str, Any]

DATASET = "meshscope.access"
_NS_PER_MS = 1_000_000


def _indexed(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[int, str], ...]:
    return tuple((Record._fields.index(field), key) for field, key in pairs)


# (Record field index, event key) of the fields that are left out when empty (or 0) ...
OPTIONAL_FIELDS = _indexed((
    ("response_code", "http.response.status_code"),
    ("method", "http.request.method"),
    ("path", "url.path"),
    ("authority", "url.domain"),
    ("request_id", "http.request.id"),
    ("user_agent", "user_agent.original"),
    ("trace_id", "trace.id"),
    ("span_id", "span.id"),
    ("grpc_status", "meshscope.grpc_status"),
    ("upstream_cluster", "meshscope.upstream_cluster"),
    ("route_name", "meshscope.route_name"),
))  # fmt: skip
# ... and of the peers' identity, left out when empty or "unknown" (the Fluentd encoder caches these per peer pair).
KNOWN_FIELDS = _indexed((
    ("destination_service", "destination.domain"),
    ("source_workload", "meshscope.source.workload"),
    ("source_namespace", "meshscope.source.namespace"),
    ("source_app", "meshscope.source.app"),
    ("source_version", "meshscope.source.version"),
    ("source_principal", "meshscope.source.principal"),
    ("destination_workload", "meshscope.destination.workload"),
    ("destination_namespace", "meshscope.destination.namespace"),
    ("destination_app", "meshscope.destination.app"),
    ("destination_version", "meshscope.destination.version"),
    ("destination_principal", "meshscope.destination.principal"),
    ("destination_service_name", "meshscope.destination.service_name"),
    ("destination_service_namespace", "meshscope.destination.service_namespace"),
))  # fmt: skip


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
    return host, int(port) if port.isascii() and port.isdigit() else None


def reporter_namespace(record: Record) -> str:
    """The namespace of the proxy that reported the Record: what an access-log tag or index is named by."""
    return record.source_namespace if record.reporter == "source" else record.destination_namespace


@functools.lru_cache(maxsize=65_536)  # pod addresses repeat: the parse is paid once per host
def looks_like_ip(host: str) -> bool:
    """Only an ip goes into the ip-typed field: a hostname or socket path there would make Elasticsearch
    refuse the whole document."""
    if not host or not (host[0].isdigit() or ":" in host):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def add_address(event: Event, side: str, address: str) -> None:
    """The ``{side}.address``, ``.ip`` and ``.port`` fields of one address; none when it is empty."""
    if not address:
        return
    event[f"{side}.address"] = address
    ip, port = split_address(address)
    if looks_like_ip(ip):
        event[f"{side}.ip"] = ip
    if port is not None:
        event[f"{side}.port"] = port


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
    for index, key in OPTIONAL_FIELDS:
        if value := record[index]:
            event[key] = value
    add_address(event, "source", record.source_address)
    add_address(event, "destination", record.destination_address)
    for index, key in KNOWN_FIELDS:
        value = record[index]
        if value and value != UNKNOWN:
            event[key] = value
    if include_original and record.original:
        event["event.original"] = record.original
    return event


def batch_events(records: Sequence[Record], include_original: bool = False) -> list[Event]:
    fallback = now_timestamp()
    return [record_event(record, fallback, include_original) for record in records]
