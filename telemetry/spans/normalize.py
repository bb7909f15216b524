"""Received spans -> Records (proxy spans) and Spans (application spans), for ``TraceIngest``.

A proxy span is one request as one Envoy saw it, the same thing an access-log line is: its tags
(``upstream_cluster``, ``http.status_code``, ``response_flags``, ``peer.address``, ``node_id``, Istio's
``istio.*`` tags, ...) become ``EnvoyFields`` and the shared ``RecordAssembler`` makes the Record, with
the reporting proxy named by its ``node_id``. Everything else is an application span, reduced to a
``Span`` by the OpenTelemetry semantic conventions (old and new attribute names).

Speed: one pass over each span's attributes decodes only the keys read here (``AttributeReader``);
whether a span is a proxy's is decided from two of them. One assembler per reporting proxy keeps the
assembler's identity cache warm however the proxies' spans interleave.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple, Protocol

from envoy.config.core.v3.base_pb2 import Node
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from telemetry.envoy.errors import ParseError
from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.node import parse_node
from telemetry.envoy.operators import FIELD_NAMES, EnvoyFields
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.timestamps import start_time_text as envoy_time_text
from telemetry.model import UNKNOWN, Record, Span, Workload
from telemetry.spans.attributes import AttributeReader, as_int
from telemetry.traces import Normalised

# The span attributes read, proxy tags first; positions below index AttributeReader.read's result.
SPAN_KEYS: tuple[str, ...] = (
    "component",
    "node_id",
    "upstream_cluster.name",
    "upstream_cluster",
    "http.status_code",
    "http.method",
    "http.url",
    "http.protocol",
    "response_flags",
    "istio.canonical_service",
    "istio.namespace",
    "istio.canonical_revision",
    "peer.address",
    "upstream_address",
    "guid:x-request-id",
    "request_size",
    "response_size",
    "user_agent",
    "grpc.status_code",
    "grpc.path",
    "grpc.authority",
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
(
    _COMPONENT, _NODE_ID, _CLUSTER_NAME, _CLUSTER, _HTTP_STATUS, _METHOD, _URL, _PROTOCOL, _FLAGS,
    _CANONICAL_SERVICE, _ISTIO_NAMESPACE, _CANONICAL_REVISION, _PEER_ADDRESS, _UPSTREAM_ADDRESS,
    _REQUEST_ID, _REQUEST_SIZE, _RESPONSE_SIZE, _USER_AGENT, _GRPC_STATUS, _GRPC_PATH, _GRPC_AUTHORITY,
    _HTTP_RESPONSE_STATUS, _RPC_SYSTEM, _RPC_GRPC_STATUS, _DB_SYSTEM, _DB_NAME, _DB_NAMESPACE,
    _PEER_SERVICE, _SERVER_ADDRESS, _NET_PEER_NAME, _MESSAGING_SYSTEM, _MESSAGING_DESTINATION_NAME,
    _MESSAGING_DESTINATION,
) = range(len(SPAN_KEYS))  # fmt: skip

# Where each EnvoyFields field comes from in a proxy span's read values, extended by _record with these.
_COMPUTED: tuple[str, ...] = (
    "",  # absent
    "start_time",
    "path",
    "authority",
    "duration",
    "trace_id",
    "span_id",
    "protocol",
    "user_agent",
    "request_id",
    "upstream_host",
    "upstream_cluster",
    "downstream_remote_address",
)
_FROM_TAGS = {
    "method": "http.method",
    "response_code": "http.status_code",
    "response_flags": "response_flags",
    "bytes_received": "request_size",
    "bytes_sent": "response_size",
    "grpc_status": "grpc.status_code",
}


def _field_source(field: str) -> int:
    if field in _FROM_TAGS:
        return SPAN_KEYS.index(_FROM_TAGS[field])
    return len(SPAN_KEYS) + (_COMPUTED.index(field) if field in _COMPUTED else 0)


_gather_fields = itemgetter(*(_field_source(field) for field in FIELD_NAMES))
_new = tuple.__new__

RESOURCE_KEYS: tuple[str, ...] = ("service.name", "k8s.namespace.name", "service.namespace")

PROXY_COMPONENT = "proxy"
SPAN_KINDS: tuple[str, ...] = ("unspecified", "internal", "server", "client", "producer", "consumer")
_CALLING_KINDS = frozenset({OtlpSpan.SPAN_KIND_CLIENT, OtlpSpan.SPAN_KIND_PRODUCER})
_STATUS_ERROR = Status.STATUS_CODE_ERROR
_NANOS_PER_MS = 1_000_000
_NANOS_PER_SECOND = 1_000_000_000
_MAX_REPORTERS = 1024
_MAX_MESSAGES = 3  # distinct rejection reasons kept for the partial-success message


class RequestIdSink(Protocol):
    """What the normaliser feeds proxy-span Records to (``correlation.RequestTraceIndex``)."""

    def remember_records(self, records: Sequence[Record]) -> None: ...


class _Reporter(NamedTuple):
    workload: Workload
    assembler: RecordAssembler


def start_time_text(unix_nanos: int) -> str:
    """RFC 3339 in UTC with milliseconds, as Envoy prints %START_TIME%; "" for an unset (0) time."""
    if not unix_nanos:
        return ""
    seconds, nanos = divmod(unix_nanos, _NANOS_PER_SECOND)
    return envoy_time_text(seconds, nanos, "bad_span")


def split_url(url: str) -> tuple[str, str]:
    """(authority, path) of Envoy's ``http.url`` tag: ``http://reviews:9080/r/0`` -> ``reviews:9080``, ``/r/0``."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return "", url
    host_start = scheme_end + 3
    slash = url.find("/", host_start)
    if slash < 0:
        return url[host_start:], ""
    return url[host_start:slash], url[slash:]


class SpanNormaliser:
    """``normalise(resource_spans) -> Normalised``: thread-safe, one lock per call."""

    def __init__(self, peers: PeerTable, request_index: RequestIdSink | None = None) -> None:
        self._peers = peers
        self._request_index = request_index
        self._reader = AttributeReader(SPAN_KEYS)
        self._resource_reader = AttributeReader(RESOURCE_KEYS)
        # Oldest first: a full cache drops its oldest reporter in O(1) (popitem(last=False)).
        self._reporters: OrderedDict[tuple[str, str], _Reporter] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        records: list[Record] = []
        spans: list[Span] = []
        rejected = 0
        messages: list[str] = []
        read = self._reader.read
        with self._lock:
            for resource_index, resource in enumerate(resource_spans):
                service, k8s_namespace, service_namespace = self._resource_reader.read(resource.resource.attributes)
                service = service or UNKNOWN
                namespace = k8s_namespace or service_namespace or UNKNOWN
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        values = read(span.attributes)
                        try:
                            if values[_COMPONENT] == PROXY_COMPONENT or values[_NODE_ID]:
                                records.append(self._record(span, values, service))
                            else:
                                spans.append(_span(span, values, service, namespace))
                        except ParseError as error:
                            rejected += 1
                            message = f"resource {resource_index}: {error}"
                            if len(messages) < _MAX_MESSAGES and message not in messages:
                                messages.append(message)
        if self._request_index is not None and records:
            self._request_index.remember_records(records)
        error_text = "; ".join(messages)
        if rejected > len(messages) and messages:
            error_text += f" ({rejected} spans rejected in all)"
        return Normalised(records=records, spans=spans, rejected=rejected, error=error_text)

    # -- proxy spans ----------------------------------------------------------------------------------

    def _record(self, span: OtlpSpan, values: list[str], service: str) -> Record:
        trace_id, span_id = _ids(span)
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        if end < start:
            raise ParseError("bad_span", f"span {span_id} ends before it starts")
        url = values[_URL]
        authority, path = split_url(url) if url else (values[_GRPC_AUTHORITY], values[_GRPC_PATH])
        key = (values[_NODE_ID], service)
        reporter = self._reporters.get(key)
        if reporter is None:
            reporter = self._new_reporter(key, values)
        # EnvoyFields gathered positionally in C from the read values plus these computed ones: keyword
        # construction of 30 fields would cost as much as the assembly itself.
        protocol, user_agent, request_id = values[_PROTOCOL], values[_USER_AGENT], values[_REQUEST_ID]
        upstream, peer = values[_UPSTREAM_ADDRESS], values[_PEER_ADDRESS]
        cluster = values[_CLUSTER_NAME] or values[_CLUSTER]
        # Envoy tags an absent header or address as "-"; EnvoyFields holds "" for absent.
        values += (
            "",
            start_time_text(start),
            path,
            authority,
            (end - start) // _NANOS_PER_MS,
            trace_id,
            span_id,
            "" if protocol == "-" else protocol,
            "" if user_agent == "-" else user_agent,
            "" if request_id == "-" else request_id,
            "" if upstream == "-" else upstream,
            "" if cluster == "-" else cluster,
            "" if peer == "-" else peer,
        )
        return reporter.assembler.assemble(_new(EnvoyFields, _gather_fields(values)), reporter.workload)

    def _new_reporter(self, key: tuple[str, str], values: list[str]) -> _Reporter:
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


def _ids(span: OtlpSpan) -> tuple[str, str]:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or not any(trace_id):
        raise ParseError("bad_span", f"trace id {trace_id.hex()!r} is not 16 bytes with one set")
    if len(span_id) != 8 or not any(span_id):
        raise ParseError("bad_span", f"span id {span_id.hex()!r} is not 8 bytes with one set")
    return trace_id.hex(), span_id.hex()


# -- application spans --------------------------------------------------------------------------------


def _span(span: OtlpSpan, values: list[str], service: str, namespace: str) -> Span:
    trace_id, span_id = _ids(span)
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        raise ParseError("bad_span", f"parent span id has {len(parent)} bytes, want 8")
    kind = span.kind
    http_status = as_int(values[_HTTP_RESPONSE_STATUS] or values[_HTTP_STATUS]) or 0
    grpc_status = as_int(values[_RPC_GRPC_STATUS])
    error = span.status.code == _STATUS_ERROR or http_status >= 500 or (grpc_status is not None and grpc_status != 0)
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
        span.name,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        error,
        http_status,
        values[_RPC_SYSTEM],
        peer_service,
        values[_DB_SYSTEM],
        values[_DB_NAME] or values[_DB_NAMESPACE],
        values[_MESSAGING_SYSTEM],
        values[_MESSAGING_DESTINATION_NAME] or values[_MESSAGING_DESTINATION],
    )
