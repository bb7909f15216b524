"""The forward sink with its encoding and delivery in a helper process (``helper_process: true``).

Encoding ~30 ECS fields per event costs 2-3 µs of CPU; in the collector's process that time is taken
from parsing (one GIL). Here the collector only packs each batch of Records into a pipe as a RowBatch
(encoder.py: the batch's distinct peer-pair identities once, then per Record an index and the fields
after the identity; ~0.55 µs a Record, msgspec writing msgpack's bytes), and a helper process runs the in-thread sink (sink.py: encoding,
chunks, acknowledgements, spool) on the other core, encoding straight from the unpacked tuples.
Events that file tailing's parsing workers encoded already (an EncodedBatch) travel as one small message
naming each segment's tag and number of entries, followed by each segment's entries as a frame of its own
(nothing copies them on the way); the helper only chunks, sends and spools those.

The order of the pipe is what keeps ``flush`` exact: a flush request follows the Records consumed
before it, and the helper answers after its own ``flush`` (everything acknowledged or in the fsynced
spool). The helper reports its counters ten times a second and with every answer, among them how many
Records it has received and how many of those it has settled (acknowledged, spooled or counted as
dropped); the collector adds its counters to its own self-metrics and keeps every batch (and flush
request) it wrote to the pipe until the helper reports it settled (answered).

When the collector's process dies (even by kill -9) the helper reads the end of the pipe, spools or
delivers what it holds, and exits; a new helper waits for the spool's lock until then. A helper that
dies is started again, and what the old one had not reported settled (and the flush requests it had not
answered) is written to the new one first, in the original order: nothing is lost, and the new helper's
answer to a flush covers those Records too. Records the old helper settled after its last report are sent
twice; they are counted as possible duplicates (``resent``). Only when no helper can take them (the
collector is shutting down, or a helper cannot be started) are they counted as dropped
(``reason="helper_died"``, or ``"shutdown"`` after a helper that stopped normally).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing import BufferTooShort
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import msgpack
import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from telemetry.exporters.fluentforward.config import FluentForwardConfig
from telemetry.exporters.fluentforward.encoder import EncodedBatch, RowBatch, Segment
from telemetry.exporters.fluentforward.frames import recv_frame
from telemetry.exporters.fluentforward.sink import COUNTERS, DEPENDENCY, NAME, STAGE, ForwardSink, metric_families
from telemetry.exporters.sender import SenderState
from telemetry.model import Record
from telemetry.pipeline import tune_gc
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

RECORDS, ENCODED, FLUSH, STATUS, STOP = b"R", b"E", b"F", b"S", b"X"
FEED_RECORDS = 2048  # Records per pipe message
STATUS_INTERVAL = 0.1  # s between reports; what the collector holds for a resend is ~this long of events
ROOM_WAIT = 1.0  # s between the helper's looks at its sender and its parent while its queue is full
READER_JOIN = 5.0  # s to read what a dead helper left in the pipe (its last report)


_ENCODER = msgspec.msgpack.Encoder()  # msgpack's bytes; for a batch of Records in a fifth of msgpack's time


def records_message(records: Sequence[Sequence[Any]]) -> bytearray:
    """The pipe message of a batch of Records: its kind, then its RowBatch form (the message is encoded
    after the kind, not copied to prepend it)."""
    message = bytearray(RECORDS)
    _ENCODER.encode_into(RowBatch.of(records).pipe_form(), message, 1)
    return message


class PipedRecords:
    """Records as they were written to the pipe (their ``records_message``, ~230 bytes a Record), kept
    instead of the Records until the helper reports them settled. The Records are freed as soon as they
    are encoded, in the feeder, while still in the CPU's caches: freed a report later (~0.1 s) by the
    status reader, they cost the collector's process ~0.4 µs a line more end to end. Only a helper that
    dies makes the collector read a message back (to send what it had not settled to the next one)."""

    __slots__ = ("message", "count")

    def __init__(self, message: bytearray, count: int) -> None:
        self.message = message
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, part: slice) -> list[tuple[Any, ...]]:
        """The Records (as plain tuples: what ``records_message`` reads of them) of ``part``."""
        batch = RowBatch.from_pipe(msgpack.unpackb(memoryview(self.message)[1:], use_list=False))
        keys = batch.keys
        return [keys[index] + row for index, row in zip(batch.indexes[part], batch.rows[part], strict=True)]


# -- the helper process ------------------------------------------------------------------------------


def status_of(sink: ForwardSink, stats: SelfStats, received: int, settled: int) -> dict[str, Any]:
    return {
        **sink.metric_values(),
        "dropped": [[stage, reason, count] for (stage, reason), count in dict(stats.dropped).items()],
        "failures": [[reason, count] for (_, reason), count in dict(stats.export_failures).items()],
        "exported": stats.exported.get(NAME, 0),
        "reachable": sink.reachability,
        "durable": sink.durable,
        "received": received,  # Records read from the pipe
        "settled": settled,  # of those, acknowledged, spooled or counted as dropped
    }


def helper_main(connection: Connection, config: FluentForwardConfig, lock_wait: float) -> None:
    """The helper process: Records from the pipe into a ForwardSink until the pipe ends or says stop."""
    # Ctrl-C and a process-group SIGTERM reach the helper too: it must outlive the collector's shutdown
    # long enough to drain, so it stops only at the end of the pipe (or when its parent is gone).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    tune_gc()  # as the collector: many short-lived tuples and strings, no cycles among them
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats = SelfStats()
    # The collector's side holds the queue_size bound; here a few batches, so the helper stays small and
    # a slow Fluentd pushes back through the pipe to that bound (where drops are counted).
    room = 2 * max(FEED_RECORDS, config.batch_size)
    sink = ForwardSink(replace(config, queue_size=room), stats, lock_wait=lock_wait)
    send_lock = threading.Lock()
    done = threading.Event()
    received = 0

    def report() -> None:
        with send_lock:  # built under the lock too: the collector must see the counts never go back
            connection.send_bytes(STATUS + msgpack.packb(status_of(sink, stats, received, sink.settled_records())))

    def reporter() -> None:
        while not done.wait(STATUS_INTERVAL):
            try:
                report()
            except OSError:
                return

    threading.Thread(target=reporter, name="meshscope-fluentforward-status", daemon=True).start()
    buffer = bytearray(1 << 20)  # reused: reading into it takes a third of the CPU of recv_bytes()
    try:
        while True:
            try:
                size = connection.recv_bytes_into(buffer)
                message = memoryview(buffer)[:size]
            except BufferTooShort as larger:  # it holds the whole message; the next ones fit
                message = memoryview(larger.args[0])
                buffer = bytearray(len(message))
            except (EOFError, OSError):
                break  # the collector is gone or shutting down
            kind, body = bytes(message[:1]), message[1:]
            if kind in (RECORDS, ENCODED):
                unpacked = msgpack.unpackb(body, use_list=False)
                if kind == RECORDS:
                    records: RowBatch | EncodedBatch = RowBatch.from_pipe(unpacked)
                else:  # each segment's entries follow as a frame of its own
                    try:
                        segments = [(tag, recv_frame(connection), count) for tag, count in unpacked]
                    except (EOFError, OSError):
                        break  # the collector is gone; what it sent whole is handled below
                    records = EncodedBatch.from_pipe(segments)
                received += len(records)
                # Fluentd is slow or away: the pipe fills and the collector's queue takes the wait.
                while not sink.wait_for_room(len(records), ROOM_WAIT):
                    if not sink.alive:
                        raise RuntimeError("the sender thread stopped")  # the collector starts a new helper
                    if os.getppid() != parent:
                        sink.consume(records)  # its bound counts what does not fit
                        return  # the collector died; shutdown spools what the sink holds
                sink.consume(records)
            elif kind == FLUSH:
                token, timeout = msgpack.unpackb(body)
                answer = sink.flush(timeout)
                report()
                with send_lock:
                    connection.send_bytes(FLUSH + msgpack.packb([token, answer]))
            elif kind == STOP:
                break
    finally:
        sink.shutdown()
        done.set()
        try:
            report()
        except OSError:
            pass
        connection.close()


# -- the collector's side ----------------------------------------------------------------------------


class _FlushRequest:
    __slots__ = ("token", "deadline", "answered", "answer")

    def __init__(self, token: int, deadline: float) -> None:
        self.token = token
        self.deadline = deadline
        self.answered = threading.Event()
        self.answer = False

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def settle(self, answer: bool) -> None:
        self.answer = answer
        self.answered.set()


# Records (or their fields as tuples, read back from a dead helper's PipedRecords) in the collector's queue.
Records = Sequence[Record] | Sequence[tuple[Any, ...]]
Item = Records | EncodedBatch | _FlushRequest  # what the queue holds and the feeder takes
Inflight = PipedRecords | EncodedBatch | _FlushRequest  # what a helper was sent, until settled
_RESTART = _FlushRequest(0, 0.0)  # what ``_take`` returns when the helper is gone


@dataclass(eq=False)
class _Helper:
    """One helper process and what it was sent; ``inflight`` and ``settled`` change under the sink's lock."""

    process: BaseProcess
    connection: Connection
    started: float
    reader: threading.Thread | None = None
    # (Records sent to this helper after the item, item), oldest first, until the helper reports the
    # Records settled or answers the flush request.
    inflight: deque[tuple[int, Inflight]] = field(default_factory=deque)
    sent: int = 0
    settled: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    gone: bool = False  # its pipe ended or a write to it failed

    def prune(self) -> None:
        inflight = self.inflight
        while inflight:
            end, item = inflight[0]
            if isinstance(item, _FlushRequest):
                if not (item.answered.is_set() or item.expired()):
                    return
            elif end > self.settled:
                return
            inflight.popleft()

    def unsettled(self) -> list[Item]:
        """What a new helper must get again: Records not reported settled, flush requests not answered."""
        items: list[Item] = []
        for end, item in self.inflight:
            if isinstance(item, _FlushRequest):
                if not (item.answered.is_set() or item.expired()):
                    items.append(item)
            elif end > self.settled:
                items.append(item[max(0, len(item) - (end - self.settled)) :])
        return items


class ProcessForwardSink:
    """A pipeline Sink whose events are encoded and delivered by a helper process."""

    def __init__(self, config: FluentForwardConfig, stats: SelfStats) -> None:
        self._config = config
        self._stats = stats
        self._context = multiprocessing.get_context("spawn")
        self._queue: deque[Item] = deque()
        self._queued = 0
        self._sending = 0
        self._state = SenderState()  # its flush goes through the helper, so only cond and the flags are used
        self._cond = self._state.cond
        self._tokens = itertools.count(1)
        self._pending: dict[int, _FlushRequest] = {}
        self._base = dict.fromkeys(COUNTERS, 0)  # the counters of helpers that have ended
        self._quick_deaths = 0  # helpers in a row that died soon after starting (restart backoff)
        self._wake = threading.Event()  # set at shutdown: ends a restart backoff
        self._child_lock = threading.Lock()
        self._current: _Helper | None = self._start_helper()
        self.metrics = HelperMetrics(self)
        stats.watch_queue(STAGE, self.depth)
        self._feeder = threading.Thread(target=self._feed, name="meshscope-fluentforward-feed", daemon=True)
        self._feeder.start()

    @property
    def durable(self) -> bool:
        """Whether the helper's spool is open (before its first report: whether one is configured)."""
        return bool(self.status().get("durable", self._config.spool.enabled))

    def depth(self) -> int:
        helper = self._current
        return self._queued + self._sending + (helper.sent - helper.settled if helper is not None else 0)

    @property
    def helper_pid(self) -> int | None:
        helper = self._current
        return helper.process.pid if helper is not None else None

    def status(self) -> dict[str, Any]:
        helper = self._current
        return dict(helper.status) if helper is not None else {}

    def metric_values(self) -> dict[str, int]:
        values = {key: value for key, value in self.status().items() if isinstance(value, int)}
        for key, base in self._base.items():
            values[key] = values.get(key, 0) + base
        return values

    # -- the helper --------------------------------------------------------------------------------------

    def _start_helper(self) -> _Helper:
        # A helper left over from a collector that died holds the spool until it has drained: wait for it.
        lock_wait = self._config.shutdown_timeout + self._config.timeout + 10.0
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=helper_main, args=(child, self._config, lock_wait), name="meshscope-fluentforward", daemon=True
        )
        process.start()
        child.close()
        helper = _Helper(process, parent, time.monotonic())
        helper.reader = threading.Thread(
            target=self._read, args=(helper,), name="meshscope-fluentforward-read", daemon=True
        )
        helper.reader.start()
        return helper

    def _helper(self) -> _Helper | None:
        """The running helper; a dead one is replaced (its unsettled items queued again first). None when
        there is none to take Records: shutting down after it ended, or it cannot be started."""
        with self._child_lock:
            current = self._current
            if current is not None and not current.gone and current.process.is_alive():
                return current
            if self._state.stopping:
                return None  # shutdown settles what the last helper held
            if current is not None:
                self._retire(current)
                lived = time.monotonic() - current.started
                self._quick_deaths = self._quick_deaths + 1 if lived < 10.0 else 0
            # A helper that keeps dying at once (or cannot start) is started again with a growing pause.
            if self._quick_deaths > 1 and self._wake.wait(min(10.0, 0.25 * 2**self._quick_deaths)):
                return None
            try:
                self._current = self._start_helper()
            except Exception:
                log.exception("fluentforward: cannot start the helper process")
                self._current = None
                self._quick_deaths += 1
                return None
            return self._current

    def _retire(self, helper: _Helper) -> None:
        """A helper that ended: wait for it and its last report, then queue again what it did not settle."""
        self._end(helper, self._config.shutdown_timeout + self._config.timeout + 5.0)
        log.error("fluentforward: the helper process died (exit code %s); starting it again", helper.process.exitcode)
        self._stats.restarted("fluentforward_helper")
        with self._cond:
            items = helper.unsettled()
            count = sum(len(item) for item in items if not isinstance(item, _FlushRequest))
            self._queue.extendleft(reversed(items))
            self._queued += count
            # What it settled after its last report arrives twice: an upper bound (it may not have read all).
            self._base["resent"] += count
            overflow = self._queued - self._config.queue_size
            if overflow > 0:
                self._drop_oldest(overflow)
                self._stats.drop(STAGE, "queue_full", overflow)
        if count:
            log.warning("fluentforward: %d events the helper had not reported delivered or spooled are sent again",
                        count)  # fmt: skip

    def _end(self, helper: _Helper, timeout: float) -> None:
        """Wait up to ``timeout`` for the helper to exit (then kill it), read its last report, close the pipe."""
        helper.process.join(timeout)
        if helper.process.is_alive():
            log.warning("fluentforward: the helper process did not stop; killing it")
            helper.process.kill()  # it ignores SIGTERM
            helper.process.join(5.0)
        if helper.reader is not None:
            helper.reader.join(READER_JOIN)
        helper.connection.close()
        with self._cond:  # its counters move to the base; status() keeps the rest (its spool's size, …)
            for key in COUNTERS:
                self._base[key] += helper.status.pop(key, 0)

    def _read(self, helper: _Helper) -> None:
        reported: dict[Any, int] = {}  # what of this helper's counters is already in the collector's stats
        connection = helper.connection
        while True:
            try:
                message = connection.recv_bytes()
            except (EOFError, OSError):
                break
            kind, body = message[:1], message[1:]
            try:
                if kind == STATUS:
                    self._apply(helper, msgpack.unpackb(body), reported)
                elif kind == FLUSH:
                    token, answer = msgpack.unpackb(body)
                    request = self._pending.pop(token, None)
                    if request is not None:
                        request.settle(answer)
            except Exception:  # a helper that says nonsense is replaced, as one that died
                log.exception("fluentforward: an unreadable message from the helper process")
                break
        with self._cond:
            helper.gone = True
            self._cond.notify_all()

    def _apply(self, helper: _Helper, status: dict[str, Any], reported: dict[Any, int]) -> None:
        """Add what the helper counted since its last report to the collector's self-metrics."""

        def delta(key: Any, count: int) -> int:
            last = reported.get(key, 0)
            reported[key] = count
            return count - last

        stats = self._stats
        for stage, reason, count in status["dropped"]:
            if change := delta(("drop", stage, reason), count):
                stats.drop(stage, reason, change)
        for reason, count in status["failures"]:
            if change := delta(("failure", reason), count):
                stats.export_failure(NAME, reason, change)
        if change := delta("exported", status["exported"]):
            stats.export_done(NAME, change)
        if status["reachable"] is not None:
            stats.reachability(DEPENDENCY, status["reachable"][0], status["reachable"][1])
        with self._cond:
            helper.status = status
            helper.settled = status["settled"]
            helper.prune()

    # -- the pipeline's side -----------------------------------------------------------------------------

    def hold_back(self, count: int, timeout: float) -> bool:
        """For file tailing (``pipeline.HoldsBack``): until ``count`` more Records fit in the queue, which the
        feeder empties into the helper, while Fluentd answers (True at once when it is away, as the helper
        reports, or when shut down: consume counts what it refuses)."""
        if self._config.when_full != "wait" or not self._stats.reached(DEPENDENCY):
            return True
        return self._state.wait_for_room(lambda: self._queued, count, self._config.queue_size, timeout)

    def consume(self, batch: Sequence[Record] | EncodedBatch) -> None:
        """Records from the pipeline, or events encoded already by file tailing's parsing workers."""
        count = len(batch)
        if not count:
            return
        with self._cond:
            if self._state.closed:
                self._stats.drop(STAGE, "shutdown", count)
                return
            self._queue.append(batch)
            self._queued += count
            overflow = self._queued - self._config.queue_size
            if overflow > 0:
                self._drop_oldest(overflow)
                self._stats.drop(STAGE, "queue_full", overflow)
            self._cond.notify_all()

    def _drop_oldest(self, count: int) -> None:
        self._queued -= count
        kept: deque[Item] = deque()
        while count:
            item = self._queue.popleft()
            if isinstance(item, _FlushRequest):
                kept.append(item)  # a flush still waits for the Records before it (now dropped)
                continue
            if len(item) <= count:
                count -= len(item)
            else:
                self._queue.appendleft(item[count:])
                count = 0
        self._queue.extendleft(reversed(kept))

    def flush(self, timeout: float) -> bool:
        """Everything consumed before is acknowledged or in the helper's fsynced spool; False on timeout."""
        request = _FlushRequest(next(self._tokens), time.monotonic() + timeout)
        self._pending[request.token] = request
        with self._cond:
            self._queue.append(request)
            self._cond.notify_all()
        answered = request.answered.wait(timeout)
        self._pending.pop(request.token, None)
        return answered and request.answer

    def shutdown(self) -> None:
        """Flush, hand the rest to the helper, let it spool what Fluentd has not taken, stop. Idempotent."""
        if not self._state.begin_shutdown(self.flush, self._config.shutdown_timeout):
            return
        self._wake.set()
        self._feeder.join(self._config.timeout + 5.0)
        with self._child_lock:
            helper = self._current
        if helper is not None:
            # The end of the pipe tells the helper to stop (after what is already in it); shutting the
            # socket down (not closing it under the feeder) also ends a write the feeder is blocked in.
            _end_writes(helper.connection)
            self._feeder.join(5.0)
            # The helper delivers or spools what it holds within its own shutdown_timeout (+ a send's timeout).
            self._end(helper, self._config.shutdown_timeout + self._config.timeout + 5.0)
            with self._cond:
                lost = sum(len(item) for item in helper.unsettled() if not isinstance(item, _FlushRequest))
            if lost:
                reason = "shutdown" if helper.process.exitcode == 0 else "helper_died"
                log.error("fluentforward: %d events handed to the helper were not delivered or spooled (%s)",
                          lost, reason)  # fmt: skip
                self._stats.drop(STAGE, reason, lost)
        with self._cond:
            if self._queued:
                self._stats.drop(STAGE, "shutdown", self._queued)
            self._queue.clear()
            self._queued = 0

    # -- the feeder thread -------------------------------------------------------------------------------

    def _take(self, helper: _Helper | None) -> Item | None:
        with self._cond:
            while True:
                if helper is not None and helper.gone:
                    return _RESTART
                while self._queue and isinstance(self._queue[0], _FlushRequest) and self._queue[0].expired():
                    self._queue.popleft()  # its caller gave up: nobody waits for the answer
                if self._queue:
                    break
                if self._state.stopping:
                    return None
                self._cond.wait()
            head = self._queue[0]
            if isinstance(head, _FlushRequest):
                self._queue.popleft()
                return head
            if isinstance(head, EncodedBatch):
                return self._take_encoded()
            records: list[Any] = []
            while self._queue and len(records) < FEED_RECORDS:
                item = self._queue[0]
                if isinstance(item, (_FlushRequest, EncodedBatch)):
                    break
                want = FEED_RECORDS - len(records)
                if len(item) <= want:
                    records.extend(item)
                    self._queue.popleft()
                else:
                    records.extend(item[:want])
                    self._queue[0] = item[want:]
            self._queued -= len(records)
            self._sending = len(records)
            return records

    def _take_encoded(self) -> EncodedBatch:
        """Encoded batches from the head of the queue, joined into one pipe message of at most
        ``FEED_RECORDS`` events (the helper holds two messages' worth: a bigger one would overflow it).
        A batch that does not fit whole is split, as Records are."""
        segments: list[Segment] = []
        count = 0
        while self._queue and count < FEED_RECORDS:
            item = self._queue[0]
            if not isinstance(item, EncodedBatch):
                break
            want = FEED_RECORDS - count
            if len(item) > want:
                self._queue[0] = item[want:]
                item = item[:want]
            else:
                self._queue.popleft()
            segments.extend(item.segments)
            count += len(item)
        self._queued -= count
        self._sending = count
        return EncodedBatch(segments)

    def _feed(self) -> None:
        pack = _ENCODER.encode
        while True:
            helper = self._helper()
            item = self._take(helper)
            if item is None:
                return
            if item is _RESTART:
                continue
            try:
                if helper is None:
                    self._refuse(item)
                elif isinstance(item, _FlushRequest):
                    self._send(
                        helper, item, FLUSH + pack([item.token, max(0.0, item.deadline - time.monotonic() - 0.1)])
                    )
                elif isinstance(item, EncodedBatch):
                    frames = [entries for _, entries, _ in item.segments]
                    self._send(helper, item, ENCODED + pack(item.heads()), frames)
                else:
                    message = records_message(item)
                    self._send(helper, PipedRecords(message, len(item)), message)
            except Exception:
                log.exception("fluentforward: cannot hand a batch to the helper process")
                if not isinstance(item, _FlushRequest):
                    self._stats.drop(STAGE, "internal_error", len(item))
            finally:
                with self._cond:
                    self._sending = 0
            item = None  # its Records are freed now, not while the next _take waits

    def _send(
        self, helper: _Helper, item: Inflight, message: bytes | bytearray, frames: Sequence[bytes | bytearray] = ()
    ) -> None:
        with self._cond:
            if not isinstance(item, _FlushRequest):
                helper.sent += len(item)
            helper.inflight.append((helper.sent, item))
        try:
            helper.connection.send_bytes(message)
            for frame in frames:
                helper.connection.send_bytes(frame)
        except OSError:
            # The helper died (or shutdown ended the pipe): the item stays in flight for the next helper.
            with self._cond:
                helper.gone = True

    def _refuse(self, item: Item) -> None:
        """No helper can take the item (shutting down after the helper ended, or none could be started)."""
        if isinstance(item, _FlushRequest):
            item.settle(False)
            return
        reason = "shutdown" if self._state.stopping else "helper_died"
        self._stats.drop(STAGE, reason, len(item))


def _end_writes(connection: Connection) -> None:
    """Shut the pipe down for writing: the helper reads to its end, a write blocked in another thread fails."""
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class HelperMetrics(Collector):
    """The helper's counters (those of helpers that ended included) as the in-thread sink names them."""

    def __init__(self, sink: ProcessForwardSink) -> None:
        self._sink = sink

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        return metric_families(self._sink.metric_values())
