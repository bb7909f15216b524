"""OTLP spans to Zipkin v2 JSON: ids, kinds, times, endpoints, tags of every value type, annotations, status."""

from __future__ import annotations

import orjson
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from telemetry.spans.to_zipkin import to_zipkin, to_zipkin_json

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("eee19b7ec3c1b173")


def string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def one(span: Span, resource: list[KeyValue] | None = None, scope: InstrumentationScope | None = None) -> dict:
    message = ResourceSpans(
        resource=Resource(attributes=resource if resource is not None else [string("service.name", "reviews")]),
        scope_spans=[ScopeSpans(scope=scope, spans=[span])],
    )
    (encoded,) = to_zipkin([message])
    return encoded


def test_ids_kind_name_and_times_in_microseconds() -> None:
    span = Span(
        trace_id=TRACE,
        span_id=SPAN,
        parent_span_id=PARENT,
        kind=Span.SPAN_KIND_SERVER,
        name="GET /reviews/0",
        start_time_unix_nano=1_000_000_001_499,
        end_time_unix_nano=1_000_002_501_500,
    )
    encoded = one(span)
    assert encoded["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert encoded["id"] == "eee19b7ec3c1b174"
    assert encoded["parentId"] == "eee19b7ec3c1b173"
    assert encoded["kind"] == "SERVER"
    assert encoded["name"] == "GET /reviews/0"
    assert encoded["timestamp"] == 1_000_000_001
    assert encoded["duration"] == 2_500
    assert encoded["localEndpoint"] == {"serviceName": "reviews"}
    assert "tags" not in encoded and "remoteEndpoint" not in encoded


def test_internal_kind_root_span_and_zero_duration() -> None:
    encoded = one(Span(trace_id=TRACE, span_id=SPAN, kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=5000,
                       end_time_unix_nano=5000))  # fmt: skip
    assert "kind" not in encoded and "parentId" not in encoded
    assert encoded["duration"] == 1


def test_attributes_of_every_type_become_string_tags_over_resource_attributes() -> None:
    attributes = [
        string("s", "text"),
        KeyValue(key="b", value=AnyValue(bool_value=True)),
        KeyValue(key="i", value=AnyValue(int_value=-42)),
        KeyValue(key="d", value=AnyValue(double_value=0.5)),
        KeyValue(key="bytes", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(
            key="a",
            value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="x"), AnyValue(int_value=1)])),
        ),
        KeyValue(key="m", value=AnyValue(kvlist_value=KeyValueList(values=[string("k", "v")]))),
        string("zone", "span"),
    ]
    resource = [string("service.name", "ratings"), string("zone", "resource"), string("k8s.pod.name", "ratings-1")]
    encoded = one(Span(trace_id=TRACE, span_id=SPAN, attributes=attributes), resource)
    assert encoded["tags"] == {
        "s": "text",
        "b": "true",
        "i": "-42",
        "d": "0.5",
        "bytes": "AP8=",
        "a": '["x",1]',
        "m": '{"k":"v"}',
        "zone": "span",
        "k8s.pod.name": "ratings-1",
    }
    assert encoded["localEndpoint"] == {"serviceName": "ratings"}


def test_missing_service_name_is_unknown_service() -> None:
    assert one(Span(trace_id=TRACE, span_id=SPAN), resource=[])["localEndpoint"] == {"serviceName": "unknown_service"}


def test_remote_endpoint_prefers_peer_service_and_reads_address_and_port() -> None:
    client = Span(
        trace_id=TRACE,
        span_id=SPAN,
        kind=Span.SPAN_KIND_CLIENT,
        attributes=[
            string("server.address", "ratings.default.svc"),
            string("peer.service", "ratings"),
            string("network.peer.address", "10.244.0.14"),
            KeyValue(key="server.port", value=AnyValue(int_value=9080)),
        ],
    )
    assert one(client)["remoteEndpoint"] == {"serviceName": "ratings", "ipv4": "10.244.0.14", "port": 9080}
    legacy = Span(trace_id=TRACE, span_id=SPAN, kind=Span.SPAN_KIND_CLIENT,
                  attributes=[string("net.peer.name", "db"), string("net.peer.ip", "::1")])  # fmt: skip
    assert one(legacy)["remoteEndpoint"] == {"serviceName": "db", "ipv6": "::1"}


def test_server_address_on_a_server_span_is_its_own_side_not_the_remote() -> None:
    server = Span(
        trace_id=TRACE,
        span_id=SPAN,
        kind=Span.SPAN_KIND_SERVER,
        attributes=[string("server.address", "reviews"), string("network.peer.address", "10.244.0.7")],
    )
    assert one(server)["remoteEndpoint"] == {"serviceName": "10.244.0.7", "ipv4": "10.244.0.7"}


def test_events_become_annotations_and_error_status_the_error_tag() -> None:
    span = Span(
        trace_id=TRACE,
        span_id=SPAN,
        events=[
            Span.Event(time_unix_nano=2_000_000, name="retry", attributes=[string("why", "reset")]),
            Span.Event(time_unix_nano=3_000_000, name="done"),
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream connect error"),
        dropped_attributes_count=3,
    )
    encoded = one(span, scope=InstrumentationScope(name="envoy", version="1.30"))
    assert encoded["annotations"] == [
        {"timestamp": 2000, "value": '{"retry":{"why":"reset"}}'},
        {"timestamp": 3000, "value": "done"},
    ]
    assert encoded["tags"] == {
        "otel.scope.name": "envoy",
        "otel.scope.version": "1.30",
        "otel.status_code": "ERROR",
        "error": "upstream connect error",
        "otel.dropped_attributes_count": "3",
    }


def test_ok_status_has_no_error_tag() -> None:
    encoded = one(Span(trace_id=TRACE, span_id=SPAN, status=Status(code=Status.STATUS_CODE_OK)))
    assert encoded["tags"] == {"otel.status_code": "OK"}


def test_json_body_is_an_array_of_every_span_of_every_resource() -> None:
    batch = [
        ResourceSpans(
            resource=Resource(attributes=[string("service.name", service)]),
            scope_spans=[ScopeSpans(spans=[Span(trace_id=TRACE, span_id=bytes([n]) * 8) for n in range(2)])],
        )
        for service in ("a", "b")
    ]
    decoded = orjson.loads(to_zipkin_json(batch))
    assert [(span["localEndpoint"]["serviceName"], span["id"]) for span in decoded] == [
        ("a", "0000000000000000"),
        ("a", "0101010101010101"),
        ("b", "0000000000000000"),
        ("b", "0101010101010101"),
    ]
