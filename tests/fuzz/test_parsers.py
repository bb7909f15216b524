"""Every parser, fuzzed at its receiver's boundary: each input is taken or refused, nothing else.

Two kinds of input, both driven by hypothesis (derandomized in the "ci" profile, see conftest.py):
valid seeds mutated by tests/fuzz/fuzz_mutators.py (the same mutations benchmarks/fuzz.py runs a
million of), and structures generated here from each format's own vocabulary with values of every
type and size. A target raising anything but its documented error fails the test (CrashError for a
parser bug its caller would only count, or a Record field of the wrong type).
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any

import orjson
import pytest
import yaml
from envoy.config.core.v3.address_pb2 import Address, Pipe, SocketAddress
from envoy.config.core.v3.base_pb2 import Node
from envoy.data.accesslog.v3.accesslog_pb2 import AccessLogCommon, HTTPAccessLogEntry, TCPAccessLogEntry
from envoy.service.accesslog.v3.als_pb2 import StreamAccessLogsMessage
from google.protobuf.struct_pb2 import Struct
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from fuzz.fuzz_mutators import Mutator
from fuzz.fuzz_seeds import seeds
from fuzz.fuzz_targets import BODY_LIMIT, OK, REJECTED, TARGETS
from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping
from telemetry.envoy.operators import FIELD_NAMES
from telemetry.envoy.render import compile_renderer
from telemetry.receivers.httpbody import BodyError, decode_content, read_raw
from telemetry.spans.normalize import SPAN_KEYS

OUTCOMES = (OK, REJECTED)

# -- values of every kind ----------------------------------------------------------------------------

texts = st.one_of(
    st.sampled_from(["", "-", "0", "-1", "200", "GET", "proxy", "outbound|9080|v1|r.d.svc.cluster.local",
                     "inbound|9080||", "PassthroughCluster", "[::1]:80", "10.0.0.1:80", "10.0.0.1",
                     "sidecar~10.0.0.1~p-v1-abc-xyz.ns~ns.svc.cluster.local", "router~~x.y~", "Unavailable", "14",
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "DI,UF"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)  # fmt: skip
integers = st.one_of(st.integers(-(2**63), 2**64 - 1), st.sampled_from([0, 1, -1, 599, 1000, 2**53, 2**63 - 1]))
json_scalars = st.one_of(st.none(), st.booleans(), integers, st.floats(allow_nan=False), texts)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(rng=st.randoms(use_true_random=False))
def test_mutated_seed_is_taken_or_refused(name: str, rng: Any) -> None:
    data = Mutator(name, seeds()[name], rng).next()
    assert TARGETS[name](data) in OUTCOMES


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(data=st.binary(max_size=512))
def test_random_bytes_are_taken_or_refused(name: str, data: bytes) -> None:
    assert TARGETS[name](data) in OUTCOMES


# -- access logs -------------------------------------------------------------------------------------


@given(st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=12))
def test_json_access_log_line_of_any_value_types_is_taken_or_refused(entry: dict[str, Any]) -> None:
    line = orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS)
    assert TARGETS["accesslog_json"](line) in OUTCOMES
    assert TARGETS["accesslog_auto"](line) in OUTCOMES


@given(st.sampled_from(["istio", "envoy", "istio-mixer"]), st.dictionaries(st.sampled_from(FIELD_NAMES), texts))
def test_text_access_log_line_with_any_field_text_is_taken_or_refused(fmt: str, values: dict[str, str]) -> None:
    # Quotes, spaces and brackets inside values: the lenient pass and its limits are exercised.
    line = compile_renderer(fmt)(values).encode()
    assert TARGETS[f"accesslog_{fmt}" if fmt != "istio-mixer" else "accesslog_istio"](line) in OUTCOMES
    assert TARGETS["accesslog_auto"](line) in OUTCOMES


format_tokens = st.sampled_from(
    ["%START_TIME%", "%REQ(:METHOD)%", "%REQ(", "%RESP(GRPC-STATUS)%", "%DURATION:2%", "%UPSTREAM_CLUSTER%",
     "%HOSTNAME%", "%%", "%", "%BYTES_SENT%", "%REQ(X-B3-TRACEID?TRACEPARENT)%", "%DOWNSTREAM_REMOTE_ADDRESS%",
     " ", '"', "[", "]", "{", "}", "\\", "(", ")", "?", "*", "+", "|", "-", "x", "\n", '{"a":"%DURATION%"}']
)  # fmt: skip


@given(st.lists(format_tokens, max_size=12).map("".join), st.lists(format_tokens | texts, max_size=12).map("".join))
def test_any_format_string_compiles_or_is_refused_and_reads_any_line(fmt: str, line: str) -> None:
    assert TARGETS["format_compiler"](f"{fmt.replace(chr(10), '')}\n{line}".encode()) in OUTCOMES


# -- spans -------------------------------------------------------------------------------------------

hex_ids = st.one_of(st.text("0123456789abcdefABCDEF", max_size=34), texts, integers, st.none())
zipkin_tags = st.dictionaries(
    st.sampled_from([*SPAN_KEYS, "otel.status_code", "error", "otel.scope.name"]), json_values
)
zipkin_endpoints = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {}, optional={"serviceName": json_values, "ipv4": json_values, "ipv6": json_values, "port": json_values}
    ),
)
zipkin_spans = st.fixed_dictionaries(
    {"traceId": hex_ids, "id": hex_ids},
    optional={
        "parentId": hex_ids,
        "kind": st.one_of(st.sampled_from(["CLIENT", "SERVER", "PRODUCER", "CONSUMER", "client"]), json_values),
        "name": json_values,
        "timestamp": json_values,
        "duration": json_values,
        "localEndpoint": zipkin_endpoints,
        "remoteEndpoint": zipkin_endpoints,
        "tags": st.one_of(zipkin_tags, json_values),
        "annotations": st.one_of(
            st.lists(st.fixed_dictionaries({"timestamp": json_values, "value": st.one_of(texts, json_values)})),
            json_values,
        ),
        "shared": json_values,
    },
)


@given(st.one_of(st.lists(zipkin_spans, max_size=4), json_values))
def test_zipkin_json_of_any_shape_is_taken_or_refused(spans: Any) -> None:
    assert TARGETS["zipkin_json"](orjson.dumps(spans, option=orjson.OPT_NON_STR_KEYS)) in OUTCOMES


any_values = st.deferred(
    lambda: st.one_of(
        st.builds(AnyValue, string_value=texts),
        st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
        st.builds(AnyValue, double_value=st.floats()),
        st.builds(AnyValue, bool_value=st.booleans()),
        st.builds(AnyValue, bytes_value=st.binary(max_size=8)),
        st.builds(lambda items: AnyValue(array_value={"values": items}), st.lists(any_values, max_size=2)),
        st.just(AnyValue()),
    )
)
attributes = st.lists(
    st.builds(KeyValue, key=st.one_of(st.sampled_from(SPAN_KEYS), texts), value=any_values), max_size=10
)
otlp_spans = st.fixed_dictionaries(
    {
        "trace_id": st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=17)),
        "span_id": st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=9)),
        "parent_span_id": st.binary(max_size=9),
        "kind": st.integers(-1, 7),
        "start_time_unix_nano": st.integers(0, 2**64 - 1),
        "end_time_unix_nano": st.integers(0, 2**64 - 1),
        "name": texts,
    }
)


@given(
    st.lists(
        st.tuples(attributes, st.lists(st.tuples(otlp_spans, attributes, st.integers(0, 3)), max_size=3)), max_size=3
    )
)
def test_otlp_request_of_any_span_values_is_taken_or_refused(resources: list[Any]) -> None:
    request = ExportTraceServiceRequest()
    for resource_attributes, spans in resources:
        resource = request.resource_spans.add()
        resource.resource.attributes.extend(resource_attributes)
        scope = resource.scope_spans.add()
        for fields, span_attributes, status in spans:
            span = scope.spans.add(**fields)
            span.attributes.extend(span_attributes)
            # Proxy spans are recognised by these two: make many of them proxies.
            if status:
                span.attributes.add(key="component", value=AnyValue(string_value="proxy"))
            span.status.code = status
    assert TARGETS["otlp_protobuf"](request.SerializeToString(deterministic=True)) in OUTCOMES


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "resourceSpans": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "resource": json_values,
                            "scopeSpans": st.one_of(
                                json_values,
                                st.lists(
                                    st.fixed_dictionaries(
                                        {},
                                        optional={
                                            "scope": json_values,
                                            "spans": st.one_of(json_values, st.lists(json_values | zipkin_spans)),
                                        },
                                    )
                                ),
                            ),
                        },
                    ),
                    max_size=2,
                ),
            )
        },
    )
)
def test_otlp_json_of_any_shape_is_taken_or_refused(document: dict[str, Any]) -> None:
    assert TARGETS["otlp_json"](orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)) in OUTCOMES


# -- ALS ---------------------------------------------------------------------------------------------

addresses = st.one_of(
    st.just(Address()),
    st.builds(
        lambda host, port: Address(socket_address=SocketAddress(address=host, port_value=port)),
        texts,
        st.integers(0, 2**32 - 1),
    ),
    st.builds(lambda host, name: Address(socket_address=SocketAddress(address=host, named_port=name)), texts, texts),
    st.builds(lambda path: Address(pipe=Pipe(path=path)), texts),
)


@st.composite
def access_log_commons(draw: st.DrawFn) -> AccessLogCommon:
    common = AccessLogCommon(upstream_cluster=draw(texts), route_name=draw(texts))
    if draw(st.booleans()):
        common.start_time.seconds = draw(st.integers(-(2**63), 2**63 - 1))
        common.start_time.nanos = draw(st.integers(-(2**31), 2**31 - 1))
    for name in ("duration", "time_to_last_downstream_tx_byte"):
        if draw(st.booleans()):
            getattr(common, name).seconds = draw(st.integers(-(2**40), 2**40))
            getattr(common, name).nanos = draw(st.integers(-(2**31), 2**31 - 1))
    for name in ("upstream_remote_address", "downstream_remote_address", "downstream_local_address"):
        getattr(common, name).CopyFrom(draw(addresses))
    common.tls_properties.tls_sni_hostname = draw(texts)
    if draw(st.booleans()):
        common.tls_properties.peer_certificate_properties.subject_alt_name.add(uri=draw(texts))
    if draw(st.booleans()):
        common.response_flags.upstream_connection_failure = True
    return common


@st.composite
def als_messages(draw: st.DrawFn) -> StreamAccessLogsMessage:
    message = StreamAccessLogsMessage()
    if draw(st.booleans()):
        metadata = Struct()
        metadata.update(draw(st.dictionaries(st.sampled_from(["NAME", "NAMESPACE", "WORKLOAD_NAME", "LABELS",
                                                              "SERVICE_ACCOUNT", "INSTANCE_IPS", "TRUST_DOMAIN"]),
                                             st.one_of(texts, st.dictionaries(texts, texts, max_size=2)))))  # fmt: skip
        message.identifier.node.CopyFrom(Node(id=draw(texts), cluster=draw(texts), metadata=metadata))
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            entry = HTTPAccessLogEntry(common_properties=draw(access_log_commons()))
            entry.protocol_version = draw(st.integers(0, 6))
            entry.request.request_method = draw(st.integers(0, 12))
            entry.request.authority = draw(texts)
            entry.request.path = draw(texts)
            entry.request.request_body_bytes = draw(st.integers(0, 2**64 - 1))
            entry.request.request_headers.update(
                draw(st.dictionaries(st.sampled_from(["x-b3-traceid", "traceparent"]), texts))
            )
            if draw(st.booleans()):
                entry.response.response_code.value = draw(st.integers(0, 2**32 - 1))
            entry.response.response_trailers.update(draw(st.dictionaries(st.just("grpc-status"), texts)))
            if message.WhichOneof("log_entries") != "tcp_logs":
                message.http_logs.log_entry.append(entry)
        else:
            tcp = TCPAccessLogEntry(common_properties=draw(access_log_commons()))
            tcp.connection_properties.received_bytes = draw(st.integers(0, 2**64 - 1))
            if message.WhichOneof("log_entries") != "http_logs":
                message.tcp_logs.log_entry.append(tcp)
    return message


@given(als_messages())
def test_als_message_of_any_values_is_taken_or_refused(message: StreamAccessLogsMessage) -> None:
    assert TARGETS["als"](message.SerializeToString(deterministic=True)) in OUTCOMES


# -- config ------------------------------------------------------------------------------------------

config_keys = st.sampled_from(
    ["pipeline", "receivers", "exporters", "graph", "correlation", "filelog", "otlp", "zipkin", "als", "grpc",
     "http", "endpoint", "enabled", "include", "format", "queue_size", "batch_timeout", "health", "http_4xx",
     "workloads", "ui", "prometheus", "degraded", "failing", "dead_letter", "max_body_bytes"]
)  # fmt: skip
config_values = st.recursive(
    json_scalars | st.floats(),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3) | st.dictionaries(config_keys | texts, inner, min_size=1, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(config_keys, config_values, max_size=4), st.dictionaries(config_keys, texts, max_size=2))
def test_any_config_structure_loads_or_is_a_config_error(data: dict[str, Any], env: dict[str, str]) -> None:
    environ = {f"MESHSCOPE_{key.upper()}__{key.upper()}": value.replace("\x00", "") for key, value in env.items()}
    try:
        load_mapping(Config, data, environ)
    except ConfigError as error:
        assert error.errors and all(isinstance(message, str) for message in error.errors)


@given(st.dictionaries(config_keys, config_values, max_size=4))
def test_any_config_file_loads_or_is_a_config_error(data: dict[str, Any]) -> None:
    assert TARGETS["config_file"](yaml.safe_dump(data, allow_unicode=True).encode()) in OUTCOMES


# -- HTTP bodies -------------------------------------------------------------------------------------


@given(st.binary(max_size=2048), st.sampled_from(["gzip", "x-gzip", "deflate"]), st.integers(0, 3))
def test_compressed_body_decodes_to_itself_within_the_limit(body: bytes, encoding: str, members: int) -> None:
    compress = zlib.compress if encoding == "deflate" else gzip.compress
    raw = compress(body) if encoding == "deflate" else b"".join(compress(body) for _ in range(max(members, 1)))
    expected = body if encoding == "deflate" else body * max(members, 1)
    limit = max(1, len(expected) // 2) if members == 3 else BODY_LIMIT
    try:
        assert decode_content(raw, encoding, limit) == expected
    except BodyError as error:
        assert (error.status, error.reason) == (413, "too_large")
        assert len(expected) > limit


@given(st.binary(max_size=256), st.integers(1, 4096))
def test_truncated_or_corrupt_gzip_is_a_400(body: bytes, cut: int) -> None:
    raw = gzip.compress(body)[:-cut] + body[:cut]
    try:
        decode_content(raw, "gzip", BODY_LIMIT)
    except BodyError as error:
        assert error.status in (400, 413)


@given(
    st.one_of(st.text(max_size=12), st.sampled_from(["+5", "5_0", "0x5", " 5 ", "-0", "٥", "5" * 30])),
    st.binary(max_size=64),
)
def test_any_content_length_reads_that_many_bytes_or_is_a_400(header: str, body: bytes) -> None:
    try:
        raw = read_raw(io.BytesIO(body), header, False, BODY_LIMIT)
    except BodyError as error:
        assert error.status in (400, 413)
    else:
        # Only plain ASCII digits are a length (RFC 9110), and exactly that many bytes were read.
        assert header.strip().isascii() and header.strip().isdigit()
        assert raw == body[: int(header)]
