"""The forward sink against a real Forward-protocol peer on a loopback port: content, acks, outages, spool."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from fluent.sender import FluentSender
from forwardpeer import Event, EventTime, ForwardPeer
from prometheus_client import CollectorRegistry, generate_latest

from telemetry.exporters.export_queue import RetryConfig
from telemetry.exporters.fluentforward import sink as sink_module
from telemetry.exporters.fluentforward.config import FluentForwardConfig, SpoolConfig
from telemetry.exporters.fluentforward.encoder import EncodedBatch, EntryEncoder, parse_event_time
from telemetry.exporters.fluentforward.sink import STAGE, ForwardSink
from telemetry.exporters.fluentforward.spool import Spool
from telemetry.exporters.log_event import record_event
from telemetry.model import Record
from telemetry.selfmetrics import SelfStats

from .test_encoder import golden_records
from realparts import wait_for

FAST_RETRY = RetryConfig(initial_backoff=0.05, max_backoff=0.2, max_elapsed=0)


@pytest.fixture
def peer() -> Iterator[ForwardPeer]:
    with ForwardPeer() as running:
        yield running


def config(endpoint: str, spool_dir: Path | None, **overrides: object) -> FluentForwardConfig:
    spool = SpoolConfig(enabled=spool_dir is not None, directory=str(spool_dir or ""))
    settings: dict[str, object] = {"batch_timeout": 0.05, "timeout": 2.0, "retry": FAST_RETRY, "spool": spool}
    settings.update(overrides)
    made = FluentForwardConfig(enabled=True, endpoint=endpoint, **settings)  # type: ignore[arg-type]
    assert made.validate() == []
    return made


def numbered(count: int, start: int = 0, namespaces: int = 3) -> list[Record]:
    """Records told apart by their request id ("r<number>")."""
    return [
        Record(reporter="source", source_workload="client", source_namespace=f"ns{number % namespaces}",
               destination_service="api.shop.svc.cluster.local", protocol="http", response_code=200,
               method="GET", path=f"/item/{number}", request_id=f"r{number}", duration_ms=number % 97,
               source_address=f"10.0.0.{number % 250}:{40000 + number % 20000}", destination_address="10.1.0.1:8080",
               start_time="2024-05-04T17:22:59.001Z")
        for number in range(start, start + count)
    ]  # fmt: skip


def request_numbers(events: list[Event]) -> list[int]:
    return [int(event.record["http.request.id"][1:]) for event in events]


def test_every_field_of_every_event_arrives_as_packed_forward_with_acknowledgements(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    records = golden_records(include_original=True)
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, include_original=True, tag="mesh.{namespace}.log"), stats)
    try:
        sink.consume(records)
        assert sink.flush(10)
        events = peer.wait_for_events(len(records))
    finally:
        sink.shutdown()
    assert peer.log.errors == []
    assert set(peer.log.modes) == {"PackedForward"}
    assert len(events) == len(records)
    # Every chunk carried a chunk id, was acknowledged once, and nothing was sent twice.
    assert all(event.chunk for event in events) and peer.duplicate_chunks() == 0
    remaining = list(events)
    for record in records:
        namespace = record.source_namespace if record.reporter == "source" else record.destination_namespace
        match = next(
            event for event in remaining
            if event.tag == f"mesh.{namespace}.log" and event.record == record_event(record, "", True)
            | ({} if record.start_time else {"@timestamp": event.record["@timestamp"]})
        )  # fmt: skip
        remaining.remove(match)
        assert isinstance(match.time, EventTime)
        if record.start_time:
            assert (match.time.seconds, match.time.nanoseconds) == parse_event_time(record.start_time)
        assert match.record["event.original"] == record.original
    assert stats.exported == {"fluentforward": len(records)}
    assert sink.sent_events == sink.acknowledged_events == len(records)
    assert stats.dropped == {} and stats.unreachable() == {}


def test_gzip_compression_sends_compressed_packed_forward(peer: ForwardPeer, tmp_path: Path) -> None:
    records = numbered(500)
    sink = ForwardSink(config(peer.endpoint, tmp_path, compression="gzip"), SelfStats())
    try:
        sink.consume(records)
        events = peer.wait_for_events(500)
    finally:
        sink.shutdown()
    assert set(peer.log.modes) == {"CompressedPackedForward"} and peer.log.errors == []
    assert sorted(request_numbers(events)) == list(range(500))
    assert {event.record["url.path"] for event in events} == {f"/item/{n}" for n in range(500)}


def test_the_peer_decodes_message_and_forward_modes_from_fluent_logger_and_by_hand(peer: ForwardPeer) -> None:
    # Message mode, from fluent-logger's own sender (with nanosecond EventTime).
    sender = FluentSender("app", host="127.0.0.1", port=peer.port, nanosecond_precision=True)
    assert sender.emit_with_time("access", 1714843379.25, {"k": "v"})
    sender.close()
    peer.wait_for_events(1)
    # Forward mode with an ack request, written by hand per the specification.
    with socket.create_connection(("127.0.0.1", peer.port)) as connection:
        message = ["app.fwd", [[1714843379, {"a": 1}], [1714843380, {"a": 2}]], {"chunk": "abc=", "size": 2}]
        connection.sendall(msgpack.packb(message))
        assert msgpack.unpackb(connection.recv(100)) == {"ack": "abc="}
    events = peer.wait_for_events(3)
    assert peer.log.modes == {"Message": 1, "Forward": 1} and peer.log.errors == []
    assert events[0].tag == "app.access" and events[0].record == {"k": "v"}
    assert events[0].time == EventTime(1714843379, 250_000_000)
    assert [(e.tag, e.time, e.record) for e in events[1:]] == [("app.fwd", 1714843379, {"a": 1}),
                                                               ("app.fwd", 1714843380, {"a": 2})]  # fmt: skip


def test_an_outage_mid_stream_spools_and_every_event_arrives_in_order_after_it(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=100), stats)
    try:
        sink.consume(numbered(1000, namespaces=1))
        assert sink.flush(10)
        peer.wait_for_events(1000)
        peer.stop()
        for start in range(1000, 3000, 250):
            sink.consume(numbered(250, start, namespaces=1))
        assert sink.flush(10)  # spooled (and fsynced) while Fluentd is away
        assert sink.spool is not None and sink.spool.pending_events >= 1900
        assert "fluentd" in stats.unreachable()
        peer.start()
        events = peer.wait_for_events(3000)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    numbers = request_numbers(events)
    # At-least-once: a chunk cut off by the outage may come twice; in order after dropping repeats.
    assert sorted(set(numbers)) == list(range(3000))
    first_seen = list(dict.fromkeys(numbers))
    assert first_seen == list(range(3000))
    assert len(numbers) - 3000 <= sink.resent_events
    assert stats.exported["fluentforward"] >= 3000 and stats.unreachable() == {}
    assert sink.spool.pending_events == 0 and stats.dropped == {}
    assert sink.spool.spooled_events >= 1900


def send_fifty_expecting_a_resend(peer: ForwardPeer, tmp_path: Path) -> tuple[ForwardSink, SelfStats, list[Event]]:
    """50 events in one chunk to a peer set up to spoil one acknowledgement: the chunk goes twice."""
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=50), stats)
    try:
        sink.consume(numbered(50, namespaces=1))
        events = peer.wait_for_events(100)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    return sink, stats, events


def test_a_chunk_whose_ack_is_lost_is_resent_and_counted_as_a_possible_duplicate(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.lose_acks = 1
    sink, _, events = send_fifty_expecting_a_resend(peer, tmp_path)
    assert peer.duplicate_chunks() == 1
    assert sorted(request_numbers(events)) == sorted(list(range(50)) * 2)
    assert sink.resent_events == 50 and sink.sent_events == 100 and sink.acknowledged_events == 50
    registry = CollectorRegistry()
    registry.register(sink.metrics)
    exposition = generate_latest(registry).decode()
    assert "meshscope_fluentforward_resent_events_total 50.0" in exposition
    assert "meshscope_fluentforward_acknowledged_events_total 50.0" in exposition


def test_a_refusing_peer_keeps_events_spooled_until_it_accepts(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.refuse = True
    # No attempt limit: a peer that closes every connection is away, not refusing one chunk.
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=40, max_chunk_attempts=0), SelfStats())
    try:
        sink.consume(numbered(200))
        assert sink.flush(10)
        assert peer.count() == 0 and sink.spool is not None and sink.spool.pending_events == 200
        peer.refuse = False
        events = peer.wait_for_events(200)
    finally:
        sink.shutdown()
    assert set(request_numbers(events)) == set(range(200))


def test_the_spool_survives_a_restart_of_the_sink_and_is_replayed_first(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.stop()
    first = ForwardSink(config(peer.endpoint, tmp_path, batch_size=64), SelfStats())
    first.consume(numbered(500, namespaces=1))
    first.shutdown()
    assert any(name.endswith(".spool") for name in os.listdir(tmp_path))
    second = ForwardSink(config(peer.endpoint, tmp_path, batch_size=64), SelfStats())
    try:
        assert second.spool is not None and second.spool.pending_events == 500
        second.consume(numbered(100, 500, namespaces=1))
        assert second.flush(10)
        peer.start()
        events = peer.wait_for_events(600)
        # The peer counts a chunk before its acknowledgement reaches the sink: the spool empties after.
        wait_for(lambda: second.spool is not None and second.spool.pending_events == 0, what="the spool to empty")
    finally:
        second.shutdown()
    assert request_numbers(events) == list(range(600))
    assert not any(name.endswith(".spool") for name in os.listdir(tmp_path))


def test_beyond_the_spool_bound_the_oldest_segments_are_dropped_and_counted_exactly(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.stop()
    stats = SelfStats()
    spool = SpoolConfig(directory=str(tmp_path), max_bytes=64 * 1024, segment_bytes=16 * 1024)
    sink = ForwardSink(config(peer.endpoint, None, batch_size=20, spool=spool), stats)
    total = 2000
    try:
        for start in range(0, total, 20):
            sink.consume(numbered(20, start, namespaces=1))
            assert sink.flush(10)
            assert sink.spool is not None and sink.spool.disk_bytes() <= 64 * 1024
        dropped = stats.dropped[(STAGE, "spool_full")]
        assert sink.spool.pending_events == total - dropped
        peer.start()
        events = peer.wait_for_events(total - dropped)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    # Exactly the newest arrive, each once: the dropped ones were the oldest.
    assert request_numbers(events) == list(range(dropped, total))
    assert 0 < dropped < total and dropped % 20 == 0
    assert list(stats.dropped) == [(STAGE, "spool_full")]


def test_torn_and_corrupt_spool_frames_are_counted_and_skipped(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.stop()
    first = ForwardSink(config(peer.endpoint, tmp_path, batch_size=10), SelfStats())
    for start in range(0, 50, 10):
        first.consume(numbered(10, start, namespaces=1))
        assert first.flush(10)
    first.shutdown()
    (segment,) = [tmp_path / name for name in os.listdir(tmp_path) if name.endswith(".spool")]
    data = bytearray(segment.read_bytes())
    frame = len(data) // 5
    data[frame + 100] ^= 0xFF  # the second chunk's payload rots
    segment.write_bytes(bytes(data[: len(data) - 7]))  # the last chunk is torn (a crash mid-write)
    stats = SelfStats()
    second = ForwardSink(config(peer.endpoint, tmp_path, batch_size=10), stats)
    try:
        peer.start()
        events = peer.wait_for_events(30)
        assert second.flush(10)
    finally:
        second.shutdown()
    assert request_numbers(events) == list(range(10)) + list(range(20, 40))
    assert stats.dropped == {(STAGE, "spool_torn"): 10, (STAGE, "spool_corrupt"): 10}


def test_without_a_spool_a_chunk_is_retried_in_memory_then_given_up(peer: ForwardPeer) -> None:
    peer.stop()
    stats = SelfStats()
    retry = RetryConfig(initial_backoff=0.05, max_backoff=0.1, max_elapsed=0.5)
    sink = ForwardSink(config(peer.endpoint, None, retry=retry, batch_size=30), stats)
    try:
        sink.consume(numbered(30, namespaces=1))
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert stats.dropped == {(STAGE, "gave_up"): 30}
    assert stats.export_failures[("fluentforward", "gave_up")] == 1
    assert stats.export_failures[("fluentforward", "unreachable")] >= 2


def test_without_a_spool_an_outage_shorter_than_max_elapsed_loses_nothing(peer: ForwardPeer) -> None:
    peer.stop()
    sink = ForwardSink(config(peer.endpoint, None, batch_size=30), SelfStats())
    try:
        sink.consume(numbered(90, namespaces=1))
        assert not sink.flush(0.3)
        peer.start()
        events = peer.wait_for_events(90)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert request_numbers(events) == list(range(90))


@pytest.mark.parametrize("encoded", [False, True], ids=["records", "encoded"])
def test_a_full_memory_queue_drops_the_oldest_records_and_counts_them(peer: ForwardPeer, encoded: bool) -> None:
    # Events encoded by parsing workers (an EncodedBatch) are taken and dropped one by one, as Records are.
    encoder = EntryEncoder("meshscope.access.{namespace}")

    def batch(records: list[Record]) -> list[Record] | EncodedBatch:
        return EncodedBatch(encoder.encode_segments(records, "", (0, 0))) if encoded else records

    peer.stop()
    stats = SelfStats()
    # Without a spool the sender holds its first chunk while Fluentd is away, so the queue fills.
    sink = ForwardSink(config(peer.endpoint, None, batch_size=10, queue_size=100, batch_timeout=0), stats)
    try:
        sink.consume(batch(numbered(10)))
        for start in range(10, 510, 50):
            sink.consume(batch(numbered(50, start)))
        peer.start()
        assert sink.flush(10)
        events = peer.events()
    finally:
        sink.shutdown()
    dropped = stats.dropped[(STAGE, "queue_full")]
    numbers = request_numbers(events)
    assert len(events) + dropped == 510 and len(set(numbers)) == len(numbers)
    # What arrived: what the sender held, then the newest 100, each event whole, in chunks of batch_size.
    assert set(numbers) >= set(range(410, 510)) and max(len(chunk) for chunk in chunks_of(events)) <= 10
    newest = sorted(
        (event for event in events if request_numbers([event])[0] >= 410), key=lambda e: request_numbers([e])
    )
    assert [event.record for event in newest] == [record_event(record, "") for record in numbered(100, 410)]


def test_encoded_events_found_malformed_where_split_are_dropped_before_any_chunk_holds_them(
    peer: ForwardPeer,
) -> None:
    encoder = EntryEncoder("meshscope.access.{namespace}", False)
    first, bad, last = (encoder.encode_segments(numbered(3, start, 1), "", (0, 0)) for start in (0, 3, 6))
    ((tag, entries, _),) = bad
    malformed = EncodedBatch([(tag, entries, 4)])  # 3 entries that say they are 4
    stats = SelfStats()
    # Chunks of 5: the first batch and 2 of the malformed one make the first, so that one must be split.
    sink = ForwardSink(config(peer.endpoint, None, batch_size=5, batch_timeout=30.0), stats)
    try:
        for batch in (EncodedBatch(first), malformed, EncodedBatch(last)):
            sink.consume(batch)
        assert sink.flush(10)  # everything settled: the malformed events are counted as dropped
        events = peer.events()
    finally:
        sink.shutdown()
    assert request_numbers(events) == [0, 1, 2, 6, 7, 8]
    assert stats.dropped == {(STAGE, "malformed"): 4}
    assert peer.log.errors == [] and stats.exported == {"fluentforward": 6}


def chunks_of(events: list[Event]) -> list[list[Event]]:
    chunks: dict[str | None, list[Event]] = {}
    for event in events:
        chunks.setdefault(event.chunk, []).append(event)
    return list(chunks.values())


def test_config_errors_name_the_key() -> None:
    bad = FluentForwardConfig(endpoint="fluentd", tag="a {workload}", timeout=0, batch_size=0)
    errors = bad.validate()
    assert any(error.startswith("endpoint: expected host:port") for error in errors)
    assert any(error.startswith("tag: ") for error in errors)
    assert "timeout: must be positive" in errors and "batch_size: must be at least 1" in errors
    assert SpoolConfig(max_bytes=10_000, segment_bytes=8192).validate() == [
        "max_bytes: must be at least twice segment_bytes"
    ]
    assert FluentForwardConfig(endpoint="[::1]:24224").address() == ("::1", 24224)
    for endpoint, error in ((":24224", "endpoint: expected host:port, got ':24224'"),
                            ("fluentd:0", "endpoint: port 0 cannot be connected to"),
                            ("fluentd:70000", "endpoint: expected host:port, got 'fluentd:70000'")):  # fmt: skip
        assert FluentForwardConfig(endpoint=endpoint).validate() == [error]
    assert FluentForwardConfig(max_chunk_attempts=-1).validate() == ["max_chunk_attempts: must not be negative"]


def test_flush_waits_for_the_batch_in_flight_even_when_newer_records_are_dropped(peer: ForwardPeer) -> None:
    peer.stop()
    sink = ForwardSink(config(peer.endpoint, None, batch_size=10, queue_size=100, batch_timeout=0), SelfStats())
    try:
        sink.consume(numbered(10, namespaces=1))
        wait_for(lambda: sink.depth() == 10 and sink._queued == 0, what="the sender to hold the first batch")
        results: list[bool] = []
        flusher = threading.Thread(target=lambda: results.append(sink.flush(1.0)))
        flusher.start()
        sink.consume(numbered(200, 10))  # 100 newer Records dropped while the first batch is undelivered
        flusher.join()
        assert results == [False]
        peer.start()
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert request_numbers(peer.events())[:10] == list(range(10))


def test_a_peer_that_closes_mid_stream_gets_every_chunk_again_on_a_new_connection(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.close_after = 2  # each connection: two chunks acknowledged, the third cut off unread
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=25), SelfStats())
    try:
        for start in range(0, 250, 25):
            sink.consume(numbered(25, start, namespaces=1))
            assert sink.flush(10)
        events = peer.wait_for_events(250)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert request_numbers(events) == list(range(250))  # in order, none lost, none twice at the peer
    assert peer.duplicate_chunks() == 0 and sink.resent_events >= 25


def test_shutdown_cuts_a_send_waiting_for_its_ack_and_spools_the_chunk(tmp_path: Path) -> None:
    with ForwardPeer(ack=False) as silent:  # takes chunks, never acknowledges
        stats = SelfStats()
        sink = ForwardSink(config(silent.endpoint, tmp_path, timeout=30.0, shutdown_timeout=0.2), stats)
        sink.consume(numbered(50, namespaces=1))
        silent.wait_for_events(50)  # sent; the sender now waits up to 30 s for the acknowledgement
        sink.shutdown()  # must not leave that wait running, nor close the spool under it
        assert not sink._worker.is_alive()
    assert stats.dropped == {}
    spool = Spool(str(tmp_path), 1 << 30, 1 << 20, SelfStats(), "ff")
    chunk = spool.peek()
    spool.close()
    assert spool.pending_events == 50 and chunk is not None and chunk.attempted


def test_an_answer_that_is_not_msgpack_drops_the_connection_and_the_chunk_is_resent(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.garbage_acks = 1
    sink, stats, events = send_fifty_expecting_a_resend(peer, tmp_path)
    assert sorted(request_numbers(events)) == sorted(list(range(50)) * 2)
    assert stats.dropped == {} and sink.resent_events == 50 and sink.acknowledged_events == 50
    assert stats.export_failures[("fluentforward", "send")] == 1


def test_a_chunk_fluentd_keeps_refusing_is_dropped_after_max_chunk_attempts(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.reject_tags = {"meshscope.access.ns1"}  # its chunk closes the connection, every time
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=30, max_chunk_attempts=3), stats)
    try:
        sink.consume(numbered(30))  # three chunks of 10, one per namespace
        events = peer.wait_for_events(20)  # the chunk behind the refused one arrives too
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert sorted(request_numbers(events)) == [number for number in range(30) if number % 3 != 1]
    assert stats.dropped == {(STAGE, "rejected"): 10} and peer.log.rejected == 3
    assert sink.spool is not None and sink.spool.pending_events == 0


def test_an_unreadable_spool_segment_is_counted_and_skipped_without_spinning(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.stop()
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=50), stats)
    try:
        sink.consume(numbered(50, namespaces=1))
        assert sink.flush(10) and sink.spool is not None and sink.spool.pending_events == 50
        for segment in tmp_path.glob("segment-*.spool"):
            segment.unlink()  # lost under the sink (a disk error reads the same way)
        peer.start()
        wait_for(lambda: stats.dropped.get((STAGE, "spool_error"), 0) == 50, what="the segment to be given up")
        sink.consume(numbered(20, 50, namespaces=1))
        events = peer.wait_for_events(20)
        assert sink.flush(10)
    finally:
        sink.shutdown()
    assert request_numbers(events) == list(range(50, 70))
    assert stats.dropped == {(STAGE, "spool_error"): 50}


def test_a_spool_locked_by_another_process_is_opened_once_it_is_free(
    peer: ForwardPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "SPOOL_RETRY", 0.2)
    peer.stop()
    holder = Spool(str(tmp_path), 1 << 30, 1 << 20, SelfStats(), "ff")  # a predecessor still draining
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=40), stats)
    try:
        assert not sink.durable and stats.export_failures[("fluentforward", "spool_unusable")] == 1
        sink.consume(numbered(40, namespaces=1))
        assert not sink.flush(0.5)  # only in memory: not safe for a checkpoint
        holder.close()
        wait_for(lambda: sink.durable, what="the spool to be opened")
        assert sink.flush(10)  # the chunk waiting in memory went to the spool
        assert sink.spool is not None and sink.spool.pending_events == 40
        assert stats.export_failures[("fluentforward", "spool_unusable")] == 1  # reported once, not per try
    finally:
        sink.shutdown()


def test_the_unreachable_banner_names_the_address_once(peer: ForwardPeer) -> None:
    peer.stop()
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, None, shutdown_timeout=0.2), stats)
    try:
        sink.consume(numbered(1))
        wait_for(lambda: "fluentd" in stats.unreachable(), what="the failed connection")
    finally:
        sink.shutdown()
    assert sink.reachability is not None
    assert sink.reachability[1] == f"{peer.endpoint}: cannot connect: Connection refused"


def test_the_next_batch_is_encoded_while_fluentd_reads_a_chunk_and_flush_still_waits_for_every_ack(
    peer: ForwardPeer, tmp_path: Path
) -> None:
    peer.ack_delay = 1.0
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=50), SelfStats())
    try:
        sink.consume(numbered(150, namespaces=1))
        peer.wait_for_events(50)
        # The first chunk waits for its acknowledgement; the second batch is taken (and encoded) meanwhile.
        wait_for(lambda: sink._queued == 50 and sink.depth() == 150, what="the second batch to be taken")
        assert sink.acknowledged_events == 0
        assert sink.flush(10)
        assert sink.acknowledged_events == 150
    finally:
        sink.shutdown()
    assert request_numbers(peer.events()) == list(range(150)) and peer.duplicate_chunks() == 0


def test_a_lost_ack_while_the_next_batch_is_encoded_spools_both_in_order(peer: ForwardPeer, tmp_path: Path) -> None:
    peer.lose_acks = 1
    stats = SelfStats()
    sink = ForwardSink(config(peer.endpoint, tmp_path, batch_size=50), stats)
    try:
        sink.consume(numbered(200, namespaces=1))
        events = peer.wait_for_events(250)
        wait_for(lambda: sink.spool is not None and sink.spool.pending_events == 0, what="the spool to empty")
        assert sink.flush(10)
    finally:
        sink.shutdown()
    numbers = request_numbers(events)
    assert numbers == list(range(50)) + list(range(200))  # the first chunk again, then everything in order
    assert sink.resent_events == 50 and stats.dropped == {}


def test_set_to_wait_a_slow_fluentd_holds_file_tailing_back_one_that_is_away_does_not(peer: ForwardPeer) -> None:
    # Pipeline.wait_for_room asks this for file tailing: a slow Fluentd holds tailing back; one that is away
    # does not (without a spool the oldest are then dropped, counted), so an outage never stops the metrics.
    stats = SelfStats()
    by_default = ForwardSink(config(peer.endpoint, None, queue_size=100, batch_size=10), stats)
    try:
        by_default.consume(numbered(300))  # far over the queue: the oldest are dropped, counted
        assert by_default.hold_back(100, 0.0)  # and file tailing is never held back
    finally:
        by_default.shutdown()
    peer.ack_delay = 0.2
    sink = ForwardSink(config(peer.endpoint, None, queue_size=100, batch_size=10, when_full="wait"), stats)
    try:
        sink.consume(numbered(100))
        assert not sink.hold_back(50, 0.05)  # answering slowly, queue full: wait
        assert sink.hold_back(50, 30)
        peer.stop()
        sink.consume(numbered(100, 100))
        wait_for(lambda: "fluentd" in stats.unreachable(), what="the outage noticed")
        assert sink.hold_back(1000, 0.0)
    finally:
        sink.shutdown()
