"""OTLP spans as Zipkin v2 JSON spans, mapped as the OpenTelemetry specification's Zipkin exporter does.

- ``traceId`` (32 hex), ``id``, ``parentId`` (16 hex, absent for a root); ``kind`` for server, client,
  producer and consumer spans (Zipkin has no internal kind: absent); ``timestamp`` and ``duration`` in
  microseconds.
- ``localEndpoint.serviceName`` is the resource's ``service.name``; ``remoteEndpoint`` comes from
  ``peer.service``, ``server.address``, ``net.peer.*``, ``network.peer.*`` and similar attributes.
- Tags are strings: span attributes over resource attributes, arrays and maps as JSON, bytes as
  base64; ``otel.scope.name``/``otel.scope.version``; ``otel.status_code``, and for ERROR the
  ``error`` tag holding the status message.
- Events become annotations (the name, or ``{"name": {attributes}}`` as JSON when it has attributes).
  Zipkin has no links: they are not carried.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

KINDS = {
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
UNKNOWN_SERVICE = "unknown_service"

# Who the span talked to, most specific first. server.address and server.port describe the span's own
# side on server and consumer spans, so they name the remote end only on the other kinds.
REMOTE_NAME_KEYS = (
    "peer.service",
    "server.address",
    "net.peer.name",
    "network.peer.address",
    "net.sock.peer.name",
    "net.sock.peer.addr",
    "peer.hostname",
    "peer.address",
    "db.name",
)
REMOTE_IP_KEYS = ("network.peer.address", "net.sock.peer.addr", "net.peer.ip", "server.address", "net.peer.name")
REMOTE_PORT_KEYS = ("network.peer.port", "net.sock.peer.port", "server.port", "net.peer.port")
OWN_SIDE_KEYS = frozenset({"server.address", "server.port"})
OWN_SIDE_KINDS = frozenset({Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CONSUMER})


class ResourceContext(NamedTuple):
    """What every span of one resource shares."""

    local_endpoint: dict[str, str]
    tags: dict[str, str]


def plain_value(value: AnyValue) -> Any:
    """An AnyValue as a JSON-ready Python value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [plain_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: plain_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def tag_value(value: AnyValue) -> str:
    """An AnyValue as a Zipkin tag (always a string)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return str(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return ""
    return orjson.dumps(plain_value(value)).decode()


def tags_of(attributes: Iterable[KeyValue]) -> dict[str, str]:
    return {attribute.key: tag_value(attribute.value) for attribute in attributes}


def resource_context(resource: Resource) -> ResourceContext:
    tags = tags_of(resource.attributes)
    service = tags.pop("service.name", "") or UNKNOWN_SERVICE
    return ResourceContext({"serviceName": service}, tags)


def _micros(nanos: int) -> int:
    return (nanos + 500) // 1000


def remote_endpoint(span: Span, tags: dict[str, str]) -> dict[str, Any] | None:
    own_side = OWN_SIDE_KEYS if span.kind in OWN_SIDE_KINDS else frozenset()
    endpoint: dict[str, Any] = {}
    for key in REMOTE_NAME_KEYS:
        if key not in own_side and tags.get(key):
            endpoint["serviceName"] = tags[key]
            break
    for key in REMOTE_IP_KEYS:
        if key in own_side or not tags.get(key):
            continue
        try:
            address = ipaddress.ip_address(tags[key])
        except ValueError:
            continue
        endpoint["ipv4" if address.version == 4 else "ipv6"] = str(address)
        break
    for key in REMOTE_PORT_KEYS:
        text = tags.get(key, "")
        if key not in own_side and text.isdigit():
            endpoint["port"] = int(text)
            break
    return endpoint or None


def annotation(event: Span.Event) -> dict[str, Any]:
    if event.attributes:
        attributes = {attribute.key: plain_value(attribute.value) for attribute in event.attributes}
        value = orjson.dumps({event.name: attributes}, option=orjson.OPT_SORT_KEYS).decode()
    else:
        value = event.name
    return {"timestamp": _micros(event.time_unix_nano), "value": value}


def span_to_zipkin(span: Span, context: ResourceContext, scope: InstrumentationScope | None = None) -> dict[str, Any]:
    span_tags = tags_of(span.attributes)
    encoded: dict[str, Any] = {"traceId": span.trace_id.hex(), "id": span.span_id.hex()}
    if span.parent_span_id:
        encoded["parentId"] = span.parent_span_id.hex()
    kind = KINDS.get(span.kind)
    if kind:
        encoded["kind"] = kind
    encoded["name"] = span.name
    if span.start_time_unix_nano:
        encoded["timestamp"] = _micros(span.start_time_unix_nano)
        if span.end_time_unix_nano >= span.start_time_unix_nano:
            # Zipkin reads a zero duration as unknown: a finished span lasted at least 1 µs.
            encoded["duration"] = max(1, _micros(span.end_time_unix_nano - span.start_time_unix_nano))
    encoded["localEndpoint"] = context.local_endpoint
    remote = remote_endpoint(span, span_tags)
    if remote:
        encoded["remoteEndpoint"] = remote
    if span.events:
        encoded["annotations"] = [annotation(event) for event in span.events]
    tags = {**context.tags, **span_tags}
    if scope is not None:
        if scope.name:
            tags["otel.scope.name"] = scope.name
        if scope.version:
            tags["otel.scope.version"] = scope.version
    code = span.status.code
    if code == Status.STATUS_CODE_OK:
        tags["otel.status_code"] = "OK"
    elif code == Status.STATUS_CODE_ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status.message
    if span.dropped_attributes_count:
        tags["otel.dropped_attributes_count"] = str(span.dropped_attributes_count)
    if span.dropped_events_count:
        tags["otel.dropped_events_count"] = str(span.dropped_events_count)
    if span.dropped_links_count:
        tags["otel.dropped_links_count"] = str(span.dropped_links_count)
    if tags:
        encoded["tags"] = tags
    return encoded


def to_zipkin(batch: Iterable[ResourceSpans]) -> list[dict[str, Any]]:
    encoded: list[dict[str, Any]] = []
    for resource_spans in batch:
        context = resource_context(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            encoded.extend(span_to_zipkin(span, context, scope) for span in scope_spans.spans)
    return encoded


def to_zipkin_json(batch: Iterable[ResourceSpans]) -> bytes:
    """The body of a ``POST /api/v2/spans``."""
    return orjson.dumps(to_zipkin(batch))
