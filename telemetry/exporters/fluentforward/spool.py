"""A bounded on-disk FIFO of chunks: where events wait while Fluentd cannot take them.

Layout: a directory of append-only segment files ``segment-<16 digits>.spool`` (numbered in order) and
a ``cursor`` file. Each chunk is one frame::

    magic "MSF1" | payload length u32 | events u32 | crc32(payload) u32 | crc32(first 16 bytes) u32 | payload

with the payload the msgpack array ``[tag, chunk id, entries (bin), attempted (bool)]``. A frame is
written with one ``writev``; a process killed mid-write (or a machine losing power) leaves at worst a
torn last frame, which the checksums detect: it is skipped and its events counted as dropped
(``spool_torn``), never crashed on. A frame whose payload checksum fails later (bit rot) is skipped and
counted as ``spool_corrupt``. After a broken frame header the scan resynchronises on the next intact
header (the magic and a header checksum that holds; payloads may contain the magic too), so only that
frame is lost. Appending after ``close`` raises OSError; ``discard_head`` gives up a segment that cannot
be read.

The cursor (segment number + offset of the oldest unacknowledged frame) is rewritten (write to a
temporary file, rename) after every acknowledged chunk, so a restart resends at most the chunk whose
acknowledgement raced the crash (at-least-once). Segments entirely before the cursor are deleted.

fsync policy: ``sync()`` fsyncs every segment written since the last sync (and the directory when
segments were created); the sink calls it from ``flush``, so before every file-tailing checkpoint, and
at shutdown; segments found at start are synced by the first sync too (a killed predecessor may not have).
Between syncs frames are in the page cache: they survive the process being killed
(kill -9), not the machine losing power; a checkpoint is only saved after the sync.

Bound: the segment files' total size never exceeds ``max_bytes``. To make room the OLDEST segment is
deleted whole and its unsent events counted as ``dropped{stage="exporter:fluentforward",reason="spool_full"}``;
a chunk larger than ``max_bytes`` on its own is dropped the same way. After a restart new chunks go to a
new segment (never after a possibly torn tail).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import msgpack

from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

MAGIC = b"MSF1"
_FRAME = struct.Struct(">4sIII")  # magic, payload length, events, payload crc; then the header crc
_HEADER_CRC = struct.Struct(">I")
HEADER_BYTES = _FRAME.size + _HEADER_CRC.size
_CURSOR = struct.Struct(">QQI")  # segment number, offset, crc32 of the first 16 bytes
_SEGMENT_NAME = re.compile(r"segment-(\d{16})\.spool$")
CURSOR_FILE = "cursor"
LOCK_FILE = "lock"  # flock()ed while open; the kernel releases it when the process dies, even by kill -9


class Chunk(NamedTuple):
    """One PackedForward message's worth of events for one tag."""

    tag: str
    chunk_id: str  # base64 of 16 random bytes, the Forward protocol's "chunk" option (stable across resends)
    entries: bytes | bytearray  # concatenated msgpack [time, record] entries
    events: int
    attempted: bool = False  # written to Fluentd before without an acknowledgement: a resend may duplicate


def bin_header(size: int) -> bytes:
    """The msgpack bin header of ``size`` bytes."""
    if size < 0x100:
        return struct.pack(">BB", 0xC4, size)
    if size < 0x10000:
        return struct.pack(">BH", 0xC5, size)
    return struct.pack(">BI", 0xC6, size)


def frame(chunk: Chunk) -> tuple[bytes, list[bytes]]:
    """The frame's header and its payload in pieces: the bytes of ``msgpack.packb([tag, chunk id, entries,
    attempted])`` without copying the entries (a chunk's megabytes) into one buffer first."""
    pieces = [
        b"\x94" + msgpack.packb(chunk.tag) + msgpack.packb(chunk.chunk_id) + bin_header(len(chunk.entries)),
        chunk.entries,
        msgpack.packb(chunk.attempted),
    ]
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    header = _FRAME.pack(MAGIC, sum(map(len, pieces)), chunk.events, crc)
    return header + _HEADER_CRC.pack(zlib.crc32(header)), pieces


def read_header(data: bytes) -> tuple[int, int, int] | None:
    """(payload length, events, payload crc) of a frame header; None when it is not an intact header."""
    if len(data) < HEADER_BYTES:
        return None
    magic, length, events, crc = _FRAME.unpack_from(data)
    (header_crc,) = _HEADER_CRC.unpack_from(data, _FRAME.size)
    if magic != MAGIC or zlib.crc32(data[: _FRAME.size]) != header_crc:
        return None
    return length, events, crc


def _count_events(payload: bytes) -> int | None:
    """The events of a frame whose header is lost, when its payload still decodes."""
    try:
        _, _, entries, _ = msgpack.unpackb(payload, raw=False)
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(entries), 1))
        unpacker.feed(entries)
        return sum(1 for _ in unpacker)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None


@dataclass
class _Frame:
    offset: int
    length: int  # header + payload
    events: int


@dataclass
class _Segment:
    number: int
    path: str
    size: int = 0
    frames: deque[_Frame] = field(default_factory=deque)  # not yet acknowledged, oldest first

    @property
    def events(self) -> int:
        return sum(item.events for item in self.frames)


class Spool:
    """Thread-safe: the sender appends and replays, ``flush`` (another thread) calls ``sync``."""

    def __init__(
        self, directory: str, max_bytes: int, segment_bytes: int, stats: SelfStats, stage: str, lock_wait: float = 0.0
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._stats = stats
        self._stage = stage
        self._lock = threading.RLock()
        self._segments: deque[_Segment] = deque()
        self._writer: int | None = None  # fd of the last segment, opened for appending
        self._reader: tuple[int, int] | None = None  # (segment number, fd) of the segment being replayed
        self._dirty = False  # the open segment was written since the last fsync
        self._unsynced: list[str] = []  # closed segments written since the last sync
        self._new_files = False  # segments created since the last sync (the directory needs an fsync)
        self._last_number = -1  # segment numbers only grow, so a stale cursor never covers a new segment
        self._peeked: tuple[int, int] | None = None  # (segment, offset) of the chunk peek returned
        self.pending_events = 0
        self.spooled_events = 0  # ever appended (self-metric)
        self._closed = False
        os.makedirs(directory, exist_ok=True)
        # One process per spool: a second collector on the same directory would interleave frames.
        self._lock_fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._lock_fd)
                    raise OSError(errno.EBUSY, "another process is using this spool") from None
                time.sleep(0.05)
        try:
            self._recover()
        except BaseException:
            os.close(self._lock_fd)  # a later attempt must find the spool free, not "in use"
            raise

    # -- sizes ---------------------------------------------------------------------------------------

    def disk_bytes(self) -> int:
        with self._lock:
            return sum(segment.size for segment in self._segments)

    # -- recovery ------------------------------------------------------------------------------------

    def _recover(self) -> None:
        numbers = sorted(
            int(match.group(1)) for name in os.listdir(self.directory) if (match := _SEGMENT_NAME.match(name))
        )
        cursor = self._read_cursor()
        self._last_number = max([*numbers, cursor[0] if cursor is not None else -1])
        for number in numbers:
            path = self._path(number)
            if cursor is not None and number < cursor[0]:
                os.unlink(path)  # acknowledged entirely before the last run stopped
                continue
            start = cursor[1] if cursor is not None and number == cursor[0] else 0
            segment = _Segment(number, path, os.path.getsize(path))
            self._scan(segment, start)
            self._segments.append(segment)
            # Written by a process that may have died before its fsync (a helper killed): the next sync.
            self._unsynced.append(path)
            self.pending_events += segment.events
        if self.pending_events:
            log.info("fluentforward spool: %d events in %d segments to replay", self.pending_events, len(numbers))

    def _scan(self, segment: _Segment, start: int) -> None:
        with open(segment.path, "rb") as handle:
            data = handle.read()
        offset = start
        while offset < len(data):
            header = read_header(data[offset : offset + HEADER_BYTES])
            if header is None:
                offset = self._resync(segment, data, offset)
                continue
            length, events, _ = header
            end = offset + HEADER_BYTES + length
            if end > len(data):
                log.warning("fluentforward spool: %s ends inside a chunk of %d events", segment.path, events)
                self._stats.drop(self._stage, "spool_torn", events)
                break
            segment.frames.append(_Frame(offset, HEADER_BYTES + length, events))
            offset = end

    def _resync(self, segment: _Segment, data: bytes, offset: int) -> int:
        """A broken header at ``offset``: skip to the next intact one (its magic and header checksum); what
        lies between is counted, ``spool_corrupt`` (or ``spool_torn`` when it runs to the end: a crash)."""
        following = data.find(MAGIC, offset + 1)
        while following >= 0 and read_header(data[following : following + HEADER_BYTES]) is None:
            following = data.find(MAGIC, following + 1)
        end = following if following >= 0 else len(data)
        reason = "spool_corrupt" if following >= 0 else "spool_torn"
        events = _count_events(data[offset + HEADER_BYTES : end])
        log.warning("fluentforward spool: %s: %d bytes at byte %d are not a chunk (%s, %s events); skipped",
                    segment.path, end - offset, offset, reason, events if events is not None else "unknown")  # fmt: skip
        self._stats.drop(self._stage, reason, events or 0)
        return end

    def _read_cursor(self) -> tuple[int, int] | None:
        try:
            with open(os.path.join(self.directory, CURSOR_FILE), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        if len(data) != _CURSOR.size or zlib.crc32(data[:16]) != _CURSOR.unpack(data)[2]:
            log.warning("fluentforward spool: the cursor file is unreadable; replaying every segment")
            return None
        number, offset, _ = _CURSOR.unpack(data)
        return number, offset

    def _write_cursor(self) -> None:
        if self._segments and self._segments[0].frames:
            head = self._segments[0]
            position = (head.number, head.frames[0].offset)
        elif self._segments:
            position = (self._segments[-1].number, self._segments[-1].size)
        else:
            position = (self._last_number + 1, 0)
        data = struct.pack(">QQ", *position)
        temp = os.path.join(self.directory, CURSOR_FILE + ".tmp")
        with open(temp, "wb") as handle:
            handle.write(data + struct.pack(">I", zlib.crc32(data)))
        os.replace(temp, os.path.join(self.directory, CURSOR_FILE))

    # -- appending -----------------------------------------------------------------------------------

    def _path(self, number: int) -> str:
        return os.path.join(self.directory, f"segment-{number:016d}.spool")

    def append(self, chunk: Chunk) -> bool:
        """Store one chunk at the end; False (and counted) when it alone is larger than the spool."""
        header, payload = frame(chunk)
        length = len(header) + sum(map(len, payload))
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "the spool is closed")
            if length > self.max_bytes:
                self._stats.drop(self._stage, "spool_full", chunk.events)
                return False
            last = self._segments[-1] if self._segments else None
            if self._writer is None or last is None or (last.size and last.size + length > self.segment_bytes):
                self._roll()
            while self.disk_bytes() + length > self.max_bytes and len(self._segments) > 1:
                self._drop_oldest()
            segment = self._segments[-1]
            writer = self._writer
            assert writer is not None  # _roll opened it
            try:
                written = os.writev(writer, [header, *payload])
                if written != length:
                    raise OSError(f"short write to {segment.path}: {written} of {length} bytes")
            except OSError:
                # A full disk: cut the partial frame off, so the frames after it stay readable.
                os.ftruncate(writer, segment.size)
                raise
            segment.frames.append(_Frame(segment.size, length, chunk.events))
            segment.size += length
            self._dirty = True
            self.pending_events += chunk.events
            self.spooled_events += chunk.events
            return True

    def _roll(self) -> None:
        if self._writer is not None:
            if self._dirty:
                self._unsynced.append(self._segments[-1].path)  # fsynced by the next sync(), not here
            os.close(self._writer)
            self._writer = None
        self._new_files = True
        self._last_number += 1
        segment = _Segment(self._last_number, self._path(self._last_number))
        self._writer = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(segment)
        self._dirty = False

    def _drop_oldest(self) -> None:
        segment = self._segments.popleft()
        lost = segment.events
        if lost:
            self._stats.drop(self._stage, "spool_full", lost)
            self.pending_events -= lost
        self._close_reader(segment.number)
        os.unlink(segment.path)
        self._write_cursor()

    # -- replaying -----------------------------------------------------------------------------------

    def peek(self) -> Chunk | None:
        """The oldest chunk not yet acknowledged (frames that fail their checksum are skipped and counted)."""
        with self._lock:
            while self._segments:
                head = self._segments[0]
                if not head.frames:
                    if len(self._segments) == 1:
                        return None
                    self._retire_head()
                    continue
                item = head.frames[0]
                chunk = self._read(head, item)
                if chunk is not None:
                    self._peeked = (head.number, item.offset)
                    return chunk
                head.frames.popleft()
                self.pending_events -= item.events
                self._write_cursor()
            return None

    def _read(self, segment: _Segment, item: _Frame) -> Chunk | None:
        fd = self._reader_fd(segment)
        data = os.pread(fd, item.length, item.offset)
        header = read_header(data)
        payload = data[HEADER_BYTES:]
        if header is None or len(payload) != header[0] or zlib.crc32(payload) != header[2]:
            log.warning("fluentforward spool: a chunk of %d events in %s fails its checksum", item.events, segment.path)
            self._stats.drop(self._stage, "spool_corrupt", item.events)
            return None
        try:
            tag, chunk_id, entries, attempted = msgpack.unpackb(payload, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            self._stats.drop(self._stage, "spool_corrupt", item.events)
            return None
        return Chunk(tag, chunk_id, entries, item.events, attempted)

    def _reader_fd(self, segment: _Segment) -> int:
        if self._reader is None or self._reader[0] != segment.number:
            self._close_reader()
            self._reader = (segment.number, os.open(segment.path, os.O_RDONLY))
        return self._reader[1]

    def _close_reader(self, number: int | None = None) -> None:
        if self._reader is not None and (number is None or self._reader[0] == number):
            os.close(self._reader[1])
            self._reader = None

    def commit(self) -> None:
        """The chunk ``peek`` returned was acknowledged: forget it (and its segment once empty)."""
        with self._lock:
            peeked, self._peeked = self._peeked, None
            if not self._segments or not self._segments[0].frames:
                return
            head = self._segments[0]
            if peeked != (head.number, head.frames[0].offset):
                return  # dropped (spool_full) while it was being sent
            item = head.frames.popleft()
            self.pending_events -= item.events
            if not self.pending_events:
                # Everything acknowledged: start afresh rather than keep a consumed segment growing.
                self._retire_all()
            elif not head.frames and len(self._segments) > 1:
                self._retire_head()
            self._write_cursor()

    def discard_head(self, reason: str) -> None:
        """Give up the oldest segment (it cannot be read): its events are counted as dropped for ``reason``."""
        with self._lock:
            if not self._segments:
                return
            segment = self._segments.popleft()
            lost = segment.events
            segment.frames.clear()
            if lost:
                self._stats.drop(self._stage, reason, lost)
                self.pending_events -= lost
            self._peeked = None
            if self._writer is not None and not self._segments:
                os.close(self._writer)
                self._writer = None
            self._close_reader(segment.number)
            try:
                os.unlink(segment.path)
                self._write_cursor()
            except OSError as error:
                log.warning("fluentforward spool: cannot remove %s: %s", segment.path, error)

    def _retire_head(self) -> None:
        segment = self._segments.popleft()
        self._close_reader(segment.number)
        os.unlink(segment.path)

    def _retire_all(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None
        while self._segments:
            self._retire_head()

    # -- durability ----------------------------------------------------------------------------------

    def sync(self) -> None:
        """fsync everything appended so far; the sender keeps appending meanwhile (outside the lock)."""
        with self._lock:
            paths, self._unsynced = self._unsynced, []
            writer = os.dup(self._writer) if self._writer is not None and self._dirty else None
            self._dirty = False
            new_files, self._new_files = self._new_files, False
        try:
            self._sync_files(paths, writer, new_files)
        except OSError:
            with self._lock:  # not synced: the next sync tries them again
                self._unsynced[:0] = paths
                self._dirty = self._dirty or writer is not None
                self._new_files = self._new_files or new_files
            raise
        finally:
            if writer is not None:
                os.close(writer)

    def _sync_files(self, paths: list[str], writer: int | None, new_files: bool) -> None:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # acknowledged or dropped since
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if writer is not None:
            os.fsync(writer)
        if new_files:
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def close(self) -> None:
        """Sync and release the directory; appends after this raise OSError (the sink counts them)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.sync()
        with self._lock:
            if self._writer is not None:
                os.close(self._writer)
                self._writer = None
            self._close_reader()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1
