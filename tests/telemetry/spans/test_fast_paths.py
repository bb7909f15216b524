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
from telemetry.spans import from_zipkin, normalize
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


# -- Zipkin JSON in columns ---------------------------------------------------------------------------------

NODES = [
    NODE,
    "sidecar~10.244.0.15~ratings-v1-6d8f7c9b5-abcde.default~default.svc.cluster.local",
    "router~10.244.0.16~istio-ingressgateway-5d9f8b7c6-qwert.istio-system~istio-system.svc.cluster.local",
]
column_texts = st.one_of(
    st.sampled_from(["", "-", "200", "503", "0", "17", "GET", "HTTP/1.1", "10.244.0.15:9080", "10.244.0.16",
                     "http://ratings:9080/r/1", "/no/scheme", "https://host", "grpc", "UF", "x-1",
                     "outbound|9080|v1|ratings.default.svc.cluster.local", "inbound|9080||"]),
    st.text(max_size=4),
)  # fmt: skip
record_keys = st.sampled_from(
    ["upstream_cluster", "upstream_cluster.name", "http.status_code", "http.method", "http.url", "http.protocol",
     "response_flags", "peer.address", "upstream_address", "guid:x-request-id", "request_size", "response_size",
     "user_agent", "grpc.status_code", "grpc.path", "grpc.authority", "istio.namespace", "x"]
)  # fmt: skip


@st.composite
def column_requests(draw: Any) -> list[dict[str, Any]]:
    """Requests shaped as the column reading takes them (mostly): every span a proxy's, mostly the same
    fields in each span and the same tag keys in each (now and then a root span, an error tag or a span
    of its own shape)."""
    count = draw(st.integers(1, 24))
    shared_tags = draw(st.dictionaries(record_keys, column_texts, max_size=6))
    with_parent = draw(st.sampled_from(["all", "none", "some"]))
    remote = draw(st.one_of(st.none(), st.sampled_from([("ratings", "10.244.0.15", 9080), ("db", "10.0.0.9", 1)])))
    upper = draw(st.booleans())
    spans = []
    for _ in range(count):
        trace_id = draw(
            st.sampled_from([TRACE, "0af7651916cd43dd8448eb211c80319c", "00000000000000000000000000000001"])
        )
        tags = {"component": "proxy", "node_id": draw(st.sampled_from(NODES))}
        tags.update({key: draw(column_texts) for key in shared_tags})
        if draw(st.integers(0, 9)) == 0:
            tags["error"] = "true"
        span: dict[str, Any] = {
            "traceId": trace_id.upper() if upper else trace_id,
            "id": draw(st.sampled_from(["00f067aa0ba902b7", "b7ad6b7169203331", "0000000000000001"])),
            "kind": draw(st.sampled_from(["CLIENT", "SERVER"])),
            "name": draw(column_texts),
            "timestamp": draw(st.one_of(st.just(0), st.integers(1, 2**50))),
            "duration": draw(st.integers(-2, 10**7)),
            "localEndpoint": {"serviceName": draw(st.sampled_from(["", "reviews", "ratings"]))},
            "tags": tags,
        }
        if with_parent == "all" or with_parent == "some" and draw(st.booleans()):
            span["parentId"] = draw(st.sampled_from(["00f067aa0ba902b8", "B7AD6B7169203332"]))
        if remote is not None:
            span["remoteEndpoint"] = dict(zip(("serviceName", "ipv4", "port"), remote, strict=True))
        if draw(st.booleans()):
            span["shared"] = draw(st.booleans())
        spans.append(span)
    if draw(st.integers(0, 5)) == 0:  # one span out of the usual shape
        spans[draw(st.integers(0, count - 1))].update(draw(st.fixed_dictionaries({}, optional={
            "parentId": st.sampled_from(["", "1", "0000000000000000"]), "tags": proxy_tags,
            "annotations": st.just([{"timestamp": 1, "value": "a"}]), "id": hex_ids, "timestamp": json_values,
            "localEndpoint": endpoints, "remoteEndpoint": endpoints})))  # fmt: skip
    return spans


@EXAMPLES
@given(column_requests())
def test_zipkin_json_read_in_columns_groups_the_spans_as_reading_them_one_by_one_does(spans: list[Any]) -> None:
    body = orjson.dumps(spans)
    try:
        columns = from_zipkin._read_json_columns(orjson.loads(body))
    except Exception:  # noqa: BLE001 - not taken: read_json reads it span by span
        columns = None
    if columns is not None:
        assert columns.groups() == from_zipkin._read_json_spans(orjson.loads(body))
    read = read_json(body) if _readable(body) else None
    if read is not None:
        assert (read.columns is not None) == (columns is not None)


def _readable(body: bytes) -> bool:
    try:
        resource_spans_from_json(body)
    except ParseError:
        return False
    return True


@EXAMPLES
@given(column_requests())
def test_zipkin_proxy_spans_in_columns_normalise_and_export_as_their_otlp_conversion_does(spans: list[Any]) -> None:
    converted, read, exported_converted, exported_read = _both_zipkin(orjson.dumps(spans))
    assert read == converted
    assert exported_read == exported_converted


def _count_column_assemblies(monkeypatch: Any) -> list[int]:
    """The number of spans of each ``RecordAssembler.assemble_columns`` call from now on."""
    assembled: list[int] = []
    assemble_columns = normalize.RecordAssembler.assemble_columns

    def counting(self: Any, columns: Any, reporter: Any, originals: Any = None) -> Any:
        assembled.append(len(columns[0]))
        return assemble_columns(self, columns, reporter, originals)

    monkeypatch.setattr(normalize.RecordAssembler, "assemble_columns", counting)
    return assembled


def test_a_warm_request_of_proxy_spans_is_assembled_in_columns_in_its_own_order(monkeypatch: Any) -> None:
    # Three proxies' spans interleaved, across two local services: Records come back in the groups' order.
    spans = [
        _zipkin_proxy_span(
            id=f"{index + 1:016x}",
            localEndpoint={"serviceName": ["reviews", "ratings"][index % 2]},
            tags={
                "component": "proxy",
                "node_id": NODES[index % 3],
                "http.url": f"http://ratings:9080/r/{index}",
                "http.status_code": "200",
                "guid:x-request-id": f"req-{index}",
                "upstream_cluster": "outbound|9080|v1|ratings.default.svc.cluster.local",
            },
        )  # fmt: skip
        for index in range(12)
    ]
    body = orjson.dumps(spans)
    assembled = _count_column_assemblies(monkeypatch)
    normaliser = _normaliser()
    cold = normaliser.normalise_batch(read_json(body))
    assert assembled == []  # new proxies: span by span, as they are learnt
    warm = normaliser.normalise_batch(read_json(body))
    assert sorted(assembled) == [2, 2, 2, 2, 2, 2]  # (node, service) pairs: 6 reporters of 2 spans
    assert warm.records == cold.records
    # The groups' order: reviews' spans (even), then ratings' (odd), each in the request's order.
    assert [record.path for record in warm.records] == [f"/r/{index}" for index in [*range(0, 12, 2), *range(1, 12, 2)]]
    assert read_json(body).columns is not None


def test_a_large_request_reads_and_normalises_in_columns_as_through_otlp() -> None:
    spans = [
        _zipkin_proxy_span(
            traceId=f"{index:032x}".replace("0", "a", 1),
            id=f"{index + 1:016x}",
            parentId=f"{index + 7:016X}",
            duration=index * 997,
            localEndpoint={"serviceName": f"service-{index % 5}"},
            remoteEndpoint={"serviceName": "ratings", "ipv4": "10.244.0.15", "port": 9080},
            tags={
                "component": "proxy",
                "node_id": NODES[index % 3],
                "http.url": f"http://ratings:9080/r/{index}",
                "http.status_code": ["200", "503"][index % 2],
                "peer.address": "10.244.0.16:443",
                "upstream_address": "-",
                "response_size": str(index),
                "guid:x-request-id": f"req-{index}",
            },
        )  # fmt: skip
        for index in range(300)
    ]
    body = orjson.dumps(spans)
    assert read_json(body).columns is not None
    converted, read, exported_converted, exported_read = _both_zipkin(body)
    assert read == converted and exported_read == exported_converted
    assert len(read[1]) == 300


@st.composite
def otlp_proxy_requests(draw: Any) -> bytes:
    """OTLP requests of proxy spans as the column assembly takes them (mostly): string tags, good ids."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 3))):
        resource = request.resource_spans.add()
        service = draw(st.sampled_from(["", "reviews", "ratings"]))
        if service:
            resource.resource.attributes.append(_string("service.name", service))
        scope = resource.scope_spans.add()
        for _ in range(draw(st.integers(1, 8))):
            start = draw(st.integers(1, 2**62))
            span = scope.spans.add(
                trace_id=draw(st.sampled_from([bytes.fromhex(TRACE), b"\x01" * 16, b"\x00" * 16 if draw(
                    st.integers(0, 30)) == 0 else b"\x02" * 16])),
                span_id=draw(st.sampled_from([b"\x01" * 8, b"\x02" * 8])),
                start_time_unix_nano=start,
                end_time_unix_nano=start + draw(st.integers(-1 if draw(st.integers(0, 30)) == 0 else 0, 10**10)),
            )  # fmt: skip
            span.attributes.append(_string("component", "proxy"))
            span.attributes.append(_string("node_id", draw(st.sampled_from(NODES))))
            for key, value in draw(st.dictionaries(record_keys, column_texts, max_size=5)).items():
                span.attributes.append(_string(key, value))
    return request.SerializeToString()


@EXAMPLES
@given(otlp_proxy_requests())
def test_otlp_proxy_spans_in_columns_normalise_as_their_messages_do(body: bytes) -> None:
    by_messages, by_bytes = _both_otlp(body)
    assert by_bytes == by_messages


def test_a_warm_otlp_request_of_proxy_spans_is_assembled_in_columns(monkeypatch: Any) -> None:
    request = ExportTraceServiceRequest()
    for service in ("reviews", "ratings"):
        resource = request.resource_spans.add()
        resource.resource.attributes.append(_string("service.name", service))
        spans = resource.scope_spans.add().spans
        for index in range(4):
            span = spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes([index + 1]) * 8,
                             start_time_unix_nano=10**18, end_time_unix_nano=10**18 + index * 10**6)  # fmt: skip
            span.attributes.extend([_string("component", "proxy"), _string("node_id", NODES[index % 2]),
                                    _string("http.url", f"http://ratings:9080/{service}/{index}")])  # fmt: skip
    body = request.SerializeToString()
    assembled = _count_column_assemblies(monkeypatch)
    normaliser = _normaliser()
    cold = normaliser.normalise_batch(decode_request(body))
    assert assembled == []
    warm = normaliser.normalise_batch(decode_request(body))
    assert assembled == [2, 2, 2, 2]  # (node, service) pairs
    assert warm.records == cold.records
    assert [record.path for record in warm.records] == [f"/{service}/{index}" for service in ("reviews", "ratings")
                                                         for index in range(4)]  # fmt: skip
    assert [record.duration_ms for record in warm.records] == [0, 1, 2, 3, 0, 1, 2, 3]
