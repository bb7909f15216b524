"""Taking the container runtime's wrapping off: CRI (P/F partials) and Docker json-file."""

from __future__ import annotations

import orjson
import pytest

from telemetry.receivers.filelog.unwrap import LineUnwrapper, detect

T = "2024-05-04T17:22:59.046918Z"


def docker(log: str, stream: str = "stdout") -> str:
    return orjson.dumps({"log": log, "stream": stream, "time": T}).decode()


def feed_all(unwrapper: LineUnwrapper, lines: list[str]) -> list[str]:
    return [inner for line in lines if (inner := unwrapper.feed(line)) is not None]


def test_detects_the_wrapping_from_the_first_line() -> None:
    assert detect(f"{T} stdout F hello") == "cri"
    assert detect(docker("hello\n")) == "docker"
    assert detect('[2024-05-04T17:22:59.046Z] "GET / HTTP/1.1" 200') == "plain"
    assert detect('{"start_time":"2024-05-04T17:22:59.046Z","method":"GET"}') == "plain"


def test_cri_full_lines_come_out_without_the_prefix() -> None:
    unwrapper = LineUnwrapper()
    assert feed_all(unwrapper, [f"{T} stdout F first line", f"{T} stderr F second"]) == ["first line", "second"]
    assert unwrapper.kind == "cri" and unwrapper.idle


def test_cri_partial_lines_are_joined_until_the_full_one() -> None:
    unwrapper = LineUnwrapper()
    assert unwrapper.feed(f"{T} stdout P abc ") is None
    assert not unwrapper.idle
    assert unwrapper.feed(f"{T} stdout P def") is None
    assert unwrapper.feed(f"{T} stdout F  ghi") == "abc def ghi"
    assert unwrapper.idle


def test_cri_partials_of_two_streams_do_not_mix() -> None:
    lines = [f"{T} stdout P out-1 ", f"{T} stderr P err-1 ", f"{T} stdout F out-2", f"{T} stderr F err-2"]
    assert feed_all(LineUnwrapper(), lines) == ["out-1 out-2", "err-1 err-2"]


def test_cri_empty_content_and_multi_tag_lines() -> None:
    assert feed_all(LineUnwrapper(), [f"{T} stdout F ", f"{T} stdout F", f"{T} stdout F:x tagged"]) == [
        "",
        "",
        "tagged",
    ]


def test_docker_entries_are_unwrapped_and_partials_joined() -> None:
    unwrapper = LineUnwrapper()
    lines = [docker("one\n"), docker("tw"), docker("o\n"), docker("three\n", "stderr")]
    assert feed_all(unwrapper, lines) == ["one", "two", "three"]
    assert unwrapper.kind == "docker"


def test_plain_lines_pass_through_unchanged() -> None:
    unwrapper = LineUnwrapper()
    assert feed_all(unwrapper, ["plain text", f"{T} stdout F not unwrapped in a plain file"]) == [
        "plain text",
        f"{T} stdout F not unwrapped in a plain file",
    ]


def test_an_empty_first_line_does_not_decide_the_wrapping() -> None:
    unwrapper = LineUnwrapper()
    assert unwrapper.feed("") == ""
    assert unwrapper.kind is None
    assert unwrapper.feed(f"{T} stdout F x") == "x"


@pytest.mark.parametrize("line", ["garbage in a cri file", "2024 stdout X bad tag", "{not json"])
def test_a_line_that_does_not_fit_the_files_wrapping_passes_through_for_the_parser_to_judge(line: str) -> None:
    unwrapper = LineUnwrapper(kind="cri")
    assert unwrapper.feed(line) == line


def test_a_joined_line_over_the_limit_is_dropped_and_counted() -> None:
    unwrapper = LineUnwrapper(max_chars=10)
    lines = [
        f"{T} stdout P 123456",
        f"{T} stdout P 789012",
        f"{T} stdout P more",
        f"{T} stdout F end",
        f"{T} stdout F ok",
    ]
    assert feed_all(unwrapper, lines) == ["ok"]
    assert unwrapper.overflows == 1 and unwrapper.idle


def test_flush_returns_held_partials_and_reset_forgets_them() -> None:
    unwrapper = LineUnwrapper()
    unwrapper.feed(f"{T} stdout P held")
    assert unwrapper.flush() == ["held"]
    assert unwrapper.idle
    unwrapper.feed(f"{T} stdout P dropped")
    unwrapper.reset()
    assert unwrapper.feed(f"{T} stdout F fresh") == "fresh"
    assert unwrapper.kind == "cri"
