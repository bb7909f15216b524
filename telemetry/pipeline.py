"""Receivers hand batches of Records to the pipeline, which fans them out to every sink.

A batch submitted while the pipeline is idle is delivered in the submitting thread; batches that arrive
while one is being delivered queue, and one worker thread delivers them in order. Sinks must return from
``consume`` promptly (each one that can fall behind has its own bounded queue and counts its own drops):
a receiver's thread may be the one delivering.

The queue is bounded in records. A receiver that can wait (file tailing) blocks until there is room
and so falls behind instead of losing lines; one that cannot (a request being answered) gets a refusal
and the refused records are counted in ``meshscope_dropped_total{stage="pipeline",reason="queue_full"}``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Protocol

from telemetry.model import Record
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)


_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def tune_gc() -> None:
    """Memory settings for a long-running ingest process (the collector, its workers and helpers).

    Parsing allocates many short-lived tuples and no cycles among them: a larger young generation
    keeps the cyclic collector from running every few hundred records. And glibc gives each thread
    that allocates its own malloc arena (up to 8 per core), whose freed memory is rarely returned: in a
    10-minute soak RSS crept 334 -> 453 MiB with default arenas and plateaued with two (tracemalloc flat
    at 55 MiB all along), so the arenas are limited to two, here and, through the environment, in every
    process this one starts.
    """
    gc.set_threshold(50_000, 20, 20)
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))
    except (OSError, AttributeError, ValueError):
        pass  # not glibc (musl, macOS): nothing to tune


class Sink(Protocol):
    def consume(self, batch: Sequence[Record]) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


class HoldsBack(Protocol):
    """A sink with a bounded queue of its own (the log sinks), which drops its oldest Records when full
    unless it is set to make receivers that can wait (file tailing, through ``Pipeline.wait_for_room``)
    wait for room (``when_full: wait``). Even then it holds them back only while its backend answers: one
    that is away gets its outage handling (the spool, or drops counted), so an outage does not stop the
    metrics of tailed files. Receivers that cannot wait still drop, and can take the room a waiting one
    waits for: hence not the default."""

    def hold_back(self, count: int, timeout: float) -> bool:
        """True once ``count`` more Records (what the pipeline holds ahead, and the batch) fit, or at once
        when waiting is not wanted (not set, the backend away) or cannot help (the sink has stopped: it
        counts what it drops); False when ``timeout`` ran out."""
        ...


class Receiver(Protocol):
    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class Pipeline:
    def __init__(
        self,
        sinks: Sequence[tuple[str, Sink]],
        stats: SelfStats,
        queue_size: int = 100_000,
        batch_size: int = 8192,
        batch_timeout: float = 0.2,
        process: Callable[[list[Record]], list[Record]] | None = None,
        threaded: bool = True,
    ) -> None:
        """A batch submitted while nothing is queued or being delivered is handed to the sinks in the
        submitting thread; the worker thread delivers what queues up behind it. Two threads taking turns
        with the GIL for every batch cost a receiver 10-20% of its throughput, and the sinks still see one
        batch at a time, in order.

        ``threaded=False`` is for a single producer that waits anyway (offline ingest): no worker and no
        queue, every batch is delivered in the caller's thread (``wait`` is moot: nothing is refused but at
        shutdown), and a sink must not submit."""
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be positive")
        self._sinks = list(sinks)
        self._holding: list[HoldsBack] = [sink for _, sink in sinks if callable(getattr(sink, "hold_back", None))]  # type: ignore[misc]
        self._stats = stats
        self._capacity = queue_size
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout
        # One step on each batch before the fan-out (as a collector's processor), e.g. filling trace ids.
        self._process = process
        # Each queued batch with the names of the sinks that must not see it (they were given its totals).
        self._queue: deque[tuple[Sequence[Record], frozenset[str]]] = deque()
        self._queued = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closed = False
        self._abandoned = False  # shutdown ran out of time: what is still queued is counted, not delivered
        self._threaded = threaded
        self._delivering = threading.Lock()  # held while a batch is handed to the sinks: one at a time
        self._started = False  # until start(), everything submitted waits in the queue
        self._worker = threading.Thread(target=self._run, name="meshscope-pipeline", daemon=True)
        self._shutdown_lock = threading.Lock()
        self._finished = False
        stats.watch_queue("pipeline", lambda: self._queued)

    def start(self) -> None:
        if self._threaded:
            self._worker.start()
        self._started = True

    def _no_room(self, count: int) -> bool:
        # A batch larger than the whole queue is still accepted into an empty queue.
        return not self._closed and bool(self._queued) and self._queued + count > self._capacity

    def wait_for_room(self, count: int, timeout: float) -> bool:
        """Whether ``count`` records would be accepted now, waiting up to ``timeout``; counts nothing.

        For a receiver that can wait but must also notice its own shutdown: it waits in slices here and
        submits once there is room. Sinks with a bounded queue of their own (``HoldsBack``) are waited
        for too: file tailing falls behind rather than a log sink dropping the oldest Records.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._no_room(count):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            ahead = self._queued + self._in_flight  # reaches each sink before this batch
        for sink in self._holding:
            if not sink.hold_back(ahead + count, max(deadline - time.monotonic(), 0.0)):
                return False
        return True

    def submit(
        self, records: Sequence[Record], receiver: str, wait: float | None = 0.0, skip: frozenset[str] = frozenset()
    ) -> bool:
        """Queue one batch. ``wait`` is how long to wait for room: 0 refuses at once, None waits forever.

        ``skip`` names sinks the batch bypasses: a receiver whose workers pre-aggregated the metrics sink's
        totals (and merged them into it) still hands the Records on to the other sinks.

        Returns False (and counts the drop) when the batch was refused.
        """
        count = len(records)
        if not count:
            return True
        if not self._threaded:
            return self._submit_inline(records, receiver, skip)
        deadline = None if wait is None else time.monotonic() + wait
        with self._cond:
            while self._no_room(count):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._closed or self._no_room(count):
                reason = "shutdown" if self._closed else "queue_full"
                self._stats.drop("pipeline", reason, count)
                return False
            # Idle: deliver here, ahead of nothing. The worker only ever waits for this lock outside
            # the condition, so trying it inside cannot deadlock.
            inline = (
                self._started and not self._queue and not self._in_flight and self._delivering.acquire(blocking=False)
            )
            if inline:
                self._in_flight += count
            else:
                self._queue.append((records, skip))
                self._queued += count
                self._cond.notify_all()
        self._stats.received(receiver, count)
        if inline:
            try:
                self._deliver_batches(records, skip)
            finally:
                self._delivering.release()
                with self._cond:
                    self._in_flight -= count
                    self._cond.notify_all()
        return True

    def _take(self) -> tuple[list[Record], frozenset[str]] | None:
        """Wait for records and return up to a batch's worth (batches skipping other sinks are not joined),
        with the sinks to skip; None once closed and drained."""
        with self._cond:
            while not self._queue or self._abandoned:
                if self._closed or self._abandoned:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self._batch_timeout
            while self._queued < self._batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[Record] = []
            skip = self._queue[0][1]
            while self._queue and len(batch) < self._batch_size and self._queue[0][1] == skip:
                batch.extend(self._queue.popleft()[0])
            self._queued -= len(batch)
            self._in_flight += len(batch)
            self._cond.notify_all()
            return batch, skip

    def _submit_inline(self, records: Sequence[Record], receiver: str, skip: frozenset[str]) -> bool:
        with self._delivering:
            if self._closed:
                self._stats.drop("pipeline", "shutdown", len(records))
                return False
            self._stats.received(receiver, len(records))
            self._deliver_batches(records, skip)
        return True

    def _run(self) -> None:
        while (taken_batch := self._take()) is not None:
            batch, skip = taken_batch
            taken = len(batch)
            with self._delivering:
                self._deliver(batch, skip)
            with self._cond:
                self._in_flight -= taken
                self._cond.notify_all()

    def _deliver_batches(self, records: Sequence[Record], skip: frozenset[str]) -> None:
        for start in range(0, len(records), self._batch_size):
            self._deliver(list(records[start : start + self._batch_size]), skip)

    def _deliver(self, batch: list[Record], skip: frozenset[str]) -> None:
        if self._process is not None:
            try:
                batch = self._process(batch)
            except Exception:
                log.exception("the pipeline's processor failed; the batch goes on unprocessed")
        for name, sink in self._sinks:
            if name in skip:
                continue
            try:
                sink.consume(batch)
            except Exception:
                log.exception("sink %s failed on a batch of %d records", name, len(batch))
                self._stats.drop(f"sink:{name}", "sink_error", len(batch))

    def _drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queued or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued has been handed to the sinks (not flushed); False on timeout."""
        return self._drain(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver everything queued to the sinks, then flush each sink."""
        deadline = time.monotonic() + timeout
        done = self._drain(timeout)
        for _, sink in self._sinks:
            done = sink.flush(max(0.0, deadline - time.monotonic())) and done
        return done

    def shutdown(self, timeout: float = 10.0) -> None:
        """Refuse new records, drain the queue into the sinks, flush and shut every sink down. Idempotent."""
        with self._shutdown_lock:
            if self._finished:
                return
            self._finished = True
        deadline = time.monotonic() + timeout
        if self._worker.is_alive():
            self._drain(timeout)
        # Unthreaded, closing waits for the delivery under way; threaded, a hung sink must not stop it.
        with self._delivering if not self._threaded else nullcontext(), self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            # A batch a receiver was delivering itself when the queue closed reaches the sinks before
            # they are flushed, as a queued one does.
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            # The worker takes nothing more once abandoned, so what is counted here is never delivered.
            self._abandoned = True
            self._cond.notify_all()
            if self._queued:
                self._stats.drop("pipeline", "shutdown_timeout", self._queued)
                self._queue.clear()
                self._queued = 0
        for name, sink in self._sinks:
            try:
                sink.flush(max(0.0, deadline - time.monotonic()))
                sink.shutdown()
            except Exception:
                log.exception("sink %s failed to shut down", name)
