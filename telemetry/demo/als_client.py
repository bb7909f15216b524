"""A proxy's side of Envoy's gRPC Access Log Service: one long stream, identified by its first message.

Entries are queued (bounded; what does not fit is counted as dropped) and sent in batches by one
thread. When the collector cannot be reached or the stream breaks, the thread reconnects with
exponential backoff and counts the failure; whoever submits entries is never blocked.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

import grpc
from envoy.config.core.v3.base_pb2 import Node
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry, TCPAccessLogEntry
from envoy.service.accesslog.v3.als_pb2 import StreamAccessLogsMessage
from envoy.service.accesslog.v3.als_pb2_grpc import AccessLogServiceStub

AlsEntry = HTTPAccessLogEntry | TCPAccessLogEntry

# Istio's name for the logger behind its envoyAccessLogService provider.
DEFAULT_LOG_NAME = "envoy_accesslog_service"
_POLL = 0.05


class AlsClient:
    def __init__(
        self,
        endpoint: str,
        node: Node,
        *,
        log_name: str = DEFAULT_LOG_NAME,
        batch_size: int = 100,
        flush_interval: float = 0.2,
        queue_size: int = 10_000,
        initial_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self.endpoint = endpoint
        self._node = node
        self._log_name = log_name
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue: queue.Queue[AlsEntry] = queue.Queue(maxsize=queue_size)
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._future: grpc.Future | None = None
        self.entries_sent = 0  # handed to a stream (a broken stream may have lost some of them)
        self.dropped = 0  # the queue was full
        self.failures = 0  # connection attempts that failed plus streams that broke
        self.streams_opened = 0

    def submit(self, entries: Iterable[AlsEntry]) -> None:
        for entry in entries:
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self.dropped += 1

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"als-client-{self.endpoint}", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Sends what is queued if the stream is up (for at most ``timeout`` s), then closes it."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join(timeout)
        future = self._future
        if thread.is_alive() and future is not None:
            future.cancel()
            thread.join(1.0)
        self.dropped += self._queue.qsize()  # never sent: the collector was away at shutdown

    # -- the sending thread -------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._initial_backoff
        while not self._stopping.is_set():
            channel = grpc.insecure_channel(self.endpoint)
            try:
                if not self._connect(channel, backoff):
                    self.failures += 1
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                broken = threading.Event()
                self.streams_opened += 1
                self._future = AccessLogServiceStub(channel).StreamAccessLogs.future(self._messages(broken))
                try:
                    self._future.result()
                    backoff = self._initial_backoff
                except (grpc.RpcError, grpc.FutureCancelledError):
                    if not self._stopping.is_set():
                        self.failures += 1
                        self._stopping.wait(backoff)
                        backoff = min(backoff * 2, self._max_backoff)
                finally:
                    broken.set()
            finally:
                channel.close()

    def _connect(self, channel: grpc.Channel, timeout: float) -> bool:
        ready = grpc.channel_ready_future(channel)
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set():
            try:
                ready.result(timeout=min(_POLL, max(0.0, deadline - time.monotonic())))
                return True
            except grpc.FutureTimeoutError:
                if time.monotonic() >= deadline:
                    break
        ready.cancel()
        return False

    def _messages(self, broken: threading.Event) -> Iterator[StreamAccessLogsMessage]:
        first = True
        while True:
            batch = self._next_batch(broken)
            if not batch:
                return
            http = [entry for entry in batch if isinstance(entry, HTTPAccessLogEntry)]
            tcp = [entry for entry in batch if isinstance(entry, TCPAccessLogEntry)]
            # http_logs and tcp_logs are a oneof: one message per kind.
            for kind, entries in (("http_logs", http), ("tcp_logs", tcp)):
                if not entries:
                    continue
                message = StreamAccessLogsMessage()
                if first:
                    # Envoy identifies the stream in its first message only.
                    message.identifier.node.CopyFrom(self._node)
                    message.identifier.log_name = self._log_name
                    first = False
                getattr(message, kind).log_entry.extend(entries)
                self.entries_sent += len(entries)
                yield message

    def _next_batch(self, broken: threading.Event) -> list[AlsEntry]:
        """Up to batch_size entries, once flush_interval has passed since the first; [] ends the stream."""
        batch: list[AlsEntry] = []
        deadline = 0.0
        while len(batch) < self._batch_size and not broken.is_set():
            try:
                batch.append(self._queue.get(timeout=_POLL))
                if len(batch) == 1:
                    deadline = time.monotonic() + self._flush_interval
            except queue.Empty:
                if self._stopping.is_set():
                    break
            if batch and time.monotonic() >= deadline:
                break
        if broken.is_set():
            self.dropped += len(batch)
            return []
        return batch
