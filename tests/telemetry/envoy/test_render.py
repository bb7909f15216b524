from __future__ import annotations

import orjson
import pytest

from telemetry.demo import generate
from telemetry.envoy.operators import Operator, field_of, tokenize
from telemetry.envoy.parser import compile_format, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import ISTIO, PRESETS
from telemetry.envoy.render import compile_renderer
from telemetry.model import Workload

CUSTOM = (
    "%START_TIME% %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% %GRPC_STATUS% "
    "%RESPONSE_FLAGS% {%DURATION%ms} 100%% [%UPSTREAM_CLUSTER%] %DOWNSTREAM_PEER_URI_SAN% "
    '"%REQ(X-REQUEST-ID)%" "%REQ(X-B3-TRACEID)%" %HOSTNAME%'
)

FULL = {
    "start_time": "2024-05-01T12:00:00.123Z",
    "method": "GET",
    "path": "/reviews/0",
    "protocol": "HTTP/1.1",
    "response_code": "200",
    "response_flags": "DI",
    "response_code_details": "via_upstream",
    "bytes_received": "0",
    "bytes_sent": "295",
    "duration": "2024",
    "upstream_service_time": "23",
    "user_agent": "curl/8.5.0",
    "request_id": "2b4f0c3e-1c5e-4b8e-9a3c-0f4b2b7e9d11",
    "authority": "reviews:9080",
    "upstream_host": "10.244.0.14:9080",
    "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
    "upstream_local_address": "10.244.0.11:45678",
    "downstream_local_address": "10.96.45.30:9080",
    "downstream_remote_address": "10.244.0.11:45676",
    "route_name": "default",
}


def _fields_of(fmt: str) -> set[str]:
    fmt = PRESETS.get(fmt, fmt)
    if fmt.startswith("{"):
        values = [value for value in orjson.loads(fmt).values() if isinstance(value, str)]
        tokens = [token for value in values for token in tokenize(value)]
    else:
        tokens = tokenize(fmt)
    return {field for token in tokens if isinstance(token, Operator) and (field := field_of(token)) is not None}


def _absent_as_empty(value: object) -> str:
    return "" if value is None or value == "-" else str(value)


@pytest.fixture(scope="module")
def demo_entries() -> list[dict[str, str]]:
    # Enough requests for every kind of entry: HTTP, gRPC, TCP, passthrough, FI and DI faults, 404s.
    return [entry.fields for entry in generate(300)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_renders_lines_that_parse_back_to_the_same_values(preset, demo_entries):
    render = compile_renderer(PRESETS[preset])
    extract = compile_format(PRESETS[preset])
    fields = _fields_of(preset)
    for values in demo_entries:
        parsed = extract(render(values))
        assert parsed is not None, render(values)
        for field in fields:
            assert _absent_as_empty(getattr(parsed, field)) == _absent_as_empty(values.get(field)), field


def test_a_preset_can_be_named_instead_of_spelled_out():
    assert compile_renderer("istio")(FULL) == compile_renderer(ISTIO)(FULL)


def test_a_custom_format_renders_literals_percent_and_braces_and_parses_back():
    values = dict(
        FULL,
        grpc_status="14",
        downstream_peer_uri_san="spiffe://cluster.local/ns/default/sa/x",
        trace_id="ab" * 16,
    )
    line = compile_renderer(CUSTOM)(values)
    assert line == (
        "2024-05-01T12:00:00.123Z GET /reviews/0 200 14 DI {2024ms} 100% "
        "[outbound|9080|v2|reviews.default.svc.cluster.local] spiffe://cluster.local/ns/default/sa/x "
        f'"2b4f0c3e-1c5e-4b8e-9a3c-0f4b2b7e9d11" "{"ab" * 16}" -'
    )
    parsed = compile_format(CUSTOM)(line)
    assert parsed is not None
    for field in _fields_of(CUSTOM):
        assert getattr(parsed, field) == values[field]


def test_absent_and_empty_values_render_as_a_dash_in_text_formats():
    line = compile_renderer('%REQ(:METHOD)% "%REQ(USER-AGENT)%" %RESPONSE_FLAGS% %UPSTREAM_HOST%')(
        {"method": "GET", "user_agent": ""}
    )
    assert line == 'GET "-" - -'


def test_operators_meshscope_does_not_map_render_as_a_dash():
    line = compile_renderer("%DYNAMIC_METADATA(istio.mixer:status)% %HOSTNAME% %REQ(X-CUSTOM)% %RESPONSE_CODE%")(FULL)
    assert line == "- - - 200"


def test_absent_values_render_as_json_null_and_counters_as_numbers():
    line = compile_renderer(PRESETS["json"])(
        {
            "method": "GET",
            "response_code": "503",
            "response_flags": "-",
            "duration": "0",
        }
    )
    data = orjson.loads(line)
    assert data["method"] == "GET"
    assert data["response_code"] == 503 and data["duration"] == 0
    assert data["response_flags"] is None and data["upstream_host"] is None
    assert list(data) == list(orjson.loads(PRESETS["json"]))


def test_json_values_are_escaped():
    line = compile_renderer('{"ua":"%REQ(USER-AGENT)%"}')({"user_agent": 'a "quoted"\\ agent\n'})
    assert orjson.loads(line) == {"ua": 'a "quoted"\\ agent\n'}


def test_max_length_truncates_text_and_json_values():
    values = {"path": "/reviews/0123456789", "request_id": "2b4f0c3e-1c5e"}
    assert compile_renderer("%REQ(:PATH):8% %REQ(X-REQUEST-ID):4%")(values) == "/reviews 2b4f"
    assert orjson.loads(compile_renderer('{"p":"%REQ(:PATH):8%"}')(values)) == {"p": "/reviews"}


def test_a_json_format_may_nest_objects_and_mix_literals_and_constants():
    fmt = '{"http":{"code":"%RESPONSE_CODE%","route":"to %UPSTREAM_CLUSTER% via %ROUTE_NAME%"},"v":1,"tag":"demo","who":"%HOSTNAME%"}'
    data = orjson.loads(compile_renderer(fmt)({"response_code": "200", "upstream_cluster": "inbound|9080||"}))
    assert data == {
        "http": {"code": 200, "route": "to inbound|9080|| via -"},
        "v": 1,
        "tag": "demo",
        "who": None,
    }


def test_address_without_port_drops_the_port():
    values = {"downstream_remote_address": "10.244.0.11:45676"}
    assert compile_renderer("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%")(values) == "10.244.0.11"
    assert orjson.loads(compile_renderer('{"a":"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}')(values)) == {
        "a": "10.244.0.11"
    }


def test_a_rendered_istio_line_parses_into_the_record_it_describes():
    reporter = Workload("productpage-v1", "default", "productpage", "v1")
    record = make_parser("auto", reporter, PeerTable()).parse(compile_renderer("istio")(FULL) + "\n")
    assert record.reporter == "source"
    assert record.source_workload == "productpage-v1"
    assert record.destination_service == "reviews.default.svc.cluster.local"
    assert (
        record.method,
        record.path,
        record.response_code,
        record.response_flags,
    ) == ("GET", "/reviews/0", 200, "DI")
    assert (record.duration_ms, record.bytes_sent, record.request_id) == (
        2024,
        295,
        FULL["request_id"],
    )
