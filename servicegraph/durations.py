"""Durations as people write them: ``30s``, ``5m``, ``1h``, ``1m30s``, ``2d``, or plain seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float, key: str = "duration") -> float:
    """Seconds; ValueError naming ``key`` for anything else, zero or negative."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        try:
            seconds = float(value)
        except ValueError:
            position, seconds = 0, 0.0
            for match in _PART.finditer(value):
                if match.start() != position:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                position = match.end()
            if position != len(value) or not value:
                raise ValueError(f"{key}: {text!r} is not a duration (like 30s, 5m, 1h, 1m30s)") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{key}: must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact form: 60 -> "1m", 90 -> "90s", 3600 -> "1h"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def duration_errors(value: str, key: str) -> list[str]:
    """A config check: [] for a good duration, else the one message naming ``key``."""
    try:
        parse_duration(value, key)
    except ValueError as error:
        return [str(error)]
    return []
