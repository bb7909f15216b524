"""Received spans -> Records (proxy spans) and Spans (application spans), for ``TraceIngest``.

A proxy span is one request as one Envoy saw it, the same thing an access-log line is: its tags
(``upstream_cluster``, ``http.status_code``, ``response_flags``, ``peer.address``, ``node_id``, Istio's
``istio.*`` tags, ...) become ``EnvoyFields`` and the shared ``RecordAssembler`` makes the Record, with
the reporting proxy named by its ``node_id``. Everything else is an application span, reduced to a
``Span`` by the OpenTelemetry semantic conventions (old and new attribute names).

Speed: a span's attributes become the tuple of SPAN_KEYS' texts ("" when absent). From OTLP protobuf
bytes upb gathers each span's keys and string values into two lists (``otlp_lean``: no Python loop
over the attributes), and one ``itemgetter`` per list of keys (``_Layouts``: a proxy's spans all carry
the same keys) picks the values out; Zipkin JSON's tags, a dict already, are read the same way, the
request never made OTLP unless an exporter asks (``from_zipkin.read_json``); decoded messages are
walked once, decoding only the keys read (``span_values``). Whether a span is a proxy's is decided
from two keys. One assembler per reporting proxy keeps the assembler's identity cache warm however
the proxies' spans interleave. A request of proxy spans whose proxies are all known already is made
Records column by column, per proxy (``proxy_columns``), with the same Records in the same order.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, NamedTuple, Protocol

from envoy.config.core.v3.base_pb2 import Node
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.node import parse_node
from telemetry.envoy.operators import EnvoyFields
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.timestamps import start_time_text as envoy_time_text
from telemetry.model import UNKNOWN, Record, Span, Workload
from telemetry.spans.attributes import AttributeReader, as_int
from telemetry.spans.from_zipkin import Groups, ZipkinColumns, ZipkinSpans
from telemetry.spans.otlp_lean import attribute_count, lean_resource_spans
from telemetry.spans.proxy_columns import (
    _CLUSTER,
    _CLUSTER_NAME,
    _COMPONENT,
    _FLAGS,
    _GRPC_AUTHORITY,
    _GRPC_PATH,
    _GRPC_STATUS,
    _HTTP_STATUS,
    _METHOD,
    _NODE_ID,
    _PEER_ADDRESS,
    _PROTOCOL,
    _REQUEST_ID,
    _REQUEST_SIZE,
    _RESPONSE_SIZE,
    _UPSTREAM_ADDRESS,
    _URL,
    _USER_AGENT,
    RECORD_KEYS,
    TagColumns,
    plan,
    proxy_records,
    reorder,
    split_url,
)
from telemetry.traces import Normalised, OtlpSpans, SpanBatch

# The span attributes read: a proxy span's Record's first (in proxy_columns' order), then the others.
SPAN_KEYS: tuple[str, ...] = (
    *RECORD_KEYS,
    "istio.canonical_service",
    "istio.namespace",
    "istio.canonical_revision",
    "http.response.status_code",
    "rpc.system",
    "rpc.grpc.status_code",
    "db.system",
    "db.name",
    "db.namespace",
    "peer.service",
    "server.address",
    "net.peer.name",
    "messaging.system",
    "messaging.destination.name",
    "messaging.destination",
)
# The RECORD_KEYS' positions come from proxy_columns, which reads the same columns.
(
    _CANONICAL_SERVICE, _ISTIO_NAMESPACE, _CANONICAL_REVISION, _HTTP_RESPONSE_STATUS,
    _RPC_SYSTEM, _RPC_GRPC_STATUS, _DB_SYSTEM, _DB_NAME, _DB_NAMESPACE, _PEER_SERVICE, _SERVER_ADDRESS,
    _NET_PEER_NAME, _MESSAGING_SYSTEM, _MESSAGING_DESTINATION_NAME, _MESSAGING_DESTINATION,
) = range(len(RECORD_KEYS), len(SPAN_KEYS))  # fmt: skip
_RECORD_COLUMNS = len(RECORD_KEYS)  # SPAN_KEYS' columns that are RECORD_KEYS'

_SPAN_READER = AttributeReader(SPAN_KEYS)
_MAX_LAYOUTS = 4096
_node_id_tag = methodcaller("get", "node_id", "")
_TRACE_ID, _SPAN_ID = attrgetter("trace_id"), attrgetter("span_id")
_START, _END = attrgetter("start_time_unix_nano"), attrgetter("end_time_unix_nano")

_new = tuple.__new__

RESOURCE_KEYS: tuple[str, ...] = ("service.name", "k8s.namespace.name", "service.namespace")

PROXY_COMPONENT = "proxy"
SPAN_KINDS: tuple[str, ...] = ("unspecified", "internal", "server", "client", "producer", "consumer")
_CALLING_KINDS = frozenset({OtlpSpan.SPAN_KIND_CLIENT, OtlpSpan.SPAN_KIND_PRODUCER})
_STATUS_ERROR = Status.STATUS_CODE_ERROR
_NANOS_PER_MS = 1_000_000
_NANOS_PER_MICRO = 1_000
_MICROS_PER_MS = 1_000
_NANOS_PER_SECOND = 1_000_000_000
_MAX_REPORTERS = 1024
# Shared by all normalisers; a lost race only formats twice.
_MILLIS_TEXT: dict[int, str] = {}
_MAX_MILLIS_TEXT = 4096
_MAX_MESSAGES = 3  # distinct rejection reasons kept for the partial-success message


class RequestIdSink(Protocol):
    """What the normaliser feeds proxy-span Records to (``correlation.RequestTraceIndex``)."""

    def remember_records(self, records: Sequence[Record]) -> None: ...


Values = tuple[str, ...]  # the text of each of SPAN_KEYS, "" when absent


class _Reporter(NamedTuple):
    workload: Workload
    assembler: RecordAssembler


def start_time_text(unix_nanos: int) -> str:
    """RFC 3339 in UTC with milliseconds, as Envoy prints %START_TIME%; "" for an unset (0) time."""
    if not unix_nanos:
        return ""
    # Spans arriving together mostly start in the same few milliseconds: each is formatted once.
    millis = unix_nanos // _NANOS_PER_MS
    text = _MILLIS_TEXT.get(millis)
    if text is None:
        seconds, nanos = divmod(unix_nanos, _NANOS_PER_SECOND)
        text = envoy_time_text(seconds, nanos, "bad_span")
        if len(_MILLIS_TEXT) >= _MAX_MILLIS_TEXT:
            _MILLIS_TEXT.clear()
        _MILLIS_TEXT[millis] = text
    return text


def start_time_texts(unix_nanos: Sequence[int]) -> list[str]:
    """``start_time_text`` of each time, in C for the milliseconds already formatted."""
    if 0 in unix_nanos:
        return list(map(start_time_text, unix_nanos))
    texts = list(map(_MILLIS_TEXT.get, map(int.__floordiv__, unix_nanos, repeat(_NANOS_PER_MS))))
    if None in texts:
        return [text or start_time_text(nanos) for text, nanos in zip(texts, unix_nanos, strict=True)]
    return texts  # type: ignore[return-value]  # no None among them


def span_values(attributes: Iterable[KeyValue]) -> Values:
    """The text of each of SPAN_KEYS among OTLP attributes, "" when absent; the last of duplicates wins."""
    return tuple(_SPAN_READER.read(attributes))


def _envoy_fields(
    values: Values, trace_id: str, span_id: str, start_time: str, path: str, authority: str, duration: int
) -> EnvoyFields:
    """A proxy span's EnvoyFields: positionally (keyword construction of 30 fields would cost as much as
    the assembly itself). Envoy tags an absent header or address as "-"; EnvoyFields holds "" for absent."""
    protocol, user_agent, request_id = values[_PROTOCOL], values[_USER_AGENT], values[_REQUEST_ID]
    upstream, peer = values[_UPSTREAM_ADDRESS], values[_PEER_ADDRESS]
    cluster = values[_CLUSTER_NAME] or values[_CLUSTER]
    protocol = "" if protocol == "-" else protocol
    user_agent = "" if user_agent == "-" else user_agent
    request_id = "" if request_id == "-" else request_id
    upstream = "" if upstream == "-" else upstream
    cluster = "" if cluster == "-" else cluster
    peer = "" if peer == "-" else peer
    # In EnvoyFields' order (a test checks it against construction by name).
    return _new(
        EnvoyFields,
        (start_time, values[_METHOD], path, protocol, values[_HTTP_STATUS], values[_FLAGS], "", "", "",
         values[_REQUEST_SIZE], values[_RESPONSE_SIZE], duration, "", "", user_agent, request_id, authority,
         upstream, cluster, "", "", peer, "", "", values[_GRPC_STATUS], trace_id, span_id, "", "", ""),
    )  # fmt: skip


class _Layouts:
    """Where each of SPAN_KEYS is in a span's list of attribute keys, by that list.

    Spans from one proxy or SDK carry the same keys in the same order, so the positions are worked out
    once per list and applied by one ``itemgetter`` call to the values (plus a trailing "" that absent
    keys point at). Of duplicate keys the last wins, as everywhere. Not thread-safe (the normaliser's
    lock covers it); at most _MAX_LAYOUTS are kept.
    """

    def __init__(self) -> None:
        self.by_keys: dict[tuple[str, ...], itemgetter[Any]] = {}

    def new(self, keys: tuple[str, ...]) -> itemgetter[Any]:
        position = {key: index for index, key in enumerate(keys)}
        absent = len(keys)
        layout = itemgetter(*(position.get(key, absent) for key in SPAN_KEYS))
        if len(self.by_keys) >= _MAX_LAYOUTS:
            self.by_keys.clear()
        self.by_keys[keys] = layout
        return layout


class SpanNormaliser:
    """``normalise(resource_spans) -> Normalised``: thread-safe, one lock per call.

    ``normalise_batch`` takes a request as received (``traces.SpanBatch``) and reads it the quickest way
    its form allows, with the same result: OTLP protobuf bytes through the lean schema (``otlp_lean``),
    Zipkin JSON from its decoded dicts (``from_zipkin.read_json``), anything else as ResourceSpans.
    """

    def __init__(self, peers: PeerTable, request_index: RequestIdSink | None = None) -> None:
        self._peers = peers
        self._request_index = request_index
        self._resource_reader = AttributeReader(RESOURCE_KEYS)
        self._layouts = _Layouts()
        self._tag_columns = TagColumns()
        # Oldest first: a full cache drops its oldest reporter in O(1) (popitem(last=False)).
        self._reporters: OrderedDict[tuple[str, str], _Reporter] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        with self._lock:
            return self._locked_call(resource_spans)

    def _locked_call(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        out = _Output()
        one = self._one
        read = _SPAN_READER.read
        for resource_index, resource in enumerate(resource_spans):
            service, namespace = self._resource(resource)
            for scope in resource.scope_spans:
                for span in scope.spans:
                    one(out, span, read(span.attributes), service, namespace, resource_index)
        return self._finish(out)

    def normalise_batch(self, batch: SpanBatch) -> Normalised:
        if isinstance(batch, ZipkinSpans):
            if batch.columns is not None:
                with self._lock:
                    records = self._zipkin_columns(batch.columns)
                if records is not None:
                    return self._finish(_Output(records))
            groups = batch.groups
            if groups is not None:
                return self._zipkin(groups)
        if isinstance(batch, OtlpSpans) and batch.body:
            return self._otlp(batch)
        return self(batch.resource_spans)

    # -- the quicker readings -------------------------------------------------------------------------

    def _otlp(self, batch: OtlpSpans) -> Normalised:
        lean = batch.lean if batch.lean is not None else lean_resource_spans(batch.body)
        if lean is None:
            return self(batch.resource_spans)
        layouts = self._layouts
        layout_of = layouts.by_keys.get
        with self._lock:
            # First every span's values (a span whose keys and strings do not pair is read from its
            # official message), then, if no attribute went without a key, the spans themselves.
            read: list[tuple[Any, Values]] = []
            starts: list[tuple[int, int, str, str]] = []  # where each resource's spans start in read
            keys_seen = 0
            for resource_index, resource in enumerate(lean):
                service, namespace = self._resource(resource)
                starts.append((resource_index, len(read), service, namespace))
                for scope_index, scope in enumerate(resource.scope_spans):
                    for span_index, span in enumerate(scope.spans):
                        merged = span.attributes
                        keys, texts = merged.key, merged.value.string_value
                        keys_seen += len(keys)
                        if len(keys) == len(texts):
                            keys = tuple(keys)
                            layout = layout_of(keys) or layouts.new(keys)
                            texts = texts[:]
                            texts.append("")
                            values = layout(texts)
                        elif not read:
                            # Not all strings from the first span on: an SDK's request (numbers and
                            # booleans), read from the official messages altogether.
                            return self._locked_call(batch.resource_spans)
                        else:  # not all strings: this span from its official message
                            full = batch.resource_spans[resource_index].scope_spans[scope_index].spans[span_index]
                            values = span_values(full.attributes)
                        read.append((span, values))
            if keys_seen != attribute_count(batch.body):
                return self._locked_call(batch.resource_spans)
            starts.append((len(starts), len(read), "", ""))
            in_columns = self._otlp_columns(read, starts) if read else None
            if in_columns is not None:
                return self._finish(_Output(in_columns))
            out = _Output()
            records, reject = out.records, out.reject
            one, record = self._one, self._record
            for (resource_index, first, service, namespace), (_, end, _, _) in itertools.pairwise(starts):
                for span, values in read[first:end]:
                    trace_id, span_id = span.trace_id, span.span_id
                    if (values[_COMPONENT] == PROXY_COMPONENT or values[_NODE_ID]) and _ids_valid(trace_id, span_id):
                        # _one, inlined for the common case: a proxy span with valid ids.
                        try:
                            records.append(
                                record(
                                    values,
                                    trace_id.hex(),
                                    span_id.hex(),
                                    span.start_time_unix_nano,
                                    span.end_time_unix_nano,
                                    service,
                                )
                            )
                        except ParseError as error:
                            reject(resource_index, error)
                    else:
                        one(out, span, values, service, namespace, resource_index)
        return self._finish(out)

    def _otlp_columns(
        self, read: list[tuple[Any, Values]], starts: list[tuple[int, int, str, str]]
    ) -> list[Record] | None:
        """The Records of a request of proxy spans from known proxies, made in columns (None: not such)."""
        spans, values = zip(*read, strict=True)
        services: list[str] = []
        for (_, first, service, _), (_, end, _, _) in itertools.pairwise(starts):
            services += repeat(service, end - first)
        tags = list(zip(*values, strict=True))[:_RECORD_COLUMNS]
        reporters = plan(tags[1], services, self._reporters)  # tags[1]: node_id
        if reporters is None:
            return None
        order = reporters.order
        trace_ids, span_ids = reorder(list(map(_TRACE_ID, spans)), order), reorder(list(map(_SPAN_ID, spans)), order)
        if not (
            {*map(len, trace_ids)} == {16}
            and {*map(len, span_ids)} == {8}
            and _NO_TRACE_ID not in trace_ids
            and _NO_SPAN_ID not in span_ids
        ):
            return None  # rejected span by span
        begins = reorder(list(map(_START, spans)), order)
        durations = list(
            map(
                int.__floordiv__,
                map(int.__sub__, reorder(list(map(_END, spans)), order), begins),
                repeat(_NANOS_PER_MS),
            )
        )
        try:
            start_texts = start_time_texts(begins)
        except ParseError:  # a time beyond the calendar: rejected span by span
            return None
        return proxy_records(
            reporters,
            [reorder(column, order) for column in tags],
            list(map(bytes.hex, trace_ids)),
            list(map(bytes.hex, span_ids)),
            durations,
            start_texts,
        )

    def _zipkin(self, groups: Groups) -> Normalised:
        # What the OTLP conversion would make of these spans: a resource per local service with only
        # service.name, the tags as string attributes followed by the remote endpoint's (its
        # peer.service overriding a tag of that name), the status from the mapped tags (none of which
        # is among SPAN_KEYS).
        out = _Output()
        records, spans, reject = out.records, out.spans, out.reject
        record = self._record
        layouts = self._layouts
        layout_of = layouts.by_keys.get
        with self._lock:
            for resource_index, (service_name, scopes) in enumerate(groups.items()):
                service = service_name or UNKNOWN
                for zipkin_spans in scopes.values():
                    for span in zipkin_spans:
                        trace_id, span_id, parent_id, kind, name, timestamp, duration, remote, tags, _, _, status = span
                        keys = tuple(tags)
                        texts = [*tags.values()]
                        if remote is not None and remote[0]:
                            keys += ("peer.service",)
                            texts.append(remote[0])
                        layout = layout_of(keys) or layouts.new(keys)
                        texts.append("")
                        values = layout(texts)
                        start = timestamp * 1000
                        end = start + duration * 1000
                        try:
                            if values[_COMPONENT] == PROXY_COMPONENT or values[_NODE_ID]:
                                records.append(record(values, trace_id.hex(), span_id.hex(), start, end, service))
                            else:
                                spans.append(
                                    _span(
                                        values,
                                        trace_id.hex(),
                                        span_id.hex(),
                                        parent_id,
                                        kind,
                                        service,
                                        UNKNOWN,
                                        name,
                                        start,
                                        end,
                                        status == _STATUS_ERROR,
                                    )  # fmt: skip
                                )
                        except ParseError as error:
                            reject(resource_index, error)
        return self._finish(out)

    def _zipkin_columns(self, columns: ZipkinColumns) -> list[Record] | None:
        """The Records of a request of proxy spans from known proxies, made in columns (None: not such)."""
        services = columns.services
        if "" in services:
            services = [service or UNKNOWN for service in services]
        # The tags every span has, when no span has another of those a Record is made from.
        shared = (
            columns.tag_columns
            if columns.tag_columns is not None and columns.tag_columns.extra.isdisjoint(RECORD_KEYS)
            else None
        )
        if shared is not None:
            keys = shared.keys
            node_ids = shared.columns[keys.index("node_id")] if "node_id" in keys else [""] * len(services)
        else:
            node_ids = list(map(_node_id_tag, columns.tags))
        reporters = plan(node_ids, services, self._reporters)
        if reporters is None:
            return None
        order = reporters.order
        if shared is not None:
            tags = TagColumns.pick(shared.keys, shared.columns, order)
        else:
            tags = self._tag_columns.read(reorder(columns.tags, order))
        try:
            start_texts = start_time_texts(
                list(map(int.__mul__, reorder(columns.timestamps, order), repeat(_NANOS_PER_MICRO)))
            )
        except ParseError:  # a time beyond the calendar: rejected span by span
            return None
        return proxy_records(
            reporters,
            tags,
            reorder(columns.trace_ids, order),
            reorder(columns.span_ids, order),
            list(map(int.__floordiv__, reorder(columns.durations, order), repeat(_MICROS_PER_MS))),
            start_texts,
        )

    # -- shared ---------------------------------------------------------------------------------------

    def _resource(self, resource: Any) -> tuple[str, str]:
        """Service and namespace from an official or lean ResourceSpans (the same Resource message)."""
        service, k8s_namespace, service_namespace = self._resource_reader.read(resource.resource.attributes)
        return service or UNKNOWN, k8s_namespace or service_namespace or UNKNOWN

    def _one(
        self, out: _Output, span: Any, values: Sequence[str], service: str, namespace: str, resource_index: int
    ) -> None:
        """One OTLP span (an official or a lean message) and its attributes' values (a list or a tuple)."""
        try:
            trace_id, span_id = _ids(span)
            if values[_COMPONENT] == PROXY_COMPONENT or values[_NODE_ID]:
                out.records.append(
                    self._record(
                        tuple(values), trace_id, span_id, span.start_time_unix_nano, span.end_time_unix_nano, service
                    )
                )
            else:
                out.spans.append(
                    _span(
                        values,
                        trace_id,
                        span_id,
                        span.parent_span_id,
                        span.kind,
                        service,
                        namespace,
                        span.name,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        span.status.code == _STATUS_ERROR,
                    )
                )
        except ParseError as error:
            out.reject(resource_index, error)

    def _finish(self, out: _Output) -> Normalised:
        if self._request_index is not None and out.records:
            self._request_index.remember_records(out.records)
        messages = out.messages
        error_text = "; ".join(messages)
        if out.rejected > len(messages) and messages:
            error_text += f" ({out.rejected} spans rejected in all)"
        return Normalised(records=out.records, spans=out.spans, rejected=out.rejected, error=error_text)

    # -- proxy spans ----------------------------------------------------------------------------------

    def _record(self, values: Values, trace_id: str, span_id: str, start: int, end: int, service: str) -> Record:
        if end < start:
            raise ParseError("bad_span", f"span {span_id} ends before it starts")
        url = values[_URL]
        authority, path = split_url(url) if url else (values[_GRPC_AUTHORITY], values[_GRPC_PATH])
        key = (values[_NODE_ID], service)
        reporter = self._reporters.get(key)
        if reporter is None:
            reporter = self._new_reporter(key, values)
        return reporter.assembler.assemble(
            _envoy_fields(
                values, trace_id, span_id, start_time_text(start), path, authority, (end - start) // _NANOS_PER_MS
            ),
            reporter.workload,
        )

    def _new_reporter(self, key: tuple[str, str], values: Values) -> _Reporter:
        # A proxy's istio.* tags are fixed for its node id: read once, when the node is first seen.
        node_id, service = key
        workload, ip = reporter_of(
            node_id, values[_CANONICAL_SERVICE], values[_ISTIO_NAMESPACE], values[_CANONICAL_REVISION], service
        )
        if len(self._reporters) >= _MAX_REPORTERS:
            self._reporters.popitem(last=False)
        reporter = self._reporters[key] = _Reporter(workload, RecordAssembler(self._peers))
        if ip and workload.known:
            # Spans carry no local addresses to learn from (access logs do): the node id's IP is it.
            self._peers.learn(ip, workload)
        return reporter


class _Output:
    __slots__ = ("records", "spans", "rejected", "messages")

    def __init__(self, records: list[Record] | None = None) -> None:
        self.records: list[Record] = [] if records is None else records
        self.spans: list[Span] = []
        self.rejected = 0
        self.messages: list[str] = []

    def reject(self, resource_index: int, error: ParseError) -> None:
        self.rejected += 1
        message = f"resource {resource_index}: {error}"
        if len(self.messages) < _MAX_MESSAGES and message not in self.messages:
            self.messages.append(message)


def reporter_of(
    node_id: str, canonical_service: str, namespace: str, canonical_revision: str, service_name: str
) -> tuple[Workload, str]:
    """The reporting proxy and its IP ("" if unknown) from a proxy span's tags and resource.

    Istio's node id names the pod, its namespace and whether it is a gateway; ``parse_node`` turns the
    pod into its workload, app and version by the rules every receiver shares
    (``telemetry.envoy.workloads``), so the pod is the same Workload as its log file or ALS stream make
    it. The ``istio.canonical_*`` tags, where present, are explicit metadata and win over the app and
    version derived from the name. Without a node id the resource's service name (Envoy's service
    cluster) names it.
    """
    workload, ip = Workload(), ""
    if node_id:
        try:
            workload, ip = parse_node(Node(id=node_id))
        except ParseError:
            pass
    if not workload.known and service_name != UNKNOWN:
        workload = Workload(name=service_name)
    return (
        Workload(
            name=workload.name,
            namespace=namespace if workload.namespace == UNKNOWN and namespace else workload.namespace,
            app=canonical_service or workload.app,
            version=canonical_revision or workload.version,
            principal=workload.principal,
            gateway=workload.gateway,
        ),
        ip,
    )


_NO_TRACE_ID, _NO_SPAN_ID = bytes(16), bytes(8)


def _ids_valid(trace_id: bytes, span_id: bytes) -> bool:
    """What _ids checks, without the hex."""
    return len(trace_id) == 16 and len(span_id) == 8 and trace_id != _NO_TRACE_ID and span_id != _NO_SPAN_ID


def _ids(span: Any) -> tuple[str, str]:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or not any(trace_id):
        raise ParseError("bad_span", f"trace id {trace_id.hex()!r} is not 16 bytes with one set")
    if len(span_id) != 8 or not any(span_id):
        raise ParseError("bad_span", f"span id {span_id.hex()!r} is not 8 bytes with one set")
    return trace_id.hex(), span_id.hex()


# -- application spans --------------------------------------------------------------------------------


def _span(
    values: Values,
    trace_id: str,
    span_id: str,
    parent: bytes,
    kind: int,
    service: str,
    namespace: str,
    name: str,
    start: int,
    end: int,
    status_error: bool,
) -> Span:
    if parent and len(parent) != 8:
        raise ParseError("bad_span", f"parent span id has {len(parent)} bytes, want 8")
    http_status = as_int(values[_HTTP_RESPONSE_STATUS] or values[_HTTP_STATUS]) or 0
    grpc_status = as_int(values[_RPC_GRPC_STATUS])
    error = status_error or http_status >= 500 or (grpc_status is not None and grpc_status != 0)
    peer_service = values[_PEER_SERVICE]
    if not peer_service and kind in _CALLING_KINDS:
        # On a server span server.address is the server itself: only a caller's names whom it called.
        peer_service = values[_SERVER_ADDRESS] or values[_NET_PEER_NAME]
    return Span(
        trace_id,
        span_id,
        parent.hex() if any(parent) else "",
        SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else SPAN_KINDS[0],
        service,
        namespace,
        name,
        start,
        end,
        error,
        http_status,
        values[_RPC_SYSTEM],
        peer_service,
        values[_DB_SYSTEM],
        values[_DB_NAME] or values[_DB_NAMESPACE],
        values[_MESSAGING_SYSTEM],
        values[_MESSAGING_DESTINATION_NAME] or values[_MESSAGING_DESTINATION],
    )
