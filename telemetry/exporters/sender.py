"""The lifecycle every queued exporter shares: one condition, the flags that stop its worker, flush, shutdown.

``ExportQueue`` (the trace exporters), the Elasticsearch sink and both forward sinks each keep their own
queue under ``cond`` and one worker thread that takes batches from it (``wait_for_batch``). Their
``flush`` is ``wait_until_idle`` with their own test of "something is still queued or in flight"; their
``shutdown`` starts with ``begin_shutdown`` and then joins the worker and counts what is left, each its way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_ROOM_POLL = 0.01  # s


class SenderState:
    """The condition a queued exporter's queue changes under, and what tells its worker to stop."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.closed = False  # no new items
        self.stopping = False  # the worker leaves at its next chance
        self.flushers = 0  # threads in wait_until_idle: no point holding a partial batch back
        self.abort = threading.Event()  # interrupts a backoff wait at shutdown's deadline
        self._shutdown_lock = threading.Lock()
        self._shut = False

    def wait_for_batch(self, queued: Callable[[], int], size: int, linger: float) -> bool:
        """In the worker, under ``cond``: wait for items, then up to ``linger`` seconds for ``size`` of them (not
        once closed, stopping, or while a flush waits). False: time to stop (told to, or closed and empty)."""
        while not queued():
            if self.stopping or self.closed:
                return False
            self.cond.wait()
        if self.stopping:
            return False
        deadline = time.monotonic() + linger
        while queued() < size and not (self.closed or self.flushers or self.stopping):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.cond.wait(remaining)
        return True

    def wait_for_room(self, queued: Callable[[], int], count: int, limit: int, timeout: float) -> bool:
        """Until ``count`` more items fit beside ``queued()`` (asked under ``cond``) within ``limit``, or nothing
        is queued (a batch larger than the whole queue goes into an empty one), or the queue is closed;
        False on timeout. It looks again every few milliseconds: not every step of a worker notifies."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.closed and (pending := queued()) and pending + count > limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, _ROOM_POLL))
        return True

    def wait_until_idle(self, is_busy: Callable[[], bool], worker: threading.Thread, timeout: float) -> bool:
        """Wait until ``is_busy()`` (asked under ``cond``) is False; False on timeout or when ``worker`` died."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.flushers += 1
            self.cond.notify_all()
            try:
                while is_busy():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not worker.is_alive():
                        return False
                    self.cond.wait(remaining)
                return True
            finally:
                self.flushers -= 1

    def begin_shutdown(self, flush: Callable[[float], object], timeout: float) -> bool:
        """The first call only (True): refuse new items, ``flush(timeout)``, set ``abort``, tell the worker to
        stop; the caller then joins its worker and counts what is left. Any later call: False at once."""
        with self._shutdown_lock:
            if self._shut:
                return False
            self._shut = True
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        flush(timeout)
        self.abort.set()
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        return True
