"""A bounded sample of the input meshscope could not use, one JSON object per line, for people to read.

Receivers count every bad line in ``meshscope_parse_errors_total``; the dead-letter file keeps the
first ``max_lines`` of them verbatim so an operator can see *what* was wrong. Past the bound writes are
silently ignored (the counters still count), so a flood of garbage cannot fill the disk.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime

import orjson

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 4096


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DeadLetter:
    def __init__(self, path: str, max_lines: int) -> None:
        self.path = path
        self.max_lines = max(0, max_lines)
        self._written = 0
        self._lock = threading.Lock()
        self._broken = False

    @property
    def written(self) -> int:
        return self._written

    def write(self, receiver: str, reason: str, line: str | bytes) -> None:
        if not self.path or self._broken or self._written >= self.max_lines:
            return
        text = line.decode("utf-8", "backslashreplace") if isinstance(line, bytes) else line
        record = {"time": _now(), "receiver": receiver, "reason": reason, "line": text[:MAX_LINE_CHARS]}
        try:
            entry = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            # A str with lone surrogates (surrogateescape-decoded input) is not valid UTF-8 for orjson.
            record["line"] = text.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_LINE_CHARS]
            entry = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._written >= self.max_lines or self._broken:
                return
            # Opened per write: bad lines are few (at most max_lines) and nothing stays open to close.
            try:
                directory = os.path.dirname(self.path)
                if directory:
                    os.makedirs(directory, exist_ok=True)
                with open(self.path, "ab") as handle:
                    handle.write(entry)
            except OSError as exc:
                self._broken = True
                log.warning("dead-letter file %s cannot be written (%s); no more bad lines are sampled", self.path, exc)
                return
            self._written += 1
