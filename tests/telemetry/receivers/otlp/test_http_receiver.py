"""OTLP/HTTP: the SDK's HTTP exporter, hand-made OTLP/JSON and protobuf requests, and bad requests."""

from __future__ import annotations

import gzip
import http.client
import json
import resource
import zlib
from typing import Any

from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from traceharness import attributes, check_otlp_sample_trace, emit_sample_trace

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GIB = 1 << 30


def post(
    otlp: Any, body: bytes, content_type: str = PROTOBUF, path: str = "/v1/traces", method: str = "POST", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", otlp.receiver.http_port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type, **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def one_span_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    return request


def still_serving(otlp: Any) -> None:
    status, _, body = post(otlp, one_span_request().SerializeToString())
    assert status == 200, body


def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip member that expands to ``expanded`` zero bytes, made without holding them.

    After a full flush deflate starts afresh, so the compressed form of one zero-filled MiB is the same
    every time and can be repeated; only the trailer needs the CRC of the whole.
    """
    mib = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    compressor.compress(mib)
    block = compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    crc = 0
    for _ in range(expanded >> 20):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    final_block = b"\x03\x00"  # an empty final fixed-Huffman block
    return (
        header
        + block * (expanded >> 20)
        + final_block
        + crc.to_bytes(4, "little")
        + (expanded % (1 << 32)).to_bytes(4, "little")
    )


def test_sdk_http_exporter_spans_reach_the_normaliser_intact(otlp: Any) -> None:
    sent = emit_sample_trace(OTLPSpanExporter(endpoint=otlp.http_url))
    check_otlp_sample_trace(otlp.normaliser, sent)


def test_sdk_http_exporter_with_gzip_is_decoded(otlp: Any) -> None:
    sent = emit_sample_trace(OTLPSpanExporter(endpoint=otlp.http_url, compression=Compression.Gzip))
    check_otlp_sample_trace(otlp.normaliser, sent)


def test_otlp_json_with_hex_ids_and_integer_kinds_is_read(otlp: Any) -> None:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "checkout",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}}],
                                "links": [
                                    {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "someFutureField": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, headers, body = post(otlp, json.dumps(document).encode(), "application/json; charset=utf-8")

    assert status == 200, body
    assert headers["Content-Type"] == JSON
    assert json.loads(body) == {}
    span = otlp.normaliser.span_named("checkout")
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1544712660000000000
    assert attributes(span.attributes) == {"http.route": "/cart"}
    assert (span.links[0].trace_id.hex(), span.links[0].span_id.hex()) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )
    assert (span.status.code, span.status.message) == (span.status.STATUS_CODE_ERROR, "boom")
    assert otlp.normaliser.resource_of(span.span_id) == {"service.name": "cart"}


def test_partial_success_is_answered_in_the_requests_encoding(otlp: Any) -> None:
    otlp.normaliser.reject, otlp.normaliser.error = 1, "span without a trace id"

    status, headers, body = post(otlp, one_span_request().SerializeToString())
    assert (status, headers["Content-Type"]) == (200, PROTOBUF)
    response = ExportTraceServiceResponse.FromString(body)
    assert (response.partial_success.rejected_spans, response.partial_success.error_message) == (
        1,
        "span without a trace id",
    )

    status, headers, body = post(otlp, b'{"resourceSpans": []}', JSON)
    assert (status, headers["Content-Type"]) == (200, JSON)
    partial = json.loads(body)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert partial["errorMessage"] == "span without a trace id"


def test_malformed_protobuf_is_400_with_the_reason_and_counted(otlp: Any) -> None:
    status, headers, body = post(otlp, b"\x0a\xff\xff\xff\xff\x0f garbage")

    assert (status, headers["Content-Type"]) == (400, PROTOBUF)
    assert status_pb2.Status.FromString(body).message.startswith("bad_protobuf:")
    assert otlp.stats.parse_errors[("otlp_http", "bad_protobuf")] == 1
    still_serving(otlp)


def test_malformed_json_and_bad_hex_ids_are_400_with_the_reason(otlp: Any) -> None:
    status, _, body = post(otlp, b'{"resourceSpans": [', JSON)
    assert status == 400
    assert json.loads(body)["message"].startswith("bad_json:")

    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex", "spanId": "eee19b7ec3c1b174"}]}]}]}
    status, _, body = post(otlp, json.dumps(bad_id).encode(), JSON)
    assert status == 400
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId" in json.loads(body)["message"]

    assert otlp.stats.parse_errors == {("otlp_http", "bad_json"): 1, ("otlp_http", "bad_id"): 1}
    assert otlp.normaliser.spans() == []
    still_serving(otlp)


def test_body_over_the_limit_is_413_before_it_is_read(make_otlp: Any) -> None:
    otlp = make_otlp(max_body_bytes=1000)
    status, _, body = post(otlp, bytes(1001))
    assert status == 413
    assert "too_large" in status_pb2.Status.FromString(body).message
    assert otlp.stats.parse_errors[("otlp_http", "too_large")] == 1
    still_serving(otlp)


def test_gzip_bomb_is_413_without_being_expanded(otlp: Any) -> None:
    bomb = gzip_bomb(GIB)
    assert len(bomb) < 2 << 20
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB

    status, _, body = post(otlp, bomb, **{"Content-Encoding": "gzip"})

    assert status == 413
    assert "decoded body exceeds the limit of 16777216 bytes" in status_pb2.Status.FromString(body).message
    # The receiver stops at its 16 MiB limit: the peak grows by tens of MiB at most, not by a GiB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024
    assert otlp.stats.parse_errors[("otlp_http", "too_large")] == 1
    still_serving(otlp)


def test_truncated_gzip_is_400(otlp: Any) -> None:
    compressed = gzip.compress(one_span_request().SerializeToString())
    status, _, body = post(otlp, compressed[:-12], **{"Content-Encoding": "gzip"})
    assert status == 400
    assert status_pb2.Status.FromString(body).message.startswith("bad_gzip:")
    still_serving(otlp)


def test_chunked_body_is_read(otlp: Any) -> None:
    data = one_span_request().SerializeToString()
    connection = http.client.HTTPConnection("127.0.0.1", otlp.receiver.http_port, timeout=10)
    try:
        connection.request(
            "POST",
            "/v1/traces",
            body=iter([data[:5], data[5:]]),
            headers={"Content-Type": PROTOBUF},
            encode_chunked=True,
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert [span.name for span in otlp.normaliser.spans()] == ["x"]


def test_wrong_content_type_path_and_method_are_refused(otlp: Any) -> None:
    status, _, body = post(otlp, b"spans", "text/plain")
    assert status == 415
    assert b"unsupported_content_type" in body
    assert otlp.stats.parse_errors[("otlp_http", "unsupported_content_type")] == 1
    assert post(otlp, b"", path="/v1/metrics")[0] == 404
    status, headers, _ = post(otlp, b"", method="GET")
    assert (status, headers["Allow"]) == (405, "POST")
    still_serving(otlp)


def test_full_pipeline_is_503_with_retry_after(make_otlp: Any) -> None:
    otlp = make_otlp(start_pipeline=False, queue_size=1)
    still_serving(otlp)  # an empty queue takes any batch; the next one finds it full

    status, headers, body = post(otlp, one_span_request().SerializeToString())

    assert (status, headers["Retry-After"]) == (503, "1")
    assert "pipeline is full" in status_pb2.Status.FromString(body).message
    assert otlp.stats.dropped[("pipeline", "queue_full")] == 1
