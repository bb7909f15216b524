"""The file tailing receiver: watch globs, follow files through rotation, parse, hand Records on.

One background thread polls: it expands the globs, finishes files that left their path (rotation by
rename: the old inode is read to its end before the new file at the path), restarts files that were
truncated (copytruncate), opens files that appeared, and reads what is new. Files are known by device +
inode, so a file renamed to another watched name is not read twice.

``start_at`` applies to the files found by the first scan that the checkpoint does not know; a file
that appears later (including the new file of a rotation) is read from its start, since everything in
it was written after the receiver was already watching.

A file counts as gone only when its path no longer holds it (``os.stat`` of the path: missing, or another
inode), never merely because a scan did not list it: ``glob`` turns errors (EMFILE, EACCES) into an empty
result. Files that were finished (read to their end after leaving their path) are remembered by device +
inode + fingerprint with the offset reached, for a bounded time and number (evictions beyond the number
are counted as ``dropped{stage="filelog",reason="forgotten_offsets"}``), so a file that comes back (renamed
out of the watched folder and back in) resumes there instead of being read twice.

The checkpoint keeps files that were rotated away before being read to their end, with the path they were
last seen at. After a restart such a file is looked for by device + inode + fingerprint among every file in
that folder (``0.log.20240504-172259``, ``a.log.1``, a name the globs match) and finished from its offset;
when it is not there any more (deleted, compressed) its unread rest is lost and counted as one file in
``dropped{stage="filelog",reason="rotated_unread"}`` (the unit is files: the lines were never read).

Waiting for room in the pipeline is done in slices that check for shutdown, so ``shutdown`` returns within
``SHUTDOWN_JOIN_SECONDS`` even when the pipeline stays full; a batch not accepted is not committed and is
read again after a restart.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatch

from telemetry.deadletter import DeadLetter
from telemetry.envoy.parser import make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record, Workload
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.checkpoint import CheckpointFile, FileMark, find_mark
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.identity import reporter_identity
from telemetry.receivers.filelog.tailer import RECEIVER, BadLines, ReadResult, TailedFile
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)


# Per file per poll, so one file with a large backlog does not starve the others.
MAX_CHUNKS_PER_POLL = 16
# Finished files remembered so one that comes back is not read twice: at most this many, for this long.
REMEMBERED_MAX = 10_000
REMEMBERED_SECONDS = 3600.0
# How long the tailing thread waits for pipeline room before looking at the stop flag again.
SUBMIT_WAIT_SLICE = 0.1
# How long shutdown waits for the tailing thread.
SHUTDOWN_JOIN_SECONDS = 10.0


class FileLogReceiver:
    def __init__(
        self,
        config: FileLogConfig,
        pipeline: Pipeline,
        stats: SelfStats,
        peers: PeerTable,
        dead_letter: DeadLetter | None = None,
        keep_original: bool = False,
    ) -> None:
        self.config = config
        self._keep_original = keep_original  # a log sink wants each line as read (event.original)
        self._pipeline = pipeline
        self._stats = stats
        self._peers = peers
        # A format string that does not compile fails here, at startup, not on the first file.
        make_parser(config.format, Workload(), peers)
        self._bad = BadLines(dead_letter)
        self._checkpoint = CheckpointFile(config.checkpoint_file) if config.checkpoint_file else None
        self._saved_marks: list[FileMark] | None = None  # loaded on the first scan, then forgotten
        self._files: dict[tuple[int, int], TailedFile] = {}
        # Files not being tailed whose offset is known: (monotonic time remembered, mark), oldest first.
        self._remembered: OrderedDict[tuple[int, int], tuple[float, FileMark]] = OrderedDict()
        self._first_scan = True
        self._max_chunks = MAX_CHUNKS_PER_POLL
        # Set by the collector when a sink keeps Records on disk (the forward sink's spool): called before a
        # checkpoint is saved, True once everything handed on is safe there; False keeps the older checkpoint.
        self.checkpoint_barrier: Callable[[], bool] | None = None
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
        """Stop polling, save the checkpoint, close files. Idempotent.

        The batch being read is still handed on if the pipeline has room for it; if not, it is left for the
        next start (the checkpoint stops before it). Returns within about ``SHUTDOWN_JOIN_SECONDS``.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(SHUTDOWN_JOIN_SECONDS)
            if thread.is_alive():
                # Offsets only advance after the pipeline accepted a batch, so the checkpoint is safe to save;
                # the files stay open since the thread may still read them (it is a daemon thread).
                log.warning("the file tailing thread did not stop within %.0f s", SHUTDOWN_JOIN_SECONDS)
                self.save_checkpoint()
                return
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
        if self._first_scan:
            self._resume_rotated(found)
        for key, tail in self._files.items():
            path = found.get(key)
            if path is not None:
                tail.path = path
                tail.gone = False
            elif not tail.gone and not self._still_at_path(tail):
                tail.gone = True
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
        if self._first_scan:
            # Marks of files not found now still apply if they show up later (or were held back above).
            for mark in self._marks():
                if not mark.gone and (mark.device, mark.inode) not in self._files:
                    self._remember(mark)
        self._first_scan = False
        self._saved_marks = None
        for tail in list(self._files.values()):
            if tail.gone or self._stop.is_set():
                continue
            try:
                tail.restart_if_replaced()
                result = tail.read(self._submit, self._max_chunks)
            except OSError as exc:
                log.warning("cannot read %s: %s", tail.path, exc)
                continue
            finally:
                self._bad.report(self._stats)
                self._after_read(tail)
            if result.refused:
                return False
            more = more or result.more
        return more

    def _scan(self) -> dict[tuple[int, int], str]:
        return scan_files(self.config)

    def _after_read(self, tail: TailedFile) -> None:
        """Called after each file's read (and its parse errors reported); parsing workers send their batch here."""

    @staticmethod
    def _still_at_path(tail: TailedFile) -> bool:
        """Whether the file is still at its path though the scan did not list it (a glob error, a race).

        Only a path that is missing, or holds another file, says the file left; any other error says nothing.
        """
        try:
            info = os.stat(tail.path)
        except OSError as exc:
            return exc.errno not in (errno.ENOENT, errno.ENOTDIR)
        return (info.st_dev, info.st_ino) == tail.key

    def _read_gone(self, key: tuple[int, int], tail: TailedFile) -> ReadResult:
        """Read a file that left its path; close it once a poll finds nothing new (or it cannot be read)."""
        result = ReadResult(0, False, False)
        try:
            result = tail.read(self._submit, self._max_chunks)
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
            self._after_read(tail)
        if finished:
            tail.close()
            del self._files[key]
            self._remember(tail.mark())
        return result

    # -- remembered offsets of files not being tailed ------------------------------------------------

    def _remember(self, mark: FileMark) -> None:
        key = (mark.device, mark.inode)
        self._remembered.pop(key, None)
        self._remembered[key] = (time.monotonic(), replace(mark, gone=False))
        self._expire_remembered()
        evicted = 0
        while len(self._remembered) > REMEMBERED_MAX:
            self._remembered.popitem(last=False)
            evicted += 1
        if evicted:
            # Such a file, should it come back, is read from its start again.
            self._stats.drop(RECEIVER, "forgotten_offsets", evicted)

    def _expire_remembered(self) -> None:
        oldest = time.monotonic() - REMEMBERED_SECONDS
        while self._remembered:
            key, (since, _) = next(iter(self._remembered.items()))
            if since >= oldest:
                break
            del self._remembered[key]

    def _recall(self, path: str, fd: int, info: os.stat_result) -> int | None:
        """The offset reached in this file when it was last tailed, if it is still the same file."""
        self._expire_remembered()
        entry = self._remembered.pop((info.st_dev, info.st_ino), None)
        if entry is None:
            return None
        mark = find_mark([entry[1]], path, info.st_dev, info.st_ino, lambda size: os.pread(fd, size, 0))
        if mark is None or mark.offset > info.st_size:
            return None  # the inode was reused, or the file was rewritten shorter
        return mark.offset

    # -- rotated files the checkpoint had not finished -----------------------------------------------

    def _resume_rotated(self, found: dict[tuple[int, int], str]) -> None:
        """Reopen the files the checkpoint says were rotated away unfinished, where they are now."""
        for mark in self._marks():
            key = (mark.device, mark.inode)
            if not mark.gone or key in found or key in self._files:
                continue  # at a watched path: opened and resumed as any other file
            if not self._reopen_rotated(mark):
                log.warning(
                    "%s was rotated away before it was read past offset %d and is gone: its rest is lost",
                    mark.path,
                    mark.offset,
                )
                self._stats.drop(RECEIVER, "rotated_unread")

    def _reopen_rotated(self, mark: FileMark) -> bool:
        directory = os.path.dirname(mark.path) or "."
        try:
            with os.scandir(directory) as entries:
                candidates = [entry.path for entry in entries if entry.inode() == mark.inode]
        except OSError as exc:
            log.warning("cannot look for the rotated %s in %s: %s", mark.path, directory, exc)
            return False
        for candidate in candidates:
            try:
                fd = os.open(candidate, os.O_RDONLY)
            except OSError:
                continue
            try:
                info = os.fstat(fd)
                same = (
                    stat.S_ISREG(info.st_mode)
                    and (info.st_dev, info.st_ino) == (mark.device, mark.inode)
                    and mark.offset <= info.st_size
                    and find_mark(
                        [mark], candidate, info.st_dev, info.st_ino, lambda size, fd=fd: os.pread(fd, size, 0)
                    )
                    is not None
                )
            except OSError:
                same = False
            if not same:
                os.close(fd)
                continue
            # Kept under the path it was rotated from: its identity, and its successor there waits for it.
            tail = self._track(mark.path, fd, info, mark.offset)
            if tail is None:
                return False
            tail.gone = True
            log.info("finishing %s (rotated from %s) from offset %d", candidate, mark.path, mark.offset)
            return True
        return False

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
        except Exception:
            os.close(fd)
            log.exception("cannot start tailing %s", path)
            return
        if self._track(path, fd, info, offset) is not None:
            log.info("tailing %s from offset %d", path, offset)

    def _track(self, path: str, fd: int, info: os.stat_result, offset: int) -> TailedFile | None:
        """Follow the open file ``fd`` from ``offset``; it is closed when that fails."""
        try:
            identity = reporter_identity(path, self.config.workloads)
            parser = make_parser(self.config.format, identity, self._peers, self._keep_original)
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
            return None
        self._files[tail.key] = tail
        return tail

    def _start_offset(self, path: str, fd: int, info: os.stat_result) -> int:
        recalled = self._recall(path, fd, info)
        if recalled is not None:
            return recalled
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
        """Hand a batch on, waiting for room: tailing falls behind rather than losing lines.

        Once shutdown is asked for, a batch there is no room for is refused without being counted as dropped:
        the caller rewinds to the committed offset, so its lines are read again after a restart.
        """
        count = len(records)
        while not self._pipeline.wait_for_room(count, SUBMIT_WAIT_SLICE):
            if self._stop.is_set():
                return False
        return self._pipeline.submit(records, RECEIVER, wait=None if not self._stop.is_set() else 0.0)

    # -- checkpoint ----------------------------------------------------------------------------------

    def marks(self) -> list[FileMark]:
        """Where each file being followed stands (what the checkpoint file stores), rotated-away ones included."""
        return [tail.mark() for tail in list(self._files.values())]

    def save_checkpoint(self) -> None:
        if self._checkpoint is not None:
            marks = self.marks()
            if self.checkpoint_barrier is not None and not self.checkpoint_barrier():
                return
            self._checkpoint.save(marks)


def scan_files(config: FileLogConfig) -> dict[tuple[int, int], str]:
    """The regular files the globs match now, by device + inode (the first path found for each)."""
    found: dict[tuple[int, int], str] = {}
    exclude = config.exclude
    for pattern in config.include:
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
