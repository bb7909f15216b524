"""Times as Envoy prints %START_TIME%: RFC 3339 in UTC with milliseconds, ``2024-05-01T12:00:00.123Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from telemetry.envoy.errors import ParseError

_NANOS_PER_MS = 1_000_000


@lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    # Entries of one batch mostly share their second: each second is formatted once.
    # datetime, not time.gmtime: it refuses years past 9999, which RFC 3339 cannot write.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def start_time_text(seconds: int, nanos: int, reason: str) -> str:
    """The text of a time given as whole seconds and nanoseconds; ParseError(reason) when unrepresentable."""
    try:
        second = _second_text(seconds)
    except (OverflowError, OSError, ValueError):
        raise ParseError(reason, f"{seconds}s is not a representable time") from None
    return f"{second}.{nanos // _NANOS_PER_MS:03d}Z"
