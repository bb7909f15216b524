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

``read_json`` is what the receiver uses: the same checks without the encoding, the spans kept as
decoded (``ZipkinSpans``) for the normaliser, which reads their tags directly; the ResourceSpans are
encoded only if an exporter asks for them. Making OTLP of every request cost more than normalising it.
A request of the usual shape (a proxy's batch: every span with the same fields, ids of full length,
tags of strings) is read field by field across all its spans (``ZipkinColumns``: each check one pass
in C), for the normaliser to assemble its Records column by column; any other is read span by span.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import add, is_, itemgetter
from typing import Any, NamedTuple

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
_NO_TRACE_ID = bytes(16)
_NO_SCOPE = ("", "")
_new = tuple.__new__
Remote = tuple[str, str, int]  # service name, IP address, port ("" / 0 when absent)
_SHARED = wire.field(wire.SPAN_ATTRIBUTE, wire.key_value("zipkin.shared", wire.any_value(True)))
# Tag key/value pairs repeat across spans (methods, status codes, versions): their encoding is kept,
# bounded by clearing the cache when it fills. Shared by all threads; a lost race only encodes twice.
_TAG_CACHE: dict[tuple[str, str], bytes] = {}
_REMOTE_CACHE: dict[Remote, bytes] = {}
_NAME_CACHE: dict[str, bytes] = {}
_TAG_CACHE_SIZE = 1 << 16
_JSON_KIND_OR_INTERNAL: dict[str | None, int] = {None: wire.KIND_INTERNAL}
_JSON_KIND_OR_INTERNAL.update(_JSON_KINDS)
_REMOTE = itemgetter("serviceName", "ipv4", "port")
_PORT = itemgetter(2)
_get = dict.get
_STR, _INT, _DICT = {str}, {int}, {dict}
_KIND_FIELDS = {kind: wire.SPAN_KIND + wire.varint(kind) for kind in range(6)}
_TIMES = struct.Struct("<cQcQ").pack  # start and end, both fixed64
_MAX_FIXED64 = (1 << 64) - 1


class ZipkinSpan(NamedTuple):
    """One Zipkin span as read, checked as the converter checks it; ``tags`` as sent (mapped ones included)."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    kind: int
    name: str
    timestamp_us: int
    duration_us: int
    remote: Remote | None
    tags: Mapping[str, str]
    annotations: Sequence[tuple[int, str]]
    shared: bool
    status: int  # the OTLP status code the tags make (0 unset)


Groups = dict[str, dict[tuple[str, str], list[ZipkinSpan]]]  # local service -> (scope name, version) -> spans


class KeyColumns(NamedTuple):
    """Dicts read key by key: the keys every one has, the column of each key's values (a tuple per key,
    in ``keys``' order), and the keys only some have (``extra``)."""

    keys: tuple[str, ...]
    columns: list[tuple[Any, ...]]
    extra: frozenset[str]


class ZipkinColumns(NamedTuple):
    """One request's spans read field by field (``_read_json_columns``), in the order their groups put
    them (by local service, in order of first appearance; each service's spans in the request's order).

    ``tag_columns`` is the values of the tags every span carries, by key, when there are such tags.
    """

    services: Sequence[str]
    trace_ids: Sequence[str]  # in lower-case hex, as ``bytes.hex`` writes them (as are the two below)
    span_ids: Sequence[str]
    parent_ids: Sequence[str]  # "" for none
    kinds: Sequence[int]
    names: Sequence[str]
    timestamps: Sequence[int]
    durations: Sequence[int]
    remotes: Sequence[Remote | None]
    tags: Sequence[Mapping[str, str]]
    shared: Sequence[bool]
    statuses: Sequence[int]
    tag_columns: KeyColumns | None

    def groups(self) -> Groups:
        """The spans as ``_read_json_spans`` groups them (every span in the default scope)."""
        fromhex = bytes.fromhex
        spans = map(
            _new,
            repeat(ZipkinSpan),
            zip(
                map(fromhex, self.trace_ids),
                map(fromhex, self.span_ids),
                map(fromhex, self.parent_ids),
                self.kinds,
                self.names,
                self.timestamps,
                self.durations,
                self.remotes,
                self.tags,
                repeat(()),
                self.shared,
                self.statuses,
            ),  # fmt: skip
        )
        groups: Groups = {}
        for service, span in zip(self.services, spans):  # noqa: B905 - spans ends with the columns
            scopes = groups.get(service)
            if scopes is None:
                scopes = groups[service] = {_NO_SCOPE: []}
            scopes[_NO_SCOPE].append(span)
        return groups


class ZipkinSpans:
    """One request: its spans grouped as their ResourceSpans are, and the ResourceSpans made on demand.

    ``columns`` is the request read field by field when it could be (the groups are then made from
    them on first use); ``groups`` is None when the request was converted to ResourceSpans straight
    away (see ``read_json``).
    """

    def __init__(
        self,
        groups: Groups | None,
        resource_spans: Sequence[ResourceSpans] | None = None,
        columns: ZipkinColumns | None = None,
    ) -> None:
        self._groups = groups
        self.columns = columns
        self._resource_spans = resource_spans
        self._lock = threading.Lock()

    @property
    def groups(self) -> Groups | None:
        with self._lock:
            if self._groups is None and self.columns is not None:
                self._groups = self.columns.groups()
            return self._groups

    @property
    def resource_spans(self) -> Sequence[ResourceSpans]:
        """The spans as OTLP, for the trace exporters: encoded on first use (never when export is off)."""
        groups = self.groups
        with self._lock:
            if self._resource_spans is None:
                batch = _Batch()
                for service, scopes in (groups or {}).items():
                    for spans in scopes.values():
                        for span in spans:
                            batch.add(
                                span.trace_id, span.span_id, span.parent_id, span.kind, span.name,
                                span.timestamp_us, span.duration_us, service, span.remote, span.tags,
                                span.annotations, span.shared,
                            )  # fmt: skip
                self._resource_spans = batch.finish()
            return self._resource_spans


# What reading a request in columns raises on a value of an unusual type or size (anything else is a bug).
_UNUSUAL_VALUE = (TypeError, ValueError, LookupError, AttributeError, ArithmeticError)


def read_json(body: bytes) -> ZipkinSpans:
    """A Zipkin v2 JSON list of spans, read for the normaliser without making OTLP of it.

    Accepts and rejects exactly what ``resource_spans_from_json`` does: a span the quick reading does
    not take as it is (an unusual type anywhere) sends the whole request through the converter, which
    either converts it or raises the ParseError it deserves.
    """
    spans = _json_list(body)
    try:
        columns = _read_json_columns(spans)
    except _UNUSUAL_VALUE:  # read span by span below, which decides
        columns = None
    if columns is not None:
        return ZipkinSpans(None, columns=columns)
    try:
        return ZipkinSpans(_read_json_spans(spans))
    except Exception:  # noqa: BLE001 - the converter below decides, and names, what is wrong
        return ZipkinSpans(None, _convert_json_spans(spans))


def _read_json_columns(spans: list[Any]) -> ZipkinColumns | None:
    """What ``_read_json_spans`` reads, field by field across the spans (each step one pass in C): None
    (or an exception) when some span is not of the usual shape, for ``_read_json_spans`` to read.

    The usual shape: ids of 32 and 16 hex digits (parents all present or all absent), a local
    endpoint with a service name, integer times, tags of strings (none naming a scope), remote
    endpoints each with a name, an IPv4 address and a port, or none at all; no annotations.
    """
    count = len(spans)
    if not count:
        return None
    field = _Fields(spans)
    endpoints = field("localEndpoint")
    if _types(endpoints) != _DICT:
        return None
    services: Sequence[Any] = list(map(_get, endpoints, repeat("serviceName")))
    if _types(services) != _STR:
        return None
    distinct = dict.fromkeys(services)
    if len(distinct) > 1:  # the spans in their groups' order (a stable sort keeps each group's own)
        number = {service: index for index, service in enumerate(distinct)}
        numbers = list(map(number.__getitem__, services))
        field.order = itemgetter(*sorted(range(count), key=numbers.__getitem__))
        services = field.order(services)
    trace_ids = _hex_ids(field("traceId"), 32)
    span_ids = _hex_ids(field("id"), 16)
    if trace_ids is None or span_ids is None:
        return None
    parent_ids = _parent_ids(field("parentId"))
    if parent_ids is None:
        return None
    kinds = list(map(_JSON_KIND_OR_INTERNAL.__getitem__, field("kind")))
    names = field("name")
    timestamps = field("timestamp")
    durations = field("duration")
    tags = field("tags")
    # Types as the span-by-span reading requires them, less what it would default ("or ...").
    if not (
        _types(names) == _STR and _types(timestamps) == _INT and _types(durations) == _INT and _types(tags) == _DICT
    ):
        return None
    ends = list(map(add, timestamps, durations))
    if min(timestamps) < 0 or max(timestamps) * 1000 > _MAX_FIXED64 or min(ends) < 0 or max(ends) * 1000 > _MAX_FIXED64:
        return None
    tag_columns = _key_columns(tags)
    if tag_columns is not None and not tag_columns.extra:
        for column in tag_columns.columns:
            "".join(column)  # TypeError unless every value is a string
    else:
        "".join(chain.from_iterable(map(dict.values, tags)))
    if (
        _MAPPED_TAGS.isdisjoint(tag_columns.keys) and _MAPPED_TAGS.isdisjoint(tag_columns.extra)
        if tag_columns is not None
        else all(map(_MAPPED_TAGS.isdisjoint, tags))
    ):
        statuses: Sequence[int] = [0] * count
    else:  # error tags, say: each span's status (a scope tag would make groups of their own: not here)
        mapped = [
            (_NO_SCOPE, 0) if _MAPPED_TAGS.isdisjoint(span_tags) else _scope_status(span_tags) for span_tags in tags
        ]
        if any(scope != _NO_SCOPE for scope, _ in mapped):
            return None
        statuses = list(map(itemgetter(1), mapped))
    remotes = _remotes(field("remoteEndpoint"))
    if remotes is None or any(field("annotations")):
        return None
    shared = list(map(is_, field("shared"), repeat(True)))
    return ZipkinColumns(services, trace_ids, span_ids, parent_ids, kinds, names, timestamps, durations, remotes,
                         tags, shared, statuses, tag_columns)  # fmt: skip


class _Fields:
    """Each span's value of a key ("a field"), as a column: taken from the columns of the keys every span
    has, else fetched from each span; in ``order`` if one is set."""

    def __init__(self, spans: Sequence[Any]) -> None:
        self._spans = spans
        read = _key_columns(spans)
        self._by_key = {} if read is None else dict(zip(read.keys, read.columns, strict=True))
        self._absent = None if read is None or read.extra else (None,) * len(spans)
        self.order: Callable[[Sequence[Any]], Sequence[Any]] | None = None

    def __call__(self, key: str) -> Sequence[Any]:
        column: Sequence[Any] | None = self._by_key.get(key, self._absent)
        if column is None:  # some spans may have it
            column = list(map(_get, self._spans, repeat(key)))
        return column if self.order is None else self.order(column)


def _key_columns(dicts: Sequence[Any]) -> KeyColumns | None:
    """``dicts`` read key by key (None unless they are dicts sharing two keys or more): the keys of the
    one with the fewest, which every other one must have too; the keys beyond them collected."""
    try:
        first = min(dicts, key=len)
        size = len(first)
        if first.__class__ is not dict or size < 2:
            return None
        columns = list(zip(*map(itemgetter(*first), dicts), strict=True))
    except (KeyError, TypeError):
        return None
    extra: set[str] = set()
    if set(map(len, dicts)) != {size}:
        shared = first.keys()
        for other in dicts:
            if len(other) != size:
                extra.update(other.keys() - shared)
    return KeyColumns(tuple(first), columns, frozenset(extra))


def _types(column: Iterable[Any]) -> set[type]:
    return set(map(type, column))


def _hex_ids(texts: Sequence[Any], digits: int) -> Sequence[str] | None:
    """Ids of exactly ``digits`` hex digits each, not all zeros, in lower case; None for anything else."""
    if set(map(len, texts)) != {digits}:
        return None
    joined = "".join(texts)
    # fromhex skips spaces: the bytes would then fall short. Each id is checked, not only the whole.
    if len(bytes.fromhex(joined)) * 2 != len(joined) or "0" * digits in texts:
        return None
    lower = joined.lower()
    return texts if lower == joined else [lower[start : start + digits] for start in range(0, len(lower), digits)]


def _parent_ids(parents: Sequence[Any]) -> Sequence[str] | None:
    """Parent ids as ``_hex_ids`` reads them, "" for a span without one (a root span); None as there."""
    present = list(filter(None, parents))
    if len(present) == len(parents):
        return _hex_ids(parents, 16)
    if not present:
        return [""] * len(parents)
    ids = _hex_ids(present, 16)
    if ids is None:
        return None
    in_turn = iter(ids)
    return [next(in_turn) if parent else "" for parent in parents]


def _scope_status(tags: Mapping[str, str]) -> tuple[tuple[str, str], int]:
    _, scope, _, status = _split_mapped(tags)
    return scope, status


def _remotes(endpoints: Sequence[Any]) -> Sequence[Remote | None] | None:
    """Remote endpoints as ``_read_json_spans`` reads them when each has a name, an IPv4 address and a
    port, or none does; None for anything else."""
    if not any(endpoints):
        return [None] * len(endpoints)
    if _types(endpoints) != _DICT:
        return None
    try:
        remotes = list(map(_REMOTE, endpoints))
    except KeyError:
        return None
    if not all(map(all, remotes)):  # a value "or ..." would replace
        return None
    if _types(map(_PORT, remotes)) != _INT:  # 80.0 and True equal 80 and 1 as cache keys: checked here
        return None
    cache = _REMOTE_CACHE
    for remote in dict.fromkeys(remotes):
        if cache.get(remote) is None:  # as _Batch.add: checked (and encoded) once per endpoint
            if len(cache) > _TAG_CACHE_SIZE:
                cache.clear()
            cache[remote] = _remote_attributes(*remote)
    return remotes


def _read_json_spans(spans: list[Any]) -> Groups:
    # Every check the converter makes, in the order that is quickest here; the first exception ends
    # the attempt (read_json then asks the converter). Common id lengths are decoded inline.
    groups: Groups = {}
    remote_cache = _REMOTE_CACHE
    fromhex = bytes.fromhex
    internal = wire.KIND_INTERNAL
    for span in spans:
        get = span.get
        text = span["traceId"]
        trace_id = fromhex(text) if len(text) == 32 else _hex_trace_id(text)
        text = span["id"]
        span_id = fromhex(text) if len(text) == 16 else _hex_span_id(text, "id", "bad_span_id")
        if len(trace_id) != 16 or trace_id == _NO_TRACE_ID or len(span_id) != 8 or span_id == _ZERO_HIGH_BITS:
            raise ValueError("bad id")
        parent_id = get("parentId")
        if parent_id:
            parent_id = _hex_span_id(parent_id, "parentId", "bad_parent_id")
        else:
            parent_id = b""
        kind_name = get("kind")
        kind = _JSON_KINDS[kind_name] if kind_name is not None else internal
        name = get("name") or ""
        timestamp = get("timestamp") or 0
        duration = get("duration") or 0
        local = get("localEndpoint")
        service = (local.get("serviceName") or "") if local else ""
        if name.__class__ is not str or service.__class__ is not str:
            raise TypeError("name and serviceName must be strings")
        if timestamp.__class__ is not int or duration.__class__ is not int:
            raise TypeError("timestamp and duration must be integers")
        start = timestamp * 1000
        if not 0 <= start <= _MAX_FIXED64 or not 0 <= start + duration * 1000 <= _MAX_FIXED64:
            raise OverflowError("start or end out of range")
        tags = get("tags") or {}
        scope = _NO_SCOPE
        status = 0
        if tags:
            plain = tags
            if not tags.keys().isdisjoint(_MAPPED_TAGS):
                plain, scope, _, status = _split_mapped(tags)
            "".join(plain.values())  # TypeError unless every value is a string, as encoding them would raise
        remote = get("remoteEndpoint")
        if remote:
            remote = (
                remote.get("serviceName") or "",
                remote.get("ipv4") or remote.get("ipv6") or "",
                remote.get("port") or 0,
            )  # as _json_remote
            if type(remote[2]) is not int:  # 80.0 and True equal 80 and 1 as cache keys
                raise TypeError("a port that is not an integer")
            if remote_cache.get(remote) is None:  # as _Batch.add: checked (and encoded) once per endpoint
                if len(remote_cache) > _TAG_CACHE_SIZE:
                    remote_cache.clear()
                remote_cache[remote] = _remote_attributes(*remote)
        else:
            remote = None
        annotations = get("annotations")
        events = [(item["timestamp"], item["value"]) for item in annotations] if annotations else ()
        for timestamp_us, value in events:
            _event(timestamp_us, value)
        scopes = groups.get(service)
        if scopes is None:
            scopes = groups[service] = {}
        read = scopes.get(scope)
        if read is None:
            read = scopes[scope] = []
        read.append(
            _new(
                ZipkinSpan,
                (
                    trace_id,
                    span_id,
                    parent_id,
                    kind,
                    name,
                    timestamp,
                    duration,
                    remote,
                    tags,
                    events,
                    get("shared") is True,
                    status,
                ),
            )
        )
    return groups


def resource_spans_from_json(body: bytes) -> Sequence[ResourceSpans]:
    """A Zipkin v2 JSON list of spans."""
    return _convert_json_spans(_json_list(body))


def _json_list(body: bytes) -> list[Any]:
    try:
        spans = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ParseError("bad_json", f"not JSON: {error}") from None
    if not isinstance(spans, list):
        raise ParseError("bad_json", f"expected a JSON list of spans, got {type(spans).__name__}")
    return spans


def _convert_json_spans(spans: list[Any]) -> Sequence[ResourceSpans]:
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
    if len(raw) != 16 or raw == _NO_TRACE_ID:
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
    if len(raw) != 16 or raw == _NO_TRACE_ID:
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
                plain, scope, status, _ = _split_mapped(tags)
            for item in plain.items():
                encoded = cache.get(item)
                if encoded is None:
                    encoded = cache[item] = wire.string_attribute(wire.SPAN_ATTRIBUTE, *item)
                parts.append(encoded)
        if remote is not None:
            encoded = _REMOTE_CACHE.get(remote)
            if encoded is None or type(remote[2]) is not int:  # 80.0 and True equal 80 and 1 as keys
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


def _split_mapped(tags: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, str], bytes, int]:
    """The tags that stay attributes, the scope (name, version), and the encoded status and its code (0 unset)."""
    plain = {key: value for key, value in tags.items() if key not in _MAPPED_TAGS}
    scope = (
        next((tags[key] for key in _SCOPE_NAME if key in tags), ""),
        next((tags[key] for key in _SCOPE_VERSION if key in tags), ""),
    )
    code_name = tags.get("otel.status_code", "").upper()
    error = tags.get("error")
    message = tags.get("otel.status_description") or error or ""
    if code_name == "ERROR" or (error is not None and code_name != "OK"):
        code = wire.STATUS_ERROR
        status = wire.status(code, message)
    elif code_name == "OK":
        code = wire.STATUS_OK
        status = wire.status(code, "")
    else:
        code, status = 0, b""
    if not isinstance(message, str) or not isinstance(scope[0], str) or not isinstance(scope[1], str):
        raise TypeError("tag values must be strings")
    return plain, scope, status, code


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
