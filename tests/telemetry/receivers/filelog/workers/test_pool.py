"""Parsing worker processes: they die with the collector, are restarted when they crash, and lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from telemetry.envoy.peers import PeerTable
from telemetry.model import Workload
from telemetry.receivers.filelog.config import FileLogConfig
from telemetry.receivers.filelog.factory import create_receiver
from telemetry.receivers.filelog.receiver import FileLogReceiver
from telemetry.receivers.filelog.workers.outputs import for_recent_traces, from_compact, needs_of
from telemetry.receivers.filelog.workers.pool import ParallelFileLogReceiver

Harness = Any

ROOT = Path(__file__).resolve().parents[5]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper does not count: it runs nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_killed_worker_is_restarted_counted_and_no_line_is_lost_or_repeated(harness: Harness) -> None:
    for name in ("a", "b", "c", "d"):
        harness.append(f"{name}.log", harness.istio_lines(name, 30_000))
    receiver = ParallelFileLogReceiver(
        harness.config(read_chunk_bytes=64 * 1024), harness.pipeline, harness.stats, PeerTable(), workers=2
    )
    try:
        receiver.start()
        wait_for(lambda: harness.sink.count() > 0, 60, "the first records")
        victim = receiver.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: harness.sink.count() >= 120_000, 120, "every line")
        wait_for(lambda: harness.stats.restarts.get("filelog_worker") == 1, 10, "the restart to be counted")
        assert victim not in receiver.worker_pids() and len(receiver.worker_pids()) == 2
    finally:
        receiver.shutdown()
    counts = Counter(harness.request_ids())
    assert len(counts) == 120_000
    assert max(counts.values()) == 1, "a line was delivered twice after the worker's restart"
    assert harness.stats.records_received["filelog"] == 120_000


def test_shutdown_stops_every_worker_and_saves_the_accepted_offsets(harness: Harness) -> None:
    path = harness.append("a.log", harness.istio_lines("a", 10))
    receiver = harness_receiver(harness)
    receiver.poll()
    pids = receiver.worker_pids()
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    receiver.shutdown()
    receiver.shutdown()  # idempotent
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the workers to exit")
    assert [mark.offset for mark in receiver.marks()] == [path.stat().st_size]


def harness_receiver(harness: Harness, **overrides: Any) -> ParallelFileLogReceiver:
    receiver = ParallelFileLogReceiver(
        harness.config(**overrides), harness.pipeline, harness.stats, PeerTable(), workers=2
    )
    harness._receivers.append(receiver)
    return receiver


PARENT = textwrap.dedent(
    """
    import sys, time
    from telemetry.envoy.peers import PeerTable
    from telemetry.pipeline import Pipeline
    from telemetry.receivers.filelog.config import FileLogConfig
    from telemetry.receivers.filelog.workers.pool import ParallelFileLogReceiver
    from telemetry.selfmetrics import SelfStats

    if __name__ == "__main__":
        stats = SelfStats()
        pipeline = Pipeline([], stats)
        pipeline.start()
        receiver = ParallelFileLogReceiver(
            FileLogConfig(include=[sys.argv[1]], poll_interval=0.01), pipeline, stats, PeerTable(), workers=2
        )
        receiver.start()
        while len(receiver.worker_pids()) < 2:
            time.sleep(0.01)
        print(" ".join(map(str, receiver.worker_pids())), flush=True)
        time.sleep(120)
    """
)


def test_workers_die_with_a_collector_killed_by_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "*.log")], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, "the orphaned workers to die")
    finally:
        parent.kill()
        parent.wait(10)


def test_workers_config_accepts_auto_and_a_bounded_count() -> None:
    assert FileLogConfig(workers="auto").validate() == []
    assert FileLogConfig(workers=2).validate() == []
    assert FileLogConfig(workers=-1).validate() == ['workers: must be "auto" or 0 to 64']
    assert FileLogConfig(workers=0).worker_count() == 0
    cpus = len(os.sched_getaffinity(0))
    assert FileLogConfig(workers="auto").worker_count() == (cpus if cpus >= 2 else 0)


def test_the_factory_starts_workers_only_when_asked(harness: Harness) -> None:
    in_process = create_receiver(harness.config(), harness.pipeline, harness.stats, PeerTable())
    parallel = create_receiver(harness.config(workers=1), harness.pipeline, harness.stats, PeerTable())
    assert isinstance(in_process, FileLogReceiver)
    assert isinstance(parallel, ParallelFileLogReceiver)
    parallel.shutdown()
    assert parallel.worker_pids() == []  # never started, so nothing to stop


def test_sinks_other_than_metrics_and_recent_traces_need_every_record() -> None:
    assert needs_of(["prometheus", "recent_traces"]) == "traces"
    assert needs_of(["graph", "recent_traces"]) == "traces"
    assert needs_of(["prometheus", "recent_traces", "fluentforward"]) == "all"
    # The forward sink gets its events encoded by the workers: it needs no Records; Elasticsearch does.
    assert needs_of(["prometheus", "recent_traces", "fluentforward"], "fluentforward") == "traces"
    assert needs_of(["prometheus", "recent_traces", "fluentforward", "elasticsearch"], "fluentforward") == "all"


@pytest.mark.parametrize("correlating", [False, True])
def test_only_client_side_failures_or_traced_records_go_back_for_recent_traces(
    harness: Harness, correlating: bool
) -> None:
    from telemetry.envoy.parser import make_parser

    parser = make_parser("auto", Workload(name="productpage-v1", namespace="default"), PeerTable())
    ok = parser.parse(harness.istio_lines("x", 1)[0])
    failed = ok._replace(response_code=503)
    traced = ok._replace(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    server_side = failed._replace(reporter="destination")
    unknown_caller = server_side._replace(source_workload="unknown")
    kept = for_recent_traces([ok, failed, traced, server_side, unknown_caller], correlating)
    whole = [tuple(failed), tuple(traced), tuple(unknown_caller)]
    if not correlating:
        assert kept == whole
        return
    # With the request-id index in use, any client-side Record may still be given a trace id: it goes back
    # in a compact form from which the collector makes what the recent-traces index reads.
    assert kept[1:] == whole and len(kept[0]) < len(ok)
    rebuilt = from_compact(kept[0], "0af7651916cd43dd8448eb211c80319c")
    for name in ("reporter", "source_workload", "source_namespace", "destination_service", "duration_ms",
                 "response_code", "start_time", "request_id", "protocol", "grpc_status"):  # fmt: skip
        assert getattr(rebuilt, name) == getattr(ok, name)
    assert rebuilt.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_records_sent_back_keep_their_line_when_a_log_sink_asks_for_it(harness: Harness) -> None:
    lines = harness.istio_lines("o", 3)
    harness.append("a.log", lines)
    receiver = ParallelFileLogReceiver(
        harness.config(), harness.pipeline, harness.stats, PeerTable(), keep_original=True, workers=2
    )
    harness._receivers.append(receiver)
    receiver.poll()
    assert [record.original for record in harness.delivered()] == lines


def test_what_goes_back_for_recent_traces_fails_exactly_as_istio_counts_a_failure() -> None:
    from telemetry.model import Record, request_failed

    records = [
        Record(reporter="source", protocol=protocol, response_code=code, grpc_status=grpc)
        for protocol in ("http", "grpc", "tcp")
        for code in (0, 200, 404, 499, 500, 503)
        for grpc in ("", "0", "2", "14")
    ]
    kept = for_recent_traces(records, correlating=False)
    assert kept == [tuple(r) for r in records if request_failed(r.protocol, r.response_code, r.grpc_status)]


def test_files_are_shared_evenly_and_keep_their_worker_through_renames_and_rotation(harness: Harness) -> None:
    for index in range(4):
        harness.append(f"{index}.log", harness.istio_lines(str(index), 1))
    receiver = ParallelFileLogReceiver(harness.config(), harness.pipeline, harness.stats, PeerTable(), workers=2)
    owner = receiver._owner  # which worker follows each file (device, inode); nothing is started here

    def key(name: str) -> tuple[int, int]:
        info = harness.path(name).stat()
        return info.st_dev, info.st_ino

    receiver._scan_and_tell()
    assert sorted(Counter(owner.values()).values()) == [2, 2]
    first = {name: owner[key(name)] for name in ("0.log", "1.log")}
    # Renamed to another watched name: the same file, the same worker (it is not read twice).
    os.rename(harness.path("1.log"), harness.path("9.log"))
    # Rotated: the old file leaves the glob, a new one takes its path and goes to the old one's worker,
    # which finishes the old file before opening the new one.
    os.rename(harness.path("0.log"), harness.path("0.log.1"))
    harness.append("0.log", harness.istio_lines("new", 1))
    receiver._scan_and_tell()
    assert owner[key("9.log")] == first["1.log"]
    assert owner[key("0.log")] == first["0.log"]


def test_a_worker_that_cannot_be_started_is_started_later(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b"):
        harness.append(f"{name}.log", harness.istio_lines(name, 3))
    receiver = harness_receiver(harness)
    spawn = receiver._spawn
    calls: list[int] = []

    def fails_once(slot: Any, first: bool) -> None:
        calls.append(slot.index)
        if len(calls) == 1:
            raise OSError("Resource temporarily unavailable")
        spawn(slot, first)

    monkeypatch.setattr(receiver, "_spawn", fails_once)
    receiver.poll()
    assert len(receiver.worker_pids()) == 1
    time.sleep(0.2)  # the retry delay
    receiver.poll()
    assert len(receiver.worker_pids()) == 2
    assert sorted(harness.request_ids()) == [f"{name}-{i}" for name in ("a", "b") for i in range(3)]


def test_a_sink_that_needs_every_record_gets_each_once_while_metrics_come_as_totals(harness: Harness) -> None:
    from telemetry.exporters.prometheus.config import PrometheusConfig
    from telemetry.exporters.prometheus.sink import PrometheusSink
    from telemetry.pipeline import Pipeline
    from telemetry.receivers.filelog.workers.outputs import METRICS_SINKS, WorkerOutputs

    for name in ("a", "b", "c"):
        harness.append(f"{name}.log", harness.istio_lines(name, 500))
    metrics = PrometheusSink(PrometheusConfig(), harness.stats, serve=False)
    sinks = [("prometheus", metrics), ("logs", harness.sink)]
    pipeline = Pipeline(sinks, harness.stats, batch_timeout=0.005)  # type: ignore[arg-type]
    pipeline.start()
    names = [name for name, _ in sinks]
    outputs = WorkerOutputs(metrics.metrics, frozenset(names) & METRICS_SINKS, needs_of(names))
    receiver = ParallelFileLogReceiver(
        harness.config(), pipeline, harness.stats, PeerTable(), outputs=outputs, workers=2
    )
    try:
        receiver.poll()
        assert pipeline.flush(10.0)
    finally:
        receiver.shutdown()
        pipeline.shutdown()
    request_ids = Counter(record.request_id for record in harness.sink.records)
    assert len(request_ids) == 1500 and set(request_ids.values()) == {1}
    assert sum(series.count for series in metrics.metrics.snapshot()[0]) == 1500  # counted once, not twice
    assert harness.stats.records_received["filelog"] == 1500
