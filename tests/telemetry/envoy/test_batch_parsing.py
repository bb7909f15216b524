"""Many lines at once (columns through ``assemble_columns``) give what one line at a time gives."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from accesslogentries import entry

from telemetry.envoy.istio import RecordAssembler
from telemetry.envoy.operators import FIELD_NAMES, EnvoyFields
from telemetry.envoy.parser import LineParser, compile_columns, compile_format, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import PRESETS
from telemetry.envoy.render import compile_renderer
from telemetry.model import Record, Workload

ACCESSLOGS = Path(__file__).resolve().parents[2] / "testdata" / "accesslogs"
PRODUCTPAGE = Workload("productpage-v1", "default", "productpage", "v1")
REVIEWS = Workload("reviews-v2", "default", "reviews", "v2")


def one_at_a_time(lines: list[str], fmt: str, reporter: Workload, keep_original: bool = False):  # type: ignore[no-untyped-def]
    parser = make_parser(fmt, reporter, PeerTable(), keep_original)
    records, errors = [], []
    for line in lines:
        try:
            records.append(parser.parse(line))
        except Exception as error:  # noqa: BLE001 - the reason is what is compared
            errors.append((getattr(error, "reason", "parser_error"), line))
    return records, errors


def all_at_once(lines: list[str], fmt: str, reporter: Workload, keep_original: bool = False):  # type: ignore[no-untyped-def]
    errors: list[tuple[str, str]] = []
    records = make_parser(fmt, reporter, PeerTable(), keep_original).parse_lines(lines, errors)
    return records, errors


# One of each kind of entry the column path treats differently from the common one.
VARIED = [
    entry(),
    entry(method="", protocol="", path="", response_code="0", authority="", upstream_cluster="outbound|3306||mysql.db.svc.cluster.local"),
    entry(response_flags="UF,URX", response_code="503"),
    entry(downstream_remote_address="[2001:db8::7]:50212"),
    entry(downstream_remote_address="10.244.0.9"),
    entry(upstream_cluster="inbound|9080||", downstream_local_address="10.244.0.12:9080", downstream_remote_address="10.244.0.9:50999"),
    entry(upstream_cluster="PassthroughCluster", authority="api.example.com"),
    entry(duration="", bytes_sent=""),
]  # fmt: skip


@pytest.mark.parametrize("preset", ["istio", "istio-upstream-cluster", "envoy", "json"])
@pytest.mark.parametrize("keep_original", [False, True])
def test_a_batch_of_varied_entries_gives_the_records_of_one_at_a_time(preset: str, keep_original: bool) -> None:
    render = compile_renderer(PRESETS[preset])
    lines = [render(values) for values in VARIED * 3]
    expected = one_at_a_time(lines, preset, PRODUCTPAGE, keep_original)
    assert all_at_once(lines, preset, PRODUCTPAGE, keep_original) == expected
    assert all_at_once(lines, "auto", PRODUCTPAGE, keep_original) == expected
    assert {record.protocol for record in expected[0]} >= ({"http", "tcp"} if preset != "envoy" else {"http"})


@pytest.mark.parametrize(
    ("log", "fmt"),
    [("istio.log", "auto"), ("istio_mixer.log", "auto"), ("istio_upstream_cluster.log", "auto"), ("json.log", "auto"),
     ("envoy.log", "envoy"), ("reviews.log", "auto"), ("custom.log", (ACCESSLOGS / "custom.format").read_text().strip())],
)  # fmt: skip
def test_golden_logs_give_the_same_records_and_errors_either_way(log: str, fmt: str) -> None:
    lines = (ACCESSLOGS / log).read_text().splitlines()
    for reporter in (PRODUCTPAGE, REVIEWS, Workload()):
        assert all_at_once(lines, fmt, reporter) == one_at_a_time(lines, fmt, reporter)


def test_grpc_and_traceparent_entries_keep_their_meaning_in_a_batch() -> None:
    fmt = "%START_TIME% %REQ(:METHOD)% %PROTOCOL% %RESPONSE_CODE% %GRPC_STATUS% %UPSTREAM_CLUSTER% %REQ(TRACEPARENT)% %DURATION%"
    lines = [
        "2024-05-04T17:22:59Z POST HTTP/2 200 Unavailable outbound|9080||ratings.default.svc.cluster.local "
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 3",
        "2024-05-04T17:22:59Z POST HTTP/2 200 0 outbound|9080||ratings.default.svc.cluster.local - 4",
        "2024-05-04T17:22:59Z GET HTTP/1.1 200 - outbound|9080||ratings.default.svc.cluster.local - 5",
    ]
    records, errors = all_at_once(lines, fmt, PRODUCTPAGE)
    assert not errors and (records, errors) == one_at_a_time(lines, fmt, PRODUCTPAGE)
    assert [(r.protocol, r.grpc_status) for r in records] == [("grpc", "14"), ("grpc", "0"), ("http", "")]
    assert (records[0].trace_id, records[0].span_id) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_a_bad_counter_costs_its_line_only() -> None:
    render = compile_renderer(PRESETS["json"])
    lines = [render(entry()), render(entry()).replace('"response_code":200', '"response_code":-5'), render(entry())]
    records, errors = all_at_once(lines, "json", PRODUCTPAGE)
    assert len(records) == 2 and [reason for reason, _ in errors] == ["bad_number"]
    assert errors[0][1] == lines[1]


def test_what_the_peer_table_learns_mid_batch_names_the_later_entries_peers() -> None:
    # A client line teaches the table productpage's pod IP (its upstream local address); the server
    # side's later entries from that IP then name productpage as their source, in one batch as one by one.
    peers = PeerTable()
    client = make_parser("istio", PRODUCTPAGE, peers)
    server = make_parser("istio", REVIEWS, peers)
    render = compile_renderer(PRESETS["istio"])
    inbound = render(entry(upstream_cluster="inbound|9080||", downstream_remote_address="10.244.0.9:50212"))
    errors: list[tuple[str, str]] = []
    assert server.parse_lines([inbound], errors)[0].source_workload == "unknown"
    client.parse_lines([render(entry())], errors)
    assert server.parse_lines([inbound, inbound], errors)[1].source_workload == "productpage-v1"
    assert not errors


def test_an_identity_cached_before_the_table_learns_is_looked_up_afresh_after_it() -> None:
    # The inbound entry's identity is cached (source unknown) in the first two batches; in the third an
    # outbound entry first teaches the table that 10.244.0.9 is productpage itself, so the inbound entry
    # after it must name productpage as its source, as one line at a time does.
    render = compile_renderer(PRESETS["istio"])
    inbound = render(entry(upstream_cluster="inbound|9080||", downstream_remote_address="10.244.0.9:50212"))
    outbound = render(entry())
    batches = [[inbound], [inbound], [outbound, inbound]]
    parser = make_parser("istio", PRODUCTPAGE, PeerTable())
    errors: list[tuple[str, str]] = []
    in_batches = [parser.parse_lines(batch, errors) for batch in batches]
    single = make_parser("istio", PRODUCTPAGE, PeerTable())
    assert in_batches == [[single.parse(line) for line in batch] for batch in batches]
    assert in_batches[2][1].source_workload == "productpage-v1" and in_batches[1][0].source_workload == "unknown"


def test_assemble_columns_declines_what_only_assemble_can_report() -> None:
    assembler = RecordAssembler(PeerTable())
    row = EnvoyFields(response_code="200", duration="5", bytes_received="1", bytes_sent="2", method="GET",
                      downstream_remote_address="10.0.0.1:5")  # fmt: skip
    columns = [list(values) for values in zip(row, row, strict=True)]
    assert assembler.assemble_columns(columns, PRODUCTPAGE) == [assembler.assemble(row, PRODUCTPAGE)] * 2
    columns[FIELD_NAMES.index("duration")][1] = "x5"
    assert assembler.assemble_columns(columns, PRODUCTPAGE) is None
    assert assembler.assemble_columns([[] for _ in FIELD_NAMES], PRODUCTPAGE) == []


def test_json_batches_read_nulls_dashes_and_numeric_grpc_statuses_as_one_at_a_time() -> None:
    base = {"start_time": "2024-05-04T17:22:59.046Z", "method": "POST", "protocol": "HTTP/2", "response_code": 200,
            "duration": 3, "bytes_received": 10, "bytes_sent": 20, "upstream_cluster": "outbound|9080||ratings.default.svc.cluster.local",
            "downstream_remote_address": "10.244.0.9:5000", "upstream_host": "10.244.0.14:9080"}  # fmt: skip
    clean = [
        {**base, "grpc_status": 0, "route_name": None},
        {**base, "grpc_status": 14, "response_flags": "-", "authority": None},
        {**base, "grpc_status": None, "path": "-"},
    ]
    lines = [orjson.dumps(values).decode() for values in clean]
    records, errors = all_at_once(lines, "json", PRODUCTPAGE)
    assert (records, errors) == one_at_a_time(lines, "json", PRODUCTPAGE) and not errors
    assert [(r.protocol, r.grpc_status, r.response_flags, r.path) for r in records] == [
        ("grpc", "0", "-", ""), ("grpc", "14", "-", ""), ("http", "", "-", ""),
    ]  # fmt: skip
    wrong = [orjson.dumps({**base, "authority": 80}).decode(), orjson.dumps({**base, "method": True}).decode(), "{oops"]
    mixed = lines + wrong
    records, errors = all_at_once(mixed, "json", PRODUCTPAGE)
    assert (records, errors) == one_at_a_time(mixed, "json", PRODUCTPAGE)
    assert len(records) == 3 and [reason for reason, _ in errors] == ["bad_field_type", "bad_field_type", "bad_json"]


def test_json_columns_read_absent_values_wherever_they_fall_in_the_batch() -> None:
    # Shortcuts in the column path: a column of one object throughout (a key no line has, always null,
    # always "-", a small int) and one that begins and ends with the same object but differs inside.
    base = {"method": "GET", "response_code": 200, "bytes_received": 0, "upstream_cluster": "outbound|9080||ratings.default.svc.cluster.local",
            "downstream_remote_address": "10.244.0.9:5000", "route_name": None, "response_flags": "-"}  # fmt: skip
    authorities = [None, "ratings:9080", "-", None]
    lines = [
        orjson.dumps({**base, "authority": authority, "path": f"/{n}"}).decode()
        for n, authority in enumerate(authorities)
    ]
    records, errors = all_at_once(lines, "json", PRODUCTPAGE)
    assert (records, errors) == one_at_a_time(lines, "json", PRODUCTPAGE) and not errors
    assert [r.authority for r in records] == ["", "ratings:9080", "", ""]
    assert {(r.route_name, r.response_flags, r.bytes_received, r.user_agent) for r in records} == {("", "-", 0, "")}


def test_a_batch_works_out_each_peer_pairs_identity_once(monkeypatch: pytest.MonkeyPatch) -> None:
    worked_out: list[str] = []
    original = RecordAssembler._identity

    def counting(self: RecordAssembler, fields: EnvoyFields, reporter: Workload) -> tuple[str, ...]:
        worked_out.append(fields.upstream_cluster)
        return original(self, fields, reporter)

    monkeypatch.setattr(RecordAssembler, "_identity", counting)
    render = compile_renderer(PRESETS["istio"])
    reviews = entry(upstream_cluster="outbound|9080||reviews.default.svc.cluster.local")
    lines = [render(entry()), render(reviews)] * 100
    records, errors = all_at_once(lines, "istio", Workload())
    assert len(records) == 200 and not errors
    assert sorted(worked_out) == sorted({entry()["upstream_cluster"], reviews["upstream_cluster"]})


def test_lines_that_do_not_fit_keep_their_place_among_those_that_do() -> None:
    istio, json = compile_renderer(PRESETS["istio"]), compile_renderer(PRESETS["json"])
    # An extra quote (the lenient regex reads it) on a client line that teaches the peer table productpage's
    # pod IP, before the server side's line from that IP: its source is productpage only in this order.
    outbound = istio(entry(user_agent='curl "x"'))
    inbound = istio(entry(upstream_cluster="inbound|9080||", downstream_remote_address="10.244.0.9:50212"))
    assert all_at_once([outbound, inbound], "istio", PRODUCTPAGE) == one_at_a_time(
        [outbound, inbound], "istio", PRODUCTPAGE
    )
    assert all_at_once([outbound, inbound], "istio", PRODUCTPAGE)[0][1].source_workload == "productpage-v1"
    # Formats changing line to line under auto-detection, and errors, in the lines' order.
    mixed = [
        json(entry(path="/1")),
        istio(entry(path="/2")),
        "{oops",
        json(entry(path="/3")),
        istio(entry(duration="x")),
    ]
    batch, single = all_at_once(mixed, "auto", PRODUCTPAGE), one_at_a_time(mixed, "auto", PRODUCTPAGE)
    assert batch == single
    assert [record.path for record in batch[0]] == ["/1", "/2", "/3"]
    parser = make_parser("auto", PRODUCTPAGE, PeerTable())
    parser.parse_lines(mixed[:4], [])
    assert parser.format_name == "json"


def test_a_batch_whose_format_keeps_switching_is_read_again_only_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each switch under auto-detection used to re-read every line left by columns: quadratic in the batch.
    istio, json = compile_renderer(PRESETS["istio"]), compile_renderer(PRESETS["json"])
    lines = [render(entry(path=f"/{n}")) for n in range(200) for render in (json, istio)]
    reads: list[int] = []
    original = LineParser._parse_runs

    def counting(self: LineParser, lines: list[str], errors: list[tuple[str, str]], records: list[Record]) -> int:
        reads.append(len(lines))
        return original(self, lines, errors, records)

    monkeypatch.setattr(LineParser, "_parse_runs", counting)
    batch = all_at_once(lines, "auto", PRODUCTPAGE)
    assert len(reads) <= 3 and sum(reads) < 3 * len(lines)
    monkeypatch.undo()
    assert batch == one_at_a_time(lines, "auto", PRODUCTPAGE)
    assert [record.path for record in batch[0]] == [f"/{n}" for n in range(200) for _ in range(2)]


def test_json_lines_the_decoder_cannot_read_are_bad_json_or_out_of_range() -> None:
    base = {"method": "GET", "response_code": 200, "downstream_remote_address": "10.0.0.1:5000"}
    surrogate = orjson.dumps(base).decode()[:-1] + ',"path":"\udc80"}'  # a lone surrogate: not UTF-8
    status_max = orjson.dumps({**base, "grpc_status": 2**31 - 1}).decode()
    status_over = orjson.dumps({**base, "grpc_status": 2**31}).decode()
    lines = [surrogate, status_max, status_over]
    records, errors = all_at_once(lines, "json", PRODUCTPAGE)
    assert (records, errors) == one_at_a_time(lines, "json", PRODUCTPAGE)
    assert [record.grpc_status for record in records] == [str(2**31 - 1)]
    assert [reason for reason, _ in errors] == ["bad_json", "bad_field_type"]
    assert compile_columns("json")([]) == []


def test_a_json_format_key_meshscope_cannot_read_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="key 'the \"method\"'"):
        compile_format('{"the \\"method\\"": "%REQ(:METHOD)%"}')


def test_an_identity_cache_emptied_for_room_mid_batch_is_looked_up_afresh() -> None:
    render = compile_renderer(PRESETS["istio"])
    first = render(entry(upstream_local_address="10.244.0.9:1"))
    others = [render(entry(downstream_remote_address=f"10.1.{i // 250}.{i % 250}:1")) for i in range(4096)]
    moved = render(entry(upstream_local_address="10.244.0.77:1"))  # first's identity key, another own address
    inbound = render(entry(upstream_cluster="inbound|9080||", downstream_remote_address="10.244.0.77:5"))
    batches = [[first], [first], [*others, moved, inbound]]
    in_batches, one_by_one = (
        make_parser("istio", PRODUCTPAGE, PeerTable()),
        make_parser("istio", PRODUCTPAGE, PeerTable()),
    )
    got = [record for batch in batches for record in in_batches.parse_lines(batch, [])]
    assert got == [one_by_one.parse(line) for batch in batches for line in batch]
    assert got[-1].source_workload == "productpage-v1"


def test_formats_whose_value_ends_are_not_fixed_read_as_they_always_did() -> None:
    # A counter followed by a digit: an empty value or a "-" swallowed into the digits is no match.
    assert compile_format("%RESPONSE_CODE%0 %DURATION%")("0 1") is None
    assert compile_format("%DURATION%0 %RESPONSE_CODE%")("-50 200") is None
    assert compile_format("%DURATION%0 %RESPONSE_CODE%")("-0 200").duration == ""
    # Two operators with nothing between them: a leading "-" of the first is part of its value.
    fmt = "%START_TIME% %REQ(USER-AGENT)%%RESPONSE_CODE% %DURATION%"
    fields = compile_format(fmt)("t -foo200 5")
    assert (fields.user_agent, fields.response_code) == ("-foo", "200")
    lines = ["t -foo200 5", "t -200 5", "t x200 -"]
    assert all_at_once(lines, fmt, PRODUCTPAGE) == one_at_a_time(lines, fmt, PRODUCTPAGE)


def test_a_format_without_some_counters_still_goes_by_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    one_by_one: list[int] = []
    original = LineParser._assemble_each

    def noting(self: LineParser, rows: object, lines: list[str], errors: list[tuple[str, str]]) -> list[Record]:
        one_by_one.append(len(lines))
        return original(self, rows, lines, errors)  # type: ignore[arg-type]

    monkeypatch.setattr(LineParser, "_assemble_each", noting)
    fmt = '[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %BYTES_SENT% %UPSTREAM_CLUSTER%'
    lines = [compile_renderer(fmt)(entry(response_code=code)) for code in ("200", "503", "-")]
    records, errors = all_at_once(lines, fmt, PRODUCTPAGE)
    assert (records, errors) == one_at_a_time(lines, fmt, PRODUCTPAGE) and not one_by_one
    assert [(r.response_code, r.duration_ms, r.bytes_received) for r in records] == [
        (200, 0, 0),
        (503, 0, 0),
        (0, 0, 0),
    ]


def test_column_extraction_covers_the_lines_in_runs_in_order_text_and_json() -> None:
    render = compile_renderer(PRESETS["istio"])
    fits = [render(entry(path=f"/{index}")) for index in range(3)]
    odd = render(entry(user_agent='curl "x"'))  # fits only the lenient regex: parsed alone
    lines = [fits[0], odd, "", fits[1], fits[2]]
    runs = compile_columns("istio")(lines)
    assert runs is not None
    assert [(start, end, columns is not None) for start, end, columns in runs] == [
        (0, 1, True), (1, 3, False), (3, 5, True),
    ]  # fmt: skip
    path = FIELD_NAMES.index("path")
    assert [list(columns[path]) for _, _, columns in runs if columns is not None] == [["/0"], ["/1", "/2"]]
    render_json = compile_renderer(PRESETS["json"])
    objects = [render_json(entry(path=f"/{index}")) for index in range(3)]
    lines = [objects[0], '{"path": true}', fits[0], objects[1], objects[2]]
    runs = compile_columns("json")(lines)
    assert [(start, end, columns is not None) for start, end, columns in runs] == [
        (0, 1, True), (1, 3, False), (3, 5, True),
    ]  # fmt: skip
    assert [list(columns[path]) for _, _, columns in runs if columns is not None] == [["/0"], ["/1", "/2"]]
    assert compile_columns("%REQ(:PATH)% %REQ(:PATH)%") is None  # a field captured twice
