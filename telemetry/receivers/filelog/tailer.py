"""Reading one log file: chunks in, Records out, and the offset up to which everything is delivered.

Two offsets are kept. ``read_offset`` is where the next read starts. ``committed`` is what a checkpoint
may store: every line before it has been handed to the pipeline (or was unusable and counted), and no
partial line (a trailing line without its newline, the ``P`` pieces of a wrapped line) starts before it.
A restart from ``committed`` therefore neither loses a line nor delivers one twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import NamedTuple

from telemetry.deadletter import DeadLetter
from telemetry.envoy.parser import LineParser
from telemetry.model import Record
from telemetry.receivers.filelog.checkpoint import FINGERPRINT_BYTES, FileMark, fingerprint
from telemetry.receivers.filelog.lines import decode_lines, none_over, too_long, within_limit
from telemetry.receivers.filelog.unwrap import LineUnwrapper, detect
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

RECEIVER = "filelog"
SAMPLE_BYTES = 4096  # of an overlong line, what the dead-letter file gets


Submit = Callable[[list[Record]], bool]


class BadLines:
    """Unusable input: counted by reason (reported once per chunk) and sampled into the dead-letter file."""

    def __init__(self, dead_letter: DeadLetter | None) -> None:
        self._dead_letter = dead_letter
        self.counts: dict[str, int] = {}

    def add(self, reason: str, line: str | bytes) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self._dead_letter is not None:
            self._dead_letter.write(RECEIVER, reason, line)

    def count(self, reason: str, number: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + number

    def report(self, stats: SelfStats) -> None:
        for reason, number in self.counts.items():
            stats.parse_error(RECEIVER, reason, number)
        self.counts.clear()


class ReadResult(NamedTuple):
    bytes_read: int
    more: bool  # stopped at the chunk limit with data left
    refused: bool  # the pipeline refused a batch; reading rewound to the committed offset


class TailedFile:
    def __init__(
        self,
        path: str,
        fd: int,
        device: int,
        inode: int,
        offset: int,
        parser: LineParser,
        bad: BadLines,
        max_line_bytes: int,
        chunk_bytes: int,
    ) -> None:
        self.path = path
        self.fd = fd
        self.device = device
        self.inode = inode
        self.read_offset = offset
        self.committed = offset
        self.gone = False  # no longer at a watched path (rotated away or deleted): read to its end, then close
        self._parser = parser
        self._bad = bad
        self._max_line = max_line_bytes
        self._chunk = max(1, chunk_bytes)
        self._carry = b""  # the trailing line without its newline yet
        self._skipping = False  # inside an overlong line: discard up to its newline
        self._unwrapper = LineUnwrapper(max_chars=max_line_bytes)
        self._prefix = os.pread(fd, FINGERPRINT_BYTES, 0)
        self._fingerprint = (b"", fingerprint(b""))  # (prefix it is of, fingerprint): marks are taken often
        self._size_seen = -1

    @property
    def key(self) -> tuple[int, int]:
        return self.device, self.inode

    @property
    def prefix_size(self) -> int:
        """How many first bytes the fingerprint covers (it grows until FINGERPRINT_BYTES)."""
        return len(self._prefix)

    def mark(self) -> FileMark:
        if self._fingerprint[0] is not self._prefix:
            self._fingerprint = (self._prefix, fingerprint(self._prefix))
        return FileMark(
            path=self.path,
            device=self.device,
            inode=self.inode,
            fingerprint=self._fingerprint[1],
            fingerprint_size=len(self._prefix),
            offset=self.committed,
            gone=self.gone,
        )

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass

    def restart_if_replaced(self) -> bool:
        """Copytruncate and in-place rewrites: when the file shrank below what was read, or its first bytes
        changed, read it again from the start. True when that happened."""
        size = os.fstat(self.fd).st_size
        if size == self._size_seen:
            return False
        self._size_seen = size
        replaced = size < self.read_offset
        if not replaced and self._prefix:
            replaced = os.pread(self.fd, len(self._prefix), 0) != self._prefix
        if replaced:
            log.info("%s was truncated or replaced; reading it again from the start", self.path)
            self._rewind(0)
            self._prefix = b""
        if len(self._prefix) < FINGERPRINT_BYTES:
            self._prefix = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        return replaced

    def read(self, submit: Submit, max_chunks: int) -> ReadResult:
        """Read what is there, up to ``max_chunks`` chunks, handing one batch per chunk to ``submit``."""
        total = 0
        for _ in range(max_chunks):
            count = self._read_chunk(submit)
            if count < 0:
                return ReadResult(total, False, True)
            if count == 0:
                return ReadResult(total, False, False)
            total += count
        return ReadResult(total, True, False)

    def finish(self, submit: Submit) -> bool:
        """The file will not grow again: its last line counts even without a newline. False if refused."""
        lines: list[str | None] = []
        if self._carry and not self._skipping:
            lines, _ = decode_lines(self._carry, self._bad.add)
        inner, _ = self._unwrap(lines)
        records = self._parse_many(inner + self._unwrapper.flush())
        if records and not submit(records):
            return False
        self._carry = b""
        self.committed = self.read_offset
        return True

    def _rewind(self, offset: int) -> None:
        self.read_offset = self.committed = offset
        self._carry = b""
        self._skipping = False
        self._unwrapper.reset()

    def _read_chunk(self, submit: Submit) -> int:
        """Bytes read (0 at the end of the file), or -1 when the pipeline refused the chunk's records."""
        data = os.pread(self.fd, self._chunk, self.read_offset)
        if not data:
            return 0
        size = len(data)
        start = self.read_offset  # file offset of data[0]
        self.read_offset += size
        commit_to: int | None = None
        if self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return size
            self._skipping = False
            data = data[newline + 1 :]
            start += newline + 1
            if self._unwrapper.idle:
                commit_to = start
        elif self._carry:
            start -= len(self._carry)
            data = self._carry + data
            self._carry = b""

        last = data.rfind(b"\n")
        tail = data[last + 1 :]
        if len(tail) > self._max_line:
            # Never held whole: count it now, drop the rest of it as it arrives.
            self._bad.add("too_long", tail[:SAMPLE_BYTES])
            self._skipping = True
        else:
            self._carry = tail

        records: list[Record] = []
        if last >= 0:
            body = data[:last]
            block = self._parse_block(body)
            if block is not None:
                records = block
                commit_to = start + last + 1  # plain lines: none is held partially
            else:
                lines, clean = decode_lines(body, self._bad.add)
                records, handled = self._parse(lines, clean)
                if handled:
                    # Commit up to the end of the last line after which no partial line was held.
                    position = len(body)
                    for _ in range(len(lines) - handled):
                        position = body.rfind(b"\n", 0, position)
                    commit_to = start + position + 1
        if records and not submit(records):
            self._rewind(self.committed)
            return -1
        if commit_to is not None and commit_to > self.committed:
            self.committed = commit_to
        return size

    def _parse_block(self, body: bytes) -> list[Record] | None:
        """The Records of a chunk's lines read as one block (LineParser.parse_block), or None: then split."""
        if self._unwrapper.kind != "plain" or not none_over(body, self._max_line):
            return None
        return self._parser.parse_block(body)

    def _parse(self, lines: list[str | None], clean: bool) -> tuple[list[Record], int]:
        """Records of a chunk's lines, and how many leading lines are done with (no partial line held)."""
        unwrapper = self._unwrapper
        if unwrapper.kind is None:
            first = next((line for line in lines if line), None)
            if first is not None:
                unwrapper.kind = detect(first)
        if unwrapper.kind == "plain" and clean:
            # The hot path: one access-log line per line, nothing to unwrap.
            return self._parse_many(within_limit(lines, self._max_line, self._bad.add, SAMPLE_BYTES)), len(lines)  # type: ignore[arg-type]
        inner, handled = self._unwrap(lines)
        return self._parse_many(inner), handled

    def _unwrap(self, lines: list[str | None]) -> tuple[list[str], int]:
        """The inner lines completed by these lines, and how many leading lines leave no partial held."""
        unwrapper = self._unwrapper
        feed = unwrapper.feed
        overflows = unwrapper.overflows
        limit = self._max_line
        inner: list[str] = []
        handled = 0
        for index, line in enumerate(lines):
            if line is None:
                pass  # not UTF-8, already counted
            elif too_long(line, limit):
                self._bad.add("too_long", line[:SAMPLE_BYTES])
            else:
                out = feed(line)
                if out is None:
                    continue
                inner.append(out)
            if unwrapper.idle:
                handled = index + 1
        if unwrapper.idle:
            handled = len(lines)
        if unwrapper.overflows != overflows:
            self._bad.count("too_long", unwrapper.overflows - overflows)
        return inner, handled

    def _parse_many(self, lines: list[str]) -> list[Record]:
        # LineParser.parse_lines reports every failure, a parser bug included, per line.
        errors: list[tuple[str, str]] = []
        records = self._parser.parse_lines(lines, errors)
        for reason, line in errors:
            self._bad.add(reason, line)
        return records
