"""Receivers hand batches of Records to the pipeline; one worker batches them and fans out to sinks.

The queue is bounded in records. A receiver that can wait (file tailing) blocks until there is room
and so falls behind instead of losing lines; one that cannot (a request being answered) gets a refusal
and the refused records are counted in ``meshscope_dropped_total{stage="pipeline",reason="queue_full"}``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from telemetry.model import Record
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Parsing allocates many short-lived tuples and no cycles among them: a larger young generation
    keeps the cyclic collector from running every few hundred records."""
    gc.set_threshold(50_000, 20, 20)


class Sink(Protocol):
    def consume(self, batch: Sequence[Record]) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


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
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be positive")
        self._sinks = list(sinks)
        self._stats = stats
        self._capacity = queue_size
        self._batch_size = batch_size
        self._batch_timeout = batch_timeout
        # One step on each batch before the fan-out (as a collector's processor), e.g. filling trace ids.
        self._process = process
        self._queue: deque[Sequence[Record]] = deque()
        self._queued = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closed = False
        self._abandoned = False  # shutdown ran out of time: what is still queued is counted, not delivered
        self._worker = threading.Thread(target=self._run, name="meshscope-pipeline", daemon=True)
        self._shutdown_lock = threading.Lock()
        self._finished = False
        stats.watch_queue("pipeline", lambda: self._queued)

    def start(self) -> None:
        self._worker.start()

    def _no_room(self, count: int) -> bool:
        # A batch larger than the whole queue is still accepted into an empty queue.
        return not self._closed and bool(self._queued) and self._queued + count > self._capacity

    def wait_for_room(self, count: int, timeout: float) -> bool:
        """Whether ``count`` records would be accepted now, waiting up to ``timeout``; counts nothing.

        For a receiver that can wait but must also notice its own shutdown: it waits in slices here and
        submits once there is room.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._no_room(count):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def submit(self, records: Sequence[Record], receiver: str, wait: float | None = 0.0) -> bool:
        """Queue one batch. ``wait`` is how long to wait for room: 0 refuses at once, None waits forever.

        Returns False (and counts the drop) when the batch was refused.
        """
        count = len(records)
        if not count:
            return True
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
            self._queue.append(records)
            self._queued += count
            self._cond.notify_all()
        self._stats.received(receiver, count)
        return True

    def _take(self) -> list[Record] | None:
        """Wait for records and return up to a batch's worth; None once closed and drained."""
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
            while self._queue and len(batch) < self._batch_size:
                batch.extend(self._queue.popleft())
            self._queued -= len(batch)
            self._in_flight += len(batch)
            self._cond.notify_all()
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            taken = len(batch)
            if self._process is not None:
                try:
                    batch = self._process(batch)
                except Exception:
                    log.exception("the pipeline's processor failed; the batch goes on unprocessed")
            for name, sink in self._sinks:
                try:
                    sink.consume(batch)
                except Exception:
                    log.exception("sink %s failed on a batch of %d records", name, len(batch))
                    self._stats.drop(f"sink:{name}", "sink_error", len(batch))
            with self._cond:
                self._in_flight -= taken
                self._cond.notify_all()

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
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker.is_alive():
            self._worker.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
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
