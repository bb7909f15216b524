"""The reliable half of a trace exporter: a bounded span queue, batching, and retry with backoff.

Both trace exporters (OTLP to Jaeger, Zipkin) are an ``ExportQueue`` around a transport. ``consume``
only appends references to the received messages under a lock; one worker thread per exporter takes
batches of up to ``batch_size`` spans (or what has waited ``batch_timeout``), hands them to the
transport and retries retryable failures with exponential backoff, so a slow or absent backend holds
up only its own worker.

The queue counts spans, not messages: an entry is a ``SpanSlice`` (a range of one ``ScopeSpans``'s
spans), so a batch or a drop can end in the middle of a message and the counts stay exact. Messages
are shared with the other exporter and the rest of the collector, so nothing here modifies them.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from telemetry.exporters.sender import SenderState
from telemetry.reasons import short_reason
from telemetry.security.redact import redact_url
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)


@dataclass
class RetryConfig:
    initial_backoff: float = 0.5  # seconds before the first retry; doubled per attempt, with jitter
    max_backoff: float = 30.0
    # A batch still failing this many seconds after its first attempt is given up (0: never give up
    # on a retryable error; the queue bound then decides what is lost).
    max_elapsed: float = 300.0

    def validate(self) -> list[str]:
        errors = []
        if self.initial_backoff <= 0:
            errors.append("initial_backoff: must be positive")
        if self.max_backoff < self.initial_backoff:
            errors.append("max_backoff: must be at least initial_backoff")
        if self.max_elapsed < 0:
            errors.append("max_elapsed: must not be negative (0 retries for ever)")
        return errors


@dataclass
class ExportQueueConfig:
    """The queue and retry settings every trace exporter's config has."""

    # In spans. A span as received (~12 attributes) holds 1-2 KB, so 10,000 is 10-20 MB per exporter
    # and, at a mesh's typical few hundred to a thousand sampled spans a second, 10-30 s of backend
    # outage (a Jaeger or Zipkin restart) without loss.
    queue_size: int = 10_000
    batch_size: int = 512
    batch_timeout: float = 1.0
    shutdown_timeout: float = 5.0  # how long shutdown waits for the queue to drain
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> list[str]:
        errors = []
        if self.batch_size < 1:
            errors.append("batch_size: must be at least 1")
        if self.queue_size < self.batch_size:
            errors.append("queue_size: must be at least batch_size")
        if self.batch_timeout < 0:
            errors.append("batch_timeout: must not be negative")
        if self.shutdown_timeout < 0:
            errors.append("shutdown_timeout: must not be negative")
        return errors


@dataclass
class TraceExporterConfig(ExportQueueConfig):
    """What both trace exporters' configs share; each resolves its settings against the environment."""

    enabled: bool = False
    endpoint: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds per request

    def resolve(self, environ: Mapping[str, str]) -> object:
        """The settings with OTEL_* variables applied; raises ValueError("key: message")."""
        raise NotImplementedError

    def validate(self) -> list[str]:
        errors = super().validate()
        if self.timeout is not None and self.timeout <= 0:
            errors.append("timeout: must be positive")
        if self.enabled and not errors:
            try:
                self.resolve(os.environ)
            except ValueError as error:
                errors.append(str(error))
        return errors


class SpanSlice(NamedTuple):
    """Spans ``start:stop`` of one ScopeSpans, with the ResourceSpans it came in."""

    resource_spans: ResourceSpans
    scope_spans: ScopeSpans
    start: int
    stop: int


class ExportError(Exception):
    """A failed export attempt; ``reason`` labels ``meshscope_export_failures_total``."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the backend asked for, when it said


class Transport(Protocol):
    def send(self, batch: Sequence[SpanSlice]) -> int:
        """Deliver one batch; return how many spans the backend rejected, or raise ExportError."""
        ...

    def close(self) -> None: ...


def slices_of(batch: Sequence[ResourceSpans]) -> tuple[list[SpanSlice], int]:
    pieces = []
    count = 0
    for resource_spans in batch:
        for scope_spans in resource_spans.scope_spans:
            size = len(scope_spans.spans)
            if size:
                pieces.append(SpanSlice(resource_spans, scope_spans, 0, size))
                count += size
    return pieces, count


# Failures after which the backend is still "reachable": it answered, and only refused this batch or
# asked for less. Anything else (no connection, a timeout, a gateway error, a wrong path, refused
# credentials) means spans are not getting through, and the UI's banner says so.
ANSWERED_REASONS = frozenset(
    {"http_400", "http_413", "http_429", "grpc_invalid_argument", "grpc_resource_exhausted", "grpc_out_of_range"}
)
_GRPC_PREFIX = re.compile(r"^(?:last error: )?(?:UNKNOWN: )?(?:ipv[46]:\S+?: )?")
_BODY = re.compile(r" b['\"]")
_MAX_WHY = 160


def unreachable_why(error: ExportError) -> str | None:
    """One short line saying why the backend did not take the batch; None if it answered (see ANSWERED_REASONS)."""
    if error.reason in ANSWERED_REASONS:
        return None
    detail = str(error).partition(": ")[2] if str(error) != error.reason else ""
    if error.reason.startswith("http_"):
        # "Service Unavailable b'...body...'": the status line is enough for a banner.
        status_line = _BODY.split(detail, maxsplit=1)[0]
        why = f"HTTP {error.reason[5:]} {status_line}".strip()
    elif error.reason.startswith("grpc_"):
        # gRPC's "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:4317: Failed to
        # connect to remote host: Connection refused": the last error, without the address told already.
        last = _GRPC_PREFIX.sub("", detail.rsplit("; ", 1)[-1])
        why = f"gRPC {error.reason[5:].upper()}: {last}".rstrip(": ")
    elif error.reason == "timeout":
        why = "no answer in time"
    else:
        why = detail or error.reason.replace("_", " ")
    return short_reason(why, _MAX_WHY)


def backoff_delay(attempt: int, retry: RetryConfig, rand: Callable[[], float] = random.random) -> float:
    # "Equal jitter": never less than half the exponential step, so a down backend is not hammered,
    # yet exporters that failed together do not retry in lockstep.
    step = min(retry.max_backoff, retry.initial_backoff * 2**attempt)
    return step * (0.5 + rand() / 2)


class ExportQueue:
    """A ``TraceSink``: bounded, batching, retrying delivery of spans through one transport."""

    def __init__(
        self, name: str, transport: Transport, config: ExportQueueConfig, stats: SelfStats, target: str = ""
    ) -> None:
        self.name = name
        # Where the transport sends to, named in the UI's banner when it does not answer (no user:password).
        self.target = redact_url(target)
        self._transport = transport
        self._config = config
        self._stats = stats
        self._stage = f"exporter:{name}"
        self._queue: deque[SpanSlice] = deque()
        self._queued = 0  # spans in _queue
        self._in_flight = 0  # spans of the batch being sent (still within the bound)
        self._state = SenderState()
        self._cond = self._state.cond
        stats.watch_queue(self._stage, self.depth)
        self._worker = threading.Thread(target=self._run, name=f"meshscope-export-{name}", daemon=True)
        self._worker.start()

    def depth(self) -> int:
        return self._queued + self._in_flight

    def consume(self, batch: Sequence[ResourceSpans]) -> None:
        pieces, count = slices_of(batch)
        if not count:
            return
        with self._cond:
            if self._state.closed:
                self._stats.drop(self._stage, "shutdown", count)
                return
            self._queue.extend(pieces)
            self._queued += count
            overflow = self._queued + self._in_flight - self._config.queue_size
            if overflow > 0:
                # Drop the oldest: after an outage the newest traces are the ones worth seeing, and
                # spans of the same traces keep arriving together at the new end.
                self._drop_oldest(overflow)
                self._stats.drop(self._stage, "queue_full", overflow)
            self._cond.notify_all()

    def _drop_oldest(self, count: int) -> None:
        queue = self._queue
        self._queued -= count
        while count:
            head = queue[0]
            size = head.stop - head.start
            if size <= count:
                queue.popleft()
                count -= size
            else:
                queue[0] = head._replace(start=head.start + count)
                count = 0

    def flush(self, timeout: float) -> bool:
        """Wait until every queued span has been delivered (or given up); False on timeout."""
        return self._state.wait_until_idle(lambda: self.depth() > 0, self._worker, timeout)

    def shutdown(self) -> None:
        """Refuse new spans, deliver what is queued within ``shutdown_timeout``, then stop. Idempotent."""
        if not self._state.begin_shutdown(self.flush, self._config.shutdown_timeout):
            return
        # A request in progress ends within the transport's own timeout; the worker is a daemon, so
        # the wait for it is short and the batch it holds is counted by the worker when it returns.
        self._worker.join(1.0)
        with self._cond:
            self._discard_queue("shutdown")
        try:
            self._transport.close()
        except Exception:
            log.exception("exporter %s: closing the transport failed", self.name)

    def _discard_queue(self, reason: str) -> None:
        if self._queued:
            self._stats.drop(self._stage, reason, self._queued)
            self._queue.clear()
            self._queued = 0
            self._cond.notify_all()

    def _take(self) -> tuple[list[SpanSlice], int] | None:
        """Wait for spans and return a batch of at most ``batch_size``; None when it is time to stop."""
        batch_size = self._config.batch_size
        with self._cond:
            if not self._state.wait_for_batch(lambda: self._queued, batch_size, self._config.batch_timeout):
                return None
            queue = self._queue
            batch: list[SpanSlice] = []
            room = batch_size
            while queue and room:
                head = queue[0]
                size = head.stop - head.start
                if size <= room:
                    batch.append(queue.popleft())
                    room -= size
                else:
                    batch.append(head._replace(stop=head.start + room))
                    queue[0] = head._replace(start=head.start + room)
                    room = 0
            count = batch_size - room
            self._queued -= count
            self._in_flight = count
            return batch, count

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            batch, count = taken
            try:
                self._deliver(batch, count)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
        with self._cond:
            self._discard_queue("shutdown")

    def _deliver(self, batch: list[SpanSlice], count: int) -> None:
        retry = self._config.retry
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                rejected = self._transport.send(batch)
            except ExportError as error:
                self._stats.export_failure(self.name, error.reason)
                why = unreachable_why(error)
                if why is not None and self.target:
                    why = f"{self.target}: {why}"
                self._stats.reachability(self.name, why is None, why or "")
                if not error.retryable:
                    log.warning("exporter %s: %s; giving up %d spans", self.name, error, count)
                    self._give_up(count)
                    return
                delay = error.retry_after if error.retry_after is not None else backoff_delay(attempt, retry)
                attempt += 1
                if retry.max_elapsed and time.monotonic() - started + delay > retry.max_elapsed:
                    log.warning(
                        "exporter %s: %s for %.0fs; giving up %d spans", self.name, error, retry.max_elapsed, count
                    )
                    self._give_up(count)
                    return
                log.debug("exporter %s: %s; retrying in %.2fs", self.name, error, delay)
                if self._state.abort.wait(delay):
                    self._stats.drop(self._stage, "shutdown", count)
                    return
                continue
            except Exception:
                # A bug or an unencodable batch: retrying would only fail the same way.
                log.exception("exporter %s: unexpected error; giving up %d spans", self.name, count)
                self._stats.export_failure(self.name, "internal_error")
                self._give_up(count)
                return
            self._stats.reachability(self.name, True)
            if rejected:
                self._stats.drop(self._stage, "rejected", rejected)
            self._stats.export_done(self.name, count - rejected)
            return

    def _give_up(self, count: int) -> None:
        self._stats.export_failure(self.name, "gave_up")
        self._stats.drop(self._stage, "gave_up", count)
