from __future__ import annotations

import threading
from collections.abc import Sequence

from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.selfmetrics import SelfStats


class CollectingSink:
    def __init__(self, block: threading.Event | None = None) -> None:
        self.batches: list[list[Record]] = []
        self.flushed = 0
        self.shutdowns = 0
        self.entered = threading.Event()
        self._block = block

    def consume(self, batch: Sequence[Record]) -> None:
        self.entered.set()
        if self._block is not None:
            self._block.wait(10)
        self.batches.append(list(batch))

    def flush(self, timeout: float) -> bool:
        self.flushed += 1
        return True

    def shutdown(self) -> None:
        self.shutdowns += 1


def submit_and_stick(pipeline: Pipeline, sink: CollectingSink, records: list[Record]) -> threading.Thread:
    """Submit from another thread into an idle pipeline: that thread delivers the batch itself and
    stays in the (blocked) sink until released."""
    thread = threading.Thread(target=pipeline.submit, args=(records, "test"))
    thread.start()
    assert sink.entered.wait(5)
    return thread


def test_records_fan_out_to_every_sink_in_batches_of_at_most_batch_size() -> None:
    first, second = CollectingSink(), CollectingSink()
    stats = SelfStats()
    pipeline = Pipeline([("a", first), ("b", second)], stats, queue_size=1000, batch_size=4, batch_timeout=0.01)
    pipeline.start()
    for index in range(10):
        assert pipeline.submit([Record(path=f"/{index}")], "test")
    assert pipeline.flush(5)
    for sink in (first, second):
        assert [r.path for batch in sink.batches for r in batch] == [f"/{i}" for i in range(10)]
        assert max(len(batch) for batch in sink.batches) <= 4
    assert stats.records_received == {"test": 10}
    pipeline.shutdown()


def test_a_full_queue_refuses_and_counts_the_drop() -> None:
    release = threading.Event()
    sink = CollectingSink(block=release)
    stats = SelfStats()
    pipeline = Pipeline([("slow", sink)], stats, queue_size=5, batch_size=5, batch_timeout=0.0)
    pipeline.start()
    stuck = submit_and_stick(pipeline, sink, [Record()] * 5)
    accepted = [pipeline.submit([Record()] * 5, "test") for _ in range(3)]
    assert accepted.count(False) >= 1
    assert stats.dropped[("pipeline", "queue_full")] == 5 * accepted.count(False)
    assert stats.queue_depth("pipeline") <= 5
    release.set()
    stuck.join(5)
    pipeline.shutdown()
    delivered = sum(len(batch) for batch in sink.batches)
    assert delivered == 5 * (1 + accepted.count(True))


def test_shutdown_drains_flushes_once_and_is_idempotent() -> None:
    sink = CollectingSink()
    pipeline = Pipeline([("s", sink)], SelfStats(), batch_size=1000, batch_timeout=5.0)
    pipeline.start()
    pipeline.submit([Record()] * 3, "test")
    pipeline.shutdown()
    pipeline.shutdown()
    assert sum(len(batch) for batch in sink.batches) == 3
    assert sink.shutdowns == 1


def test_submit_after_shutdown_is_refused_and_counted() -> None:
    stats = SelfStats()
    pipeline = Pipeline([("s", CollectingSink())], stats)
    pipeline.start()
    pipeline.shutdown()
    assert not pipeline.submit([Record()], "test")
    assert stats.dropped[("pipeline", "shutdown")] == 1


def test_a_failing_sink_does_not_stop_the_others() -> None:
    class Broken(CollectingSink):
        def consume(self, batch: Sequence[Record]) -> None:
            raise RuntimeError("boom")

    good = CollectingSink()
    stats = SelfStats()
    pipeline = Pipeline([("broken", Broken()), ("good", good)], stats, batch_timeout=0.01)
    pipeline.start()
    pipeline.submit([Record()] * 2, "test")
    pipeline.shutdown()
    assert sum(len(batch) for batch in good.batches) == 2
    assert stats.dropped[("sink:broken", "sink_error")] == 2


def test_what_shutdown_cannot_deliver_in_time_is_counted_and_not_delivered_later() -> None:
    release = threading.Event()
    sink = CollectingSink(block=release)
    stats = SelfStats()
    pipeline = Pipeline([("slow", sink)], stats, queue_size=100, batch_size=5, batch_timeout=0.0)
    pipeline.start()
    stuck = submit_and_stick(pipeline, sink, [Record()] * 5)
    for _ in range(3):
        assert pipeline.submit([Record()] * 5, "test")
    pipeline.shutdown(timeout=0.3)  # the sink is stuck on the first batch
    dropped = stats.dropped[("pipeline", "shutdown_timeout")]
    release.set()
    stuck.join(5)
    pipeline._worker.join(5)  # the batches in hand finish; nothing counted as dropped follows
    assert sum(len(batch) for batch in sink.batches) + dropped == 20
    assert dropped >= 10


def test_an_idle_pipeline_delivers_in_the_submitting_thread_and_a_busy_one_queues_in_order() -> None:
    release = threading.Event()
    threads: list[str] = []

    class Noting(CollectingSink):
        def consume(self, batch: Sequence[Record]) -> None:
            threads.append(threading.current_thread().name)
            super().consume(batch)

    sink = Noting(block=release)
    pipeline = Pipeline([("s", sink)], SelfStats(), batch_size=100, batch_timeout=0.0)
    pipeline.start()
    stuck = submit_and_stick(pipeline, sink, [Record(path="/first")])
    assert pipeline.submit([Record(path="/second")], "test")  # busy: queued behind the first
    assert pipeline.submit([Record(path="/third")], "test")
    release.set()
    stuck.join(5)
    assert pipeline.flush(5)
    assert [record.path for batch in sink.batches for record in batch] == ["/first", "/second", "/third"]
    assert threads[0] == stuck.name and set(threads[1:]) == {"meshscope-pipeline"}
    assert pipeline.submit([Record(path="/fourth")], "test")  # idle again: delivered before submit returns
    assert sink.batches[-1][0].path == "/fourth" and threads[-1] == threading.current_thread().name
    pipeline.shutdown()


def test_shutdown_waits_for_a_batch_a_receiver_is_delivering_itself() -> None:
    release = threading.Event()
    sink = CollectingSink(block=release)
    pipeline = Pipeline([("s", sink)], SelfStats())
    pipeline.start()
    stuck = submit_and_stick(pipeline, sink, [Record()] * 3)
    threading.Timer(0.2, release.set).start()
    pipeline.shutdown(timeout=5)
    assert sink.shutdowns == 1 and sum(map(len, sink.batches)) == 3  # delivered before the sink shut down
    stuck.join(5)


def test_an_unthreaded_pipeline_delivers_in_the_callers_thread_in_batches() -> None:
    seen_threads: list[threading.Thread] = []

    class ThreadNoting(CollectingSink):
        def consume(self, batch: Sequence[Record]) -> None:
            seen_threads.append(threading.current_thread())
            super().consume(batch)

    sink = ThreadNoting()
    stats = SelfStats()
    pipeline = Pipeline([("a", sink)], stats, queue_size=10, batch_size=4, threaded=False)
    pipeline.start()
    assert pipeline.submit([Record(path=f"/{index}") for index in range(10)], "test")
    # Delivered before submit returned: no flush needed, and nothing was ever queued.
    assert [len(batch) for batch in sink.batches] == [4, 4, 2]
    assert set(seen_threads) == {threading.current_thread()}
    assert stats.records_received == {"test": 10}
    assert stats.queue_depth("pipeline") == 0
    pipeline.shutdown()
    assert sink.flushed == 1 and sink.shutdowns == 1
    assert not pipeline.submit([Record()], "test")
    assert stats.dropped[("pipeline", "shutdown")] == 1


def test_an_unthreaded_pipeline_counts_a_failing_sink_and_feeds_the_others() -> None:
    class Failing(CollectingSink):
        def consume(self, batch: Sequence[Record]) -> None:
            raise RuntimeError("broken sink")

    healthy = CollectingSink()
    stats = SelfStats()
    pipeline = Pipeline([("bad", Failing()), ("good", healthy)], stats, threaded=False)
    assert pipeline.submit([Record()] * 3, "test")
    assert sum(map(len, healthy.batches)) == 3
    assert stats.dropped[("sink:bad", "sink_error")] == 3
    pipeline.shutdown()


class RoomySink(CollectingSink):
    """A sink with a queue of its own of ``room`` Records (a log sink set to ``when_full: wait``)."""

    def __init__(self, room: int, block: threading.Event | None = None) -> None:
        super().__init__(block)
        self.room = room
        self.asked: list[int] = []

    def hold_back(self, count: int, timeout: float) -> bool:
        self.asked.append(count)
        return count <= self.room


def test_waiting_for_room_asks_a_holding_sink_for_what_the_pipeline_holds_ahead_and_the_batch() -> None:
    release = threading.Event()
    sink = RoomySink(room=25, block=release)
    pipeline = Pipeline([("logs", sink)], SelfStats(), batch_timeout=0.01)
    pipeline.start()
    assert pipeline.wait_for_room(10, 0.0) and sink.asked == [10]
    delivering = submit_and_stick(pipeline, sink, [Record()] * 10)  # in flight in the sink
    assert pipeline.submit([Record()] * 5, "test")  # queued behind it
    assert pipeline.wait_for_room(10, 0.0)  # 10 in flight + 5 queued + 10: fits in 25
    assert not pipeline.wait_for_room(11, 0.0)  # 26 would not
    assert sink.asked[-2:] == [25, 26]
    release.set()
    delivering.join(5)
    assert pipeline.flush(5) and pipeline.wait_for_room(25, 0.0)
    pipeline.shutdown()
