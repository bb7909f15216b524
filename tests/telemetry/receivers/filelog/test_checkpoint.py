"""The offsets state file: atomic writes, tolerant reads, files known by inode and first bytes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from telemetry.receivers.filelog.checkpoint import CheckpointFile, FileMark, find_mark, fingerprint


def mark(
    path: str = "/logs/a.log", device: int = 1, inode: int = 2, prefix: bytes = b"first bytes", offset: int = 9
) -> FileMark:
    return FileMark(path, device, inode, fingerprint(prefix), len(prefix), offset)


def test_saved_marks_load_back_and_no_temp_file_is_left(tmp_path: Path) -> None:
    store = CheckpointFile(str(tmp_path / "state" / "offsets.json"))
    marks = [mark(), mark("/logs/b.log", inode=3, offset=0)]
    assert store.save(marks)
    assert store.load() == marks
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["offsets.json"]


def test_a_missing_file_means_no_marks(tmp_path: Path) -> None:
    assert CheckpointFile(str(tmp_path / "none.json")).load() == []


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'{"version": 7, "files": []}', b'{"version": 1, "files": [{}]}']
)
def test_an_unusable_file_means_no_marks_and_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "offsets.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert CheckpointFile(str(path)).load() == []
    assert "unusable" in caplog.text


def test_an_unwritable_location_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not CheckpointFile(str(blocker / "offsets.json")).save([mark()])


def test_a_mark_is_found_by_inode_only_while_the_first_bytes_match() -> None:
    marks = [mark()]
    assert find_mark(marks, "/logs/a.log", 1, 2, lambda size: b"first bytes, and more"[:size]) == marks[0]
    # Same inode, other content: the inode was reused by a new file.
    assert find_mark(marks, "/logs/a.log", 1, 2, lambda size: b"other bytes"[:size]) is None


def test_a_mark_is_found_by_path_when_the_device_number_changed() -> None:
    marks = [mark()]
    assert find_mark(marks, "/logs/a.log", 99, 2, lambda size: b"first bytes"[:size]) == marks[0]
    assert find_mark(marks, "/logs/elsewhere.log", 99, 2, lambda size: b"first bytes"[:size]) is None


def test_a_gone_mark_round_trips_and_is_never_found_by_its_path(tmp_path: Path) -> None:
    store = CheckpointFile(str(tmp_path / "offsets.json"))
    gone = FileMark("/logs/a.log", 1, 2, fingerprint(b"first bytes"), len(b"first bytes"), 9, gone=True)
    assert store.save([gone])
    assert store.load() == [gone]
    # Another file now lives at the path a rotated file left; only device + inode find the rotated one.
    assert find_mark([gone], "/logs/a.log", 1, 3, lambda size: b"first bytes"[:size]) is None
    assert find_mark([gone], "/logs/a.log.1", 1, 2, lambda size: b"first bytes"[:size]) == gone


def test_a_checkpoint_without_the_gone_key_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "offsets.json"
    path.write_bytes(
        b'{"version": 1, "files": [{"path": "/a", "device": 1, "inode": 2, "fingerprint": "f",'
        b' "fingerprint_size": 3, "offset": 4}]}'
    )
    assert CheckpointFile(str(path)).load() == [FileMark("/a", 1, 2, "f", 3, 4)]
