"""Zipkin v2 -> OTLP conversion, without a server."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from traceharness import attributes

from telemetry.envoy.errors import ParseError
from telemetry.spans.from_zipkin import read_json, resource_spans_from_json, resource_spans_from_proto3
from telemetry.spans.zipkin_proto3 import ListOfSpans


def span(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "name": "op"}
    return {**base, **fields}


def convert(*spans: dict[str, object]) -> list[Span]:
    return [
        s
        for rs in resource_spans_from_json(json.dumps(list(spans)).encode())
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def test_spans_are_grouped_by_local_service_and_scope() -> None:
    body = json.dumps(
        [
            span(localEndpoint={"serviceName": "a"}, tags={"otel.scope.name": "lib", "otel.scope.version": "2"}),
            span(localEndpoint={"serviceName": "b"}),
            span(localEndpoint={"serviceName": "a"}),
        ]
    ).encode()
    result = resource_spans_from_json(body)
    grouped = {
        attributes(rs.resource.attributes)["service.name"]: [
            (ss.scope.name, ss.scope.version, len(ss.spans)) for ss in rs.scope_spans
        ]
        for rs in result
    }
    assert grouped == {"a": [("lib", "2", 1), ("", "", 1)], "b": [("", "", 1)]}


def test_kinds_ids_and_times_map_to_otlp() -> None:
    kinds = [convert(span(kind=kind))[0].kind for kind in ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")]
    assert kinds == [Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_SERVER, Span.SPAN_KIND_PRODUCER, Span.SPAN_KIND_CONSUMER]
    (converted,) = convert(span(parentId="1", timestamp=10, duration=5))
    assert converted.kind == Span.SPAN_KIND_INTERNAL
    assert converted.trace_id.hex() == "0000000000000000463ac35c9f6413ad"
    assert converted.parent_span_id.hex() == "0000000000000001"
    assert (converted.start_time_unix_nano, converted.end_time_unix_nano) == (10_000, 15_000)


def test_error_tag_becomes_status_and_leaves_the_attributes() -> None:
    (converted,) = convert(span(tags={"error": "timeout", "http.status_code": "504"}))
    assert (converted.status.code, converted.status.message) == (Status.STATUS_CODE_ERROR, "timeout")
    assert attributes(converted.attributes) == {"http.status_code": "504"}
    (ok,) = convert(span(tags={"otel.status_code": "OK"}))
    assert ok.status.code == Status.STATUS_CODE_OK


def test_remote_endpoint_shared_flag_and_annotations() -> None:
    (converted,) = convert(
        span(
            remoteEndpoint={"serviceName": "db", "ipv6": "2001:db8::1", "port": 5432},
            shared=True,
            annotations=[{"timestamp": 7, "value": "ws"}, {"timestamp": 8, "value": '{"retry": {"attempt": 2}}'}],
        )
    )
    assert attributes(converted.attributes) == {
        "peer.service": "db",
        "net.peer.ip": "2001:db8::1",
        "net.peer.port": 5432,
        "zipkin.shared": True,
    }
    assert [(e.time_unix_nano, e.name, attributes(e.attributes)) for e in converted.events] == [
        (7000, "ws", {}),
        (8000, "retry", {"attempt": 2}),
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (span(traceId="zz"), "bad_trace_id"),
        (span(traceId="0" * 32), "bad_trace_id"),
        (span(id="123456789abcdef01"), "bad_span_id"),
        (span(parentId="g"), "bad_parent_id"),
        (span(kind="SIDEWAYS"), "bad_kind"),
        (span(timestamp="1" * 10), "bad_span"),
        (span(tags={"n": 1}), "bad_span"),
        ({"id": "72485a3953bb6124"}, "bad_span"),
        ("not a span", "bad_span"),
    ],
)
def test_a_malformed_span_fails_the_batch_with_its_reason(bad: object, reason: str) -> None:
    with pytest.raises(ParseError) as raised:
        resource_spans_from_json(json.dumps([span(), bad]).encode())
    assert raised.value.reason == reason
    assert "span 1" in str(raised.value)


def test_proto3_ids_must_have_zipkin_lengths() -> None:
    spans = ListOfSpans()
    spans.spans.add(trace_id=b"\x01" * 3, id=b"\x02" * 8)
    with pytest.raises(ParseError) as raised:
        resource_spans_from_proto3(spans.SerializeToString())
    assert raised.value.reason == "bad_trace_id"
    with pytest.raises(ParseError) as raised:
        resource_spans_from_proto3(b"\xff")
    assert raised.value.reason == "bad_protobuf"


@pytest.mark.parametrize("port", [80.0, True])
@pytest.mark.parametrize("many", [False, True], ids=["one_span", "column_path"])
def test_a_port_equal_to_a_cached_integer_is_refused_as_when_it_came_first(port: object, many: bool) -> None:
    # 80.0 == 80 and True == 1 as dict keys: an endpoint seen before must not let its look-alike through.
    number = 1 if port is True else 80
    good = span(remoteEndpoint={"serviceName": "db", "ipv4": "10.0.0.1", "port": number})
    bad = span(id="72485a3953bb6125", remoteEndpoint={"serviceName": "db", "ipv4": "10.0.0.1", "port": port})
    batch = [good] * (20 if many else 1)
    resource_spans_from_json(json.dumps(batch).encode())
    for spans in (batch + [bad], [bad]):
        with pytest.raises(ParseError) as raised:
            resource_spans_from_json(json.dumps(spans).encode())
        assert raised.value.reason == "bad_span"
        with pytest.raises(ParseError):
            read_json(json.dumps(spans).encode())
