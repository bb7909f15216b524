"""The file tailing receiver: watch globs, follow files through rotation, parse, hand Records on.

One background thread polls: it expands the globs, finishes files that left their path (rotation by
rename: the old inode is read to its end before the new file at the path), restarts files that were
truncated (copytruncate), opens files that appeared, and reads what is new. Files are known by device +
inode, so a file renamed to another watched name is not read twice.

``start_at`` applies to the files found by the first scan that the checkpoint does not know; a file
that appears later (including the new file of a rotation) is read from its start, since everything in
it was written after the receiver was already watching.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from fnmatch import fnmatch

from telemetry.deadletter import DeadLetter
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record, Workload
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.checkpoint import CheckpointFile, FileMark, find_mark
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.identity import reporter_identity
from telemetry.receivers.filelog.tailer import RECEIVER, BadLines, Parser, ReadResult, TailedFile
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

ParserFactory = Callable[[str, Workload, PeerTable], Parser]

# Per file per poll, so one file with a large backlog does not starve the others.
MAX_CHUNKS_PER_POLL = 16


def _default_parser_factory() -> ParserFactory:
    from telemetry.envoy.parser import make_parser

    return make_parser


class FileLogReceiver:
    def __init__(
        self,
        config: FileLogConfig,
        pipeline: Pipeline,
        stats: SelfStats,
        peers: PeerTable,
        dead_letter: DeadLetter | None = None,
        *,
        parser_factory: ParserFactory | None = None,
    ) -> None:
        self.config = config
        self._pipeline = pipeline
        self._stats = stats
        self._peers = peers
        self._make_parser = parser_factory or _default_parser_factory()
        # A format string that does not compile fails here, at startup, not on the first file.
        self._make_parser(config.format, Workload(), peers)
        self._bad = BadLines(dead_letter)
        self._checkpoint = CheckpointFile(config.checkpoint_file) if config.checkpoint_file else None
        self._saved_marks: list[FileMark] | None = None  # loaded on the first scan, then forgotten
        self._files: dict[tuple[int, int], TailedFile] = {}
        self._first_scan = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._shut_down = False

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._shut_down:
                return
            self._thread = threading.Thread(target=self._run, name="meshscope-filelog", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        """Stop polling (the batch being read is still handed on), save the checkpoint, close files. Idempotent."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join()
        self.save_checkpoint()
        for tail in self._files.values():
            tail.close()
        self._files.clear()

    def _run(self) -> None:
        interval = self.config.checkpoint_interval
        next_save = time.monotonic() + interval
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.poll()
            except Exception:
                log.exception("file tailing poll failed; retrying at the next poll")
            if self._checkpoint is not None and time.monotonic() >= next_save:
                self.save_checkpoint()
                next_save = time.monotonic() + interval
            if not busy:
                self._stop.wait(self.config.poll_interval)

    # -- one poll ------------------------------------------------------------------------------------

    def poll(self) -> bool:
        """One scan-and-read pass (the thread calls it; tests may call it instead of ``start``).

        Returns True when a file has more to read right away.
        """
        found = self._scan()
        for key, tail in self._files.items():
            path = found.get(key)
            if path is None:
                tail.gone = True
            else:
                tail.path = path
        # Rotated-away files first: the old inode is finished before its successor at the path is opened.
        unfinished: set[str] = set()
        more = False
        for key, tail in list(self._files.items()):
            if tail.gone:
                result = self._read_gone(key, tail)
                if result.refused:
                    return False
                more = more or result.more
                if key in self._files:
                    unfinished.add(tail.path)
        for key, path in found.items():
            if key not in self._files and path not in unfinished:
                self._open(path)
        self._first_scan = False
        self._saved_marks = None
        for tail in list(self._files.values()):
            if tail.gone or self._stop.is_set():
                continue
            try:
                tail.restart_if_replaced()
                result = tail.read(self._submit, MAX_CHUNKS_PER_POLL)
            except OSError as exc:
                log.warning("cannot read %s: %s", tail.path, exc)
                continue
            finally:
                self._bad.report(self._stats)
            if result.refused:
                return False
            more = more or result.more
        return more

    def _scan(self) -> dict[tuple[int, int], str]:
        found: dict[tuple[int, int], str] = {}
        exclude = self.config.exclude
        for pattern in self.config.include:
            for path in glob.glob(pattern, recursive=True):
                if any(fnmatch(path, excluded) for excluded in exclude):
                    continue
                try:
                    info = os.stat(path)
                except OSError:
                    continue  # gone between the glob and the stat
                if stat.S_ISREG(info.st_mode):
                    found.setdefault((info.st_dev, info.st_ino), path)
        return found

    def _read_gone(self, key: tuple[int, int], tail: TailedFile) -> ReadResult:
        """Read a file that left its path; close it once a poll finds nothing new (or it cannot be read)."""
        result = ReadResult(0, False, False)
        try:
            result = tail.read(self._submit, MAX_CHUNKS_PER_POLL)
            # A writer may still append briefly after a rename, so the file gets one more poll.
            if result.refused:
                return result
            if result.bytes_read == 0:
                if not tail.finish(self._submit):
                    return ReadResult(0, False, True)
                finished = True
            else:
                finished = False
        except OSError as exc:
            log.warning("cannot read %s: %s", tail.path, exc)
            finished = True
        finally:
            self._bad.report(self._stats)
        if finished:
            tail.close()
            del self._files[key]
        return result

    def _open(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            log.warning("cannot open %s: %s", path, exc)
            return
        try:
            info = os.fstat(fd)
            key = (info.st_dev, info.st_ino)  # the path may have been replaced since the scan
            if key in self._files:
                os.close(fd)
                return
            offset = self._start_offset(path, fd, info)
            parser = self._make_parser(self.config.format, reporter_identity(path, self.config.workloads), self._peers)
            tail = TailedFile(
                path=path,
                fd=fd,
                device=info.st_dev,
                inode=info.st_ino,
                offset=offset,
                parser=parser,
                bad=self._bad,
                max_line_bytes=self.config.max_line_bytes,
                chunk_bytes=self.config.read_chunk_bytes,
            )
        except Exception:
            os.close(fd)
            log.exception("cannot start tailing %s", path)
            return
        self._files[key] = tail
        log.info("tailing %s from offset %d", path, offset)

    def _start_offset(self, path: str, fd: int, info: os.stat_result) -> int:
        if not self._first_scan:
            return 0
        mark = find_mark(self._marks(), path, info.st_dev, info.st_ino, lambda size: os.pread(fd, size, 0))
        if mark is not None:
            return mark.offset if mark.offset <= info.st_size else 0
        return info.st_size if self.config.start_at == "end" else 0

    def _marks(self) -> list[FileMark]:
        if self._saved_marks is None:
            self._saved_marks = self._checkpoint.load() if self._checkpoint is not None else []
        return self._saved_marks

    def _submit(self, records: list[Record]) -> bool:
        # Waits for room: tailing falls behind rather than losing lines.
        return self._pipeline.submit(records, RECEIVER, wait=None)

    # -- checkpoint ----------------------------------------------------------------------------------

    def marks(self) -> list[FileMark]:
        """Where each file being followed stands (what the checkpoint file stores)."""
        return [tail.mark() for tail in list(self._files.values()) if not tail.gone]

    def save_checkpoint(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.save(self.marks())
