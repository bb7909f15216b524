"""`meshscope run` tailing a file into a Forward-protocol peer, through outages, restarts and kill -9.

The collector is a real process (``python -m telemetry.cli run -c cfg.yaml``); the peer is a real TCP
server in this process (tests/forwardpeer.py). Every line has its own request id, so the peer's events
are checked line by line: every one arrives, with the content the parser and record_event give it, and
the repeats (at-least-once delivery) are counted.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from forwardpeer import Event, ForwardPeer

from telemetry.envoy.parser import make_parser
from telemetry.envoy.peers import PeerTable
from telemetry.exporters.log_event import record_event
from telemetry.model import Workload

from realparts import env_with_repo_on_path, free_port, http_get, wait_for

TEMPLATE = (
    '[2024-05-04T17:22:59.{ms:03d}Z] "GET /items/{n} HTTP/1.1" 200 - via_upstream - "-" 0 {size} 12 11 "-" '
    '"curl/8.4.0" "req-{n}" "shop.example.com" "10.244.0.9:9080" inbound|9080|| 127.0.0.6:45123 '
    "10.244.0.9:9080 10.244.0.5:{port} outbound_.9080_._.productpage.shop.svc.cluster.local default"
)
WORKLOAD = Workload("productpage-v1", "shop", "productpage", "v1")


def access_line(number: int) -> str:
    return TEMPLATE.format(ms=number % 1000, n=number, size=100 + number % 5000, port=20000 + number % 40000)


def write_lines(path: Path, start: int, stop: int) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(access_line(number) + "\n" for number in range(start, stop)))


def sample(text: str, name: str, *labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Run:
    """One `meshscope run` with a file receiver and the forward sink; metrics on its own port."""

    def __init__(self, workdir: Path, peer_port: int, helper_process: bool = True) -> None:
        self.workdir = workdir
        self.logfile = workdir / "logs" / "access.log"
        self.logfile.parent.mkdir(exist_ok=True)
        self.logfile.touch()
        self.metrics_port = free_port()
        config = {
            "receivers": {
                "filelog": {
                    "include": [str(self.logfile)],
                    "checkpoint_file": str(workdir / "checkpoint.json"),
                    "checkpoint_interval": 0.5,
                    "poll_interval": 0.05,
                    "workloads": [
                        {
                            "glob": str(self.logfile),
                            "workload": WORKLOAD.name,
                            "namespace": "shop",
                            "app": "productpage",
                            "version": "v1",
                        }
                    ],
                },  # fmt: skip
                "als": {"enabled": False},
                "otlp": {"grpc": {"enabled": False}, "http": {"enabled": False}},
                "zipkin": {"enabled": False},
            },
            "exporters": {
                "prometheus": {"endpoint": f"127.0.0.1:{self.metrics_port}"},
                "fluentforward": {
                    "enabled": True,
                    "helper_process": helper_process,
                    "endpoint": f"127.0.0.1:{peer_port}",
                    "batch_size": 500,
                    "batch_timeout": 0.1,
                    "timeout": 2.0,
                    "retry": {"initial_backoff": 0.1, "max_backoff": 0.5},
                    "spool": {"directory": str(workdir / "spool")},
                },
            },
            "graph": {"enabled": False},
        }
        self.config_path = workdir / "meshscope.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"run-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "telemetry.cli", "run", "-c", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=env_with_repo_on_path(),
        )  # fmt: skip
        log.close()
        wait_for(self.metrics, timeout=30, what="the collector's metrics endpoint")

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics").decode()

    def received(self) -> float:
        return sample(self.metrics(), "meshscope_records_received_total", 'receiver="filelog"')

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, self.output()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        return (self.workdir / f"run-{self.starts}.log").read_text(errors="replace")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def collector_run(workdir: Path, peer_port: int, helper_process: bool = True) -> Iterator[Run]:
    run = Run(workdir, peer_port, helper_process)
    try:
        yield run
    finally:
        run.close()


def expected_events(count: int) -> dict[str, dict]:  # type: ignore[type-arg]
    parser = make_parser("auto", WORKLOAD, PeerTable())
    events = {}
    for number in range(count):
        record = parser.parse(access_line(number))
        events[f"req-{number}"] = record_event(record, "")
    return events


def check_every_line_arrived(events: list[Event], count: int) -> int:
    """Every line's event arrived with its content; returns how many arrived more than once."""
    expected = expected_events(count)
    seen = Counter(event.record["http.request.id"] for event in events)
    assert set(seen) == set(expected), f"missing: {sorted(set(expected) - set(seen))[:10]}"
    for event in events:
        assert event.tag == "meshscope.access.shop"
        assert event.record == expected[event.record["http.request.id"]]
    return sum(times - 1 for times in seen.values())


def test_an_outage_and_a_restart_while_fluentd_is_down_lose_nothing(tmp_path: Path) -> None:
    peer = ForwardPeer().start()
    try:
        with collector_run(tmp_path, peer.port) as run:
            run.start()
            write_lines(run.logfile, 0, 1000)
            peer.wait_for_events(1000, timeout=60)
            peer.stop()  # Fluentd goes away mid-stream
            write_lines(run.logfile, 1000, 3000)
            wait_for(lambda: run.received() >= 3000, timeout=60, what="the collector to read every line")
            wait_for(lambda: sample(run.metrics(), "meshscope_fluentforward_spool_events") >= 1500,
                     timeout=30, what="the lines to be spooled")  # fmt: skip
            assert 'meshscope_dependency_up{dependency="fluentd"} 0.0' in run.metrics()
            run.stop()  # the collector restarts while Fluentd is still down
            assert list((tmp_path / "spool").glob("segment-*.spool"))
            write_lines(run.logfile, 3000, 4000)
            run.start()
            wait_for(lambda: run.received() >= 1000, timeout=60, what="the restarted collector to read on")
            peer.start()
            events = peer.wait_for_events(4000, timeout=60)
            wait_for(lambda: sample(run.metrics(), "meshscope_fluentforward_spool_events") == 0,
                     timeout=30, what="the spool to be replayed")  # fmt: skip
            run.stop()
        events = peer.events()
        duplicates = check_every_line_arrived(events, 4000)
        # A graceful restart resumes exactly at the checkpoint; only a chunk cut off by the outage repeats.
        assert duplicates == len(events) - 4000 <= 500
        assert peer.log.errors == []
    finally:
        peer.stop()


@pytest.mark.parametrize("helper_process", [True, False], ids=["helper-process", "in-process"])
@pytest.mark.parametrize("fluentd", ["down", "up"])
def test_kill_9_mid_ingest_then_restart_delivers_every_line(tmp_path: Path, fluentd: str, helper_process: bool) -> None:
    total = 20_000
    peer = ForwardPeer(free_port())  # when "down", Fluentd is away until after the restart
    if fluentd == "up":
        peer.start()
    try:
        with collector_run(tmp_path, peer.port, helper_process) as run:
            run.start()
            written = threading.Event()

            def writer() -> None:  # ~5,000 lines/s for about 4 s
                for start in range(0, total, 200):
                    write_lines(run.logfile, start, start + 200)
                    time.sleep(0.04)
                written.set()

            thread = threading.Thread(target=writer)
            thread.start()

            def safe_somewhere() -> float:
                # Kill once a checkpoint exists and thousands of events are spooled or acknowledged.
                if not (tmp_path / "checkpoint.json").exists():
                    return 0.0
                text = run.metrics()
                return (sample(text, "meshscope_fluentforward_spool_events") >= 3000
                        or sample(text, "meshscope_fluentforward_acknowledged_events_total") >= 3000)  # fmt: skip

            wait_for(safe_somewhere, timeout=60, interval=0.02, what="ingest to be under way")
            run.kill()  # mid-ingest: the writer is still appending
            killed_at_written = not written.is_set()
            thread.join()
            run.start()
            if fluentd == "down":
                peer.start()
            peer.wait_for_events(total, timeout=120)

            def all_arrived() -> bool:
                return {event.record["http.request.id"] for event in peer.events()} >= {
                    f"req-{number}" for number in range(total)
                }

            wait_for(all_arrived, timeout=60, what="every line at the peer")
            assert sink_settled(run)
            run.stop()
            assert "cannot use the spool" not in run.output()  # the old helper let go of the spool in time
        events = peer.events()
        duplicates = check_every_line_arrived(events, total)
        mode = "helper process" if helper_process else "in-process"
        print(f"kill -9, {mode}, Fluentd {fluentd}: {total} lines, {len(events)} events, {duplicates} duplicates")
        assert killed_at_written
        assert peer.log.errors == []
    finally:
        peer.stop()


def sink_settled(run: Run) -> bool:
    wait_for(lambda: sample(run.metrics(), "meshscope_fluentforward_spool_events") == 0,
             timeout=30, what="the spool to be replayed")  # fmt: skip
    return True


@pytest.mark.parametrize("helper_process", [False, True])
def test_a_checkpoint_is_saved_only_once_the_lines_it_covers_are_in_the_spool(
    tmp_path: Path, helper_process: bool
) -> None:
    """The barrier: Records waiting in memory (here a 60 s batch timeout) are spooled before the checkpoint."""
    from telemetry.collector import Collector
    from telemetry.config import Config
    from telemetry.confload import load
    from telemetry.receivers.filelog.checkpoint import CheckpointFile
    from telemetry.receivers.filelog.receiver import FileLogReceiver

    run = Run(tmp_path, free_port())  # nothing listens there: Fluentd is away
    data = yaml.safe_load(run.config_path.read_text())
    data["exporters"]["fluentforward"]["batch_timeout"] = 60.0
    data["exporters"]["fluentforward"]["helper_process"] = helper_process
    data["exporters"]["prometheus"]["enabled"] = False
    data["receivers"]["filelog"]["checkpoint_interval"] = 3600.0  # saved only when this test says
    collector = Collector(load(Config, data))
    write_lines(run.logfile, 0, 300)
    collector.start()
    try:
        receiver = collector.receiver("filelog")
        assert isinstance(receiver, FileLogReceiver)
        wait_for(lambda: collector.stats.total_received() >= 300, what="the lines to be read")
        (sink,) = collector._durable_sinks

        def spooled() -> int:
            spool = getattr(sink, "spool", None)  # the in-thread sink's own, or what the helper reported
            return spool.pending_events if spool is not None else sink.status().get("spool_events", 0)  # type: ignore[attr-defined]

        time.sleep(1.0)  # a helper reports twice a second: a report would show a spooled Record
        assert spooled() == 0  # still in memory
        receiver.save_checkpoint()
        (mark,) = CheckpointFile(str(tmp_path / "checkpoint.json")).load()
        assert mark.offset == run.logfile.stat().st_size
        assert spooled() == 300
    finally:
        collector.shutdown()
