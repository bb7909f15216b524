"""The spool on its own: order, the cursor across reopening, segment rolling, the size bound."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import msgpack
import pytest

from telemetry.exporters.fluentforward.spool import HEADER_BYTES, Chunk, Spool, frame, read_header
from telemetry.selfmetrics import SelfStats


def chunk(number: int, events: int = 10, size: int = 1000) -> Chunk:
    return Chunk("t", f"id{number}", bytes([number % 256]) * size, events)


def test_acknowledged_chunks_are_not_replayed_after_reopening(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    for number in range(6):
        assert spool.append(chunk(number))
    assert len(list(tmp_path.glob("segment-*.spool"))) == 2  # 3 frames of ~1 KB fit in a 4 KB segment
    for number in range(4):
        got = spool.peek()
        assert got is not None and got.chunk_id == f"id{number}" and got.entries == chunk(number).entries
        spool.commit()
    assert spool.pending_events == 20
    spool.close()
    assert len(list(tmp_path.glob("segment-*.spool"))) == 1  # the acknowledged first segment is gone
    reopened = Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    assert reopened.pending_events == 20
    assert [reopened.peek().chunk_id, reopened.commit(), reopened.peek().chunk_id] == ["id4", None, "id5"]  # type: ignore[union-attr]
    reopened.commit()
    assert reopened.peek() is None and reopened.pending_events == 0
    assert not list(tmp_path.glob("segment-*.spool"))  # everything acknowledged: no segment left
    reopened.append(chunk(9))
    reopened.close()
    again = Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    assert again.peek().chunk_id == "id9"  # type: ignore[union-attr]


def test_the_size_bound_drops_whole_oldest_segments_and_counts_their_events(tmp_path: Path) -> None:
    stats = SelfStats()
    header, payload = frame(chunk(0))
    frame_bytes = len(header) + sum(map(len, payload))
    assert len(header) == HEADER_BYTES
    spool = Spool(str(tmp_path), 4 * frame_bytes, 2 * frame_bytes, stats, "ff")
    for number in range(9):
        spool.append(chunk(number))
        assert spool.disk_bytes() <= 4 * frame_bytes
    # Two frames per segment, at most two segments: the newest 3 or 4 chunks are left.
    remaining = []
    while (got := spool.peek()) is not None:
        remaining.append(got.chunk_id)
        spool.commit()
    assert remaining == ["id6", "id7", "id8"]
    assert stats.dropped == {("ff", "spool_full"): 60}
    assert not spool.append(Chunk("t", "huge", b"x" * 5 * frame_bytes, 7))
    assert stats.dropped == {("ff", "spool_full"): 67}
    spool.close()
    assert sum(os.path.getsize(path) for path in tmp_path.glob("segment-*.spool")) <= 4 * frame_bytes


def test_a_spool_directory_in_use_by_another_sink_is_refused(tmp_path: Path) -> None:
    first = Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    with pytest.raises(OSError, match="another process is using this spool"):
        Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    first.close()
    Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff").close()  # free again once closed


def test_a_spool_that_fails_to_open_leaves_it_free_for_the_next_attempt(tmp_path: Path) -> None:
    broken = tmp_path / "segment-0000000000000001.spool"
    broken.mkdir()  # a segment that cannot be read: opening fails while recovering
    with pytest.raises(OSError) as failure:
        Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    assert "another process" not in str(failure.value)
    broken.rmdir()
    Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff").close()  # not "in use" by the failed attempt


def test_segments_a_failed_sync_could_not_make_durable_are_synced_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(str(tmp_path), 1 << 20, 4096, SelfStats(), "ff")
    spool.append(chunk(1))
    synced: list[int] = []
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        spool.sync()
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    spool.sync()
    assert synced, "the segment written before the failed sync was not synced again"
    spool.close()


def entries_chunk(number: int, events: int = 10) -> Chunk:
    entries = b"".join(msgpack.packb([number, {"n": index, "pad": "MSF1" * 20}]) for index in range(events))
    return Chunk("t", f"id{number}", entries, events)


def test_a_broken_header_mid_segment_skips_only_its_frame_and_counts_its_events(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 1 << 20, 1 << 19, SelfStats(), "ff")
    offsets = []
    for number in range(5):
        offsets.append(spool.disk_bytes())
        spool.append(entries_chunk(number))
    spool.close()
    (segment,) = tmp_path.glob("segment-*.spool")
    data = bytearray(segment.read_bytes())
    data[offsets[1] + 6] ^= 0xFF  # the second frame's length field: its header checksum fails
    segment.write_bytes(bytes(data))
    stats = SelfStats()
    reopened = Spool(str(tmp_path), 1 << 20, 1 << 19, stats, "ff")
    replayed = []
    while (got := reopened.peek()) is not None:
        replayed.append(got.chunk_id)
        reopened.commit()
    reopened.close()
    # The payloads carry the magic too ("MSF1" in every entry): only an intact header resynchronises.
    assert replayed == ["id0", "id2", "id3", "id4"]
    assert stats.dropped == {("ff", "spool_corrupt"): 10}


def test_a_broken_header_at_the_end_counts_the_torn_frame(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 1 << 20, 1 << 19, SelfStats(), "ff")
    spool.append(entries_chunk(0))
    last = spool.disk_bytes()
    spool.append(entries_chunk(1, events=7))
    spool.close()
    (segment,) = tmp_path.glob("segment-*.spool")
    data = bytearray(segment.read_bytes())
    data[last] ^= 0xFF  # the magic of the last frame
    segment.write_bytes(bytes(data))
    stats = SelfStats()
    reopened = Spool(str(tmp_path), 1 << 20, 1 << 19, stats, "ff")
    assert reopened.pending_events == 10
    assert stats.dropped == {("ff", "spool_torn"): 7}
    reopened.close()


def test_appending_to_a_closed_spool_fails_and_an_unreadable_head_segment_is_discarded(tmp_path: Path) -> None:
    stats = SelfStats()
    spool = Spool(str(tmp_path), 1 << 20, 4096, stats, "ff")
    for number in range(3):
        spool.append(chunk(number))
    for path in tmp_path.glob("segment-*.spool"):
        path.unlink()  # removed under the spool: reading fails
    with pytest.raises(OSError):
        spool.peek()
    spool.discard_head("spool_error")
    assert stats.dropped[("ff", "spool_error")] > 0
    while spool.pending_events:
        with pytest.raises(OSError):
            spool.peek()
        spool.discard_head("spool_error")
    assert stats.dropped[("ff", "spool_error")] == 30 and spool.peek() is None
    spool.close()
    with pytest.raises(OSError, match="closed"):
        spool.append(chunk(9))


@pytest.mark.parametrize("size", [0, 255, 256, 65535, 65536])
@pytest.mark.parametrize("attempted", [False, True])
def test_a_frame_written_in_pieces_is_the_msgpack_payload_the_reader_expects(size: int, attempted: bool) -> None:
    written = Chunk("meshscope.access.shop", "c2lkZQ==", bytes(range(256)) * (size // 256) + b"x" * (size % 256), 3,
                    attempted)  # fmt: skip
    header, pieces = frame(written)
    payload = b"".join(pieces)
    assert payload == msgpack.packb(list(written[:3]) + [attempted], use_bin_type=True)
    assert read_header(header) == (len(payload), 3, zlib.crc32(payload))
