"""Zipkin v2 spans (JSON or proto3) -> OTLP ResourceSpans, one per local service.

The mapping follows the OpenTelemetry Collector's Zipkin receiver where it has one:

- ids: hex (JSON) or big-endian bytes (proto3); a 64-bit trace id becomes a 128-bit one with zero
  high bits, shorter hex ids are left-padded with zeros as Zipkin itself does.
- kind: CLIENT/SERVER/PRODUCER/CONSUMER as themselves, no kind as INTERNAL (the OpenTelemetry
  Zipkin exporter leaves INTERNAL spans without one).
- timestamp/duration (µs) -> start/end (ns); localEndpoint.serviceName -> resource ``service.name``;
  remoteEndpoint -> ``peer.service``, ``net.peer.ip``, ``net.peer.port``; ``shared`` -> ``zipkin.shared``.
- tags -> string attributes, except those that OTLP has a field for: ``otel.status_code``,
  ``otel.status_description`` and ``error`` become the status (``error`` alone means ERROR, its value
  the message), ``otel.scope.name``/``otel.library.name`` and their ``version`` the instrumentation scope.
- annotations -> events named by their value; a value that is a JSON object of one key holding an
  object (how the OpenTelemetry Zipkin exporter writes an event with attributes) becomes that event
  with its attributes.

Every span is checked as it is converted; the first malformed one fails the whole request
(``ParseError``), as Zipkin's own collector answers a batch it cannot read with 400.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.envoy.errors import ParseError
from telemetry.spans import otlp_wire as wire
from telemetry.spans import zipkin_proto3 as proto3

_JSON_KINDS = {
    "CLIENT": wire.KIND_CLIENT,
    "SERVER": wire.KIND_SERVER,
    "PRODUCER": wire.KIND_PRODUCER,
    "CONSUMER": wire.KIND_CONSUMER,
}
_PROTO3_KINDS = {
    proto3.KIND_UNSPECIFIED: wire.KIND_INTERNAL,
    proto3.KIND_CLIENT: wire.KIND_CLIENT,
    proto3.KIND_SERVER: wire.KIND_SERVER,
    proto3.KIND_PRODUCER: wire.KIND_PRODUCER,
    proto3.KIND_CONSUMER: wire.KIND_CONSUMER,
}
_SCOPE_NAME = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION = ("otel.scope.version", "otel.library.version")
_MAPPED_TAGS = frozenset({"otel.status_code", "otel.status_description", "error", *_SCOPE_NAME, *_SCOPE_VERSION})
_ZERO_HIGH_BITS = bytes(8)
Remote = tuple[str, str, int]  # service name, IP address, port ("" / 0 when absent)
_SHARED = wire.field(wire.SPAN_ATTRIBUTE, wire.key_value("zipkin.shared", wire.any_value(True)))
# Tag key/value pairs repeat across spans (methods, status codes, versions): their encoding is kept,
# bounded by clearing the cache when it fills. Shared by all threads; a lost race only encodes twice.
_TAG_CACHE: dict[tuple[str, str], bytes] = {}
_REMOTE_CACHE: dict[Remote, bytes] = {}
_NAME_CACHE: dict[str, bytes] = {}
_TAG_CACHE_SIZE = 1 << 16
_KIND_FIELDS = {kind: wire.SPAN_KIND + wire.varint(kind) for kind in range(6)}
_TIMES = struct.Struct("<cQcQ").pack  # start and end, both fixed64


def resource_spans_from_json(body: bytes) -> Sequence[ResourceSpans]:
    """A Zipkin v2 JSON list of spans."""
    try:
        spans = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ParseError("bad_json", f"not JSON: {error}") from None
    if not isinstance(spans, list):
        raise ParseError("bad_json", f"expected a JSON list of spans, got {type(spans).__name__}")
    batch = _Batch()
    add = batch.add
    for index, span in enumerate(spans):
        try:
            local = span.get("localEndpoint")
            remote = span.get("remoteEndpoint")
            annotations = span.get("annotations")
            kind_name = span.get("kind")
            kind = _JSON_KINDS.get(kind_name) if kind_name is not None else wire.KIND_INTERNAL
            if kind is None:
                raise ParseError("bad_kind", f"kind {kind_name!r} is not a Zipkin kind")
            add(
                _hex_trace_id(span["traceId"]),
                _hex_span_id(span["id"], "id", "bad_span_id"),
                _hex_span_id(parent, "parentId", "bad_parent_id") if (parent := span.get("parentId")) else b"",
                kind,
                span.get("name") or "",
                span.get("timestamp") or 0,
                span.get("duration") or 0,
                (local.get("serviceName") or "") if local else "",
                _json_remote(remote) if remote else None,
                span.get("tags") or {},
                ((item["timestamp"], item["value"]) for item in annotations) if annotations else (),
                span.get("shared") is True,
            )
        except ParseError as error:
            raise ParseError(error.reason, f"span {index}: {error}") from None
        except KeyError as error:
            raise ParseError("bad_span", f"span {index}: missing {error}") from None
        except (AttributeError, TypeError, ValueError, OverflowError, struct.error) as error:
            raise ParseError("bad_span", f"span {index}: {type(error).__name__}: {error}") from None
    return batch.finish()


def resource_spans_from_proto3(body: bytes) -> Sequence[ResourceSpans]:
    """A Zipkin proto3 ``ListOfSpans``."""
    try:
        spans = proto3.ListOfSpans.FromString(body).spans
    except DecodeError as error:
        raise ParseError("bad_protobuf", f"not a zipkin.proto3.ListOfSpans: {error}") from None
    batch = _Batch()
    add = batch.add
    for index, span in enumerate(spans):
        try:
            add(
                _bytes_trace_id(span.trace_id),
                _bytes_span_id(span.id, "id", "bad_span_id"),
                _bytes_span_id(span.parent_id, "parent_id", "bad_parent_id") if span.parent_id else b"",
                _PROTO3_KINDS.get(span.kind, wire.KIND_INTERNAL),
                span.name,
                span.timestamp,
                span.duration,
                span.local_endpoint.service_name,
                _proto3_remote(span.remote_endpoint) if span.HasField("remote_endpoint") else None,
                span.tags,
                ((item.timestamp, item.value) for item in span.annotations),
                span.shared,
            )
        except ParseError as error:
            raise ParseError(error.reason, f"span {index}: {error}") from None
        except (ValueError, OverflowError, struct.error) as error:
            raise ParseError("bad_span", f"span {index}: {type(error).__name__}: {error}") from None
    return batch.finish()


def _hex_trace_id(text: str) -> bytes:
    size = len(text)
    try:
        if size == 32:
            raw = bytes.fromhex(text)
        elif size == 16:
            raw = _ZERO_HIGH_BITS + bytes.fromhex(text)
        elif 0 < size < 32:
            raw = bytes.fromhex(text.rjust(32, "0"))
        else:
            raw = b""
    except ValueError:
        raw = b""
    if len(raw) != 16 or raw == bytes(16):
        raise ParseError("bad_trace_id", f"traceId {text!r} is not 16 or 32 hex digits")
    return raw


def _hex_span_id(text: str, name: str, reason: str) -> bytes:
    size = len(text)
    try:
        raw = bytes.fromhex(text if size == 16 else text.rjust(16, "0")) if 0 < size <= 16 else b""
    except ValueError:
        raw = b""
    if len(raw) != 8 or raw == _ZERO_HIGH_BITS:
        raise ParseError(reason, f"{name} {text!r} is not 16 hex digits")
    return raw


def _bytes_trace_id(raw: bytes) -> bytes:
    if len(raw) == 8:
        raw = _ZERO_HIGH_BITS + raw
    if len(raw) != 16 or raw == bytes(16):
        raise ParseError("bad_trace_id", f"trace_id has {len(raw)} bytes, not 8 or 16")
    return raw


def _bytes_span_id(raw: bytes, name: str, reason: str) -> bytes:
    if len(raw) != 8 or raw == _ZERO_HIGH_BITS:
        raise ParseError(reason, f"{name} has {len(raw)} bytes, not 8")
    return raw


def _json_remote(endpoint: Mapping[str, Any]) -> Remote:
    return (
        endpoint.get("serviceName") or "",
        endpoint.get("ipv4") or endpoint.get("ipv6") or "",
        endpoint.get("port") or 0,
    )


def _proto3_remote(endpoint: Any) -> Remote:
    if endpoint.ipv4:
        ip = socket.inet_ntop(socket.AF_INET, endpoint.ipv4)
    elif endpoint.ipv6:
        ip = socket.inet_ntop(socket.AF_INET6, endpoint.ipv6)
    else:
        ip = ""
    return endpoint.service_name, ip, endpoint.port


def _event(timestamp_us: int, value: str) -> bytes:
    if timestamp_us.__class__ is not int:
        raise TypeError(f"annotation timestamp must be an integer, got {timestamp_us!r}")
    if value.startswith("{") and value.endswith("}"):
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and len(document) == 1:
            ((name, attributes),) = document.items()
            if isinstance(attributes, dict):
                return wire.event(timestamp_us * 1000, name, attributes.items())
    return wire.event(timestamp_us * 1000, value)


class _Batch:
    """Spans encoded as they come, grouped by local service and instrumentation scope."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[tuple[str, str], list[bytes]]] = {}

    def add(
        self,
        trace_id: bytes,
        span_id: bytes,
        parent_id: bytes,
        kind: int,
        name: str,
        timestamp_us: int,
        duration_us: int,
        service: str,
        remote: Remote | None,
        tags: Mapping[str, str],
        annotations: Iterable[tuple[int, str]],
        shared: bool,
    ) -> None:
        # A string would be repeated, not multiplied, below.
        if timestamp_us.__class__ is not int or duration_us.__class__ is not int:
            raise TypeError(f"timestamp and duration must be integers, got {timestamp_us!r}, {duration_us!r}")
        if service.__class__ is not str:  # it is only encoded in finish(), outside the per-span checks
            raise TypeError(f"localEndpoint.serviceName must be a string, got {service!r}")
        start = timestamp_us * 1000
        encoded_name = _NAME_CACHE.get(name)
        if encoded_name is None:
            if len(_NAME_CACHE) > _TAG_CACHE_SIZE:
                _NAME_CACHE.clear()
            encoded_name = _NAME_CACHE[name] = wire.field(wire.SPAN_NAME, name.encode())
        parts = [
            b"\x0a\x10" + trace_id + b"\x12\x08" + span_id,
            wire.field(wire.SPAN_PARENT_SPAN_ID, parent_id) if parent_id else b"",
            encoded_name,
            _KIND_FIELDS[kind],
            _TIMES(wire.SPAN_START, start, wire.SPAN_END, start + duration_us * 1000),
        ]
        scope = ("", "")
        status = b""
        if tags:
            cache = _TAG_CACHE
            if len(cache) > _TAG_CACHE_SIZE:
                cache.clear()
            plain = tags if tags.keys().isdisjoint(_MAPPED_TAGS) else None
            if plain is None:
                plain, scope, status = _split_mapped(tags)
            for item in plain.items():
                encoded = cache.get(item)
                if encoded is None:
                    encoded = cache[item] = wire.string_attribute(wire.SPAN_ATTRIBUTE, *item)
                parts.append(encoded)
        if remote is not None:
            encoded = _REMOTE_CACHE.get(remote)
            if encoded is None:
                if len(_REMOTE_CACHE) > _TAG_CACHE_SIZE:
                    _REMOTE_CACHE.clear()
                encoded = _REMOTE_CACHE[remote] = _remote_attributes(*remote)
            parts.append(encoded)
        if shared:
            parts.append(_SHARED)
        for timestamp, value in annotations:
            parts.append(_event(timestamp, value))
        if status:
            parts.append(status)
        scopes = self._groups.get(service)
        if scopes is None:
            scopes = self._groups[service] = {}
        spans = scopes.get(scope)
        if spans is None:
            spans = scopes[scope] = []
        spans.append(b"".join(parts))

    def finish(self) -> Sequence[ResourceSpans]:
        encoded = b"".join(
            wire.resource_spans(
                [("service.name", service)] if service else [],
                [(name, version, spans) for (name, version), spans in scopes.items()],
            )
            for service, scopes in self._groups.items()
        )
        return wire.parse_traces_data(encoded)


def _split_mapped(tags: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, str], bytes]:
    plain = {key: value for key, value in tags.items() if key not in _MAPPED_TAGS}
    scope = (
        next((tags[key] for key in _SCOPE_NAME if key in tags), ""),
        next((tags[key] for key in _SCOPE_VERSION if key in tags), ""),
    )
    code_name = tags.get("otel.status_code", "").upper()
    error = tags.get("error")
    message = tags.get("otel.status_description") or error or ""
    if code_name == "ERROR" or (error is not None and code_name != "OK"):
        status = wire.status(wire.STATUS_ERROR, message)
    elif code_name == "OK":
        status = wire.status(wire.STATUS_OK, "")
    else:
        status = b""
    if not isinstance(message, str) or not isinstance(scope[0], str) or not isinstance(scope[1], str):
        raise TypeError("tag values must be strings")
    return plain, scope, status


def _remote_attributes(service: str, ip: str, port: int) -> bytes:
    attributes = []
    if service:
        attributes.append(wire.string_attribute(wire.SPAN_ATTRIBUTE, "peer.service", service))
    if ip:
        attributes.append(wire.string_attribute(wire.SPAN_ATTRIBUTE, "net.peer.ip", ip))
    if port:
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError(f"remoteEndpoint.port {port!r} is not an integer")
        attributes.append(wire.field(wire.SPAN_ATTRIBUTE, wire.key_value("net.peer.port", wire.any_value(port))))
    return b"".join(attributes)
