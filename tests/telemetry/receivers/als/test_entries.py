from __future__ import annotations

from types import ModuleType

import pytest
from envoy.config.core.v3.address_pb2 import Address, Pipe
from envoy.data.accesslog.v3 import accesslog_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from telemetry.envoy.errors import ParseError
from telemetry.envoy.operators import EnvoyFields
from telemetry.receivers.als.entries import address_text, http_fields, tcp_fields, timestamp_text
from telemetry.receivers.als.flags import SHORT_CODES, short_flags

OUTBOUND_REVIEWS = "outbound|9080|v2|reviews.default.svc.cluster.local"


def test_http_entry_renders_like_istios_json_access_log(als: ModuleType) -> None:
    common = als.common(
        OUTBOUND_REVIEWS,
        upstream=("10.244.0.12", 9080),
        upstream_local=("10.244.0.7", 41234),
        downstream_local=("10.96.12.5", 9080),
        downstream_remote=("10.244.0.7", 52110),
        route_name="default",
    )
    entry = als.http_entry(
        common,
        method="POST",
        protocol=accesslog_pb2.HTTPAccessLogEntry.HTTP2,
        request_bytes=(120, 30),
        response_bytes=(80, 295),
        request_headers={"x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312"},
    )
    entry.request.original_path = "/api/v1/reviews/0"
    entry.request.forwarded_for = "203.0.113.9"
    entry.response.response_code_details = "via_upstream"
    entry.response.response_headers["x-envoy-upstream-service-time"] = "21"

    fields = http_fields(entry)

    assert fields == EnvoyFields(
        start_time="2024-05-01T12:00:00.123Z",
        method="POST",
        path="/api/v1/reviews/0",
        protocol="HTTP/2",
        response_code="200",
        response_flags="",
        response_code_details="via_upstream",
        bytes_received="30",  # body bytes, as %BYTES_RECEIVED%
        bytes_sent="295",
        duration="25",
        upstream_service_time="21",
        x_forwarded_for="203.0.113.9",
        user_agent="curl/8.5.0",
        request_id="6f0c3a4e-2b7e-4c1a-9a51-0d6c1e3b8f00",
        authority="reviews:9080",
        upstream_host="10.244.0.12:9080",
        upstream_cluster=OUTBOUND_REVIEWS,
        upstream_local_address="10.244.0.7:41234",
        downstream_local_address="10.96.12.5:9080",
        downstream_remote_address="10.244.0.7:52110",
        route_name="default",
        trace_id="463ac35c9f6413ad48485a3953bb6124",
        span_id="a2fb4a1d1a96d312",
    )


def test_tcp_entry_has_connection_bytes_and_no_protocol(als: ModuleType) -> None:
    common = als.common("outbound|3306||mysqldb.default.svc.cluster.local", upstream=("10.244.0.20", 3306))
    fields = tcp_fields(als.tcp_entry(common, received=512, sent=2048))
    assert (fields.protocol, fields.method, fields.response_code) == ("", "", "")
    assert (fields.bytes_received, fields.bytes_sent, fields.upstream_host) == ("512", "2048", "10.244.0.20:3306")


def test_grpc_status_comes_from_trailers_or_a_trailers_only_response(als: ModuleType) -> None:
    with_trailers = als.http_entry(als.common(OUTBOUND_REVIEWS), response_trailers={"grpc-status": "14"})
    assert http_fields(with_trailers).grpc_status == "14"
    trailers_only = als.http_entry(als.common(OUTBOUND_REVIEWS))
    trailers_only.response.response_headers["grpc-status"] = "5"
    assert http_fields(trailers_only).grpc_status == "5"


def test_traceparent_is_passed_on_for_the_assembler(als: ModuleType) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    entry = als.http_entry(als.common(OUTBOUND_REVIEWS), request_headers={"traceparent": traceparent})
    assert http_fields(entry).traceparent == traceparent


def test_flags_are_envoys_short_codes_in_envoys_order(als: ModuleType) -> None:
    common = als.common(OUTBOUND_REVIEWS)
    common.response_flags.upstream_retry_limit_exceeded = True
    common.response_flags.upstream_connection_failure = True
    common.response_flags.fault_injected = True
    assert http_fields(als.http_entry(common)).response_flags == "UF,FI,URX"


def test_unauthorized_details_is_the_uaex_flag() -> None:
    flags = accesslog_pb2.ResponseFlags()
    flags.unauthorized_details.reason = accesslog_pb2.ResponseFlags.Unauthorized.EXTERNAL_SERVICE
    assert short_flags(flags) == "UAEX"


def test_every_response_flag_of_the_proto_has_a_short_code() -> None:
    assert {field.name for field in accesslog_pb2.ResponseFlags.DESCRIPTOR.fields} == set(SHORT_CODES)


def test_duration_prefers_the_total_then_last_downstream_byte_then_last_upstream_byte(als: ModuleType) -> None:
    common = als.common(OUTBOUND_REVIEWS, duration_ms=None)
    assert http_fields(als.http_entry(common)).duration == "0"
    common.time_to_last_upstream_rx_byte.CopyFrom(Duration(nanos=7_900_000))
    assert http_fields(als.http_entry(common)).duration == "7"
    common.time_to_last_downstream_tx_byte.CopyFrom(Duration(seconds=1, nanos=250_000_000))
    assert http_fields(als.http_entry(common)).duration == "1250"
    common.duration.CopyFrom(Duration(seconds=2))
    assert http_fields(als.http_entry(common)).duration == "2000"


def test_addresses_render_as_envoy_prints_them(als: ModuleType) -> None:
    assert address_text(als.address("10.0.0.1", 80)) == "10.0.0.1:80"
    assert address_text(als.address("::1", 80)) == "[::1]:80"
    assert address_text(Address(pipe=Pipe(path="/var/run/envoy.sock"))) == "/var/run/envoy.sock"
    assert address_text(Address()) == ""


def test_start_time_is_rfc3339_with_milliseconds_in_utc() -> None:
    assert timestamp_text(Timestamp(seconds=0, nanos=5_999_999)) == "1970-01-01T00:00:00.005Z"


def test_http_entry_without_method_or_status_leaves_them_empty(als: ModuleType) -> None:
    entry = als.http_entry(als.common(OUTBOUND_REVIEWS), status=None)
    entry.request.request_method = 0
    fields = http_fields(entry)
    assert (fields.method, fields.response_code) == ("", "")


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda entry: entry.ClearField("common_properties"), "missing_common_properties"),
        (lambda entry: entry.response.response_code.__setattr__("value", 1000), "bad_response_code"),
        (
            lambda entry: entry.common_properties.time_to_last_downstream_tx_byte.__setattr__("seconds", -3),
            "bad_duration",
        ),
        (lambda entry: entry.common_properties.start_time.__setattr__("seconds", 10**13), "bad_start_time"),
    ],
    ids=["no common properties", "status 1000", "negative duration", "start time past year 9999"],
)
def test_malformed_values_raise_parse_error_with_reason(als: ModuleType, spoil: object, reason: str) -> None:
    entry = als.http_entry(als.common(OUTBOUND_REVIEWS))
    spoil(entry)  # type: ignore[operator]
    with pytest.raises(ParseError) as caught:
        http_fields(entry)
    assert caught.value.reason == reason
