"""Container runtimes wrap each line a proxy writes; this takes the wrapping off, one file at a time.

Two wrappings are known, recognised from the first line fed:

- CRI (containerd, CRI-O; the kubelet's ``/var/log/pods`` files): ``<time> <stream> <tag> <content>``,
  where tag ``P`` marks a partial line continued by the next entry of the same stream and ``F`` ends it.
- Docker's json-file driver: ``{"log":"<content>\\n","stream":"stdout","time":"..."}``, where an entry
  whose ``log`` lacks the trailing newline is continued by the next entry of the same stream.

Anything else is passed through unchanged. So is a line that does not fit the file's wrapping: the
access-log parser then judges it (and counts it with its own reason) instead of it vanishing here.
"""

from __future__ import annotations

from typing import Literal

import orjson

Kind = Literal["cri", "docker", "plain"]

_STREAMS = ("stdout", "stderr")


def _split_cri(line: str) -> tuple[str, str, str] | None:
    """``time stream tag content`` -> (stream, tag, content), or None when the line is not CRI."""
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS or not parts[0][:1].isdigit():
        return None
    # Tags are colon separated; only the first ("P" or "F") matters.
    tag = parts[2].partition(":")[0]
    if tag not in ("P", "F"):
        return None
    return parts[1], tag, parts[3] if len(parts) == 4 else ""


def _split_docker(line: str) -> tuple[str, str] | None:
    """A json-file entry -> (stream, log), or None when the line is not one."""
    if not line.startswith("{"):
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict):
        return None
    text = entry.get("log")
    if not isinstance(text, str):
        return None
    stream = entry.get("stream")
    # Partial lines are held per stream: only the two real streams, so a hostile file cannot add keys.
    return (stream if stream in _STREAMS else "stdout"), text


def detect(line: str) -> Kind:
    if _split_cri(line) is not None:
        return "cri"
    if _split_docker(line) is not None:
        return "docker"
    return "plain"


class LineUnwrapper:
    """Feed lines of one file in order (without their newline); get back each complete inner line.

    ``feed`` returns the inner line once it is complete, or None while it is still partial. Partials are
    joined per stream, and a joined line longer than ``max_chars`` is dropped (counted in ``overflows``)
    rather than held in memory whole. ``kind`` is None until the first non-empty line has been fed.
    """

    def __init__(self, max_chars: int = 1 << 20, kind: Kind | None = None) -> None:
        self.max_chars = max_chars
        self.kind: Kind | None = kind
        self.overflows = 0
        self._pending: dict[str, list[str]] = {}
        self._pending_chars: dict[str, int] = {}
        self._discarding: set[str] = set()

    @property
    def idle(self) -> bool:
        """True when no partial line is held: everything fed so far has come out (or been dropped)."""
        return not self._pending and not self._discarding

    def feed(self, line: str) -> str | None:
        kind = self.kind
        if kind is None:
            if not line:
                return line  # an empty line tells nothing about the wrapping
            kind = self.kind = detect(line)
        if kind == "plain":
            return line
        if kind == "cri":
            cri = _split_cri(line)
            if cri is None:
                return line
            stream, tag, content = cri
            return self._join(stream, content, tag == "F")
        docker = _split_docker(line)
        if docker is None:
            return line
        stream, text = docker
        if text.endswith("\n"):
            return self._join(stream, text[:-1], True)
        return self._join(stream, text, False)

    def flush(self) -> list[str]:
        """The partial lines still held (the file ended without finishing them); clears them."""
        held = ["".join(parts) for parts in self._pending.values()]
        self.reset()
        return held

    def reset(self) -> None:
        """Forget partial lines (reading restarts elsewhere in the file); the detected kind stays."""
        self._pending.clear()
        self._pending_chars.clear()
        self._discarding.clear()

    def _join(self, stream: str, content: str, complete: bool) -> str | None:
        if stream in self._discarding:
            # The rest of an overlong line goes nowhere, up to its last piece.
            if complete:
                self._discarding.discard(stream)
            return None
        parts = self._pending.get(stream)
        if parts is None:
            if complete:
                return content
            parts = self._pending[stream] = []
            self._pending_chars[stream] = 0
        parts.append(content)
        size = self._pending_chars[stream] + len(content)
        if size > self.max_chars:
            del self._pending[stream], self._pending_chars[stream]
            self.overflows += 1
            if not complete:
                self._discarding.add(stream)
            return None
        if complete:
            del self._pending_chars[stream]
            return "".join(self._pending.pop(stream))
        self._pending_chars[stream] = size
        return None
