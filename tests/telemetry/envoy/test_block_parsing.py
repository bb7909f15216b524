"""A block of JSON lines read whole (``LineParser.parse_block``) gives what its lines give, or declines."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from accesslogentries import entry

from telemetry.envoy.parser import LineParser, make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.envoy.presets import PRESETS
from telemetry.envoy.render import compile_renderer
from telemetry.model import Workload

ACCESSLOGS = Path(__file__).resolve().parents[2] / "testdata" / "accesslogs"
PRODUCTPAGE = Workload("productpage-v1", "default", "productpage", "v1")
render = compile_renderer(PRESETS["json"])


def json_line(**values: str) -> str:
    return render(entry(**values))


GOOD = [
    json_line(),
    json_line(response_flags="UF,URX", response_code="503"),
    json_line(method="", protocol="", path="", response_code="0", upstream_cluster="outbound|3306||db.default.svc.cluster.local"),
    json_line(downstream_remote_address="[2001:db8::7]:50212", duration="", bytes_sent=""),
]  # fmt: skip


def json_parser(fmt: str = "json", keep_original: bool = False) -> LineParser:
    return make_parser(fmt, PRODUCTPAGE, PeerTable(), keep_original)


def line_by_line(lines: list[str]) -> tuple[list, list]:  # type: ignore[type-arg]
    errors: list[tuple[str, str]] = []
    return json_parser().parse_lines(lines, errors), errors


def test_a_block_of_json_lines_gives_the_records_of_its_lines() -> None:
    golden = (ACCESSLOGS / "json.log").read_text().splitlines()
    broken = {line for _, line in line_by_line(golden)[1]}  # the golden log holds a line cut short
    lines = [line for line in golden if line not in broken] + GOOD * 40
    block = json_parser().parse_block("\n".join(lines).encode())
    assert block is not None and len(block) == len(lines)
    assert (block, []) == line_by_line(lines)


def test_a_block_with_windows_line_ends_gives_the_records_of_its_lines() -> None:
    lines = [line + "\r" for line in GOOD]
    block = json_parser().parse_block("\n".join(lines).encode())
    assert block is not None and (block, []) == line_by_line(lines)


@pytest.mark.parametrize(
    "odd",
    [
        "",  # an empty line
        "   ",  # blanks
        GOOD[0] + " " + GOOD[1],  # two entries on one line
        GOOD[0] + "," + GOOD[1],
        '{"authority": "a"',  # an entry cut short ...
        '"b"}',  # ... and what would end it on the next line
        "[" + GOOD[0] + "]",  # not an object
        "404",
        GOOD[0].replace('"response_code":200', '"response_code":-5'),  # a counter out of range
        GOOD[0].replace('"response_code":200', '"response_code":{}'),  # a value of the wrong kind
        GOOD[0].replace('"method":"GET"', '"method":"\\ud800"'),  # a lone surrogate
        '[2024-05-04T17:22:59.046Z] "GET / HTTP/1.1" 200',  # another format
    ],
)
def test_a_block_holding_a_line_that_is_not_one_entry_is_left_to_its_lines(odd: str) -> None:
    lines = [GOOD[0], odd, GOOD[1]]
    assert json_parser().parse_block("\n".join(lines).encode()) is None
    records, errors = line_by_line(lines)
    assert len(records) + len(errors) == 3 and errors


def test_an_entry_spread_over_lines_is_not_read_as_one() -> None:
    # Turned into arrays, the two halves make one valid value: the count of values gives it away.
    lines = [GOOD[0], '{"other":[[1', "2]]}", GOOD[1]]
    assert json_parser().parse_block("\n".join(lines).encode()) is None
    records, errors = line_by_line(lines)
    assert len(records) == 2 and [reason for reason, _ in errors] == ["bad_json", "format_mismatch"]


@pytest.mark.parametrize(
    "lines",
    [
        ["{}],[{}", '{"x":"', '"}'],  # a line that makes two entries, two lines that make one
        ["{}] , [{}", '{"x":"', '"}'],
        ["{}]\t,[{}", '{"other":[[1', "2]]}"],
    ],
)
def test_a_line_making_two_entries_cannot_make_up_for_two_lines_making_one(lines: list[str]) -> None:
    body = "\n".join([GOOD[0], *lines, GOOD[1]]).encode()
    assert json_parser().parse_block(body) is None
    records, errors = line_by_line([GOOD[0], *lines, GOOD[1]])
    assert len(records) == 2 and len(errors) == 3


def test_after_a_declined_block_the_next_ones_go_by_lines_for_a_while() -> None:
    # A file that mixes in other lines would otherwise pay for a decode it throws away, chunk after chunk.
    parser = json_parser()
    good = "\n".join(GOOD).encode()
    assert parser.parse_block(good) is not None
    assert parser.parse_block(good + b"\nnot an entry") is None
    tries = [parser.parse_block(good) is not None for _ in range(40)]
    assert tries[0] is False and tries[-1] is True
    assert tries.index(True) == 16 and all(tries[16:])


def test_invalid_utf8_in_a_value_meshscope_skips_is_left_to_the_lines() -> None:
    # msgspec does not look inside the values of keys it skips; the lines' decoding does.
    body = b"\n".join([GOOD[0].encode(), GOOD[1].encode()[:-1] + b',"extra":"\xff"}'])
    assert json_parser().parse_block(body) is None


def test_non_ascii_text_reads_the_same_as_a_block_and_as_lines() -> None:
    lines = [json_line(path="/caf\u00e9/\u4e2d"), json_line(user_agent="\U0001f600 agent")]
    block = json_parser().parse_block("\n".join(lines).encode())
    assert block is not None and (block, []) == line_by_line(lines)
    assert block[0].path == "/caf\u00e9/\u4e2d"


def test_a_line_with_blanks_before_its_entry_is_an_entry_either_way() -> None:
    lines = ["  " + GOOD[0], "\t" + GOOD[1]]
    block = json_parser().parse_block("\n".join(lines).encode())
    assert block is not None and (block, []) == line_by_line(lines)
    assert json_parser().parse(lines[0]) == block[0]


def test_text_formats_and_kept_lines_are_not_read_as_blocks() -> None:
    assert json_parser("istio").parse_block(b"[2024-05-04T17:22:59.046Z] x") is None
    assert json_parser(keep_original=True).parse_block(GOOD[0].encode()) is None
    # Detection goes by lines: a block is read whole while the format found last is JSON.
    auto = json_parser("auto")
    text = (ACCESSLOGS / "istio.log").read_text().splitlines()[0]
    assert auto.parse_lines([text], []) and auto.parse_block(GOOD[0].encode()) is None
    assert auto.parse_lines([GOOD[0]], []) and auto.parse_block(GOOD[1].encode()) is not None


def test_random_blocks_give_records_only_when_their_lines_give_the_same_and_no_errors() -> None:
    rng = random.Random(5)
    pieces = [*GOOD, "", " ", "{", "}", "[1", "2]", "{}", '{"a":[[1', "2]]}", "null", GOOD[0][:40], GOOD[1][40:],
              "{}],[{}", GOOD[0] + "] ,[" + GOOD[1], '{"x":"', '"}']  # fmt: skip
    read_whole = 0
    for _ in range(1000):
        lines = [rng.choice(GOOD) if rng.random() < 0.8 else rng.choice(pieces) for _ in range(rng.randint(1, 8))]
        block = json_parser().parse_block("\n".join(lines).encode())
        records, errors = line_by_line(lines)
        if block is not None:
            read_whole += 1
            assert (block, errors) == (records, [])
        else:
            assert errors, lines
    assert read_whole > 50
