"""The collector's side of parsing workers: the file tailing receiver when ``workers`` is 1 or more.

One thread (``meshscope-filelog``) scans the globs every ``poll_interval``, gives each file found to a
worker, sends workers the peers learned elsewhere, restarts workers that died, and saves the checkpoint.
A new file goes to the worker that last followed a file at its path (so a rotated file and its successor
are read by one worker, the old one first), else to the worker with the fewest files; it stays there while
it is known (by device + inode), so a file renamed to another watched name is not read twice.

One reader thread per worker applies its batches, in order, whole or not at all: peers learned, Records
into the pipeline (waiting for room: tailing falls behind rather than losing lines), metric totals merged
into the collector's IstioMetrics, the forward sink's encoded events handed to it (directly, before the
marks, so a checkpoint's flush of the sink covers them), self-metrics, dead-letter samples, and the files'
marks. The checkpoint is made of those marks only, so it stops exactly after the last accepted batch. A
batch the pipeline refuses (it is shutting down) leaves the worker ahead of what was accepted: the worker
is replaced by one started from the accepted marks, which reads the refused lines again.

A worker that dies is restarted from the accepted marks of its files and counted in
``meshscope_restarts_total{component="filelog_worker"}``; a file it had opened but not yet reported is
read from its start (at-least-once for that file, never a loss).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from itertools import count
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from telemetry.deadletter import DeadLetter
from telemetry.envoy.parser import make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.fluentforward.encoder import EncodedBatch
from telemetry.exporters.fluentforward.frames import recv_frame, widen
from telemetry.model import RECORD_FIELDS, Record, Workload
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.checkpoint import CheckpointFile, FileMark
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.receiver import (
    REMEMBERED_MAX,
    SHUTDOWN_JOIN_SECONDS,
    SUBMIT_WAIT_SLICE,
    scan_files,
)
from telemetry.receivers.filelog.tailer import RECEIVER
from telemetry.receivers.filelog.workers import worker
from telemetry.receivers.filelog.workers.outputs import COMPACT_FIELDS, WorkerOutputs, from_compact
from telemetry.receivers.filelog.workers.protocol import (
    ACK,
    BATCH,
    CORRELATING,
    ENCODED_AT,
    FILES,
    PEERS,
    STOP,
    SYNC,
    SYNCED,
    decode,
    encode,
    mark_of,
    peer_entries,
    workload_of,
)
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

COMPONENT = "filelog_worker"
SYNC_TIMEOUT = 120.0  # poll(): how long to wait for a worker's answer
RESTART_DELAY_MAX = 30.0  # a worker that keeps dying is restarted at most this rarely


def restart_delay(failures: int) -> float:
    """0.1 s after the first failure in a row, doubling up to RESTART_DELAY_MAX."""
    return min(RESTART_DELAY_MAX, 0.1 * 2 ** (failures - 1))


_new = tuple.__new__
COMPACT_REQUEST_ID = COMPACT_FIELDS.index("request_id")

Key = tuple[int, int]


def owner_of(path: str, workers: int) -> int:
    """A worker for a path, stable across processes and restarts (unlike ``hash``): for checkpointed files
    and to break ties between equally loaded workers."""
    return zlib.crc32(path.encode("utf-8", "surrogateescape")) % workers


def with_entries(message: tuple[Any, ...], conn: Connection) -> tuple[Any, ...]:
    """A batch with its encoded segments whole: their entries follow the message, one frame each."""
    heads = message[ENCODED_AT]
    if not heads:
        return message
    segments = [(tag, recv_frame(conn), count) for tag, count in heads]
    return (*message[:ENCODED_AT], segments, *message[ENCODED_AT + 1 :])


class _Slot:
    """One worker: its process, pipe, reader thread, and the accepted marks of its files."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None
        self.reader: threading.Thread | None = None
        self.send_lock = threading.Lock()
        self.marks: dict[Key, FileMark] = {}
        self.files: dict[Key, str] | None = None  # as last sent
        self.diverged = False  # a batch was refused: the worker is ahead of what was accepted
        self.reading = False  # the reader thread has not seen the pipe's end yet
        self.synced: dict[int, bool] = {}
        self.failures = 0  # deaths in a row, for the restart delay
        self.restart_at = 0.0


class ParallelFileLogReceiver:
    def __init__(
        self,
        config: FileLogConfig,
        pipeline: Pipeline,
        stats: SelfStats,
        peers: PeerTable,
        dead_letter: DeadLetter | None = None,
        keep_original: bool = False,
        outputs: WorkerOutputs | None = None,
        workers: int | None = None,
    ) -> None:
        self.config = config
        self._pipeline = pipeline
        self._stats = stats
        self._peers = peers
        self._dead_letter = dead_letter
        self._keep_original = keep_original
        self._outputs = outputs or WorkerOutputs()
        # The sinks the Records sent back bypass: the metrics ones got totals, an encoded one its events.
        encoded = self._outputs.encoded
        self._skip = self._outputs.metrics_sinks | ({encoded.sink} if encoded is not None else set())
        # A format string that does not compile fails here, at startup, not in a worker.
        make_parser(config.format, Workload(), peers)
        self._count = workers if workers is not None else config.worker_count()
        if self._count < 1:
            raise ValueError("ParallelFileLogReceiver needs at least one worker")
        self._checkpoint = CheckpointFile(config.checkpoint_file) if config.checkpoint_file else None
        self._context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._slots = [_Slot(index) for index in range(self._count)]
        self._owner: OrderedDict[Key, int] = OrderedDict()  # which worker follows each known file
        self._path_owner: OrderedDict[str, int] = OrderedDict()  # and which one last followed a file at a path
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._spawned = False
        self._manual = False
        self._shut_down = False
        self._tokens = count(1)
        self._peers_version = -1
        self._sent_pinned: dict[str, Workload] = {}
        self._sent_learned: dict[str, Workload] = {}
        self._correlating: bool | None = None
        self.restarts = 0
        # As FileLogReceiver's: True once everything handed on is safe in the sinks that keep Records on disk.
        self.checkpoint_barrier: Callable[[], bool] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._shut_down or self._spawned:
                return
            self._thread = threading.Thread(target=self._run, name="meshscope-filelog", daemon=True)
            self._thread.start()

    def poll(self) -> bool:
        """One scan, then every worker reads what is there (as far as one in-process poll would) and its
        batches are applied before this returns. For tests and tools; ``start`` runs on its own instead.

        Returns True when a file has more to read right away.
        """
        if not self._spawned:
            self._manual = True
            self._spawn_all()
        self._supervise()
        self._scan_and_tell()
        tokens = {}
        for slot in self._slots:
            token = next(self._tokens)
            if self._tell(slot, (SYNC, token)):
                tokens[slot.index] = token
        more = False
        deadline = time.monotonic() + SYNC_TIMEOUT
        with self._cond:
            for index, token in tokens.items():
                slot = self._slots[index]
                while token not in slot.synced and slot.reading and not slot.diverged:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        log.warning("file tailing worker %d did not answer within %.0f s", index, SYNC_TIMEOUT)
                        break
                    self._cond.wait(remaining)
                more = slot.synced.pop(token, False) or more
        return more

    def shutdown(self) -> None:
        """Stop the workers (each finishes the batch it is sending), apply what they sent while the
        pipeline has room, save the checkpoint. Idempotent; returns within about ``SHUTDOWN_JOIN_SECONDS``."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        deadline = time.monotonic() + SHUTDOWN_JOIN_SECONDS
        self._stop.set()
        if thread is not None:
            thread.join(SHUTDOWN_JOIN_SECONDS)
        for slot in self._slots:
            self._tell(slot, (STOP,))
        for slot in self._slots:
            if slot.reader is not None:
                slot.reader.join(max(0.0, deadline - time.monotonic()))
            process = slot.process
            if process is not None:
                process.join(max(0.1, deadline - time.monotonic()))
                if process.is_alive():
                    log.warning("file tailing worker %d did not stop; killing it", slot.index)
                    process.kill()
                    process.join(1.0)
            if slot.conn is not None:
                slot.conn.close()
        self.save_checkpoint()

    def _run(self) -> None:
        # Workers are started from this thread, which lives as long as they do (PR_SET_PDEATHSIG follows
        # the thread that started a process).
        self._spawn_all()
        interval = self.config.checkpoint_interval
        next_save = time.monotonic() + interval
        while not self._stop.is_set():
            try:
                self._supervise()
                self._scan_and_tell()
            except Exception:
                log.exception("file tailing scan failed; retrying at the next poll")
            if self._checkpoint is not None and time.monotonic() >= next_save:
                self.save_checkpoint()
                next_save = time.monotonic() + interval
            self._stop.wait(self.config.poll_interval)

    # -- workers -------------------------------------------------------------------------------------

    def _spawn_all(self) -> None:
        self._spawned = True
        for mark in self._checkpoint.load() if self._checkpoint is not None else []:
            index = self._path_owner.setdefault(mark.path, owner_of(mark.path, self._count))
            key = (mark.device, mark.inode)
            self._owner[key] = index
            self._slots[index].marks[key] = mark
        for slot in self._slots:
            self._try_spawn(slot, first=True)

    def _try_spawn(self, slot: _Slot, first: bool) -> None:
        """Start the slot's worker; when that fails (no memory, no processes left), try again later."""
        try:
            self._spawn(slot, first)
        except Exception:
            slot.failures += 1
            slot.restart_at = time.monotonic() + restart_delay(slot.failures)
            log.exception("cannot start file tailing worker %d; trying again", slot.index)

    def _spawn(self, slot: _Slot, first: bool) -> None:
        pinned, learned = self._peers.snapshot()
        dead_letter = self._dead_letter
        settings = worker.WorkerSettings(
            index=slot.index,
            # A restarted worker reads files it had not reported from their start: never a lost line.
            config=replace(
                self.config, checkpoint_file="", workers=0, start_at=self.config.start_at if first else "beginning"
            ),
            keep_original=self._keep_original,
            marks=list(slot.marks.values()),
            pinned=peer_entries(pinned),
            learned=peer_entries(learned),
            records=self._outputs.records,
            aggregate=self._outputs.aggregate,
            correlating=bool(self._correlating),
            dead_letter_budget=max(0, dead_letter.max_lines - dead_letter.written) if dead_letter else 0,
            parent_pid=os.getpid(),
            manual=self._manual,
            encode=(encoded.tag, encoded.include_original) if (encoded := self._outputs.encoded) else None,
        )
        parent_end, child_end = self._context.Pipe()
        # Larger buffers: a batch's frames of encoded events go in one write each (the credits bound them).
        widen(parent_end)
        widen(child_end)
        process = self._context.Process(
            target=worker.main,
            args=(child_end, settings),
            name=f"meshscope-filelog-worker-{slot.index}",
            daemon=True,
        )
        process.start()
        child_end.close()
        with self._lock:
            slot.process, slot.conn = process, parent_end
            slot.files = None  # the new worker is told its files at the next scan
            slot.diverged = False
            slot.reading = True
            slot.synced.clear()
        slot.reader = threading.Thread(
            target=self._read, args=(slot, parent_end), name=f"meshscope-filelog-reader-{slot.index}", daemon=True
        )
        slot.reader.start()

    def _supervise(self) -> None:
        """Restart workers that died (counted) or were stopped for running ahead of the pipeline."""
        if self._stop.is_set():
            return
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is None:
                if self._spawned and now >= slot.restart_at:
                    self._try_spawn(slot, first=True)  # it never started
                continue
            if process.exitcode is None and not slot.diverged:
                continue
            if process.exitcode is None:
                process.kill()  # diverged: replaced from the accepted marks
            process.join(1.0)
            if slot.reader is not None:
                slot.reader.join(1.0)
            if not slot.diverged:
                if slot.restart_at == 0.0:
                    slot.failures += 1
                    self.restarts += 1
                    self._stats.restarted(COMPONENT)
                    delay = restart_delay(slot.failures)
                    slot.restart_at = now + delay
                    log.warning(
                        "file tailing worker %d died (exit code %s); restarting it in %.1f s from its checkpoint",
                        slot.index,
                        process.exitcode,
                        delay,
                    )
                if now < slot.restart_at:
                    continue
            slot.restart_at = 0.0
            self._try_spawn(slot, first=False)

    def _tell(self, slot: _Slot, message: tuple[Any, ...]) -> bool:
        conn = slot.conn
        if conn is None or not slot.reading:
            return False
        try:
            with slot.send_lock:
                conn.send_bytes(encode(message))
        except (OSError, ValueError):
            return False
        return True

    # -- scanning and what workers are told ----------------------------------------------------------

    def _scan_and_tell(self) -> None:
        found = scan_files(self.config)
        owner = self._owner
        assigned: list[dict[Key, str]] = [{} for _ in self._slots]
        new: list[tuple[Key, str]] = []
        for key, path in found.items():
            index = owner.get(key)
            if index is None:
                new.append((key, path))
                continue
            owner.move_to_end(key)
            assigned[index][key] = path
        for key, path in new:
            index = self._path_owner.get(path)
            if index is None:
                # A path not seen before goes to the worker with the fewest files (the hash breaks ties).
                first = owner_of(path, self._count)
                index = min(range(self._count), key=lambda i: (len(assigned[i]), (i - first) % self._count))
            owner[key] = index
            assigned[index][key] = path
        for index, files in enumerate(assigned):
            for path in files.values():
                # A file that comes to this path later (the next one of a rotation) goes to the same worker,
                # which finishes the old file first.
                self._path_owner[path] = index
                self._path_owner.move_to_end(path)
        # Files not seen for a while are forgotten oldest first, as workers forget their offsets.
        for known in (owner, self._path_owner):
            while len(known) > REMEMBERED_MAX + len(found):
                known.popitem(last=False)
        self._tell_peers()
        self._tell_correlating()
        for slot, files in zip(self._slots, assigned, strict=True):
            if files != slot.files and self._tell(slot, (FILES, files)):
                slot.files = files

    def _tell_peers(self) -> None:
        if self._peers.version == self._peers_version:
            return
        self._peers_version = self._peers.version
        pinned, learned = self._peers.snapshot()
        new_pinned = {ip: w for ip, w in pinned.items() if self._sent_pinned.get(ip) != w}
        new_learned = {ip: w for ip, w in learned.items() if self._sent_learned.get(ip) != w}
        self._sent_pinned, self._sent_learned = pinned, learned
        if new_pinned or new_learned:
            message = (PEERS, peer_entries(new_pinned), peer_entries(new_learned))
            for slot in self._slots:
                self._tell(slot, message)

    def _tell_correlating(self) -> None:
        correlating = bool(self._outputs.correlating())
        if correlating != self._correlating:
            self._correlating = correlating
            for slot in self._slots:
                self._tell(slot, (CORRELATING, correlating))

    # -- batches from workers ------------------------------------------------------------------------

    def _read(self, slot: _Slot, conn: Connection) -> None:
        try:
            while True:
                try:
                    message = decode(conn.recv_bytes())
                    kind = message[0]
                    if kind == BATCH:
                        message = with_entries(message, conn)
                except (EOFError, OSError):
                    return
                if kind == BATCH:
                    if slot.diverged:
                        continue  # the worker is being replaced; its later batches are read again by the next
                    if self._accept(slot, message):
                        slot.failures = 0  # working again: a later death restarts it without delay
                        self._tell(slot, (ACK,))
                        continue
                    with self._cond:
                        slot.diverged = True
                        self._cond.notify_all()
                elif kind == SYNCED:
                    with self._cond:
                        slot.synced[message[1]] = bool(message[2])
                        self._cond.notify_all()
        except Exception:
            log.exception("file tailing worker %d sent what cannot be applied; replacing it", slot.index)
            with self._cond:
                slot.diverged = True
        finally:
            with self._cond:
                slot.reading = False
                self._cond.notify_all()

    def _accept(self, slot: _Slot, message: tuple[Any, ...]) -> bool:
        """Apply one batch whole; False when the pipeline refused its Records (nothing applied: a batch
        carries Records to be filled in, for every sink, or the other Records, never both)."""
        _, parsed, requests, tcp, shipped, errors, drops, dead, learned, marks, closed, encoded, filled = message
        if encoded and self._outputs.encoded is not None:
            # Encoded events skip the pipeline, not its hold-back: the sink's queue holds the worker back
            # (through its credits) rather than dropping its oldest events. Nothing is applied yet.
            events = sum(count for _, _, count in encoded)
            while not self._pipeline.wait_for_room(events, SUBMIT_WAIT_SLICE):
                if self._stop.is_set():
                    return False
        for ip, values in learned:
            self._peers.learn(ip, workload_of(values))
        # Records the request-id index may give a trace id: every sink but the metrics ones gets them.
        fill = [_new(Record, values) for values in filled]
        if fill and not self._hand_on(fill, self._outputs.metrics_sinks):
            return False
        records: list[Record] = []
        if shipped:
            whole = len(RECORD_FIELDS)
            trace_id_of = self._outputs.trace_id_of
            for values in shipped:
                if len(values) == whole:
                    records.append(_new(Record, values))
                elif trace_id := trace_id_of(values[COMPACT_REQUEST_ID]):
                    records.append(from_compact(values, trace_id))
            if records and not self._hand_on(records, self._skip):
                return False
        output = self._outputs.encoded
        if encoded and output is not None:
            output.consume(EncodedBatch(encoded))  # before the marks: a checkpoint's flush covers it
        metrics = self._outputs.metrics
        if metrics is not None and (requests or tcp):
            metrics.merge(requests, tcp)
        stats = self._stats
        if parsed > len(records) + len(fill):
            stats.received(RECEIVER, parsed - len(records) - len(fill))  # the pipeline counts those handed to it
        for reason, number in errors:
            stats.parse_error(RECEIVER, reason, number)
        for stage, reason, number in drops:
            stats.drop(stage, reason, number)
        if self._dead_letter is not None:
            for reason, line in dead:
                self._dead_letter.write(RECEIVER, reason, line)
        with self._lock:
            for values in marks:
                mark = mark_of(values)
                slot.marks[(mark.device, mark.inode)] = mark
            for key in closed:
                slot.marks.pop(tuple(key), None)  # type: ignore[arg-type]
        return True

    def _hand_on(self, records: list[Record], skip: frozenset[str]) -> bool:
        """Into the pipeline (bypassing the sinks ``skip`` names), waiting for room; once stopping, refused
        when there is none."""
        pipeline = self._pipeline
        number = len(records)
        while not pipeline.wait_for_room(number, SUBMIT_WAIT_SLICE):
            if self._stop.is_set():
                return False
        wait = 0.0 if self._stop.is_set() else None
        if skip:
            return pipeline.submit(records, RECEIVER, wait=wait, skip=skip)
        return pipeline.submit(records, RECEIVER, wait=wait)

    # -- checkpoint ----------------------------------------------------------------------------------

    def marks(self) -> list[FileMark]:
        """Where each worker's files stand as far as the collector accepted (what the checkpoint stores)."""
        with self._lock:
            return [mark for slot in self._slots for mark in slot.marks.values()]

    def save_checkpoint(self) -> None:
        # Before the workers started, the marks of the checkpoint file were not even read: nothing to save.
        if self._checkpoint is not None and self._spawned:
            marks = self.marks()
            if self.checkpoint_barrier is not None and not self.checkpoint_barrier():
                return
            self._checkpoint.save(marks)

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for tests and tools)."""
        return [slot.process.pid for slot in self._slots if slot.process is not None and slot.process.pid]
