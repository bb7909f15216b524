"""The file tailing receiver end to end: real files, the real parser, a real Pipeline.

Most tests drive ``poll()`` by hand so every step is deterministic; the restart test runs the thread.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from telemetry.deadletter import DeadLetter
from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.filelog.config import DeadLetterConfig, WorkloadMatch
from telemetry.receivers.filelog.factory import create_receiver
from telemetry.receivers.filelog.receiver import FileLogReceiver

ACCESSLOGS = Path(__file__).resolve().parents[3] / "testdata" / "accesslogs"
Harness = Any  # the conftest fixture's class (test modules cannot import conftest)

# Run in-process and with two parsing worker processes: the workers run the same tailing code, so what it
# promises (order, rotation, checkpoints, unwrapping, bad-line handling) must hold there too.
WITH_WORKERS = pytest.mark.parametrize("harness", [0, 2], indirect=True, ids=["in_process", "workers"])


def checkpoint_offsets(harness: Harness) -> dict[str, int]:
    data = orjson.loads((harness.root / "state" / "checkpoint.json").read_bytes())
    return {Path(item["path"]).name: item["offset"] for item in data["files"]}


def assert_each_once(ids: Sequence[str], expected: Sequence[str]) -> None:
    counts = Counter(ids)
    assert sorted(counts) == sorted(expected)
    assert max(counts.values()) == 1, f"delivered twice: {[i for i, n in counts.items() if n > 1]}"


@WITH_WORKERS
def test_reads_existing_lines_then_follows_appended_ones(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("a", 5))
    receiver = harness.receiver()
    receiver.poll()
    assert harness.request_ids() == [f"a-{i}" for i in range(5)]
    harness.append("a.log", harness.istio_lines("b", 3))
    receiver.poll()
    assert harness.request_ids() == [f"a-{i}" for i in range(5)] + [f"b-{i}" for i in range(3)]


@WITH_WORKERS
def test_partial_trailing_line_is_not_consumed_until_its_newline(harness: Harness) -> None:
    line = harness.istio_lines("p", 1)[0]
    path = harness.append("a.log", [line[:100]], newline=False)
    receiver = harness.receiver()
    receiver.poll()
    receiver.save_checkpoint()
    assert harness.request_ids() == []
    assert checkpoint_offsets(harness) == {"a.log": 0}
    harness.append("a.log", [line[100:] + "\n"], newline=False)
    receiver.poll()
    receiver.save_checkpoint()
    assert harness.request_ids() == ["p-0"]
    assert checkpoint_offsets(harness) == {"a.log": path.stat().st_size}


@WITH_WORKERS
def test_rotation_by_rename_finishes_old_file_then_reads_new_one_from_start(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("old", 5))
    # One line per read chunk: the unread rest of the old file takes more than one poll.
    receiver = harness.receiver(harness.config(read_chunk_bytes=400))
    while receiver.poll():
        pass
    # Written just before the rotation, still unread when the old file is renamed out of the glob.
    harness.append("a.log", harness.istio_lines("late", 40))
    os.rename(harness.path("a.log"), harness.path("a.log.1"))
    harness.append("a.log", harness.istio_lines("new", 4))
    for _ in range(3):
        while receiver.poll():
            pass
    expected = [f"old-{i}" for i in range(5)] + [f"late-{i}" for i in range(40)] + [f"new-{i}" for i in range(4)]
    assert harness.request_ids() == expected


@WITH_WORKERS
def test_rotation_by_rename_to_another_watched_name_is_not_read_twice(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("old", 5))
    receiver = harness.receiver()
    receiver.poll()
    os.rename(harness.path("a.log"), harness.path("a-1.log"))
    harness.append("a.log", harness.istio_lines("new", 2))
    receiver.poll()
    receiver.poll()
    assert_each_once(harness.request_ids(), [f"old-{i}" for i in range(5)] + ["new-0", "new-1"])


@WITH_WORKERS
def test_copytruncate_rotation_reads_the_truncated_file_from_start(harness: Harness) -> None:
    path = harness.append("a.log", harness.istio_lines("old", 5))
    receiver = harness.receiver()
    receiver.poll()
    shutil.copyfile(path, harness.root / "a.log.1")
    with open(path, "r+", encoding="utf-8") as handle:
        handle.truncate(0)
    harness.append("a.log", harness.istio_lines("new", 2))
    receiver.poll()
    assert harness.request_ids() == [f"old-{i}" for i in range(5)] + ["new-0", "new-1"]


@WITH_WORKERS
def test_truncated_and_refilled_past_old_offset_is_read_from_start(harness: Harness) -> None:
    path = harness.append("a.log", harness.istio_lines("old", 2))
    receiver = harness.receiver()
    receiver.poll()
    # Refilled beyond the old offset before the next poll: only the changed first bytes tell.
    path.write_text(
        "".join(line.replace("[2024-05-04", "[2024-05-05") + "\n" for line in harness.istio_lines("new", 6))
    )
    receiver.poll()
    assert harness.request_ids() == ["old-0", "old-1"] + [f"new-{i}" for i in range(6)]


@WITH_WORKERS
def test_file_appearing_later_is_read_from_its_start_even_with_start_at_end(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("history", 5))
    receiver = harness.receiver(harness.config(start_at="end"))
    receiver.poll()
    assert harness.request_ids() == []
    harness.append("sub/b.log", harness.istio_lines("late", 3))
    harness.append("a.log", harness.istio_lines("fresh", 2))
    receiver.poll()
    assert sorted(harness.request_ids()) == sorted(["late-0", "late-1", "late-2", "fresh-0", "fresh-1"])


@WITH_WORKERS
def test_exclude_patterns_skip_matching_files(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("kept", 2))
    harness.append("skip-me.log", harness.istio_lines("skipped", 2))
    receiver = harness.receiver(harness.config(exclude=["*/skip-*"]))
    receiver.poll()
    assert harness.request_ids() == ["kept-0", "kept-1"]


@WITH_WORKERS
def test_restart_from_checkpoint_delivers_every_line_exactly_once(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("first", 200))
    first = harness.receiver()
    first.start()
    harness.wait_until(lambda: harness.sink.count() == 200, what="the first 200 records")
    first.shutdown()
    harness.append("a.log", harness.istio_lines("second", 150))
    second = harness.receiver()
    second.start()
    harness.wait_until(lambda: harness.sink.count() >= 350, what="the next 150 records")
    second.shutdown()
    expected = [f"first-{i}" for i in range(200)] + [f"second-{i}" for i in range(150)]
    assert_each_once(harness.request_ids(), expected)


@WITH_WORKERS
def test_restart_with_a_different_start_at_still_resumes_from_checkpoint(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("first", 3))
    first = harness.receiver()
    first.poll()
    first.shutdown()
    harness.append("a.log", harness.istio_lines("second", 2))
    second = harness.receiver(harness.config(start_at="end"))
    second.poll()
    assert_each_once(harness.request_ids(), ["first-0", "first-1", "first-2", "second-0", "second-1"])


@WITH_WORKERS
def test_checkpoint_does_not_advance_past_records_a_closed_pipeline_refused(harness: Harness) -> None:
    harness.append("a.log", harness.istio_lines("a", 4))
    closed = harness.new_pipeline()
    closed.shutdown()
    refused = harness.receiver(pipeline=closed)
    refused.poll()
    refused.shutdown()
    assert checkpoint_offsets(harness) == {"a.log": 0}
    assert harness.stats.dropped[("pipeline", "shutdown")] == 4
    retried = harness.receiver()
    retried.poll()
    assert harness.request_ids() == [f"a-{i}" for i in range(4)]


class AcceptsOnce(Pipeline):
    """A real pipeline that refuses every batch after the first, as a closing one would."""

    accepted = 0

    def submit(self, records: Sequence[Record], receiver: str, wait: float | None = 0.0) -> bool:
        if self.accepted:
            self._stats.drop("pipeline", "test_refusal", len(records))
            return False
        self.accepted += 1
        return super().submit(records, receiver, wait)


def test_checkpoint_stops_exactly_after_the_last_accepted_batch(harness: Harness) -> None:
    lines = harness.istio_lines("a", 20)
    harness.append("a.log", lines)
    # Chunks of ~2.5 lines: the first batch is two lines, and the third line is split across chunks.
    chunk = len(lines[0]) * 5 // 2
    config = harness.config(read_chunk_bytes=chunk)
    flaky = harness.receiver(config, pipeline=harness.new_pipeline(AcceptsOnce))
    flaky.poll()
    flaky.shutdown()
    assert checkpoint_offsets(harness) == {"a.log": 2 * (len(lines[0]) + 1)}
    resumed = harness.receiver(config)
    while resumed.poll():
        pass
    assert_each_once(harness.request_ids(), [f"a-{i}" for i in range(20)])


class RefusesSecond(Pipeline):
    """A real pipeline that refuses its second batch only."""

    calls = 0

    def submit(self, records: Sequence[Record], receiver: str, wait: float | None = 0.0) -> bool:
        self.calls += 1
        if self.calls == 2:
            self._stats.drop("pipeline", "test_refusal", len(records))
            return False
        return super().submit(records, receiver, wait)


def test_a_refused_batch_is_read_again_at_the_next_poll(harness: Harness) -> None:
    lines = harness.istio_lines("a", 20)
    harness.append("a.log", lines)
    harness.pipeline = harness.new_pipeline(RefusesSecond)
    receiver = harness.receiver(harness.config(read_chunk_bytes=len(lines[0]) * 5 // 2))
    while receiver.poll():
        pass
    receiver.poll()
    while receiver.poll():
        pass
    assert harness.request_ids() == [f"a-{i}" for i in range(20)]


@WITH_WORKERS
def test_cri_partial_lines_are_joined_into_one_record(harness: Harness) -> None:
    shutil.copyfile(harness.testdata / "cri.log", harness.path(f"{harness.pod_dir}/0.log"))
    receiver = harness.receiver()
    receiver.poll()
    records = harness.delivered()
    expected = [line.split('"')[-6] for line in (harness.testdata / "istio.log").read_text().splitlines()]
    assert [record.request_id for record in records] == expected
    assert records[1].path == "/ratings/0" and records[1].user_agent == "Apache-CXF/3.1.18"
    assert harness.stats.total_parse_errors() == 0


@WITH_WORKERS
def test_cri_partial_line_is_not_checkpointed_half_read(harness: Harness) -> None:
    line = harness.istio_lines("split", 1)[0]
    name = f"{harness.pod_dir}/0.log"
    harness.append(name, [f"2024-05-04T17:22:59.046918Z stdout F {harness.istio_lines('whole', 1)[0]}"])
    whole = harness.path(name).stat().st_size
    harness.append(name, [f"2024-05-04T17:22:59.112301Z stdout P {line[:80]}"])
    first = harness.receiver()
    first.poll()
    first.shutdown()
    assert harness.request_ids() == ["whole-0"]
    assert checkpoint_offsets(harness) == {"0.log": whole}
    harness.append(name, [f"2024-05-04T17:22:59.112301Z stdout F {line[80:]}"])
    second = harness.receiver()
    second.poll()
    assert harness.request_ids() == ["whole-0", "split-0"]


@WITH_WORKERS
def test_docker_json_lines_are_unwrapped_and_joined(harness: Harness) -> None:
    shutil.copyfile(harness.testdata / "docker.log", harness.path("docker/abc-json.log"))
    receiver = harness.receiver()
    receiver.poll()
    records = harness.delivered()
    expected = [line.split('"')[-6] for line in (harness.testdata / "istio.log").read_text().splitlines()]
    assert [record.request_id for record in records] == expected
    assert records[1].response_code == 200 and records[2].response_flags == "UF"
    assert harness.stats.total_parse_errors() == 0


@WITH_WORKERS
def test_kubernetes_pod_log_path_names_the_reporting_proxy(harness: Harness) -> None:
    harness.append(f"{harness.pod_dir}/0.log", harness.istio_lines("a", 1))
    harness.receiver().poll()
    (record,) = harness.delivered()
    # An outbound entry: the proxy reported as the source side.
    assert record.reporter == "source"
    assert (record.source_workload, record.source_namespace) == ("reviews-v2", "default")
    assert (record.source_app, record.source_version) == ("reviews", "v2")


def test_workloads_config_names_the_proxy_before_the_path_rule(harness: Harness) -> None:
    harness.append(f"{harness.pod_dir}/0.log", harness.istio_lines("pod", 1))
    harness.append("vm/envoy.log", harness.istio_lines("vm", 1))
    workloads = [
        WorkloadMatch(glob="*/pods/*", workload="from-config", namespace="shop", version="v9"),
        WorkloadMatch(glob="*/vm/*", workload="legacy-vm", namespace="vms"),
        WorkloadMatch(glob="*", workload="never-reached"),
    ]
    harness.receiver(harness.config(workloads=workloads)).poll()
    by_id = {record.request_id: record for record in harness.delivered()}
    pod, vm = by_id["pod-0"], by_id["vm-0"]
    assert (pod.source_workload, pod.source_namespace, pod.source_app, pod.source_version) == (
        "from-config",
        "shop",
        "from-config",
        "v9",
    )
    assert (vm.source_workload, vm.source_namespace) == ("legacy-vm", "vms")


def test_file_outside_kubernetes_without_config_reports_unknown(harness: Harness) -> None:
    harness.append("plain.log", harness.istio_lines("a", 1))
    harness.receiver().poll()
    (record,) = harness.delivered()
    assert record.source_workload == "unknown"


@WITH_WORKERS
def test_bad_lines_are_counted_by_reason_and_sampled_into_a_bounded_dead_letter_file(harness: Harness) -> None:
    good = harness.istio_lines("good", 3)
    path = harness.path("a.log")
    with open(path, "wb") as handle:
        handle.write(good[0].encode() + b"\n")
        handle.write(b"caf\xe9 \xff\xfe not utf-8\n")
        handle.write(good[1].encode() + b"\n")
        handle.write(b"x" * 5000 + b"\n")  # longer than max_line_bytes, and than a read chunk
        handle.write(b"this is not an access log line\n")
        handle.write(good[2].encode() + b"\n")
    dead_path = harness.root / "dead" / "letters.jsonl"
    config = harness.config(max_line_bytes=1024, read_chunk_bytes=700)
    receiver = harness.receiver(config, dead_letter=DeadLetter(str(dead_path), max_lines=2))
    while receiver.poll():
        pass
    assert harness.request_ids() == ["good-0", "good-1", "good-2"]
    assert harness.stats.parse_errors == {
        ("filelog", "not_utf8"): 1,
        ("filelog", "too_long"): 1,
        ("filelog", "format_mismatch"): 1,
    }
    sampled = [orjson.loads(line) for line in dead_path.read_bytes().splitlines()]
    assert [entry["reason"] for entry in sampled] == ["not_utf8", "too_long"]
    assert sampled[0]["line"] == "caf\\xe9 \\xff\\xfe not utf-8"
    assert set(sampled[1]["line"]) == {"x"}
    assert all(entry["receiver"] == "filelog" for entry in sampled)


def test_overlong_line_within_one_chunk_is_skipped(harness: Harness) -> None:
    good = harness.istio_lines("good", 2)
    harness.append("a.log", [good[0], "y" * 2000, good[1]])
    harness.receiver(harness.config(max_line_bytes=1024)).poll()
    assert harness.request_ids() == ["good-0", "good-1"]
    assert harness.stats.parse_errors == {("filelog", "too_long"): 1}


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_never_crash_the_receiver(harness: Harness, seed: int) -> None:
    import random

    generator = random.Random(seed)
    blob = bytes(generator.choice(b'\n\n\xff\x00 abc{}"[]P F stdout 2024-') for _ in range(50_000))
    harness.path("a.log").write_bytes(blob + b"\n" + harness.istio_lines("after", 1)[0].encode() + b"\n")
    receiver = harness.receiver(harness.config(max_line_bytes=512, read_chunk_bytes=997))
    while receiver.poll():
        pass
    # Whatever the noise was detected as, the valid line after it still comes through.
    assert harness.request_ids()[-1:] == ["after-0"]


@WITH_WORKERS
def test_threaded_receiver_follows_a_growing_file_and_shutdown_is_idempotent(harness: Harness) -> None:
    receiver = harness.receiver()
    receiver.start()
    receiver.start()
    for batch in range(5):
        harness.append("a.log", harness.istio_lines(f"b{batch}", 10))
        harness.wait_until(lambda n=batch: harness.sink.count() == 10 * (n + 1), what=f"batch {batch}")
    receiver.shutdown()
    receiver.shutdown()
    assert len(harness.request_ids()) == 50
    assert checkpoint_offsets(harness) == {"a.log": harness.path("a.log").stat().st_size}


def test_a_format_string_that_does_not_compile_fails_at_construction(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.receiver(harness.config(format="no operators here"))


def test_factory_builds_the_receiver_with_its_dead_letter_file(harness: Harness) -> None:
    harness.append("a.log", ["garbage"])
    dead_path = harness.root / "dead.jsonl"
    config = harness.config(dead_letter=DeadLetterConfig(path=str(dead_path), max_lines=5))
    receiver = create_receiver(config, harness.pipeline, harness.stats, PeerTable())
    assert isinstance(receiver, FileLogReceiver)
    receiver.poll()
    receiver.shutdown()
    (entry,) = [orjson.loads(line) for line in dead_path.read_bytes().splitlines()]
    assert (entry["reason"], entry["line"]) == ("format_mismatch", "garbage")


def test_a_parser_crash_loses_only_its_line(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from telemetry.envoy.istio import RecordAssembler

    # A bug in Record assembly on one line (nothing real triggers one: that is what makes it a bug).
    real_assemble = RecordAssembler.assemble

    def assemble_with_a_bug(self: RecordAssembler, fields: Any, reporter: Any) -> Record:
        if fields.request_id == "boom-0":
            raise RuntimeError("parser bug")
        return real_assemble(self, fields, reporter)

    def columns_with_a_bug(self: RecordAssembler, *args: Any) -> list[Record]:
        raise RuntimeError("parser bug")  # the run goes line by line, where only the bad line fails

    monkeypatch.setattr(RecordAssembler, "assemble", assemble_with_a_bug)
    monkeypatch.setattr(RecordAssembler, "assemble_columns", columns_with_a_bug)
    good = harness.istio_lines("good", 2)
    harness.append("a.log", [good[0], *harness.istio_lines("boom", 1), good[1]])
    receiver = FileLogReceiver(harness.config(), harness.pipeline, harness.stats, PeerTable())
    receiver.poll()
    receiver.shutdown()
    assert harness.request_ids() == ["good-0", "good-1"]
    assert harness.stats.parse_errors == {("filelog", "parser_error"): 1}


# -- review fixes: transient empty scans, rotated files across restarts, bounded shutdown ------------------


def test_a_scan_that_finds_nothing_does_not_close_files_still_at_their_path(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glob as globmodule

    harness.append("a.log", harness.istio_lines("a", 100))
    receiver = harness.receiver()
    receiver.poll()
    real_glob = globmodule.glob
    # glob.glob hides OSError (EMFILE, EACCES) by returning nothing.
    monkeypatch.setattr(globmodule, "glob", lambda *args, **kwargs: [])
    for _ in range(3):
        receiver.poll()
    harness.append("a.log", harness.istio_lines("b", 2))
    receiver.poll()
    monkeypatch.setattr(globmodule, "glob", real_glob)
    receiver.poll()
    receiver.poll()
    assert_each_once(harness.request_ids(), [f"a-{i}" for i in range(100)] + ["b-0", "b-1"])


@WITH_WORKERS
def test_a_file_renamed_out_and_back_in_is_not_read_twice(harness: Harness) -> None:
    path = harness.append("a.log", harness.istio_lines("a", 100))
    receiver = harness.receiver()
    receiver.poll()
    outside = harness.root / "a.log.moved"
    os.rename(path, outside)
    for _ in range(3):  # gone, read to its end, closed and forgotten
        receiver.poll()
    os.rename(outside, path)
    harness.append("a.log", harness.istio_lines("b", 2))
    receiver.poll()
    receiver.poll()
    assert_each_once(harness.request_ids(), [f"a-{i}" for i in range(100)] + ["b-0", "b-1"])


@WITH_WORKERS
def test_a_reused_inode_with_other_content_is_read_from_its_start(harness: Harness) -> None:
    path = harness.append("a.log", harness.istio_lines("a", 3))
    receiver = harness.receiver()
    receiver.poll()
    outside = harness.root / "a.log.moved"
    os.rename(path, outside)
    for _ in range(3):
        receiver.poll()
    # Same inode, rewritten in place (another file's content): the remembered offset does not apply.
    outside.write_text("".join(line + "\n" for line in harness.istio_lines("z", 2)))
    os.rename(outside, path)
    receiver.poll()
    assert harness.request_ids() == ["a-0", "a-1", "a-2", "z-0", "z-1"]


def test_remembered_offsets_are_bounded_and_evictions_counted(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telemetry.receivers.filelog import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "REMEMBERED_MAX", 2)
    receiver = harness.receiver()
    for index in range(4):
        harness.append(f"f{index}.log", harness.istio_lines(f"f{index}", 1))
    receiver.poll()
    for index in range(4):
        os.rename(harness.path(f"f{index}.log"), harness.root / f"f{index}.moved")
    for _ in range(3):
        receiver.poll()
    assert harness.stats.dropped[("filelog", "forgotten_offsets")] == 2
    # The two most recently finished are still known: moved back, they are not read again.
    for index in range(4):
        os.rename(harness.root / f"f{index}.moved", harness.path(f"f{index}.log"))
    receiver.poll()
    assert len(harness.request_ids()) == 4 + 2


def rotate_mid_read(harness: Harness) -> tuple[FileLogReceiver, list[str]]:
    """a.log with 40 lines, read only partly (one line per chunk), then renamed to a.log.1 out of the glob;
    the receiver has noticed the rename but not finished the old file."""
    lines = harness.istio_lines("old", 40)
    harness.append("a.log", lines)
    receiver = harness.receiver(harness.config(read_chunk_bytes=len(lines[0]) + 1))
    receiver.poll()  # 16 lines
    os.rename(harness.path("a.log"), harness.path("a.log.1"))
    harness.append("a.log", harness.istio_lines("new", 3))
    receiver.poll()  # notices the rename, reads 16 more of the old file
    return receiver, [f"old-{i}" for i in range(40)] + [f"new-{i}" for i in range(3)]


@WITH_WORKERS
def test_a_rotated_file_unfinished_at_shutdown_is_finished_after_restart(harness: Harness) -> None:
    first, expected = rotate_mid_read(harness)
    first.shutdown()
    assert 0 < len(harness.request_ids()) < 40  # the old file's rest is still unread
    marks = orjson.loads((harness.root / "state" / "checkpoint.json").read_bytes())["files"]
    assert [(Path(m["path"]).name, m["gone"]) for m in marks] == [("a.log", True)]
    second = harness.receiver()
    for _ in range(4):
        while second.poll():
            pass
    assert harness.request_ids() == expected
    assert ("filelog", "rotated_unread") not in harness.stats.dropped


@WITH_WORKERS
def test_a_rotated_file_renamed_with_a_timestamp_is_found_after_restart(harness: Harness) -> None:
    first, expected = rotate_mid_read(harness)
    first.shutdown()
    os.rename(harness.path("a.log.1"), harness.path("a.log.20240504-172259"))
    second = harness.receiver()
    for _ in range(4):
        while second.poll():
            pass
    assert_each_once(harness.request_ids(), expected)


@WITH_WORKERS
def test_a_rotated_file_deleted_before_restart_is_counted_as_unread(harness: Harness) -> None:
    first, _ = rotate_mid_read(harness)
    first.shutdown()
    os.unlink(harness.path("a.log.1"))
    second = harness.receiver()
    second.poll()
    second.poll()
    assert harness.stats.dropped[("filelog", "rotated_unread")] == 1
    assert harness.request_ids()[-3:] == ["new-0", "new-1", "new-2"]
    assert len(harness.request_ids()) < 40 + 3


class StuckSink:
    """Never returns from consume until released: with a batch in its hands, the pipeline fills up and
    stays full."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.entered = threading.Event()

    def consume(self, batch: Sequence[Record]) -> None:
        self.entered.set()
        self.release.wait(30)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        self.release.set()


def test_shutdown_returns_while_the_pipeline_is_full_and_loses_nothing(harness: Harness) -> None:
    import threading
    import time

    from telemetry.selfmetrics import SelfStats

    sink = StuckSink()
    stuck_stats = SelfStats()
    stuck = Pipeline([("stuck", sink)], stuck_stats, queue_size=5, batch_size=1, batch_timeout=0.001)
    stuck.start()
    # Another receiver's batch is in the stuck sink's hands (delivered in its own thread): the tailing
    # thread's batches queue behind it.
    other = threading.Thread(target=stuck.submit, args=([Record()], "other"), daemon=True)
    other.start()
    assert sink.entered.wait(5)
    try:
        harness.append("a.log", harness.istio_lines("a", 50))
        receiver = harness.receiver(harness.config(read_chunk_bytes=800), pipeline=stuck)
        receiver.start()
        harness.wait_until(lambda: stuck_stats.queue_depth("pipeline") >= 3, what="a full pipeline")
        time.sleep(0.3)  # the tailing thread is now waiting for room
        stopping = threading.Thread(target=receiver.shutdown, daemon=True)
        stopping.start()
        stopping.join(5.0)
        assert not stopping.is_alive(), "shutdown blocked while the pipeline was full"
        assert ("pipeline", "queue_full") not in stuck_stats.dropped
        offsets = checkpoint_offsets(harness)
    finally:
        sink.release.set()
        stuck.shutdown(1.0)
    # Resumed from the checkpoint into a working pipeline: every line arrives, none twice... except
    # those the stuck pipeline accepted, which the stuck sink held (the checkpoint is past them).
    line_bytes = len(harness.istio_lines("a", 1)[0]) + 1
    accepted = offsets["a.log"] // line_bytes
    assert 0 < accepted < 50
    resumed = harness.receiver()
    while resumed.poll():
        pass
    assert harness.request_ids() == [f"a-{i}" for i in range(accepted, 50)]


def json_lines(prefix: str, count: int) -> list[str]:
    """Istio JSON access-log lines whose request ids are ``prefix-0`` ..."""
    base = orjson.loads((ACCESSLOGS / "json.log").read_text().splitlines()[0])
    return [orjson.dumps({**base, "request_id": f"{prefix}-{index}"}).decode() for index in range(count)]


@WITH_WORKERS
def test_json_lines_read_as_whole_chunks_keep_order_errors_and_checkpoints(harness: Harness) -> None:
    # Chunks of good lines are read whole (LineParser.parse_block); a chunk holding a bad line, an
    # overlong one or one cut by the chunk's end goes line by line. Either way nothing is lost or doubled.
    lines = json_lines("a", 300)
    lines[120] = lines[120][:50]  # cut short: bad_json
    lines[200] = lines[200][:-1] + ',"padding":"' + "p" * 3000 + '"}'  # over max_line_bytes
    path = harness.append("a.log", lines)
    receiver = harness.receiver(harness.config(max_line_bytes=2048, read_chunk_bytes=16_384))
    while receiver.poll():
        pass
    receiver.save_checkpoint()
    assert harness.request_ids() == [f"a-{i}" for i in range(300) if i not in (120, 200)]
    assert harness.stats.parse_errors == {("filelog", "bad_json"): 1, ("filelog", "too_long"): 1}
    assert checkpoint_offsets(harness) == {"a.log": path.stat().st_size}
