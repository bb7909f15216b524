"""The forward sink with its helper process: same events, flush and spool through the pipe, restarts."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from forwardpeer import ForwardPeer
from prometheus_client import CollectorRegistry, generate_latest

from telemetry.exporters.fluentforward.encoder import EncodedBatch, EntryEncoder
from telemetry.exporters.fluentforward.process import PipedRecords, ProcessForwardSink, records_message
from telemetry.exporters.fluentforward.sink import STAGE
from telemetry.exporters.log_event import record_event
from telemetry.selfmetrics import SelfStats

from .test_encoder import golden_records
from .test_sink import chunks_of, config, numbered, request_numbers
from realparts import wait_for


@pytest.fixture
def peer() -> Iterator[ForwardPeer]:
    with ForwardPeer() as running:
        yield running


def test_the_helper_sends_the_same_events_and_its_counters_reach_the_collector(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    records = golden_records(include_original=False)
    stats = SelfStats()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path), stats)
    try:
        sink.consume(records)
        assert sink.flush(30)  # answered after the helper's flush: everything acknowledged
        events = peer.events()
    finally:
        sink.shutdown()
    assert len(events) == len(records) and peer.log.errors == []

    def without_timestamp(event: dict) -> str:  # type: ignore[type-arg]
        return repr(sorted((key, value) for key, value in event.items() if key != "@timestamp"))

    assert sorted(without_timestamp(event.record) for event in events) == sorted(
        without_timestamp(record_event(record, "")) for record in records
    )
    timestamps = {event.record["@timestamp"] for event in events}
    assert {record.start_time for record in records if record.start_time} <= timestamps
    assert stats.exported == {"fluentforward": len(records)} and stats.unreachable() == {}
    registry = CollectorRegistry()
    registry.register(sink.metrics)
    exposition = generate_latest(registry).decode()
    assert f"meshscope_fluentforward_acknowledged_events_total {float(len(records))}" in exposition
    assert "meshscope_fluentforward_spool_events 0.0" in exposition


def test_an_outage_spools_in_the_helper_and_everything_arrives_after_a_restart(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.stop()
    stats = SelfStats()
    first = ProcessForwardSink(config(peer.endpoint, tmp_path, batch_size=100), stats)
    first.consume(numbered(700, namespaces=1))
    assert first.flush(30)  # spooled and fsynced by the helper
    assert first.status()["spool_events"] == 700
    assert "fluentd" in stats.unreachable()
    first.shutdown()
    second = ProcessForwardSink(config(peer.endpoint, tmp_path, batch_size=100), SelfStats())
    try:
        second.consume(numbered(300, 700, namespaces=1))
        assert second.flush(30)
        peer.start()
        events = peer.wait_for_events(1000, timeout=60)
        assert second.flush(30)
    finally:
        second.shutdown()
    assert request_numbers(events) == list(range(1000))


def test_a_helper_that_dies_is_started_again_and_counted(peer: ForwardPeer, tmp_path: Path) -> None:
    stats = SelfStats()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path), stats)
    try:
        sink.consume(numbered(100))
        assert sink.flush(30)
        first_pid = sink.helper_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        wait_for(lambda: not os.path.exists(f"/proc/{first_pid}/status") or _zombie(first_pid), what="the kill")
        sink.consume(numbered(100, 100))
        wait_for(lambda: sink.flush(5), timeout=60, what="a flush answered by the new helper")
        assert sink.helper_pid != first_pid
        events = peer.wait_for_events(200)
    finally:
        sink.shutdown()
    assert set(request_numbers(events)) == set(range(200))
    assert stats.restarts == {"fluentforward_helper": 1}
    # Each helper counts from 0: the collector adds both, not the difference between them.
    assert stats.exported == {"fluentforward": len(events)} and len(events) >= 200


def _zombie(pid: int) -> bool:
    return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()


def test_shutdown_leaves_what_fluentd_did_not_take_in_the_spool(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.stop()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path, batch_timeout=30.0), SelfStats())
    sink.consume(numbered(250, namespaces=1))
    sink.shutdown()
    sink.shutdown()  # idempotent
    assert any(name.endswith(".spool") for name in os.listdir(tmp_path))
    from telemetry.exporters.fluentforward.spool import Spool

    spool = Spool(str(tmp_path), 1 << 30, 1 << 20, SelfStats(), "ff")
    assert spool.pending_events == 250
    spool.close()


def test_a_slow_fluentd_pushes_back_to_the_collectors_queue_where_drops_are_counted(peer: ForwardPeer) -> None:
    peer.stop()
    stats = SelfStats()
    # No spool: the helper holds its chunk while Fluentd is away, its small queue fills, then the pipe,
    # then the collector's queue of 20,000, the only place Records are dropped.
    sink = ProcessForwardSink(config(peer.endpoint, None, queue_size=20_000, batch_size=1000), stats)
    total = 60_000
    try:
        for start in range(0, total, 5000):
            sink.consume(numbered(5000, start, namespaces=1))
        wait_for(lambda: stats.dropped.get((STAGE, "queue_full"), 0) > 0, what="the queue to overflow")
        peer.start()
        wait_for(lambda: sink.flush(5), timeout=120, what="everything kept to be delivered")
        events = peer.events()
    finally:
        sink.shutdown()
    dropped = stats.dropped[(STAGE, "queue_full")]
    assert list(stats.dropped) == [(STAGE, "queue_full")]
    assert len(events) + dropped == total and peer.duplicate_chunks() == 0
    assert request_numbers(events)[-1] == total - 1  # the newest were kept


def test_records_a_dying_helper_held_go_to_the_next_one_and_the_flush_waits_for_them(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    stats = SelfStats()
    # A 30 s batch timeout: the helper holds the Records unsent until a flush asks for them.
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path, batch_timeout=30.0), stats)
    try:
        sink.consume(numbered(100))
        wait_for(lambda: sink.status().get("received") == 100, what="the helper to hold the Records")
        assert sink.status()["settled"] == 0 and peer.count() == 0
        first_pid = sink.helper_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        # The flush goes to the new helper behind the Records the old one took with it: True means delivered.
        assert sink.flush(60)
        assert sink.helper_pid != first_pid
        assert sorted(request_numbers(peer.events())) == list(range(100))
        registry = CollectorRegistry()
        registry.register(sink.metrics)
        exposition = generate_latest(registry).decode()
    finally:
        sink.shutdown()
    assert stats.restarts == {"fluentforward_helper": 1} and stats.dropped == {}
    assert "meshscope_fluentforward_resent_events_total 100.0" in exposition  # counted as possible duplicates
    assert stats.exported == {"fluentforward": 100}


def test_a_helper_stuck_on_an_absent_fluentd_is_stopped_and_every_record_is_counted(peer: ForwardPeer) -> None:
    peer.stop()
    stats = SelfStats()
    # No spool and no retry limit: the helper's sink and the pipe fill up and the feeder blocks writing.
    settings = {"queue_size": 200_000, "batch_size": 1000, "timeout": 1.0, "shutdown_timeout": 1.0}
    sink = ProcessForwardSink(config(peer.endpoint, None, **settings), stats)
    total = 100_000
    for start in range(0, total, 5000):
        sink.consume(numbered(5000, start, namespaces=1))
    wait_for(lambda: sink._sending > 0 and sink.status().get("received", 0) > 0, what="the pipe to fill")
    helper = sink._current
    assert helper is not None
    sink.shutdown()
    assert not helper.process.is_alive() and not sink._feeder.is_alive()
    assert stats.restarts == {}  # no helper was started during shutdown
    assert sum(stats.dropped.values()) == total and set(stats.dropped) <= {
        (STAGE, "shutdown"), (STAGE, "helper_died")
    }  # fmt: skip


def test_the_helper_outlives_a_sigterm_and_stops_at_the_end_of_its_pipe(peer: ForwardPeer, tmp_path: Path) -> None:
    stats = SelfStats()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path), stats)
    try:
        sink.consume(numbered(10))
        assert sink.flush(30)
        pid = sink.helper_pid
        assert pid is not None
        os.kill(pid, signal.SIGTERM)  # as a process-group SIGTERM reaches it before the collector drains it
        sink.consume(numbered(10, 10))
        assert sink.flush(30)
        assert sink.helper_pid == pid and not _zombie(pid)
    finally:
        sink.shutdown()
    assert stats.restarts == {} and sorted(request_numbers(peer.events())) == list(range(20))


def test_pipe_messages_larger_than_the_helpers_read_buffer_arrive_whole(peer: ForwardPeer, tmp_path: Path) -> None:
    # 2,048 Records with a 1 KB original line each: a pipe message of ~2.5 MB, more than the 1 MiB buffer.
    records = [record._replace(original=f"{number:06d}" + "x" * 1000) for number, record in enumerate(numbered(3000))]
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path, include_original=True), SelfStats())
    try:
        sink.consume(records)
        assert sink.flush(30)
        events = peer.wait_for_events(3000)
    finally:
        sink.shutdown()
    assert sorted(request_numbers(events)) == list(range(3000))
    assert {event.record["event.original"] for event in events} == {record.original for record in records}


def test_events_encoded_by_parsing_workers_go_through_the_helper_in_order_with_records_between(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    records = numbered(5000, namespaces=1)
    encoder = EntryEncoder("meshscope.access.{namespace}")
    stats = SelfStats()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path, batch_size=700), stats)
    try:
        for start in range(0, 5000, 500):
            part = records[start : start + 500]
            if start % 1000:  # every other batch as the pipeline's Records, the rest encoded by a "worker"
                sink.consume(part)
            else:
                sink.consume(EncodedBatch(encoder.encode_segments(part, "", (0, 0))))
        assert sink.flush(30)
        events = peer.events()
    finally:
        sink.shutdown()
    assert request_numbers(events) == list(range(5000)) and peer.log.errors == []
    assert [event.record for event in events] == [record_event(record, "") for record in records]
    assert max(len(chunk) for chunk in chunks_of(events)) == 700  # chunked as Records are: batch_size events
    assert stats.exported == {"fluentforward": 5000} and stats.dropped == {}


def test_an_encoded_batch_larger_than_the_helper_holds_is_split_and_arrives_whole(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    # One file chunk read with a large read_chunk_bytes: more events than the helper holds (two pipe
    # messages' worth), so it must go over the pipe in parts, as Records do.
    records = numbered(6000, namespaces=1)
    stats = SelfStats()
    sink = ProcessForwardSink(config(peer.endpoint, tmp_path), stats)
    try:
        sink.consume(EncodedBatch(EntryEncoder("meshscope.access.{namespace}").encode_segments(records, "", (0, 0))))
        assert sink.flush(30)
        events = peer.events()
    finally:
        sink.shutdown()
    assert stats.dropped == {}
    assert request_numbers(events) == list(range(6000))


def test_records_kept_as_their_pipe_message_read_back_as_the_records_fields() -> None:
    # What the collector keeps for a resend once the Records themselves are freed.
    records = golden_records(True) + numbered(40)
    piped = PipedRecords(records_message(records), len(records))
    assert len(piped) == len(records)
    assert piped[0:] == [tuple(record) for record in records]
    assert piped[len(records) - 7 :] == [tuple(record) for record in records[-7:]]
    # Read back, they make the same message again: a resent batch is what the helper first got.
    assert records_message(piped[0:]) == piped.message
