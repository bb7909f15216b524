"""The shared export queue: span-counted bounds, batching, retry, give-up and shutdown, through a scripted transport."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Sequence
from types import ModuleType

import pytest

from telemetry.exporters.export_queue import (
    ExportError,
    ExportQueue,
    ExportQueueConfig,
    RetryConfig,
    SpanSlice,
    backoff_delay,
)
from telemetry.exporters.http_post import parse_retry_after
from telemetry.selfmetrics import SelfStats

from realparts import wait_for


class ScriptedTransport:
    """Records the span ids of each batch; raises the scripted errors first; can be held closed."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.errors: deque[Exception] = deque()
        self.attempts = 0
        self.open = threading.Event()
        self.open.set()
        self.closed = False

    def send(self, batch: Sequence[SpanSlice]) -> int:
        self.open.wait()
        self.attempts += 1
        if self.errors:
            raise self.errors.popleft()
        self.batches.append([span.span_id for _, ss, start, stop in batch for span in ss.spans[start:stop]])
        return 0

    def close(self) -> None:
        self.closed = True

    def delivered(self) -> list[bytes]:
        return [span for batch in self.batches for span in batch]


@pytest.fixture
def made() -> Iterator[list[ExportQueue]]:
    queues: list[ExportQueue] = []
    yield queues
    for queue in queues:
        queue.shutdown()


def make_queue(
    made: list[ExportQueue], transport: ScriptedTransport, stats: SelfStats, **config: object
) -> ExportQueue:
    settings = {"batch_timeout": 0.01, "retry": RetryConfig(0.01, 0.05, 0), **config}
    queue = ExportQueue("test", transport, ExportQueueConfig(**settings), stats)  # type: ignore[arg-type]
    made.append(queue)
    return queue


def test_batches_hold_at_most_batch_size_spans_and_split_messages_in_order(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    queue = make_queue(made, transport, stats, batch_size=512, queue_size=5000)
    transport.open.clear()  # everything is queued before the first batch is taken
    queue.consume([capture.resource_spans(700), capture.resource_spans(600, first=700)])
    transport.open.set()
    assert queue.flush(10)
    assert [len(batch) for batch in transport.batches] == [512, 512, 276]
    assert transport.delivered() == [capture.span_id(n + 1) for n in range(1300)]
    assert stats.exported == {"test": 1300}
    assert stats.queue_depth("exporter:test") == 0


def test_flush_sends_a_partial_batch_without_waiting_for_batch_timeout(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    queue = make_queue(made, transport, stats, batch_timeout=3600.0)
    queue.consume([capture.resource_spans(3)])
    assert queue.flush(10)
    assert len(transport.delivered()) == 3


def test_full_queue_drops_the_oldest_spans_and_counts_them_exactly(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.open.clear()
    queue = make_queue(made, transport, stats, batch_size=10, queue_size=100)
    for first in range(0, 250, 25):
        queue.consume([capture.resource_spans(25, first=first)])
    assert stats.dropped == {("exporter:test", "queue_full"): 150}
    transport.open.set()
    assert queue.flush(10)
    delivered = transport.delivered()
    assert len(delivered) == 100
    # The newest spans survive (besides the batch the worker may already have held when the queue filled).
    assert delivered[-90:] == [capture.span_id(n + 1) for n in range(160, 250)]


def test_retryable_errors_are_retried_until_delivery_and_each_attempt_counted(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.extend([ExportError("connection_error", True), ExportError("http_503", True)])
    queue = make_queue(made, transport, stats)
    queue.consume([capture.resource_spans(5)])
    assert queue.flush(10)
    assert len(transport.delivered()) == 5
    assert stats.export_failures == {("test", "connection_error"): 1, ("test", "http_503"): 1}
    assert stats.exported == {"test": 5}
    assert stats.dropped == {}


def test_retry_after_from_the_backend_replaces_the_backoff(made: list[ExportQueue], capture: ModuleType) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.append(ExportError("http_429", True, retry_after=0.01))
    # A backoff of an hour: delivery within the flush deadline shows the backend's delay was used.
    queue = make_queue(made, transport, stats, retry=RetryConfig(3600, 3600, 0))
    queue.consume([capture.resource_spans(2)])
    assert queue.flush(10)
    assert stats.exported == {"test": 2}


def test_non_retryable_error_gives_up_at_once_and_counts_the_spans(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.append(ExportError("http_400", False))
    queue = make_queue(made, transport, stats)
    queue.consume([capture.resource_spans(7)])
    assert queue.flush(10)
    assert transport.attempts == 1
    assert stats.export_failures == {("test", "http_400"): 1, ("test", "gave_up"): 1}
    assert stats.dropped == {("exporter:test", "gave_up"): 7}


def test_batch_still_failing_after_max_elapsed_is_given_up_and_the_next_is_sent(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.extend([ExportError("connection_error", True)] * 3)
    queue = make_queue(made, transport, stats, batch_size=4, retry=RetryConfig(0.05, 0.05, 0.08))
    transport.open.clear()
    queue.consume([capture.resource_spans(8)])
    transport.open.set()
    assert queue.flush(10)
    assert stats.dropped == {("exporter:test", "gave_up"): 4}
    assert stats.export_failures[("test", "gave_up")] == 1
    assert transport.delivered() == [capture.span_id(n + 1) for n in range(4, 8)]


def test_unexpected_transport_exception_gives_up_the_batch(made: list[ExportQueue], capture: ModuleType) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.append(RuntimeError("bug"))
    queue = make_queue(made, transport, stats)
    queue.consume([capture.resource_spans(3)])
    assert queue.flush(10)
    assert stats.export_failures == {("test", "internal_error"): 1, ("test", "gave_up"): 1}
    assert stats.dropped == {("exporter:test", "gave_up"): 3}


def test_consume_returns_while_the_transport_is_stuck(made: list[ExportQueue], capture: ModuleType) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.open.clear()
    queue = make_queue(made, transport, stats, batch_size=10, queue_size=50)
    for _ in range(100):
        queue.consume([capture.resource_spans(10)])
    assert stats.queue_depth("exporter:test") == 50
    assert stats.dropped == {("exporter:test", "queue_full"): 950}
    transport.open.set()


def test_received_messages_are_not_modified(made: list[ExportQueue], capture: ModuleType) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    queue = make_queue(made, transport, stats, batch_size=3)
    message = capture.resource_spans(10)
    before = message.SerializeToString()
    queue.consume([message])
    assert queue.flush(10)
    assert message.SerializeToString() == before


def test_shutdown_drains_then_refuses_and_is_idempotent(made: list[ExportQueue], capture: ModuleType) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    queue = make_queue(made, transport, stats, batch_timeout=3600.0)
    queue.consume([capture.resource_spans(6)])
    queue.shutdown()
    queue.shutdown()
    assert len(transport.delivered()) == 6
    assert transport.closed
    queue.consume([capture.resource_spans(2)])
    assert stats.dropped == {("exporter:test", "shutdown"): 2}


def test_shutdown_with_the_backend_down_stops_within_its_bound_and_counts_what_is_left(
    made: list[ExportQueue], capture: ModuleType
) -> None:
    transport, stats = ScriptedTransport(), SelfStats()
    transport.errors.extend([ExportError("connection_error", True)] * 10_000)
    queue = make_queue(made, transport, stats, batch_size=4, shutdown_timeout=0.2)
    queue.consume([capture.resource_spans(10)])
    wait_for(lambda: transport.attempts >= 2, what="retries")
    queue.shutdown()
    wait_for(lambda: stats.dropped.get(("exporter:test", "shutdown")) == 10, what="the 10 spans counted as dropped")
    assert stats.exported == {}


def test_backoff_doubles_up_to_its_maximum_with_at_most_half_jitter() -> None:
    retry = RetryConfig(initial_backoff=1, max_backoff=5, max_elapsed=0)
    assert [backoff_delay(n, retry, rand=lambda: 1.0) for n in range(5)] == [1, 2, 4, 5, 5]
    assert [backoff_delay(n, retry, rand=lambda: 0.0) for n in range(4)] == [0.5, 1, 2, 2.5]


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_config_rejects_a_queue_smaller_than_a_batch() -> None:
    assert ExportQueueConfig(queue_size=10, batch_size=20).validate() == ["queue_size: must be at least batch_size"]
    assert RetryConfig(initial_backoff=2, max_backoff=1).validate() == ["max_backoff: must be at least initial_backoff"]
