"""How a chunk's bytes become lines: the length check that lets a chunk be read without splitting it."""

from __future__ import annotations

import random

import pytest

from telemetry.receivers.filelog.lines import none_over


def longest_line(body: bytes) -> int:
    return max(map(len, body.split(b"\n")))


@pytest.mark.parametrize("limit", [1, 7, 64, 1000, 65_536])
def test_none_over_is_never_wrong_about_a_body_with_a_long_line(limit: int) -> None:
    rng = random.Random(limit)
    undecided = 0
    for _ in range(300):
        body = b"\n".join(b"x" * rng.choice([0, 1, limit // 3, limit // 2, limit, limit + 1, 3 * limit])
                          for _ in range(rng.randint(1, 40)))  # fmt: skip
        if none_over(body, limit):
            assert longest_line(body) <= limit, (limit, [len(line) for line in body.split(b"\n")])
        elif longest_line(body) <= limit:
            undecided += 1  # allowed only when some line is longer than half the limit
            assert longest_line(body) > limit // 2 - 1
    assert undecided < 300


def test_none_over_decides_bodies_of_lines_well_under_the_limit() -> None:
    body = b"\n".join([b"y" * 900] * 2000)  # 1.8 MB of 900-byte lines
    assert none_over(body, 65_536)
    assert not none_over(body + b"\n" + b"z" * 70_000, 65_536)
    assert none_over(b"", 10) and none_over(b"short", 10)
