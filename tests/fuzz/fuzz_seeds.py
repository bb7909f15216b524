"""Valid inputs for every fuzz target, to mutate: files from tests/testdata and messages from the demo mesh.

Everything here is deterministic (the demo mesh is seeded), so a seed corpus is the same on every run.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterable
from functools import cache
from typing import Any

import orjson
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry
from envoy.service.accesslog.v3.als_pb2 import StreamAccessLogsMessage
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fuzz.fuzz_targets import CUSTOM_FORMAT, TESTDATA
from telemetry.demo.als_messages import http_entry, node_of, tcp_entry
from telemetry.demo.entries import generate
from telemetry.demo.spans import calls_of, request_spans
from telemetry.envoy.presets import PRESETS
from telemetry.spans import zipkin_proto3 as proto3
from telemetry.spans.from_zipkin import resource_spans_from_json

_REQUESTS = 6


def _lines(*names: str) -> list[str]:
    lines = []
    for name in names:
        lines.extend(line for line in (TESTDATA / name).read_text().splitlines() if line.strip())
    return lines


def _batches(lines: list[str], size: int = 2) -> list[bytes]:
    return [line.encode() for line in lines] + [
        "\n".join(lines[index : index + size]).encode() for index in range(0, len(lines), size)
    ]


# Application spans as the OpenTelemetry Zipkin exporter writes them: the tags and annotations the
# converter maps to OTLP fields (status, scope, events with attributes, remote endpoint).
_APP_SPANS: list[dict[str, Any]] = [
    {
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "id": "00f067aa0ba902b7",
        "parentId": "00f067aa0ba902b6",
        "kind": "SERVER",
        "name": "GET /productpage",
        "timestamp": 1714564800000000,
        "duration": 2500,
        "localEndpoint": {"serviceName": "productpage", "ipv4": "10.244.0.11", "port": 9080},
        "remoteEndpoint": {"serviceName": "istio-ingressgateway", "ipv4": "10.244.0.3", "port": 44312},
        "tags": {
            "http.status_code": "500",
            "otel.status_code": "ERROR",
            "error": "boom",
            "otel.scope.name": "opentelemetry.instrumentation.flask",
            "otel.scope.version": "0.45b0",
            "service.namespace": "default",
        },
        "annotations": [
            {"timestamp": 1714564800000100, "value": '{"exception":{"exception.type":"ValueError","count":2}}'},
            {"timestamp": 1714564800000200, "value": "plain event"},
        ],
    },
    {
        "traceId": "00f067aa0ba902b7",
        "id": "00f067aa0ba902b8",
        "kind": "CLIENT",
        "name": "SELECT ratings",
        "timestamp": 1714564800000300,
        "duration": 700,
        "localEndpoint": {"serviceName": "ratings"},
        "remoteEndpoint": {"ipv6": "fd00::1", "port": 3306},
        "tags": {"db.system": "mysql", "db.name": "test", "rpc.grpc.status_code": "0", "otel.status_code": "OK"},
        "shared": True,
        "debug": True,
    },
    {
        "traceId": "1",
        "id": "2",
        "kind": "PRODUCER",
        "name": "send",
        "timestamp": 1714564800000400,
        "localEndpoint": {"serviceName": "ratings"},
        "tags": {"messaging.system": "kafka", "messaging.destination.name": "rating-events", "peer.service": "kafka"},
    },
]


@cache
def _demo() -> tuple[list[Any], list[list[dict[str, Any]]]]:
    entries = generate(_REQUESTS)
    by_request: dict[int, list[Any]] = {}
    for entry in entries:
        by_request.setdefault(id(entry.call.request), []).append(entry)
    zipkin = [request_spans(calls_of(group)).zipkin for group in by_request.values()]
    return entries, zipkin


def zipkin_batches() -> list[list[dict[str, Any]]]:
    _, requests = _demo()
    batches = [spans[:4] for spans in requests]
    batches += [[span] for span in _APP_SPANS]
    batches.append(_APP_SPANS + requests[0][:2])
    return batches


def _proto3_span(span: dict[str, Any]) -> Any:
    message = proto3.ZipkinSpan(
        trace_id=bytes.fromhex(span["traceId"].rjust(16 if len(span["traceId"]) <= 16 else 32, "0")),
        id=bytes.fromhex(span["id"].rjust(16, "0")),
        name=span.get("name", ""),
        timestamp=span.get("timestamp", 0),
        duration=span.get("duration", 0),
        shared=span.get("shared", False),
        debug=span.get("debug", False),
    )
    if span.get("parentId"):
        message.parent_id = bytes.fromhex(span["parentId"])
    kinds = {"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}
    message.kind = kinds.get(span.get("kind", ""), 0)
    if "localEndpoint" in span:
        message.local_endpoint.service_name = span["localEndpoint"].get("serviceName", "")
    remote = span.get("remoteEndpoint")
    if remote:
        message.remote_endpoint.service_name = remote.get("serviceName", "")
        if "ipv4" in remote:
            message.remote_endpoint.ipv4 = bytes(int(part) for part in remote["ipv4"].split("."))
        if "ipv6" in remote:
            import ipaddress

            message.remote_endpoint.ipv6 = ipaddress.IPv6Address(remote["ipv6"]).packed
        message.remote_endpoint.port = remote.get("port", 0)
    for key, value in (span.get("tags") or {}).items():
        message.tags[key] = value
    for annotation in span.get("annotations") or ():
        message.annotations.add(timestamp=annotation["timestamp"], value=annotation["value"])
    return message


def _otlp_request(batch: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.resource_spans.extend(resource_spans_from_json(orjson.dumps(batch)))
    return request


def _otlp_json(request: ExportTraceServiceRequest) -> bytes:
    document = json_format.MessageToDict(request)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(document)


def _als_messages() -> list[bytes]:
    entries, _ = _demo()
    out = []
    for index, entry in enumerate(entries[:24]):
        message = StreamAccessLogsMessage()
        if index % 3 == 0:
            message.identifier.node.CopyFrom(node_of(entry.pod))
            message.identifier.log_name = "als"
        if entry.call.protocol == "tcp":
            message.tcp_logs.log_entry.append(tcp_entry(entry))
        else:
            converted = http_entry(entry)
            assert isinstance(converted, HTTPAccessLogEntry)
            message.http_logs.log_entry.append(converted)
        out.append(message.SerializeToString(deterministic=True))
    return out


_CONFIGS = [
    b"",
    b"pipeline: {queue_size: 1000, batch_size: 100, batch_timeout: 0.5}\n",
    b"receivers:\n  filelog:\n    include: ['/tmp/*.log']\n    format: auto\n"
    b"  zipkin: {enabled: false}\n  otlp:\n    grpc: {endpoint: '127.0.0.1:0'}\n",
    b"correlation: {max_request_ids: 10, recent_traces_per_edge: 2, max_edges: 5}\n",
    b"exporters:\n  otlp: {enabled: true, endpoint: 'localhost:4317', protocol: grpc}\n"
    b"  prometheus: {endpoint: '127.0.0.1:9464'}\n",
    b"graph: {endpoint: '127.0.0.1:8050'}\n",
    b"unknown: 1\npipeline: [1, 2]\n",
]

_ENV = [
    b"PIPELINE__QUEUE_SIZE\n5000",
    b"RECEIVERS__ZIPKIN__ENABLED\nfalse",
    b"RECEIVERS__FILELOG__INCLUDE\n[/var/log/*.log]",
    b"EXPORTERS__OTLP__ENDPOINT\nhttp://jaeger:4318",
    b"PIPELINE__BATCH_TIMEOUT\n0.25",
    b"GRAPH\n{endpoint: 127.0.0.1:1}",
]


def _chunked(body: bytes) -> bytes:
    middle = len(body) // 2
    parts = [body[:middle], body[middle:]]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part) + b"0\r\n\r\n"


def _bodies(payloads: Iterable[bytes]) -> list[bytes]:
    out = []
    for payload in payloads:
        gzipped, deflated = gzip.compress(payload), zlib.compress(payload)
        out += [b"\x00\x00" + gzipped, b"\x01\x00" + deflated, b"\x02\x00" + payload]
        out += [b"\x00\x01" + _chunked(gzipped), b"\x02\x01" + _chunked(payload)]
    out.append(b"\x00\x00" + gzip.compress(b"a") + gzip.compress(b"b"))
    return out


@cache
def seeds() -> dict[str, list[bytes]]:
    """Valid inputs per target name (see fuzz_targets.TARGETS)."""
    batches = zipkin_batches()
    zipkin_json = [orjson.dumps(batch) for batch in batches]
    requests = [_otlp_request(batch) for batch in batches]
    istio_lines = _lines("accesslogs/istio.log", "accesslogs/istio_upstream_cluster.log", "filelog/istio.log")
    envoy_lines = _lines("accesslogs/envoy.log")
    json_lines = _lines("accesslogs/json.log")
    clusters = sorted(
        {part for line in istio_lines for part in line.split() if "|" in part or part.endswith("Cluster")}
        | {"outbound_.9080_.v2_.reviews.default.svc.cluster.local", "InboundPassthroughClusterIpv4"}
    )
    formats = [
        f"{fmt.rstrip(chr(10))}\n{line}".encode()
        for fmt, line in [
            (PRESETS["istio"], istio_lines[0]),
            (PRESETS["envoy"], envoy_lines[0]),
            (PRESETS["json"], json_lines[0]),
            (PRESETS["istio-mixer"], _lines("accesslogs/istio_mixer.log")[0]),
            (CUSTOM_FORMAT, _lines("accesslogs/custom.log")[0]),
            ('{"a":"%REQ(:METHOD)% %DURATION%","n":[1,{"b":"%RESPONSE_CODE%"}]}', '{"a":"GET 1","n":[1,{"b":200}]}'),
        ]
    ]
    return {
        "accesslog_istio": _batches(istio_lines + _lines("accesslogs/istio_mixer.log")),
        "accesslog_envoy": _batches(envoy_lines),
        "accesslog_custom": _batches(_lines("accesslogs/custom.log")),
        "accesslog_json": _batches(json_lines),
        "accesslog_auto": _batches(istio_lines + envoy_lines + json_lines, 3),
        "accesslog_wrapped": [
            (TESTDATA / name).read_bytes() for name in ("filelog/cri.log", "filelog/docker.log", "accesslogs/cri.log")
        ]
        + _batches(_lines("filelog/docker.log", "filelog/cri.log")),
        "format_compiler": formats,
        "cluster_names": [name.encode() for name in clusters],
        "zipkin_json": zipkin_json,
        "zipkin_proto3": [
            proto3.ListOfSpans(spans=[_proto3_span(span) for span in batch]).SerializeToString(deterministic=True)
            for batch in batches
        ],
        "otlp_protobuf": [request.SerializeToString(deterministic=True) for request in requests],
        "otlp_json": [_otlp_json(request) for request in requests],
        "als": _als_messages(),
        "node": [node_of(entry.pod).SerializeToString(deterministic=True) for entry in _demo()[0][:12]],
        "config_file": _CONFIGS + [(TESTDATA.parent.parent / "compose/meshscope/meshscope.yaml").read_bytes()],
        "config_env": _ENV,
        "http_body": _bodies(zipkin_json[:3] + [b"", b"{}"]),
    }
