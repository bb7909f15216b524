"""A parsing worker process: the in-process file tailing receiver, fed its files by the collector.

The worker runs ``FileLogReceiver.poll`` over the files the collector gave it (no globbing of its own),
one chunk per file per pass, and after each chunk sends one batch: the chunk's Istio metric totals, the
Records the collector's other sinks need, parse errors, drops, dead-letter samples, peers it learned, and
where each of its files now stands. The collector applies a batch whole or not at all, and keeps those
marks as the checkpoint's, so the checkpoint still stops exactly after what was accepted.

It dies with the collector: ``PR_SET_PDEATHSIG`` makes the kernel kill it when its parent goes (even by
``kill -9``), and the end of the pipe to the parent (EOF) stops it too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from telemetry.envoy.peers import PeerTable
from telemetry.exporters.fluentforward.encoder import EntryEncoder, Segment
from telemetry.exporters.fluentforward.sink import STAGE as FORWARD_STAGE
from telemetry.exporters.log_event import now_timestamp
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
from telemetry.model import Record, Workload
from telemetry.pipeline import tune_gc
from telemetry.receivers.filelog.checkpoint import FileMark
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.receiver import MAX_CHUNKS_PER_POLL, FileLogReceiver
from telemetry.receivers.filelog.tailer import TailedFile
from telemetry.receivers.filelog.workers.outputs import RecordNeeds, for_recent_traces
from telemetry.receivers.filelog.workers.protocol import (
    ACK,
    BATCH,
    CORRELATING,
    CREDITS,
    FILES,
    PEERS,
    STOP,
    SYNC,
    SYNCED,
    MarkTuple,
    WorkloadTuple,
    decode,
    encode,
    mark_tuple,
    workload_of,
    workload_tuple,
)
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_UNCAPPED = 1 << 62  # a batch's own totals: the collector applies the series cap when merging


@dataclass
class WorkerSettings:
    """Everything a worker starts from (pickled to the new process)."""

    index: int
    config: FileLogConfig
    keep_original: bool
    marks: list[FileMark]
    pinned: list[tuple[str, WorkloadTuple]]
    learned: list[tuple[str, WorkloadTuple]]
    records: RecordNeeds
    aggregate: bool
    correlating: bool
    dead_letter_budget: int
    parent_pid: int
    manual: bool = False  # poll only when asked (SYNC): the receiver's ``poll()`` drives it, as in tests
    encode: tuple[str, bool] | None = None  # events for the forward sink: its (tag template, include_original)


class _Stopped(Exception):
    """The collector asked the worker to stop, or is gone."""


class ReportingPeerTable(PeerTable):
    """A worker's peer table: what its parsing learns is also reported to the collector."""

    def __init__(self) -> None:
        super().__init__()
        self.learned: list[tuple[str, WorkloadTuple]] = []

    def learn(self, ip: str, workload: Workload) -> None:
        version = self.version
        super().learn(ip, workload)
        if self.version != version:
            self.learned.append((ip, workload_tuple(workload)))

    def accept(self, ip: str, workload: Workload) -> None:
        """An entry the collector sent (learned elsewhere): kept, not reported back."""
        super().learn(ip, workload)


class SampledDeadLetter:
    """Bad lines for the collector's dead-letter file (it writes them): at most ``budget`` in all."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self.samples: list[tuple[str, str]] = []

    def write(self, receiver: str, reason: str, line: str | bytes) -> None:
        if self._budget <= 0:
            return
        self._budget -= 1
        text = line.decode("utf-8", "backslashreplace") if isinstance(line, bytes) else line
        self.samples.append((reason, text[:4096]))


class WorkerFileLog(FileLogReceiver):
    """The in-process receiver with the collector's file assignment for its scan and the worker as its sink."""

    def __init__(self, config: FileLogConfig, worker: Worker, marks: list[FileMark]) -> None:
        super().__init__(config, None, worker.stats, worker.peers, None, worker.keep_original)  # type: ignore[arg-type]
        self._bad._dead_letter = worker.dead_letter  # type: ignore[assignment]
        self._worker = worker
        self._given_marks = marks
        self._max_chunks = 1  # one batch per chunk: the collector merges while the worker parses on

    def _scan(self) -> dict[tuple[int, int], str]:
        return dict(self._worker.files or {})

    def _marks(self) -> list[FileMark]:
        return self._given_marks

    def _submit(self, records: list[Record]) -> bool:
        return self._worker.add(records)

    def _after_read(self, tail: TailedFile) -> None:
        self._worker.chunk_done()

    def tracked(self) -> dict[tuple[int, int], TailedFile]:
        return self._files


class Worker:
    def __init__(self, conn: Connection, settings: WorkerSettings) -> None:
        self._conn = conn
        self._settings = settings
        self.keep_original = settings.keep_original
        self.stats = SelfStats()
        self.peers = ReportingPeerTable()
        for ip, values in settings.pinned:
            self.peers.pin(ip, workload_of(values))
        for ip, values in settings.learned:
            self.peers.accept(ip, workload_of(values))
        self.dead_letter = SampledDeadLetter(settings.dead_letter_budget)
        self.files: dict[tuple[int, int], str] | None = None
        self._metrics = IstioMetrics(_UNCAPPED) if settings.aggregate else None
        self._needs = settings.records
        self._correlating = settings.correlating
        self._credits = CREDITS
        self._parsed = 0
        self._ship: list[tuple[Any, ...]] = []
        self._fill: list[tuple[Any, ...]] = []  # Records the collector may give a trace id, for every sink
        self._encoded: list[Segment] = []
        self._encoder = EntryEncoder(*settings.encode) if settings.encode is not None else None
        self._pending = False
        self._sent_marks: dict[tuple[int, int], MarkTuple] = {}
        self._syncs: list[int] = []
        self._receiver = WorkerFileLog(settings.config, self, settings.marks)
        self._inbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        threading.Thread(target=self._receive, name="meshscope-filelog-inbox", daemon=True).start()

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        poll_interval = self._settings.config.poll_interval
        try:
            while self.files is None:
                self._control(None)
            while True:
                if self._settings.manual:
                    if not self._syncs:
                        self._control(None)
                    while self._syncs:
                        self._sync(self._syncs.pop(0))
                    continue
                self._control(0.0)
                if not self._poll_once():
                    self._control(poll_interval)
        except _Stopped:
            return

    def _sync(self, token: int) -> None:
        more = False
        for _ in range(MAX_CHUNKS_PER_POLL):  # as far as one in-process poll reads
            more = self._poll_once()
            if not more:
                break
        self._send((SYNCED, token, more))

    def _poll_once(self) -> bool:
        more = self._receiver.poll()
        if self._pending or self._marks_changed():
            self._send_batch()
        return more

    # -- messages from the collector -----------------------------------------------------------------

    def _receive(self) -> None:
        """The inbox thread: takes every message off the pipe as it comes, so the collector never waits to
        send one while this process is busy sending its own batch (two full pipes would wait on each other)."""
        try:
            while True:
                self._inbox.put(decode(self._conn.recv_bytes()))
        except (EOFError, OSError, ValueError):
            self._inbox.put(None)  # the collector is gone

    def _control(self, timeout: float | None) -> None:
        """Handle what the collector sent, waiting up to ``timeout`` (None: until something comes)."""
        inbox = self._inbox
        try:
            message = inbox.get_nowait() if timeout == 0 else inbox.get(timeout=timeout)
            while True:
                if message is None:
                    raise _Stopped
                self._handle(message)
                message = inbox.get_nowait()
        except queue.Empty:
            return

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == ACK:
            self._credits += 1
        elif kind == FILES:
            self.files = message[1]
        elif kind == PEERS:
            for ip, values in message[1]:
                self.peers.pin(ip, workload_of(values))
            for ip, values in message[2]:
                self.peers.accept(ip, workload_of(values))
        elif kind == CORRELATING:
            self._correlating = bool(message[1])
        elif kind == SYNC:
            self._syncs.append(message[1])
        elif kind == STOP:
            raise _Stopped

    # -- batches to the collector --------------------------------------------------------------------

    def add(self, records: list[Record]) -> bool:
        """A chunk's Records (the receiver's submit): aggregated here, the needed ones kept to send."""
        if not self._pending and self._marks_changed():
            # Files opened since the last batch, at their starting offsets: valid whatever becomes of this chunk.
            self._send_batch()
        self._pending = True
        self._parsed += len(records)
        if self._metrics is not None:
            self._metrics.consume(records)
        if self._encoder is not None:
            records = self._encode(records)
        if self._metrics is None or self._needs == "all":
            self._ship.extend(map(tuple, records))  # marshal takes plain tuples only (not the NamedTuple)
        else:
            self._ship.extend(for_recent_traces(records, self._correlating))
        return True

    def _encode(self, records: list[Record]) -> list[Record]:
        """The forward sink's events of the Records; returns those that still go to the collector's other
        sinks only. While the collector's request-id index is in use, a Record may get its trace id there,
        so none is encoded here: they all go to every sink as Records, in their order (encoding the others
        would send them to Fluentd ahead of those)."""
        assert self._encoder is not None
        if self._correlating:
            self._fill.extend(map(tuple, records))
            return []
        if records:
            now = divmod(time.time_ns(), 1_000_000_000)
            self._encoded.extend(self._encoder.encode_segments(records, now_timestamp(), now))
            skipped, self._encoder.unencodable = self._encoder.unencodable, 0
            if skipped:
                self.stats.drop(FORWARD_STAGE, "unencodable", skipped)
        return records

    def chunk_done(self) -> None:
        if self._pending:
            self._send_batch()

    def _current_marks(self) -> dict[tuple[int, int], MarkTuple]:
        return {key: mark_tuple(tail.mark()) for key, tail in self._receiver.tracked().items()}

    def _marks_changed(self) -> bool:
        tracked = self._receiver.tracked()
        sent = self._sent_marks
        if tracked.keys() != sent.keys():
            return True
        for key, tail in tracked.items():
            mark = sent[key]
            if mark[5] != tail.committed or mark[6] != tail.gone or mark[0] != tail.path:
                return True
            if mark[4] != tail.prefix_size:
                return True
        return False

    def _send_batch(self) -> None:
        marks = self._current_marks()
        changed = [mark for key, mark in marks.items() if self._sent_marks.get(key) != mark]
        closed = [key for key in self._sent_marks if key not in marks]
        stats = self.stats
        with stats._lock:
            errors = [(reason, count) for (_, reason), count in stats.parse_errors.items()]
            drops = [(stage, reason, count) for (stage, reason), count in stats.dropped.items()]
            stats.parse_errors.clear()
            stats.dropped.clear()
        requests, tcp = self._metrics.take_delta() if self._metrics is not None else ([], [])
        message = (
            BATCH,
            self._parsed,
            requests,
            tcp,
            self._ship,
            errors,
            drops,
            self.dead_letter.samples,
            self.peers.learned,
            changed,
            closed,
            [(tag, count) for tag, _, count in self._encoded],
            self._fill,
        )
        while self._credits <= 0:
            self._control(None)
        self._control(0.0)  # a STOP waiting is obeyed before sending more
        # The entries follow as frames of their own: marshal would copy each one (several times as it grows).
        self._send(message, [entries for _, entries, _ in self._encoded])
        self._credits -= 1
        self._sent_marks = marks
        self._parsed = 0
        self._ship = []
        self._encoded = []
        self._fill = []
        self._pending = False
        self.dead_letter.samples = []
        self.peers.learned = []

    def _send(self, message: tuple[Any, ...], frames: list[bytes | bytearray] | None = None) -> None:
        try:
            self._conn.send_bytes(encode(message))
            for frame in frames or ():
                self._conn.send_bytes(frame)
        except (OSError, ValueError):
            raise _Stopped from None


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies, whatever kills the parent."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        log.warning("cannot ask to die with the collector (prctl); relying on the pipe's end instead")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def main(conn: Connection, settings: WorkerSettings) -> None:
    """The worker process's entry point."""
    _die_with_parent(settings.parent_pid)
    # Ctrl-C reaches the whole process group; the collector decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_gc()
    Worker(conn, settings).run()
