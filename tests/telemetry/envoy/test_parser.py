from __future__ import annotations

import pytest

from telemetry.envoy.parser import ParseError, compile_format, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import PRESETS
from telemetry.model import Workload

PRODUCTPAGE = Workload("productpage-v1", "default", "productpage", "v1")
OUTBOUND = (
    '[2024-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 24 23 "-" '
    '"python-requests/2.31.0" "6e7e5f5e" "reviews:9080" "10.244.0.12:9080" '
    "outbound|9080|v2|reviews.default.svc.cluster.local 10.244.0.9:43210 10.96.12.34:9080 10.244.0.9:50212 - default"
)


def parse(line: str, fmt: str = "auto", reporter: Workload = PRODUCTPAGE, peers: PeerTable | None = None):  # type: ignore[no-untyped-def]
    return make_parser(fmt, reporter, peers if peers is not None else PeerTable()).parse(line)


def test_istio_outbound_line_is_reported_by_the_source() -> None:
    record = parse(OUTBOUND)
    assert (record.reporter, record.source_workload, record.destination_service_name) == (
        "source",
        "productpage-v1",
        "reviews",
    )
    assert (record.response_code, record.duration_ms, record.bytes_sent, record.method, record.path) == (
        200,
        24,
        295,
        "GET",
        "/reviews/0",
    )
    assert record.response_flags == "-" and record.protocol == "http"


def test_quoted_fields_may_contain_quotes_and_spaces() -> None:
    line = OUTBOUND.replace('"python-requests/2.31.0"', '"Mozilla/5.0 (X11) "quoted" agent"')
    assert parse(line).user_agent == 'Mozilla/5.0 (X11) "quoted" agent'


def test_dash_means_absent() -> None:
    record = parse(OUTBOUND.replace('"6e7e5f5e"', '"-"').replace(" 23 ", " - "))
    assert record.request_id == ""


def test_tcp_entries_have_no_method_or_path() -> None:
    line = (
        '[2024-05-04T17:22:59.050Z] "- - -" 0 - - - "-" 1250 3900 1520 - "-" "-" "-" "-" "10.244.0.20:3306" '
        "outbound|3306||mysqldb.default.svc.cluster.local 10.244.0.9:43500 10.96.0.40:3306 10.244.0.9:50500 - -"
    )
    record = parse(line)
    assert (record.protocol, record.method, record.path, record.bytes_received) == ("tcp", "", "", 1250)


def test_ipv6_addresses_parse_and_identify_peers() -> None:
    peers = PeerTable()
    peers.pin("fd00::5", Workload("gateway", "istio-system"))
    line = (
        '[2024-05-04T17:22:59.060Z] "GET /health HTTP/2" 200 - via_upstream - "-" 0 2 1 1 "-" "probe" "r" '
        '"[fd00::9]:9080" "[fd00::9]:9080" inbound|9080|| 127.0.0.6:45200 [fd00::9]:9080 [fd00::5]:40100 '
        "outbound_.9080_._.productpage.default.svc.cluster.local default"
    )
    record = parse(line, peers=peers)
    assert record.reporter == "destination" and record.source_workload == "gateway"
    assert record.source_address == "[fd00::5]:40100" and record.connection_security_policy == "mutual_tls"


def test_response_flag_lists_are_kept_whole() -> None:
    record = parse(OUTBOUND.replace(" 200 - via_upstream", " 503 URX,UF upstream_reset"))
    assert (record.response_code, record.response_flags) == (503, "URX,UF")


def test_grpc_status_names_become_numbers() -> None:
    fmt = "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %GRPC_STATUS% %UPSTREAM_CLUSTER%"
    assert parse("POST /a.B/C HTTP/2 200 Unavailable inbound|9080||", fmt).grpc_status == "14"
    record = parse("POST /a.B/C HTTP/2 200 0 inbound|9080||", fmt)
    assert (record.protocol, record.grpc_status, record.reporter) == ("grpc", "0", "destination")


def test_truncated_or_foreign_lines_raise_with_a_reason() -> None:
    with pytest.raises(ParseError) as caught:
        parse(OUTBOUND[:120])
    assert caught.value.reason == "format_mismatch"
    with pytest.raises(ParseError) as caught:
        parse('{"start_time": "2024-05-04T17:22:59.046Z", "method": ')
    assert caught.value.reason == "bad_json"


def test_auto_detection_switches_between_presets() -> None:
    parser = make_parser("auto", PRODUCTPAGE, PeerTable())
    parser.parse(OUTBOUND)
    assert parser.format_name == "istio"
    parser.parse(
        '[2024-05-04T17:30:00.000Z] "GET /a HTTP/1.1" 200 - 0 512 14 13 "-" "curl" "id" "users:8080" "10.1.2.3:8080"'
    )
    assert parser.format_name == "envoy"
    parser.parse('{"method":"GET","response_code":200,"upstream_cluster":"outbound|80||a.b.svc.cluster.local"}')
    assert parser.format_name == "json"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_compiles(name: str) -> None:
    assert callable(compile_format(name))


def test_a_format_without_known_operators_is_rejected() -> None:
    with pytest.raises(ValueError, match="no command operator"):
        compile_format("%FOO% %BAR%")


def test_custom_json_format_maps_its_own_keys() -> None:
    extract = compile_format('{"code":"%RESPONSE_CODE%","cluster":"%UPSTREAM_CLUSTER%","ms":"%DURATION%"}')
    fields = extract('{"code":404,"cluster":"outbound|80||web.shop.svc.cluster.local","ms":"7"}')
    assert fields is not None
    assert (fields.response_code, fields.upstream_cluster, fields.duration) == (
        404,
        "outbound|80||web.shop.svc.cluster.local",
        "7",
    )


def test_server_side_entry_names_the_caller_learned_from_its_own_entries() -> None:
    peers = PeerTable()
    parse(OUTBOUND, peers=peers)  # productpage's outbound entry shows its pod address 10.244.0.9
    inbound = (
        '[2024-05-04T17:22:59.047Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 20 19 "-" "ua" "id" '
        '"reviews:9080" "10.244.0.12:9080" inbound|9080|| 127.0.0.6:1 10.244.0.12:9080 10.244.0.9:43210 '
        "outbound_.9080_.v2_.reviews.default.svc.cluster.local default"
    )
    record = parse(inbound, reporter=Workload("reviews-v2", "default", "reviews", "v2"), peers=peers)
    assert (record.source_workload, record.destination_workload, record.destination_service) == (
        "productpage-v1", "reviews-v2", "reviews.default.svc.cluster.local")  # fmt: skip


def test_the_proxys_own_log_messages_are_told_apart_from_bad_lines() -> None:
    with pytest.raises(ParseError) as caught:
        parse("2024-05-04T17:22:59.048Z\tinfo\tenvoy upstream\tcds: added/updated 1 cluster(s)")
    assert caught.value.reason == "not_access_log"


def test_the_peer_table_is_bounded_and_forgets_the_oldest_learned_first() -> None:
    peers = PeerTable(max_entries=2)
    peers.pin("10.0.0.100", Workload("pinned"))
    for index in range(4):
        peers.learn(f"10.0.0.{index}", Workload(f"w{index}"))
    assert [peers.lookup(f"10.0.0.{i}") for i in range(4)] == [None, None, Workload("w2"), Workload("w3")]
    assert peers.evicted == 2 and peers.lookup("10.0.0.100") == Workload("pinned")


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        (" 0 295 24 ", " 0 " + "9" * 400 + " 24 "),  # would overflow the running totals
        (" 200 - via_upstream", " ٢٠٠ - via_upstream"),  # Unicode digits are not Envoy's
    ],
)
def test_counters_out_of_range_or_not_ascii_are_rejected(replace: tuple[str, str], reason: str) -> None:
    with pytest.raises(ParseError):
        parse(OUTBOUND.replace(*replace) if isinstance(replace, tuple) else OUTBOUND.replace(replace, reason))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("duration", "-100000", "bad_number"),
        ("bytes_sent", 10**30, "bad_number"),
        ("bytes_sent", 2**60, "bad_number"),
        ("response_code", True, "bad_field_type"),
        ("response_code", 200.7, "bad_field_type"),
        ("upstream_cluster", {"a": 1}, "bad_field_type"),
        ("authority", ["a"], "bad_field_type"),
        ("method", {"a": 1}, "bad_field_type"),
        ("downstream_remote_address", 7, "bad_field_type"),
    ],
)
def test_json_values_of_the_wrong_kind_are_parse_errors(field: str, value: object, reason: str) -> None:
    import json

    entry = {"method": "GET", "response_code": 200, "upstream_cluster": "outbound|80||a.b.svc.cluster.local",
             "downstream_remote_address": "10.0.0.1:5000", field: value}  # fmt: skip
    with pytest.raises(ParseError) as caught:
        parse(json.dumps(entry))
    assert caught.value.reason == reason
    if reason == "bad_field_type":
        assert f"$.{field}" in str(caught.value)  # the message names the key


def test_bare_ipv6_callers_are_told_apart() -> None:
    peers = PeerTable()
    peers.pin("fd00:10:244::5", Workload("productpage-v1", "default"))
    peers.pin("fd00:10:244::9", Workload("reviews-v2", "default"))
    fmt = "%UPSTREAM_CLUSTER% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %RESPONSE_CODE%"
    parser = make_parser(fmt, Workload("ratings-v1", "default"), peers)
    callers = [parser.parse(f"inbound|9080|| {ip} 200").source_workload for ip in ("fd00:10:244::5", "fd00:10:244::9")]
    assert callers == ["productpage-v1", "reviews-v2"]


def test_a_server_side_entry_without_sni_names_the_service_as_the_client_side_does() -> None:
    inbound = (
        '[2024-05-04T17:22:59.047Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 20 19 "-" "ua" "id" '
        '"reviews:9080" "10.244.0.12:9080" inbound|9080|| 127.0.0.6:1 10.244.0.12:9080 10.244.0.9:43210 - default'
    )
    record = parse(inbound, reporter=Workload("reviews-v2", "default", "reviews", "v2"))
    assert (record.destination_service, record.destination_service_name) == (
        "reviews.default.svc.cluster.local",
        "reviews",
    )
    assert record.connection_security_policy == "none"
