"""The Zipkin receiver: the SDK's Zipkin exporter, hand-made JSON and proto3 bodies, bad requests."""

from __future__ import annotations

import gzip
import http.client
import json
from typing import Any

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from traceharness import attributes, emit_sample_trace

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "id": "eee19b7ec3c1b174",
    "kind": "SERVER",
    "name": "get /api",
    "timestamp": 1_714_564_800_000_000,
    "duration": 2500,
    "localEndpoint": {"serviceName": "frontend"},
}


def post(
    zipkin: Any,
    body: bytes,
    content_type: str = JSON,
    path: str = "/api/v2/spans",
    method: str = "POST",
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", zipkin.receiver.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type, **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def still_serving(zipkin: Any) -> None:
    assert post(zipkin, json.dumps([SPAN]).encode())[0] == 202


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_sdk_zipkin_exporter_spans_arrive_as_otlp(zipkin: Any) -> None:
    sent = emit_sample_trace(ZipkinExporter(endpoint=zipkin.url))

    server = zipkin.normaliser.span_named("GET /cart")
    client = zipkin.normaliser.span_named("SELECT carts")
    assert server.trace_id == sent.server.trace_id.to_bytes(16, "big")
    assert server.span_id == sent.server.span_id.to_bytes(8, "big")
    assert client.parent_span_id == server.span_id
    assert (server.kind, client.kind) == (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT)
    # Zipkin tags are strings; resource attributes travel as tags too.
    server_attributes = attributes(server.attributes)
    assert {key: server_attributes[key] for key in ("http.request.method", "http.response.status_code", "retry")} == {
        "http.request.method": "GET",
        "http.response.status_code": "500",
        "retry": "true",
    }
    assert attributes(client.attributes)["db.system"] == "postgresql"
    assert [(event.name, attributes(event.attributes)) for event in server.events] == [
        ("cache miss", {"cache.key": "cart:42"})
    ]
    assert (server.status.code, server.status.message) == (server.status.STATUS_CODE_ERROR, "upstream failed")
    assert "error" not in server_attributes and "otel.status_code" not in server_attributes
    assert server.end_time_unix_nano > server.start_time_unix_nano > 0
    assert zipkin.normaliser.resource_of(server.span_id) == {"service.name": "checkout"}
    assert zipkin.harness.pipeline.flush(timeout=10)
    assert len(zipkin.harness.sink.records) == 2


def test_gzip_json_is_202(zipkin: Any) -> None:
    status, _, body = post(zipkin, gzip.compress(json.dumps([SPAN]).encode()), **{"Content-Encoding": "gzip"})
    assert (status, body) == (202, b"")
    assert zipkin.normaliser.span_named("get /api").trace_id.hex() == SPAN["traceId"]


def test_proto3_list_of_spans_is_read(zipkin: Any) -> None:
    # Written by hand from zipkin.proto's field numbers, independently of the receiver's definitions.
    endpoint = delimited(1, b"inventory")
    remote = delimited(1, b"db") + delimited(2, bytes([10, 0, 0, 9])) + b"\x20" + varint(5432)
    annotation = b"\x09" + (1_714_564_800_000_100).to_bytes(8, "little") + delimited(2, b"wire send")
    span = (
        delimited(1, bytes.fromhex("463ac35c9f6413ad"))
        + delimited(2, bytes.fromhex("0102030405060708"))
        + delimited(3, bytes.fromhex("72485a3953bb6124"))
        + b"\x20\x01"  # CLIENT
        + delimited(5, b"query")
        + b"\x31" + (1_714_564_800_000_000).to_bytes(8, "little")
        + b"\x38" + varint(1500)
        + delimited(8, endpoint)
        + delimited(9, remote)
        + delimited(10, annotation)
        + delimited(11, delimited(1, b"db.statement") + delimited(2, b"SELECT 1"))
        + b"\x68\x01"  # shared
    )  # fmt: skip
    status, _, body = post(zipkin, delimited(1, span), PROTOBUF)

    assert status == 202, body
    received = zipkin.normaliser.span_named("query")
    assert received.trace_id.hex() == "0000000000000000463ac35c9f6413ad"
    assert received.span_id.hex() == "72485a3953bb6124"
    assert received.parent_span_id.hex() == "0102030405060708"
    assert received.kind == Span.SPAN_KIND_CLIENT
    assert (received.start_time_unix_nano, received.end_time_unix_nano) == (
        1_714_564_800_000_000_000,
        1_714_564_800_001_500_000,
    )
    assert attributes(received.attributes) == {
        "db.statement": "SELECT 1",
        "peer.service": "db",
        "net.peer.ip": "10.0.0.9",
        "net.peer.port": 5432,
        "zipkin.shared": True,
    }
    assert [(event.time_unix_nano, event.name) for event in received.events] == [
        (1_714_564_800_000_100_000, "wire send")
    ]
    assert zipkin.normaliser.resource_of(received.span_id) == {"service.name": "inventory"}


def test_malformed_bodies_are_400_with_the_reason_and_counted(zipkin: Any) -> None:
    status, headers, body = post(zipkin, b"[{")
    assert (status, headers["Content-Type"]) == (400, "text/plain; charset=utf-8")
    assert body.startswith(b"bad_json:")

    status, _, body = post(zipkin, json.dumps([SPAN, {**SPAN, "traceId": "xyz"}]).encode())
    assert status == 400
    assert body.startswith(b"bad_trace_id: span 1: traceId 'xyz'")

    status, _, body = post(zipkin, b"\x0a\x05\x0a\x03", PROTOBUF)
    assert status == 400
    assert body.startswith(b"bad_protobuf:")

    assert zipkin.stats.parse_errors == {
        ("zipkin", "bad_json"): 1,
        ("zipkin", "bad_trace_id"): 1,
        ("zipkin", "bad_protobuf"): 1,
    }
    assert zipkin.normaliser.spans() == []
    still_serving(zipkin)


def test_oversized_and_bomb_bodies_are_413(make_zipkin: Any) -> None:
    zipkin = make_zipkin(max_body_bytes=4096)
    assert post(zipkin, b"[" + b" " * 5000 + b"]")[0] == 413
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    status, _, body = post(zipkin, bomb, **{"Content-Encoding": "gzip"})
    assert (status, body) == (413, b"too_large: the gzip-decoded body exceeds the limit of 4096 bytes\n")
    assert zipkin.stats.parse_errors[("zipkin", "too_large")] == 2
    still_serving(zipkin)


def test_wrong_content_type_path_and_method_are_refused(zipkin: Any) -> None:
    assert post(zipkin, b"[]", "application/x-thrift")[0] == 415
    assert post(zipkin, b"[]", path="/api/v1/spans")[0] == 404
    assert post(zipkin, b"", method="GET")[0] == 405
    still_serving(zipkin)


def test_full_pipeline_is_503_with_retry_after(make_zipkin: Any) -> None:
    zipkin = make_zipkin(start_pipeline=False, queue_size=1)
    still_serving(zipkin)
    status, headers, _ = post(zipkin, json.dumps([SPAN]).encode())
    assert (status, headers["Retry-After"]) == (503, "1")


def test_shutdown_is_idempotent(zipkin: Any) -> None:
    assert zipkin.receiver.port > 0
    zipkin.receiver.shutdown()
    zipkin.receiver.shutdown()
