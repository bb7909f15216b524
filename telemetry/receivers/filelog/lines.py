"""Where bytes read from a log become lines, for the tailer and for offline ingest alike.

A chunk of complete lines is decoded and split once; line by line work happens only when the chunk
is not all UTF-8 or holds a line that may be over the length limit.
"""

from __future__ import annotations

from collections.abc import Callable

OnBad = Callable[[str, str | bytes], None]  # (reason, the line or its start) for each unusable line


def decode_lines(body: bytes, on_bad: OnBad) -> tuple[list[str | None], bool]:
    """The lines of ``body`` (newline-separated, without the last newline), None where a line is not
    UTF-8 (reported to ``on_bad``); and whether every line was UTF-8."""
    try:
        return body.decode("utf-8").split("\n"), True  # type: ignore[return-value]
    except UnicodeDecodeError:
        pass
    lines: list[str | None] = []
    for raw in body.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            on_bad("not_utf8", raw)
            lines.append(None)
    return lines, False


def none_over(body: bytes, limit: int) -> bool:
    """True only when no line of ``body`` is over ``limit`` bytes, found without splitting it: a line over
    ``limit`` holds a whole aligned window of ``limit // 2`` bytes, so a newline in every window rules it
    out. False means undecided: a line may be over half the limit, or the windows are too many to look at."""
    window = max(limit // 2, 1)
    if len(body) <= limit:
        return True
    if len(body) // window > 1024:  # a limit this small against so big a body: splitting is cheaper
        return False
    find = body.find
    return all(find(b"\n", start, start + window) >= 0 for start in range(0, len(body) - window + 1, window))


def too_long(line: str, limit: int) -> bool:
    """Whether ``line`` is over ``limit`` bytes in UTF-8 (encoded only when its length leaves it open)."""
    return len(line) > limit // 4 and (len(line) > limit or len(line.encode("utf-8")) > limit)


def within_limit(lines: list[str], limit: int, on_bad: OnBad, sample: int) -> list[str]:
    """``lines`` without those over ``limit`` bytes, each reported (its first ``sample`` characters)."""
    if not lines or max(map(len, lines)) <= limit // 4:  # at most 4 bytes a character: none can be over
        return lines
    kept = []
    for line in lines:
        if too_long(line, limit):
            on_bad("too_long", line[:sample])
        else:
            kept.append(line)
    return kept
