"""The Fluentd forward log sink: Records in, acknowledged PackedForward chunks out, a spool between.

``consume`` only appends a reference to the pipeline's batch to a bounded queue (in Records; beyond
``queue_size`` the oldest are dropped, ``reason="queue_full"``). One sender thread takes up to
``batch_size`` Records, encodes them (encoder.py) into one chunk per tag and delivers each:

* **direct**: Fluentd is connected and nothing is spooled: send, wait for the acknowledgement. While
  the last chunk of a batch waits for it, the next batch is taken and encoded when it is queued already
  (under load encoding and Fluentd's reading overlap; still one chunk in flight, in order).
* **spooled**: Fluentd is unreachable, a send failed, or older chunks are still spooled: the chunk is
  appended to the on-disk spool (spool.py), and the sender replays the spool oldest first whenever a
  connection can be made (reconnecting with ``retry``'s backoff). New chunks keep going to the spool
  until it is empty, so Fluentd receives every chunk in the order it was made.

A chunk sent without an acknowledgement (timeout, connection lost, an answer that is not msgpack) is
spooled with ``attempted`` set and resent: delivery is at-least-once, and the events of such resends are
counted as possible duplicates (``meshscope_fluentforward_resent_events_total``). After
``max_chunk_attempts`` such sends the chunk is dropped (``reason="rejected"``), so one chunk Fluentd keeps
refusing cannot hold back everything behind it. Without a spool a failing chunk is retried in memory
with backoff until ``retry.max_elapsed`` (then ``reason="gave_up"``) while the queue bound decides what
else is lost.

``flush`` waits until every Record consumed before it was acknowledged, spooled (and the spool
fsynced) or counted as dropped: the collector calls it before saving a file-tailing checkpoint, so a
checkpoint never covers lines that exist only in memory.

A spool directory that cannot be opened (unusable, or locked by a predecessor still draining) is tried
again every ``SPOOL_RETRY`` seconds; until then chunks wait in memory. Drops are counted under the stage
``exporter:fluentforward``, as every exporter's.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from telemetry.exporters.export_queue import backoff_delay
from telemetry.exporters.fluentforward.config import FluentForwardConfig
from telemetry.exporters.fluentforward.encoder import Batch, EntryEncoder
from telemetry.exporters.fluentforward.spool import Chunk, Spool
from telemetry.exporters.fluentforward.transport import ForwardConnection, ForwardError
from telemetry.exporters.log_event import now_timestamp
from telemetry.exporters.sender import SenderState
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

NAME = "fluentforward"
STAGE = f"exporter:{NAME}"  # the stage label of its drops and queue depth, as ExportQueue names exporters'
DEPENDENCY = "fluentd"  # the name the UI's banner shows
SPOOL_RETRY = 5.0  # seconds between attempts to open a spool directory that could not be opened
SPOOL_ERROR_PAUSE = 1.0  # seconds replay pauses after the spool failed to read or write
# The sink's own metrics (key -> family, name, help); the helper process reports the same keys.
METRICS: tuple[tuple[str, type[CounterMetricFamily] | type[GaugeMetricFamily], str, str], ...] = (
    ("sent", CounterMetricFamily, "meshscope_fluentforward_sent_events",
     "Events written to Fluentd (resends included)."),
    ("acknowledged", CounterMetricFamily, "meshscope_fluentforward_acknowledged_events",
     "Events Fluentd acknowledged (or accepted, when acknowledgements are off)."),
    ("resent", CounterMetricFamily, "meshscope_fluentforward_resent_events",
     "Events sent again after an attempt that got no acknowledgement: possible duplicates."),
    ("spooled", CounterMetricFamily, "meshscope_fluentforward_spooled_events", "Events written to the on-disk spool."),
    ("spool_events", GaugeMetricFamily, "meshscope_fluentforward_spool_events", "Events in the spool waiting for Fluentd."),
    ("spool_bytes", GaugeMetricFamily, "meshscope_fluentforward_spool_bytes", "Size of the spool's segment files."),
)  # fmt: skip
COUNTERS = tuple(key for key, family, _, _ in METRICS if family is CounterMetricFamily)


def metric_families(values: Mapping[str, int]) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    for key, family, name, documentation in METRICS:
        yield family(name, documentation, values.get(key, 0))


def new_chunk_id() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


class ForwardSink:
    def __init__(self, config: FluentForwardConfig, stats: SelfStats, lock_wait: float = 0.0) -> None:
        """``lock_wait``: how long to wait for another process to release the spool (a helper process's
        predecessor that is still draining)."""
        self._config = config
        self._stats = stats
        self._host, self._port = config.address()
        self._encoder = EntryEncoder(config.tag, config.include_original)
        self._spool: Spool | None = None
        self._spool_failing = False  # the last attempt to open the spool failed (logged once per streak)
        self._spool_retry_at = 0.0
        self._replay_at = 0.0  # replay pauses until then after a spool I/O error
        if config.spool.enabled:
            self._open_spool(lock_wait)
        self._queue: deque[tuple[Batch, int]] = deque()  # (batch, index of its first queued Record)
        self._queued = 0
        self._encoding = 0  # Records taken by the sender and not yet settled
        # Positions in consumption order: Records leave the queue from its head only (taken or dropped).
        self._accepted = 0  # Records ever consumed
        self._dequeued = 0  # of those, how many left the queue
        self._batch_start = 0  # position of the first Record of the batch the sender works on
        self._state = SenderState()
        self._cond = self._state.cond
        self._abandoned = False  # shutdown gave up on a stuck sender and counted its Records itself
        self._refused = 0  # Records consumed after shutdown began (counted as dropped)
        self._connection: ForwardConnection | None = None
        self._failures = 0  # consecutive failed connection attempts
        self._retry_at = 0.0
        # (chunk id, sends without an acknowledgement) of the spool's head chunk: only the head is replayed,
        # so one pair is all there is to remember.
        self._head_attempts: tuple[str, int] = ("", 0)
        self.sent_events = 0
        self.acknowledged_events = 0
        self.resent_events = 0
        self.reachability: tuple[bool, str] | None = None  # the last connection attempt's outcome
        stats.watch_queue(STAGE, self.depth)
        self.metrics = ForwardMetrics(self)
        self._worker = threading.Thread(target=self._run, name="meshscope-fluentforward", daemon=True)
        self._worker.start()

    def _open_spool(self, lock_wait: float = 0.0) -> None:
        spool = self._config.spool
        try:
            self._spool = Spool(spool.directory, spool.max_bytes, spool.segment_bytes, self._stats, STAGE, lock_wait)
        except OSError as error:
            # The collector still runs; events then wait only in memory while Fluentd is away.
            self._spool_retry_at = time.monotonic() + SPOOL_RETRY
            if not self._spool_failing:
                log.error("fluentforward: cannot use the spool directory %s (%s); running without a spool, "
                          "trying again every %gs", spool.directory, error.strerror or error, SPOOL_RETRY)  # fmt: skip
                self._stats.export_failure(NAME, "spool_unusable")
            self._spool_failing = True
            return
        if self._spool_failing:
            log.info("fluentforward: the spool directory %s is usable now", spool.directory)
        self._spool_failing = False

    def _spool_missing(self) -> bool:
        """Whether a spool is configured but not open (yet); tries to open it when it is time."""
        if self._spool is not None or not self._config.spool.enabled or self._state.abort.is_set():
            return False
        if time.monotonic() >= self._spool_retry_at:
            self._open_spool()
        return self._spool is None

    def _drop(self, reason: str, count: int) -> None:
        if count and not self._abandoned:  # an abandoned sender's Records were counted by shutdown
            self._stats.drop(STAGE, reason, count)

    # -- the pipeline's side -------------------------------------------------------------------------

    def depth(self) -> int:
        return self._queued + self._encoding

    @property
    def spool(self) -> Spool | None:
        return self._spool

    @property
    def durable(self) -> bool:
        """Whether Records are kept on disk (the spool is open) rather than only in memory while undelivered."""
        return self._spool is not None

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    def settled_records(self) -> int:
        """How many Records ever consumed are acknowledged, spooled or counted as dropped."""
        with self._cond:
            return self._dequeued - self._encoding + self._refused

    def metric_values(self) -> dict[str, int]:
        spool = self._spool
        return {
            "sent": self.sent_events,
            "acknowledged": self.acknowledged_events,
            "resent": self.resent_events,
            "spooled": spool.spooled_events if spool is not None else 0,
            "spool_events": spool.pending_events if spool is not None else 0,
            "spool_bytes": spool.disk_bytes() if spool is not None else 0,
        }

    def consume(self, batch: Batch) -> None:
        """Records as the pipeline hands them over, as the helper process receives them (RowBatch), or
        encoded already by file tailing's parsing workers (EncodedBatch)."""
        count = len(batch)
        if not count:
            return
        with self._cond:
            if self._state.closed:
                self._stats.drop(STAGE, "shutdown", count)
                self._refused += count
                return
            was_empty = not self._queued
            self._queue.append((batch, 0))
            self._queued += count
            self._accepted += count
            overflow = self._queued - self._config.queue_size
            if overflow > 0:
                self._drop_oldest(overflow)
                self._stats.drop(STAGE, "queue_full", overflow)
            if was_empty or self._queued >= self._config.batch_size:
                self._cond.notify_all()

    def hold_back(self, count: int, timeout: float) -> bool:
        """For file tailing (``pipeline.HoldsBack``): until ``count`` more Records fit in the queue, while
        Fluentd answers (away, the spool takes the queue); True at once when the sender has stopped."""
        if self._config.when_full != "wait" or not self._stats.reached(DEPENDENCY):
            return True
        return self.wait_for_room(count, timeout) or not self._worker.is_alive()

    def wait_for_room(self, count: int, timeout: float) -> bool:
        """For a feeder that can wait (the helper process's pipe): until ``count`` more Records fit; False on
        timeout, or when the sender has stopped (nothing would make room)."""
        fits = self._state.wait_for_room(lambda: self._queued, count, self._config.queue_size, timeout)
        return fits and self._worker.is_alive()

    def _drop_oldest(self, count: int) -> None:
        self._queued -= count
        self._dequeued += count
        while count:
            batch, start = self._queue[0]
            left = len(batch) - start
            if left <= count:
                self._queue.popleft()
                count -= left
            else:
                self._queue[0] = (batch, start + count)
                count = 0

    def flush(self, timeout: float) -> bool:
        """Wait until every Record consumed so far is acknowledged, spooled or counted; False on timeout."""
        target = self._accepted
        if not self._state.wait_until_idle(lambda: not self._settled_before(target), self._worker, timeout):
            return False
        spool = self._spool
        if spool is not None:
            try:
                spool.sync()
            except OSError as error:
                log.warning("fluentforward: cannot sync the spool: %s", error)
                return False
        return True

    def _settled_before(self, position: int) -> bool:
        """Whether every Record consumed before ``position`` is acknowledged, spooled or counted as dropped."""
        return self._dequeued >= position and (not self._encoding or self._batch_start >= position)

    def shutdown(self) -> None:
        """Refuse new Records, deliver or spool what is queued, stop. Idempotent."""
        # Once its abort is set, no new connection is made and a chunk waiting in memory is given up.
        if not self._state.begin_shutdown(self.flush, self._config.shutdown_timeout):
            return
        connection = self._connection
        if connection is not None:
            connection.abort()  # a send or an acknowledgement wait ends now; its chunk goes to the spool
        self._worker.join(self._config.timeout + 1.0)
        if self._worker.is_alive():  # stuck outside the network (a hung disk): count what it holds
            with self._cond:
                log.warning("fluentforward: the sender did not stop; %d events are lost",
                            self._queued + self._encoding)  # fmt: skip
                self._discard("shutdown")
                self._drop("shutdown", self._encoding)
                self._abandoned = True
        else:
            self._spool_remaining()
        self._disconnect()
        if self._spool is not None:
            self._spool.close()  # appends of a sender still running fail from now on

    def _spool_remaining(self) -> None:
        """After the sender stopped: what is still queued goes to the spool (or is counted as dropped)."""
        with self._cond:
            batches, count = self._take_records(self._queued)
        if not count:
            return
        if self._spool is None:
            self._drop("shutdown", count)
            self._settle(count)
            return
        for chunk in self._encode(batches):
            self._to_spool(chunk)
            self._settle(chunk.events)

    def _discard(self, reason: str) -> None:
        if self._queued:
            self._drop(reason, self._queued)
            self._dequeued += self._queued
            self._queue.clear()
            self._queued = 0

    # -- the sender thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while (batches := self._take()) is not None:
            try:
                self._spool_missing()  # opens a configured spool when it is time to try again (not under the lock)
                self._deliver_batches(self._encode(batches))
                self._replay()
            except Exception:
                log.exception("fluentforward: the sender failed; its batch is counted as dropped")
                self._drop("internal_error", self._encoding)
                self._settle(self._encoding)
                self._state.abort.wait(SPOOL_ERROR_PAUSE)  # never a busy loop of the same failure

    def _deliver_batches(self, chunks: list[Chunk]) -> None:
        """Deliver a batch's chunks in order. While the last waits for its acknowledgement, the next batch is
        taken and encoded (when it is queued already) and delivered after it the same way: encoding and
        Fluentd's reading overlap, and the chunks still go one at a time, in order."""
        pending = deque(chunks)
        taken: list[tuple[int, list[Chunk]]] = []  # (position of its first Record, its chunks)

        def encode_next() -> None:
            taken.append(self._encode_next())

        while pending:
            chunk = pending.popleft()
            self._deliver(chunk, None if pending else encode_next)
            if taken:
                start, more = taken.pop()
                pending.extend(more)
                with self._cond:  # the batch before is settled: a flush now waits for this one
                    self._batch_start = start
                    self._cond.notify_all()

    def _spool_due(self) -> float | None:
        """Seconds until spooled chunks can be replayed, or the spool opened (0: now); None: nothing to do."""
        if self._spool is None and self._config.spool.enabled and not self._state.abort.is_set():
            return max(0.0, self._spool_retry_at - time.monotonic())  # time to try opening it again
        if self._spool is None or not self._spool.pending_events:
            return None
        now = time.monotonic()
        at = self._replay_at if self._connection is not None else max(self._retry_at, self._replay_at)
        return max(0.0, at - now)

    def _take(self) -> list[Batch] | None:
        """The next Records to encode (maybe none, when spooled chunks are due); None when stopping."""
        batch_size = self._config.batch_size
        with self._cond:
            while not self._queued:  # unlike other exporters' workers, this one may replay the spool meanwhile
                if self._state.stopping:
                    return None
                due = None if self._state.closed else self._spool_due()
                if due == 0.0:
                    return []
                self._cond.wait(due)
            if not self._state.wait_for_batch(lambda: self._queued, batch_size, self._config.batch_timeout):
                return None
            return self._take_records(batch_size)[0]

    def _encode_next(self) -> tuple[int, list[Chunk]]:
        """While the last chunk of a batch waits for its acknowledgement: the next batch's chunks, when a
        whole batch is queued already (or a flush or shutdown waits for what is), and its first position."""
        with self._cond:
            start = self._dequeued
            queued = self._queued
            if not (queued >= self._config.batch_size or (queued and (self._state.flushers or self._state.closed))):
                return start, []
            batches, _ = self._take_records(self._config.batch_size, overlapping=True)
        return start, self._encode(batches)

    def _take_records(self, limit: int, overlapping: bool = False) -> tuple[list[Batch], int]:
        """Up to ``limit`` Records from the head of the queue, as (parts of) the batches consumed; and how many.
        ``overlapping``: the batch before is not settled yet (``_batch_start`` stays its first position)."""
        taken: list[Batch] = []
        count = 0
        while self._queue and count < limit:
            batch, start = self._queue[0]
            size = len(batch)
            stop = min(size, start + limit - count)
            try:
                taken.append(batch if start == 0 and stop == size else batch[start:stop])
            except ValueError:
                # Encoded events that are not what their count says, found where they had to be split:
                # the rest of that batch is dropped whole, before any of it is in a chunk.
                log.error("fluentforward: %d encoded events are malformed; dropped", size - start)
                self._drop("malformed", size - start)
                self._queue.popleft()
                self._queued -= size - start
                self._dequeued += size - start
                continue
            count += stop - start
            if stop == size:
                self._queue.popleft()
            else:
                self._queue[0] = (batch, stop)
        if not overlapping:
            self._batch_start = self._dequeued
        self._queued -= count
        self._dequeued += count
        self._encoding += count
        self._cond.notify_all()  # room for a waiting feeder
        return taken, count

    def _settle(self, count: int) -> None:
        with self._cond:
            self._encoding -= count
            self._cond.notify_all()

    def _encode(self, batches: list[Batch]) -> list[Chunk]:
        fallback, now = now_timestamp(), divmod(time.time_ns(), 1_000_000_000)
        groups = self._encoder.encode_all(batches, fallback, now)
        skipped, self._encoder.unencodable = self._encoder.unencodable, 0
        if skipped:
            self._drop("unencodable", skipped)
            self._settle(skipped)
        return [Chunk(tag, new_chunk_id(), entries, events) for tag, (entries, events) in groups.items()]

    # -- delivery ------------------------------------------------------------------------------------

    def _connected(self) -> bool:
        """Whether a connection is open, opening one when the backoff allows."""
        if self._connection is not None:
            return True
        if time.monotonic() < self._retry_at or self._state.abort.is_set():
            return False
        try:
            self._connection = ForwardConnection(self._host, self._port, self._config.timeout)
        except ForwardError as error:
            self._failed(str(error), "unreachable")
            return False
        self._failures = 0
        self.reachability = (True, "")
        self._stats.reachability(DEPENDENCY, True)
        log.info("fluentforward: connected to %s:%d", self._host, self._port)
        return True

    def _failed(self, detail: str, reason: str = "send") -> None:
        if not self._failures:
            log.warning("fluentforward: Fluentd at %s:%d: %s", self._host, self._port, detail)
        self.reachability = (False, f"{self._host}:{self._port}: {detail}")
        self._stats.reachability(DEPENDENCY, *self.reachability)
        self._stats.export_failure(NAME, reason)
        self._retry_at = time.monotonic() + backoff_delay(self._failures, self._config.retry)
        self._failures += 1
        self._disconnect()

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, chunk: Chunk, meanwhile: Callable[[], None] | None = None) -> None:
        """Raises ForwardError for any failure: the caller then drops the connection and resends.
        ``meanwhile`` runs after the chunk is written, before its acknowledgement is read."""
        connection = self._connection
        assert connection is not None
        self.sent_events += chunk.events
        require_ack = self._config.require_ack
        try:
            connection.write(chunk, require_ack, self._config.compression == "gzip")
        except ForwardError:
            raise
        except Exception as error:  # the connection's state is unknown: never reuse it
            log.exception("fluentforward: sending a chunk failed unexpectedly")
            raise ForwardError(f"sending failed: {error!r}", sent=True) from None
        if meanwhile is not None:
            meanwhile()
        if require_ack:
            try:
                connection.wait_ack(chunk.chunk_id)
            except ForwardError:
                raise
            except Exception as error:
                log.exception("fluentforward: reading an acknowledgement failed unexpectedly")
                raise ForwardError(f"reading the acknowledgement failed: {error!r}", sent=True) from None
        self.acknowledged_events += chunk.events
        self._stats.export_done(NAME, chunk.events)

    def _deliver(self, chunk: Chunk, meanwhile: Callable[[], None] | None = None) -> None:
        """Send (or spool) one chunk; ``meanwhile`` runs while Fluentd reads it, when it is sent now."""
        if self._spool is None:
            self._spool_missing()  # opens a configured spool when it is time to try again
        if self._spool is None:
            self._deliver_from_memory(chunk)
            return
        if not self._spool.pending_events and self._connected():
            try:
                self._send(chunk, meanwhile)
            except ForwardError as error:
                self._failed(str(error))
                chunk = chunk._replace(attempted=error.sent)
            else:
                self._settle(chunk.events)
                return
        self._to_spool(chunk)
        self._settle(chunk.events)

    def _to_spool(self, chunk: Chunk) -> None:
        assert self._spool is not None
        try:
            self._spool.append(chunk)
        except OSError as error:
            log.error("fluentforward: cannot write to the spool: %s", error)
            self._drop("spool_error", chunk.events)

    def _deliver_from_memory(self, chunk: Chunk) -> None:
        """Without a spool: retry in memory with backoff until ``retry.max_elapsed`` or shutdown (or until
        the configured spool can be opened: then it goes there)."""
        started = time.monotonic()
        resend = False
        attempts = 0
        while True:
            if self._connected():
                try:
                    self._send(chunk)
                except ForwardError as error:
                    self._failed(str(error))
                    resend = resend or error.sent
                    attempts += error.sent
                    if self._gave_up_on(chunk, attempts):
                        self._settle(chunk.events)
                        return
                else:
                    if resend:
                        self.resent_events += chunk.events
                    self._settle(chunk.events)
                    return
            max_elapsed = self._config.retry.max_elapsed
            if max_elapsed and time.monotonic() - started >= max_elapsed:
                self._stats.export_failure(NAME, "gave_up")
                self._drop("gave_up", chunk.events)
                self._settle(chunk.events)
                return
            if self._state.abort.wait(max(0.01, self._retry_at - time.monotonic())):
                self._drop("shutdown", chunk.events)
                self._settle(chunk.events)
                return
            if not self._spool_missing() and self._spool is not None:
                self._to_spool(chunk._replace(attempted=resend))
                self._settle(chunk.events)
                return

    def _gave_up_on(self, chunk: Chunk, attempts: int) -> bool:
        """After ``max_chunk_attempts`` unacknowledged sends the chunk is dropped (``reason="rejected"``)."""
        limit = self._config.max_chunk_attempts
        if not limit or attempts < limit:
            return False
        log.error("fluentforward: Fluentd did not acknowledge a chunk of %d events (%s) in %d sends; dropped",
                  chunk.events, chunk.tag, attempts)  # fmt: skip
        self._drop("rejected", chunk.events)
        return True

    def _spool_failed(self, error: OSError, what: str) -> None:
        log.error("fluentforward: the spool failed (%s): %s; replay pauses %gs", what, error, SPOOL_ERROR_PAUSE)
        self._replay_at = time.monotonic() + SPOOL_ERROR_PAUSE

    def _replay(self) -> None:
        """Send spooled chunks, oldest first, while Fluentd takes them and new Records can wait."""
        spool = self._spool
        if spool is None:
            return
        batch_size = self._config.batch_size
        while spool.pending_events and not self._state.abort.is_set() and time.monotonic() >= self._replay_at:
            if self._queued and (self._state.flushers or self._state.closed or self._queued >= batch_size):
                return  # new Records first: they only need appending to the spool
            if not self._connected():
                return
            try:
                chunk = spool.peek()
            except OSError as error:
                # An unreadable segment would fail the same way forever: its events are given up.
                self._spool_failed(error, "reading; its oldest segment is dropped")
                spool.discard_head("spool_error")
                return
            if chunk is None:
                return
            if self._head_attempts[0] != chunk.chunk_id:
                self._head_attempts = (chunk.chunk_id, int(chunk.attempted))
            try:
                self._send(chunk)
            except ForwardError as error:
                self._failed(str(error))
                if error.sent:
                    attempts = self._head_attempts[1] + 1
                    self._head_attempts = (chunk.chunk_id, attempts)
                    if self._gave_up_on(chunk, attempts):
                        self._commit(spool)
                return
            if self._head_attempts[1]:
                self.resent_events += chunk.events
            self._commit(spool)

    def _commit(self, spool: Spool) -> None:
        self._head_attempts = ("", 0)
        try:
            spool.commit()
        except OSError as error:
            self._spool_failed(error, "writing its cursor")


class ForwardMetrics(Collector):
    """The sink's own counters, beside meshscope_exported_total{exporter="fluentforward"}."""

    def __init__(self, sink: ForwardSink) -> None:
        self._sink = sink

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        return metric_families(self._sink.metric_values())
