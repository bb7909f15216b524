"""The Fluentd forward log sink: encoding cost, events/s to an acknowledging peer, and into the spool.

    .venv/bin/python benchmarks/log_sink.py [--events 400000] [--parts encoding,delivery,helper,spool,end-to-end]
        [--lines 200000] [--files 4] [--modes 0-off,0-thread,0-helper,2-off,2-thread,2-helper] [--correlating]

1. encoding: µs per Record, ``record_event`` + ``msgpack.packb`` against the sink's EntryEncoder;
2. delivery: the sink fed in the pipeline's batches (8192 Records) as fast as it takes them, to a
   Forward-protocol peer in another process (tests/forwardpeer.py, counting and acknowledging every
   chunk) with require_ack on; events/s from the first consume to the last acknowledgement; in-process
   (ForwardSink) and through the helper process (ProcessForwardSink), with CPU per event on each side;
3. spool: the same with nothing listening (every chunk goes to the on-disk spool), then the replay of
   that spool once the peer is up;
4. end to end: a collector (in this process) tailing ``--files`` files of access-log lines (``--lines`` in
   all), in each of ``--modes``: parsing workers 0 (parsing in the collector's process) or 2, the forward
   sink off, on in the collector's process (``thread``) or on with its helper process (``helper``). The
   files appear (one rename) once the collector, its workers and its helper are up and idle; lines/s is
   from then to the last line counted (and, with the sink, acknowledged), with the CPU time per line of
   the collector's process, the workers and the helper; ``--correlating`` runs it as while proxy spans
   are received (the request-id index in use: every Record goes to the collector for its trace id);
and the peak RSS of the process. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0:0] = [str(ROOT), str(ROOT / "tests")]

import msgpack  # noqa: E402

from telemetry.envoy.parser import make_parser  # noqa: E402
from telemetry.envoy.peers import PeerTable  # noqa: E402
from telemetry.exporters.fluentforward.config import FluentForwardConfig, SpoolConfig  # noqa: E402
from telemetry.exporters.fluentforward.encoder import EncodedBatch, EntryEncoder, RowBatch  # noqa: E402
from telemetry.exporters.fluentforward.process import FEED_RECORDS, records_message  # noqa: E402
from telemetry.exporters.fluentforward.sink import ForwardSink  # noqa: E402
from telemetry.exporters.log_event import batch_events, now_timestamp  # noqa: E402
from telemetry.model import Record, Workload  # noqa: E402
from telemetry.selfmetrics import SelfStats  # noqa: E402

PIPELINE_BATCH = 8192
PARTS = ("encoding", "delivery", "helper", "spool", "end-to-end")
MODES = ("0-off", "0-thread", "0-helper", "2-off", "2-thread", "2-helper")
TEMPLATE = (
    '[2024-05-04T17:22:59.{ms:03d}Z] "GET /items/{n} HTTP/1.1" 200 - via_upstream - "-" 0 {size} 12 11 "-" '
    '"python-requests/2.31.0" "{n:08x}-1b2c-4d5e-8f90-a1b2c3d4e5f6" "shop.example.com" "10.244.{a}.9:9080" '
    "outbound|9080||reviews.shop.svc.cluster.local 10.244.0.9:{port} 10.96.0.30:9080 10.244.0.9:{port} - default"
)


def line(n: int) -> str:
    return TEMPLATE.format(ms=n % 1000, n=n, size=100 + n % 5000, a=n % 7, port=20000 + n % 40000)


def records(count: int) -> list[Record]:
    parser = make_parser("auto", Workload("productpage-v1", "shop", "productpage", "v1"), PeerTable())
    return [parser.parse(line(n)) for n in range(count)]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encoding(sample: list[Record]) -> None:
    packb = msgpack.Packer().pack
    encoder = EntryEncoder("meshscope.access.{namespace}")
    piped = {}  # first Record's position -> the pipe message of its batch (as the helper receives them)
    # A few batches as a worker encodes them (a segment per ~300 lines, as a 128 KiB chunk holds), used in
    # turn: all of them would add the sample's encoded size to the peak RSS reported after delivery.
    segmented = [
        [(tag, bytes(entries), count) for part in range(start, start + FEED_RECORDS, 300)
         for tag, entries, count in encoder.encode_segments(sample[part : min(part + 300, start + FEED_RECORDS)], "", (0, 0))]
        for start in range(0, 4 * FEED_RECORDS, FEED_RECORDS)
    ]  # fmt: skip
    turns = itertools.count()

    def to_pipe(chunk: list[Record]) -> bytearray:
        return records_message(chunk)

    def encoded_from_pipe(chunk: list[Record]) -> object:
        # A worker's segments read through as the helper does, and split in the middle.
        segments = segmented[next(turns) % len(segmented)]
        return EncodedBatch.from_pipe(segments)[: len(chunk) // 2]

    def from_pipe(chunk: list[Record]) -> object:
        batch = RowBatch.from_pipe(msgpack.unpackb(memoryview(piped[id(chunk[0])])[1:], use_list=False))
        return encoder.encode_all([batch], now_timestamp(), (0, 0))

    for name, run in (
        ("record_event + packb", lambda chunk: [packb(event) for event in batch_events(chunk)]),
        ("EntryEncoder", lambda chunk: encoder.encode(chunk, now_timestamp(), (0, 0))),
        ("worker: encode_segments", lambda chunk: encoder.encode_segments(chunk, now_timestamp(), (0, 0))),
        ("collector: to the pipe", to_pipe),
        ("helper: read + encode", from_pipe),
        ("helper: encoded, read + split", encoded_from_pipe),
    ):
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for start in range(0, len(sample), FEED_RECORDS):
                run(sample[start : start + FEED_RECORDS])
            best = min(best, time.process_time() - started)
        print(f"encoding  {name:29s} {best / len(sample) * 1e6:6.2f} µs/record ({len(sample) / best:,.0f}/s, 1 core)")
        if run is to_pipe:
            piped.update((id(sample[start]), to_pipe(sample[start : start + FEED_RECORDS]))
                         for start in range(0, len(sample), FEED_RECORDS))  # fmt: skip


def feed(sink: ForwardSink, sample: list[Record], events: int, queue_size: int) -> None:
    """Consume ``events`` Records in pipeline batches, waiting (as the pipeline would) while the sink is full."""
    fed = 0
    while fed < events:
        for start in range(0, len(sample), PIPELINE_BATCH):
            while sink.depth() > queue_size - PIPELINE_BATCH:
                time.sleep(0.001)
            batch = sample[start : start + PIPELINE_BATCH][: events - fed]
            sink.consume(batch)
            fed += len(batch)
            if fed >= events:
                return


def timed_feed(sink: ForwardSink, sample: list[Record], events: int, queue_size: int) -> tuple[float, float]:
    """Wall and CPU seconds from the first consume to everything acknowledged or spooled."""
    started, cpu = time.perf_counter(), time.process_time()
    feed(sink, sample, events, queue_size)
    assert sink.flush(120)
    return time.perf_counter() - started, time.process_time() - cpu


@contextmanager
def forward_peer(port: int = 0) -> Iterator[int]:
    """A real Forward Protocol peer (tests/forwardpeer.py) that acknowledges, in its own process: its port."""
    command = [sys.executable, str(ROOT / "tests" / "forwardpeer.py")] + (["--port", str(port)] if port else [])
    peer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert peer.stdout is not None
        yield int(peer.stdout.readline())
    finally:
        peer.terminate()
        peer.wait()


def delivery(sample: list[Record], events: int, spool_dir: Path) -> None:
    with forward_peer() as port:
        config = FluentForwardConfig(
            enabled=True, endpoint=f"127.0.0.1:{port}", spool=SpoolConfig(directory=str(spool_dir))
        )
        stats = SelfStats()
        sink = ForwardSink(config, stats)
        elapsed, cpu = timed_feed(sink, sample, events, config.queue_size)
        sink.shutdown()
        print(f"delivery  to the peer, acks on       {events / elapsed:10,.0f} events/s "
              f"({cpu / events * 1e6:.2f} µs CPU/event in this process; acknowledged {stats.exported.get('fluentforward', 0):,}, "
              f"dropped {sum(stats.dropped.values())})")  # fmt: skip


def helper_delivery(sample: list[Record], events: int, spool_dir: Path) -> None:
    from telemetry.exporters.fluentforward.process import ProcessForwardSink

    with forward_peer() as port:
        config = FluentForwardConfig(
            enabled=True, endpoint=f"127.0.0.1:{port}", spool=SpoolConfig(directory=str(spool_dir))
        )
        stats = SelfStats()
        sink = ProcessForwardSink(config, stats)
        sink.consume(sample[:1000])
        assert sink.flush(60)  # the helper is up and connected: its start is not measured
        assert sink.helper_pid is not None
        helper_cpu = process_cpu(sink.helper_pid)
        elapsed, cpu = timed_feed(sink, sample, events, config.queue_size)
        helper_cpu = process_cpu(sink.helper_pid) - helper_cpu
        status = Path(f"/proc/{sink.helper_pid}/status").read_text()
        peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        sink.shutdown()
        print(f"delivery  via the helper process      {events / elapsed:10,.0f} events/s "
              f"(collector process {cpu / events * 1e6:.2f} µs CPU/event, helper {helper_cpu / events * 1e6:.2f}; "
              f"helper peak RSS {int(peak) / 1024:.0f} MiB; dropped {sum(stats.dropped.values())})")  # fmt: skip


def spooling(sample: list[Record], events: int, spool_dir: Path) -> None:
    with forward_peer() as port:
        pass  # its port is now closed: Fluentd is away
    spool = SpoolConfig(directory=str(spool_dir), max_bytes=1024 * 1024 * 1024, segment_bytes=16 * 1024 * 1024)
    config = FluentForwardConfig(enabled=True, endpoint=f"127.0.0.1:{port}", spool=spool)
    sink = ForwardSink(config, SelfStats())
    elapsed, cpu = timed_feed(sink, sample, events, config.queue_size)
    assert sink.spool is not None
    size = sink.spool.disk_bytes()
    print(f"spool     Fluentd down, into the spool {events / elapsed:10,.0f} events/s "
          f"({cpu / events * 1e6:.2f} µs CPU/event; {size / events:.0f} bytes/event on disk, "
          f"{sink.spool.pending_events:,} spooled)")  # fmt: skip
    sink.shutdown()
    # The replay: a new sink (as after a restart) finds the spool and sends it once the peer is up.
    with forward_peer(port):
        config.retry.initial_backoff = 0.05
        replayer = ForwardSink(config, SelfStats())
        started = time.perf_counter()
        assert replayer.spool is not None
        while replayer.spool.pending_events:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        replayer.shutdown()
        print(f"replay    spool to the peer, acks on   {events / elapsed:10,.0f} events/s")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_to_end(lines: int, files: int, workdir: Path, modes: list[tuple[int, bool, bool]], correlating: bool) -> None:
    """Each mode (parse workers, sink on, helper process) in a fresh collector: the files appear (one rename)
    once it is up and its workers and helper are idle; lines/s from then to every line counted (and, with
    the sink, acknowledged)."""
    from telemetry.collector import Collector
    from telemetry.config import Config
    from telemetry.confload import load

    staging, watched = workdir / "staging", workdir / "logs"
    staging.mkdir()
    per_file = lines // files
    for index in range(files):
        with open(staging / f"access-{index}.log", "w") as handle:
            handle.writelines(line(n) + "\n" for n in range(index * per_file, (index + 1) * per_file))
    lines = per_file * files
    with forward_peer() as port:
        for run, (workers, forward, helper) in enumerate(modes):
            data = {
                "receivers": {"filelog": {"include": [str(watched / "*.log")], "poll_interval": 0.05,
                                          "workers": workers,
                                          "checkpoint_file": str(workdir / f"checkpoint-{run}.json"),
                                          "workloads": [{"glob": str(watched / "*.log"), "workload": "productpage-v1",
                                                         "namespace": "shop"}]},
                              "als": {"enabled": False}, "otlp": {"grpc": {"enabled": False},
                                                                  "http": {"enabled": False}},
                              "zipkin": {"enabled": False}},
                "exporters": {"prometheus": {"endpoint": "127.0.0.1:0"},
                              "fluentforward": {"enabled": forward, "endpoint": f"127.0.0.1:{port}",
                                                "helper_process": helper,
                                                "spool": {"directory": str(workdir / f"spool-{run}")}}},
                "graph": {"enabled": False},
            }  # fmt: skip
            collector = Collector(load(Config, data))
            if correlating:
                # As while proxy spans are received: every Record goes to the collector for its trace id.
                collector._request_index.remember("request-id", "0af7651916cd43dd8448eb211c80319c")
            stats = collector.stats
            collector.start()
            receiver = collector.receiver("filelog")
            helper_pid = next(
                (sink.helper_pid for sink in collector._durable_sinks if hasattr(sink, "helper_pid")), None
            )
            pids = {"worker": [], "helper": [helper_pid] if helper_pid else []}
            settle(workers, pids, receiver)
            before = {role: sum(map(process_cpu, found)) for role, found in pids.items()}
            started, cpu = time.perf_counter(), time.process_time()
            os.rename(staging, watched)
            deadline = time.monotonic() + 120
            while stats.total_received() < lines:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {stats.total_received():,} of {lines:,} lines in 120 s: {stats.dropped}")
                time.sleep(0.002)
            assert collector.pipeline.flush(120)  # every sink done: with the forward sink, all acknowledged
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            used = {role: sum(map(process_cpu, found)) - before[role] for role, found in pids.items()}
            acknowledged = stats.exported.get("fluentforward", 0)
            dropped = sum(stats.dropped.values())
            collector.shutdown()
            os.rename(watched, staging)
            mode = "off" if not forward else "on, helper process" if helper else "on, in-process"
            others = "".join(f", {role}s {seconds / lines * 1e6:.2f}" for role, seconds in used.items() if pids[role])
            print(f"end to end, workers {workers}, forward sink {mode:18s}: {lines / elapsed:10,.0f} lines/s "
                  f"(µs CPU/line: collector process {cpu / lines * 1e6:.2f}{others}"
                  f"{f'; acknowledged {acknowledged:,}' if forward else ''}{f'; DROPPED {dropped:,}' if dropped else ''})")  # fmt: skip


def settle(workers: int, pids: dict[str, list[int]], receiver: object) -> None:
    """Until the workers (and helper) have started and use no more CPU: their start is not measured."""
    deadline = time.monotonic() + 30
    last: list[float] = []
    while time.monotonic() < deadline:
        time.sleep(0.25)
        pids["worker"] = list(getattr(receiver, "worker_pids", list)())
        used = [process_cpu(pid) for found in pids.values() for pid in found]
        # The helper reports its counters ten times a second: idle is well under 10% of a core.
        if len(pids["worker"]) == workers and len(last) == len(used):
            if all(now - before < 0.025 for now, before in zip(used, last, strict=True)):
                return
        last = used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--distinct", type=int, default=50_000, help="distinct Records, fed over and over")
    parser.add_argument("--lines", type=int, default=200_000, help="lines of the end-to-end files, in all")
    parser.add_argument("--files", type=int, default=4, help="end-to-end files (one worker parses one file)")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="end-to-end modes: WORKERS-SINK, SINK one of off, thread, helper (e.g. 0-off,2-helper)",
    )
    parser.add_argument(
        "--correlating", action="store_true", help="end to end as while proxy spans are received (request ids)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts, comma separated: {','.join(PARTS)}")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts: not parts: {', '.join(sorted(parts - set(PARTS)))}")
    modes = [(int(mode.split("-")[0]), mode.split("-")[1] != "off", mode.split("-")[1] == "helper")
             for mode in args.modes.split(",")]  # fmt: skip
    sample = records(args.distinct)
    print(f"{args.distinct:,} distinct Records built; peak RSS {rss_mib():.0f} MiB")
    if "encoding" in parts:
        encoding(sample)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        if "delivery" in parts:
            delivery(sample, args.events, Path(first))
        if "helper" in parts:
            helper_delivery(sample, args.events, Path(first) / "helper")
        if parts & {"delivery", "helper"}:
            print(f"peak RSS after delivery {rss_mib():.0f} MiB")
        if "spool" in parts:
            spooling(sample, args.events, Path(second))
            print(f"peak RSS after spooling {rss_mib():.0f} MiB")
    if "end-to-end" in parts:
        with tempfile.TemporaryDirectory() as third:
            end_to_end(args.lines, args.files, Path(third), modes, args.correlating)


if __name__ == "__main__":
    main()
