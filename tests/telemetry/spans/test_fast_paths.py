"""The quick readings (lean OTLP schema, Zipkin JSON without OTLP) give what the message readings give.

Each property runs one request both ways, through two fresh normalisers, and compares everything that
leaves them: Records, Spans, rejections and their message, or the ParseError; for Zipkin also the
ResourceSpans the exporters get.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.envoy.errors import ParseError
from telemetry.envoy.operators import EnvoyFields
from telemetry.envoy.peers import PeerTable
from telemetry.spans import normalize
from telemetry.spans.correlation import RequestTraceIndex
from telemetry.spans.from_zipkin import read_json, resource_spans_from_json
from telemetry.spans.normalize import SPAN_KEYS, SpanNormaliser
from telemetry.spans.otlp_lean import attribute_count, decode_request
from telemetry.traces import Normalised, OtlpSpans

EXAMPLES = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NODE = "sidecar~10.244.0.14~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

texts = st.one_of(
    st.sampled_from(["", "-", "200", "503", "GET", "proxy", "outbound|9080|v1|reviews.default.svc.cluster.local",
                     "inbound|9080||", "10.244.0.12:9080", NODE, "http://reviews:9080/r/1", "UF,URX", "14"]),
    st.text(max_size=8),
)  # fmt: skip
keys = st.one_of(st.sampled_from(SPAN_KEYS), st.sampled_from(["", "error", "otel.status_code", "x"]))


def _outcome(run: Any) -> tuple[Any, ...]:
    try:
        result: Normalised = run()
    except ParseError as error:
        return ("error", error.reason, str(error))
    return ("ok", result.records, result.spans, result.rejected, result.error)


def _normaliser() -> SpanNormaliser:
    return SpanNormaliser(PeerTable(), request_index=RequestTraceIndex())


def _cold_and_warm(run: Any) -> tuple[Any, ...]:
    """The outcomes of a request normalised twice by one normaliser: with its proxies new, then known
    (when the quick readings assemble Records per proxy, in columns)."""
    normaliser = _normaliser()
    return _outcome(lambda: run(normaliser)), _outcome(lambda: run(normaliser))


# -- OTLP protobuf --------------------------------------------------------------------------------------

any_values = st.one_of(
    st.builds(AnyValue, string_value=texts),
    st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(AnyValue, bool_value=st.booleans()),
    st.builds(AnyValue, double_value=st.floats(allow_nan=False)),
    st.just(AnyValue()),
)
key_values = st.one_of(
    st.builds(KeyValue, key=keys, value=any_values),
    st.builds(KeyValue, key=keys),  # no value at all
)
span_fields = st.fixed_dictionaries(
    {
        "trace_id": st.one_of(st.just(bytes.fromhex(TRACE)), st.binary(max_size=17)),
        "span_id": st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=9)),
        "parent_span_id": st.binary(max_size=9),
        "kind": st.integers(0, 6),
        "start_time_unix_nano": st.integers(0, 2**64 - 1),
        "end_time_unix_nano": st.integers(0, 2**64 - 1),
        "name": texts,
    }
)
proxy_attributes = st.builds(
    lambda extra: [KeyValue(key="component", value=AnyValue(string_value="proxy")),
                   KeyValue(key="node_id", value=AnyValue(string_value=NODE)), *extra],
    st.lists(key_values, max_size=8),
)  # fmt: skip
otlp_requests = st.lists(
    st.tuples(
        st.lists(st.builds(KeyValue, key=st.sampled_from(["service.name", "k8s.namespace.name"]), value=any_values)),
        st.lists(st.tuples(span_fields, st.one_of(proxy_attributes, st.lists(key_values, max_size=8))), max_size=4),
    ),
    max_size=3,
)


def _request(resources: list[Any]) -> bytes:
    request = ExportTraceServiceRequest()
    for resource_attributes, spans in resources:
        resource = request.resource_spans.add()
        resource.resource.attributes.extend(resource_attributes)
        scope = resource.scope_spans.add()
        for fields, attributes in spans:
            scope.spans.add(**fields).attributes.extend(attributes)
    return request.SerializeToString()


def _both_otlp(body: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Normalised from messages and from bytes, each twice (cold, warm): the warm outcomes, once the
    cold ones agree."""
    resource_spans = ExportTraceServiceRequest.FromString(body).resource_spans
    by_messages = _cold_and_warm(lambda normaliser: normaliser(resource_spans))
    by_bytes = _cold_and_warm(lambda normaliser: normaliser.normalise_batch(decode_request(body)))
    # Messages and their bytes together (as a test or a caller holding both may hand them over).
    both = _cold_and_warm(lambda normaliser: normaliser.normalise_batch(OtlpSpans(resource_spans, body)))
    assert by_bytes == by_messages and both == by_bytes
    return by_messages[1], by_bytes[1]


@EXAMPLES
@given(otlp_requests)
def test_otlp_bytes_normalise_as_their_messages_do(resources: list[Any]) -> None:
    by_messages, by_bytes = _both_otlp(_request(resources))
    assert by_bytes == by_messages


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x05garbage",
        b"\xff\xff",
        # invalid UTF-8 in a key
        ExportTraceServiceRequest(resource_spans=[{"scope_spans": [{"spans": [{"attributes": [{"key": "k"}]}]}]}])
        .SerializeToString()
        .replace(b"\x0a\x01k", b"\x0a\x01\xff"),
    ],
)
def test_bytes_the_official_parse_refuses_are_refused_with_its_message(body: bytes) -> None:
    with pytest.raises(DecodeError) as official:
        ExportTraceServiceRequest.FromString(body)
    with pytest.raises(DecodeError) as lean:
        decode_request(body)
    assert str(lean.value) == str(official.value)


def test_a_packed_number_the_lean_schema_reads_otherwise_still_normalises_as_the_messages_do() -> None:
    # AnyValue.int_value (field 3) sent length-delimited: an unknown field to the official schema, a
    # packed list to the lean one's repeated field; either way the request is taken.
    method = KeyValue.FromString(b"\x0a\x0bhttp.method\x12\x08\x0a\x03GET\x1a\x01\x05")
    body = _proxy_span([_string("component", "proxy"), _string("node_id", NODE), method])
    assert b"\x1a\x01\x05" in body
    batch = decode_request(body)
    by_messages, by_bytes = _both_otlp(body)
    assert by_bytes == by_messages
    assert batch.resource_spans[0].scope_spans[0].spans[0].attributes[2].value.string_value == "GET"


def _proxy_span(attributes: list[KeyValue]) -> bytes:
    fields = {"trace_id": bytes.fromhex(TRACE), "span_id": b"\x01" * 8, "start_time_unix_nano": 10**18,
              "end_time_unix_nano": 10**18 + 5_000_000}  # fmt: skip
    return _request([([], [(fields, attributes)])])


def _string(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def test_an_attribute_without_a_key_beside_one_without_a_string_is_read_from_the_messages() -> None:
    # Keys and string values would both number three and pair wrongly: the census catches it.
    attributes = [
        _string("component", "proxy"),
        _string("", "GET"),
        KeyValue(key="http.method"),
        _string("node_id", NODE),
    ]
    body = _proxy_span(attributes)
    assert attribute_count(body) == 4
    by_messages, by_bytes = _both_otlp(body)
    assert by_bytes == by_messages
    (record,) = by_bytes[1]
    assert record.method == ""


def test_numbers_and_duplicates_read_as_from_the_messages() -> None:
    attributes = [_string("component", "proxy"), _string("node_id", NODE), _string("http.status_code", "200"),
                  KeyValue(key="http.status_code", value=AnyValue(int_value=503)), _string("http.method", "GET"),
                  _string("http.method", "POST")]  # fmt: skip
    by_messages, by_bytes = _both_otlp(_proxy_span(attributes))
    assert by_bytes == by_messages
    (record,) = by_bytes[1]
    assert (record.response_code, record.method) == (503, "POST")


def test_a_proxy_span_from_bytes_becomes_the_record_its_tags_describe() -> None:
    attributes = [_string("component", "proxy"), _string("node_id", NODE), _string("http.url", "http://ratings:9080/r/1"),
                  _string("http.method", "GET"), _string("http.status_code", "503"), _string("response_flags", "UF"),
                  _string("upstream_cluster", "outbound|9080|v1|ratings.default.svc.cluster.local")]  # fmt: skip
    _, by_bytes = _both_otlp(_proxy_span(attributes))
    (record,) = by_bytes[1]
    assert (record.source_workload, record.destination_service, record.response_code, record.response_flags) == (
        "reviews-v2",
        "ratings.default.svc.cluster.local",
        503,
        "UF",
    )
    assert (record.trace_id, record.duration_ms, record.path) == (TRACE, 5, "/r/1")


# -- Zipkin JSON ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False), texts),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
hex_ids = st.one_of(
    st.sampled_from([TRACE, TRACE[:16], "abc", "0" * 32, TRACE.upper()]),
    st.text("0123456789abcdef", max_size=33),
    json_values,
)
zipkin_tags = st.dictionaries(keys, st.one_of(texts, texts, texts, json_values), max_size=6)
proxy_tags = st.builds(lambda extra: {"component": "proxy", "node_id": NODE, **extra}, zipkin_tags)
endpoints = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"serviceName": st.one_of(texts, json_values), "ipv4": texts,
                                        "port": st.one_of(st.integers(0, 70000), json_values)}),
    json_values,
)  # fmt: skip
zipkin_spans = st.fixed_dictionaries(
    {"traceId": hex_ids, "id": st.one_of(st.just("00f067aa0ba902b7"), hex_ids)},
    optional={
        "parentId": st.one_of(st.just("00f067aa0ba902b8"), hex_ids),
        "kind": st.one_of(st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "CONSUMER", "client"]), json_values),
        "name": st.one_of(texts, json_values),
        "timestamp": st.one_of(st.integers(0, 2**62), json_values),
        "duration": st.one_of(st.integers(-5, 10**7), json_values),
        "localEndpoint": endpoints,
        "remoteEndpoint": endpoints,
        "tags": st.one_of(proxy_tags, zipkin_tags, json_values),
        "annotations": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "timestamp": st.one_of(st.integers(0, 2**40), json_values),
                        "value": st.one_of(texts, st.just('{"e": {"a": 1}}'), json_values),
                    }
                ),
                max_size=2,
            ),
            json_values,
        ),  # fmt: skip
        "shared": st.one_of(st.booleans(), json_values),
    },
)


# Spans the quick reading takes (mostly): the properties below then compare real work, not refusals.
well_formed_zipkin_spans = st.fixed_dictionaries(
    {
        "traceId": st.sampled_from([TRACE, TRACE[:16], TRACE.upper(), "abc"]),
        "id": st.sampled_from(["00f067aa0ba902b7", "1", "00f067aa0ba902b8"]),
        "timestamp": st.integers(0, 2**50),
        "duration": st.integers(-5, 10**7),
        "tags": st.one_of(proxy_tags, st.dictionaries(keys, texts, max_size=6)).filter(
            lambda tags: all(isinstance(value, str) for value in tags.values())
        ),
    },
    optional={
        "parentId": st.sampled_from(["00f067aa0ba902b9", "2"]),
        "kind": st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "CONSUMER"]),
        "name": texts,
        "localEndpoint": st.fixed_dictionaries(
            {}, optional={"serviceName": st.sampled_from(["", "reviews", "ratings"])}
        ),
        "remoteEndpoint": st.fixed_dictionaries(
            {},
            optional={
                "serviceName": st.sampled_from(["", "db"]),
                "ipv4": st.just("10.0.0.2"),
                "port": st.integers(0, 9),
            },
        ),
        "annotations": st.lists(
            st.fixed_dictionaries({"timestamp": st.integers(0, 2**40), "value": texts}), max_size=2
        ),
        "shared": st.booleans(),
    },
)


def _serialised(resource_spans: Any) -> list[bytes]:
    return [item.SerializeToString() for item in resource_spans]


def _both_zipkin(body: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    def converted(normaliser: SpanNormaliser) -> Normalised:
        return normaliser(resource_spans_from_json(body))

    def read(normaliser: SpanNormaliser) -> Normalised:
        return normaliser.normalise_batch(read_json(body))

    def exported(decode: Any) -> tuple[Any, ...]:
        try:
            return ("ok", _serialised(decode(body)))
        except ParseError as error:
            return ("error", error.reason, str(error))

    cold_converted, warm_converted = _cold_and_warm(converted)
    cold_read, warm_read = _cold_and_warm(read)
    assert cold_read == cold_converted
    return (
        warm_converted,
        warm_read,
        exported(resource_spans_from_json),
        exported(lambda data: read_json(data).resource_spans),
    )


@EXAMPLES
@given(st.lists(st.one_of(well_formed_zipkin_spans, well_formed_zipkin_spans, zipkin_spans), max_size=4))
def test_zipkin_json_read_directly_normalises_and_exports_as_its_otlp_conversion_does(spans: list[Any]) -> None:
    converted, read, exported_converted, exported_read = _both_zipkin(orjson.dumps(spans))
    assert read == converted
    assert exported_read == exported_converted


def _zipkin_proxy_span(**changes: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE, "id": "00f067aa0ba902b7", "kind": "CLIENT", "name": "ratings:9080/*",
        "timestamp": 1_714_564_800_000_000, "duration": 7_000, "localEndpoint": {"serviceName": "reviews"},
        "tags": {"component": "proxy", "node_id": NODE, "http.url": "http://ratings:9080/r/1", "http.method": "GET",
                 "http.status_code": "200", "upstream_cluster": "outbound|9080|v1|ratings.default.svc.cluster.local"},
    }  # fmt: skip
    span.update(changes)
    return span


def test_a_zipkin_proxy_span_becomes_a_record_without_otlp_being_made() -> None:
    batch = read_json(orjson.dumps([_zipkin_proxy_span()]))
    assert batch.groups is not None
    result = _normaliser().normalise_batch(batch)
    (record,) = result.records
    assert (record.source_workload, record.destination_service, record.duration_ms, record.trace_id) == (
        "reviews-v2",
        "ratings.default.svc.cluster.local",
        7,
        TRACE,
    )
    assert batch._resource_spans is None  # nobody asked for OTLP


@pytest.mark.parametrize(
    "changes",
    [
        {"tags": {"component": "proxy", "node_id": NODE, "http.status_code": 200}},  # a number where text goes
        {"traceId": "not hex"},
        {"timestamp": "1714564800000000"},
        {"remoteEndpoint": {"serviceName": "ratings", "port": "9080"}},
        {"annotations": [{"timestamp": 1, "value": 5}]},
    ],
)
def test_a_zipkin_request_the_quick_reading_refuses_fails_as_the_converter_says(changes: dict[str, Any]) -> None:
    body = orjson.dumps([_zipkin_proxy_span(), _zipkin_proxy_span(**changes)])
    with pytest.raises(ParseError) as converted:
        resource_spans_from_json(body)
    with pytest.raises(ParseError) as read:
        read_json(body)
    assert (read.value.reason, str(read.value)) == (converted.value.reason, str(converted.value))
    assert str(read.value).startswith("span 1: ")


def test_zipkin_status_tags_and_remote_service_reach_application_spans_as_through_otlp() -> None:
    span = _zipkin_proxy_span(
        tags={"error": "boom", "peer.service": "tagged", "otel.scope.name": "lib"},
        remoteEndpoint={"serviceName": "ratings", "ipv4": "10.0.0.1", "port": 9080},
    )
    converted, read, exported_converted, exported_read = _both_zipkin(orjson.dumps([span]))
    assert read == converted and exported_read == exported_converted
    (app,) = read[2]
    assert (app.error, app.peer_service) == (True, "ratings")
    (resource,) = (ResourceSpans.FromString(item) for item in exported_read[1])
    assert resource.scope_spans[0].scope.name == "lib"


def test_envoy_fields_of_a_proxy_span_are_in_envoy_fields_order() -> None:
    values = tuple(f"v{index}" for index in range(len(SPAN_KEYS)))
    tag = dict(zip(SPAN_KEYS, values, strict=True))
    fields = normalize._envoy_fields(
        values, TRACE, "00f067aa0ba902b7", "2024-05-01T12:00:00.123Z", "/r/1", "reviews:9080", 12
    )
    expected = EnvoyFields(
        start_time="2024-05-01T12:00:00.123Z", method=tag["http.method"], path="/r/1", protocol=tag["http.protocol"],
        response_code=tag["http.status_code"], response_flags=tag["response_flags"],
        bytes_received=tag["request_size"], bytes_sent=tag["response_size"], duration=12,  # type: ignore[arg-type]
        user_agent=tag["user_agent"], request_id=tag["guid:x-request-id"], authority="reviews:9080",
        upstream_host=tag["upstream_address"], upstream_cluster=tag["upstream_cluster.name"] or tag["upstream_cluster"],
        downstream_remote_address=tag["peer.address"], grpc_status=tag["grpc.status_code"],
        trace_id=TRACE, span_id="00f067aa0ba902b7",
    )  # fmt: skip
    assert fields == expected and type(fields) is EnvoyFields
