"""The dead-letter file: one JSON object per bad line, bounded, thread-safe, off when no path is set."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from telemetry.deadletter import MAX_LINE_CHARS, DeadLetter


def entries(path: Path) -> list[dict[str, str]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_each_write_appends_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dead.jsonl"
    dead = DeadLetter(str(path), max_lines=10)
    dead.write("filelog", "format_mismatch", "not a log line")
    dead.write("als", "bad_entry", "second")
    first, second = entries(path)
    assert set(first) == {"time", "receiver", "reason", "line"}
    assert (first["receiver"], first["reason"], first["line"]) == ("filelog", "format_mismatch", "not a log line")
    assert first["time"].endswith("Z") and first["time"][:2] == "20"
    assert second["line"] == "second"


def test_bytes_are_shown_with_backslash_escapes(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    DeadLetter(str(path), max_lines=10).write("filelog", "not_utf8", b"caf\xe9 \xff ok \xc3\xa9")
    assert entries(path)[0]["line"] == "caf\\xe9 \\xff ok \u00e9"


def test_long_lines_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    DeadLetter(str(path), max_lines=10).write("filelog", "too_long", "z" * 10_000)
    assert entries(path)[0]["line"] == "z" * MAX_LINE_CHARS


def test_lone_surrogates_do_not_break_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    DeadLetter(str(path), max_lines=10).write("filelog", "not_utf8", b"bad \xff".decode("utf-8", "surrogateescape"))
    assert entries(path)[0]["line"] == "bad \\udcff"


def test_at_most_max_lines_are_written_then_it_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dead = DeadLetter(str(path), max_lines=3)
    for index in range(10):
        dead.write("filelog", "format_mismatch", f"line {index}")
    assert [entry["line"] for entry in entries(path)] == ["line 0", "line 1", "line 2"]
    assert dead.written == 3


def test_concurrent_writers_respect_the_bound_and_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    dead = DeadLetter(str(path), max_lines=250)

    def writer(name: str) -> None:
        for index in range(100):
            dead.write(name, "format_mismatch", f"{name}-{index}-" + "w" * 500)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = entries(path)
    assert len(written) == 250
    assert all(entry["line"].startswith(entry["receiver"] + "-") for entry in written)


def test_an_empty_path_writes_nothing(tmp_path: Path) -> None:
    dead = DeadLetter("", max_lines=10)
    dead.write("filelog", "format_mismatch", "ignored")
    assert dead.written == 0


def test_an_unwritable_path_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    dead = DeadLetter(str(blocker / "dead.jsonl"), max_lines=10)
    dead.write("filelog", "format_mismatch", "x")
    dead.write("filelog", "format_mismatch", "y")
    assert dead.written == 0
