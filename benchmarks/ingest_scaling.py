"""File tailing on one core and on two: the collector as ``meshscope run`` builds it, fed access-log files.

Writes ``--files`` Istio-format access-log files (~370 bytes a line, ``--lines`` in all) under Kubernetes pod
log paths, then for each setting runs a fresh collector process pinned with ``taskset`` (file tailing on,
the other receivers off, Prometheus sink and graph on, as configured by default) until every line is counted
in its metrics, and prints lines/s and peak RSS:

- ``workers 0, 1 core``: parsing in the collector's process (the path before parsing workers);
- ``workers N, 1 core``: N parsing worker processes sharing the one core (what the workers cost);
- ``workers N, 2 cores``: the same with both cores.

Each setting is run ``--repeat`` times, interleaved; the median is printed with the spread (min-max), since
other processes on a shared machine disturb single runs. The collector is started first and its workers
left to become idle (``start s``); then the files appear in its glob at once, and ``lines/s`` is from then
to the last line counted in the metrics. CPU time per line of each process is printed too, and what it
allows on an otherwise idle machine (``CPU-time bound``): it is far less disturbed by other load than wall
time. ``waiting`` is how many of the collector's threads were, on average, ready to run but not running
(from /proc/*/schedstat): with both cores and a quiet machine it stays well under 1; on one core the
collector's own threads and processes wait for each other too, so compare it between runs of one setting.

    python benchmarks/ingest_scaling.py [--lines 400000] [--files 8] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_throughput import write_lines  # noqa: E402

STAGING = "staging"  # the files wait here until the collector is ready, then are renamed into its glob
POD_DIR = "default_productpage-v1-6b746f74dc-{index:05d}_1a2b3c4d/istio-proxy"


def make_files(root: Path, lines: int, files: int) -> int:
    """``files`` copies of one generated file (distinct inodes), ``lines`` lines in all; returns bytes."""
    per_file = lines // files
    template = root / "template.log"
    write_lines(template, "istio", per_file)
    for index in range(files):
        target = root / STAGING / POD_DIR.format(index=index) / "0.log"
        target.parent.mkdir(parents=True)
        shutil.copyfile(template, target)
    size = template.stat().st_size * files
    template.unlink()
    return size


def measure(root: str, workers: int, expected: int, correlating: bool) -> dict[str, float]:
    """Runs in a pinned child process: one collector, until every line is counted."""
    from telemetry.collector import Collector
    from telemetry.config import Config

    config = Config()
    receivers = config.receivers
    receivers.filelog.include = [f"{root}/pods/*/istio-proxy/*.log"]
    receivers.filelog.workers = workers
    receivers.filelog.poll_interval = 0.05
    receivers.als.enabled = False
    receivers.otlp.grpc.enabled = False
    receivers.otlp.http.enabled = False
    receivers.zipkin.enabled = False
    config.exporters.prometheus.endpoint = "127.0.0.1:0"
    config.graph.endpoint = "127.0.0.1:0"
    config.graph.ui_enabled = False
    collector = Collector(config)
    if correlating:
        # As when proxy spans are being received: client-side Records with a request id go back to the collector.
        collector._request_index.remember("request-id", "0af7651916cd43dd8448eb211c80319c")
    stats = collector.stats
    started = time.perf_counter()
    collector.start()
    receiver = collector.receiver("filelog")
    wait_until_idle(receiver, workers)
    ready = time.perf_counter()
    # The files appear at once (one rename): from here on the collector only tails and parses.
    main_cpu = time.process_time()
    workers_cpu = worker_cpu(receiver)
    waited = runqueue_wait(receiver)
    os.rename(Path(root) / STAGING, Path(root) / "pods")
    while stats.total_received() + stats.total_parse_errors() < expected:
        time.sleep(0.002)
    assert collector.pipeline.flush(60.0)
    ended = time.perf_counter()
    main_cpu = time.process_time() - main_cpu
    waited = runqueue_wait(receiver) - waited
    workers_cpu = [cpu_now - workers_cpu.get(pid, 0.0) for pid, cpu_now in worker_cpu(receiver).items()]
    metrics = collector.metrics
    assert metrics is not None
    counted = sum(series.count for series in metrics.metrics.snapshot()[0])
    collector.shutdown()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker
    return {
        "counted": counted,
        "errors": stats.total_parse_errors(),
        "rate": expected / (ended - ready),
        "start_seconds": ready - started,
        # Time our processes were ready to run but another process had the CPU: how disturbed the run was.
        "runqueue_wait": waited / (ended - ready),
        # CPU per line, per process: a busy machine distorts wall time far more than CPU time.
        "main_cpu_us": main_cpu / expected * 1e6,
        "worker_cpu_us": [seconds / expected * 1e6 for seconds in workers_cpu],
        "main_rss_mb": own,
        "worker_rss_mb": children if workers else 0.0,
    }


def wait_until_idle(receiver: object, workers: int) -> None:
    """Until every worker has started (imported its modules) and uses no more CPU."""
    deadline = time.monotonic() + 30
    last: dict[int, float] = {}
    while time.monotonic() < deadline:
        time.sleep(0.25)
        used = worker_cpu(receiver)
        if len(used) == workers and used == last:
            return
        last = used


def runqueue_wait(receiver: object) -> float:
    """Seconds this process's threads and the workers spent runnable but waiting for a CPU (schedstat)."""
    pids = [os.getpid(), *(receiver.worker_pids() if hasattr(receiver, "worker_pids") else [])]
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def worker_cpu(receiver: object) -> dict[int, float]:
    """CPU seconds used so far by each parsing worker (from /proc), by process id."""
    pids = receiver.worker_pids() if hasattr(receiver, "worker_pids") else []
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return used


def run(root: Path, cpus: str, workers: int, expected: int, correlating: bool) -> dict[str, float]:
    command = ["taskset", "-c", cpus, sys.executable, __file__, "--measure", str(root), "--workers", str(workers),
               "--lines", str(expected)] + (["--correlating"] if correlating else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if child.returncode != 0:
        raise SystemExit(f"measurement failed:\n{child.stderr}")
    os.rename(root / "pods", root / STAGING)
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    if figures["counted"] != expected or figures["errors"]:
        raise SystemExit(f"not exact: {figures} (expected {expected} requests counted)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--correlating", action="store_true", help="as while spans correlate request ids: more Records go back"
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.workers, args.lines, args.correlating)))
        return
    if shutil.which("taskset") is None:
        raise SystemExit("needs taskset (util-linux)")
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="meshscope-scaling-") as tmp:
        root = Path(tmp)
        size = make_files(root, args.lines, args.files)
        expected = args.lines // args.files * args.files
        print(f"{expected:,} Istio lines ({size / expected:.0f} B/line) in {args.files} files; {cores} cores here")
        settings = [("0", 0), ("0", args.workers), ("0,1", args.workers)]
        results: dict[tuple[str, int], list[dict[str, float]]] = {setting: [] for setting in settings}
        for _ in range(args.repeat):  # interleaved, so a busy moment does not hit one setting only
            for cpus, workers in settings:
                results[(cpus, workers)].append(run(root, cpus, workers, expected, args.correlating))
        print(f"{'setting':20} {'lines/s (median)':>16} {'min-max':>17} {'start s':>7} "
              f"{'CPU us/line: main + workers':>30} {'RSS MB: main, worker':>21} {'waiting':>7}")  # fmt: skip
        medians = {}
        bounds: dict[tuple[str, int], tuple[float, float]] = {}
        for (cpus, workers), runs in results.items():
            rates = [run_["rate"] for run_ in runs]
            median = medians[(cpus, workers)] = statistics.median(rates)
            label = f"workers {workers}, {len(cpus.split(','))} core{'s' if ',' in cpus else ''}"
            cpu_main = statistics.median(run_["main_cpu_us"] for run_ in runs)
            cpu_workers = [
                statistics.median(values) for values in zip(*(run_["worker_cpu_us"] for run_ in runs), strict=True)
            ]
            cpu_text = f"{cpu_main:.2f}" + "".join(f" + {value:.2f}" for value in cpu_workers)
            total = cpu_main + sum(cpu_workers)
            busiest = max([cpu_main, *cpu_workers])
            bounds[(cpus, workers)] = (1e6 / total, 1e6 / max(busiest, total / 2))
            print(f"{label:20} {median:>16,.0f} {min(rates):>8,.0f}-{max(rates):<8,.0f} "
                  f"{statistics.median(run_['start_seconds'] for run_ in runs):>7.2f} {cpu_text:>30} "
                  f"{max(run_['main_rss_mb'] for run_ in runs):>13.0f}, "
                  f"{max(run_['worker_rss_mb'] for run_ in runs):>5.0f} "
                  f"{statistics.median(run_['runqueue_wait'] for run_ in runs):>7.2f}")  # fmt: skip
        # What the CPU time per line allows, undisturbed: one core runs everything; two cores run the busiest
        # process on one and share the rest.
        one_core = bounds[("0", 0)][0]
        two_cores = bounds[("0,1", args.workers)][1]
        print(
            f"CPU-time bound: in-process on 1 core {one_core:,.0f} lines/s; {args.workers} workers on 2 cores "
            f"{two_cores:,.0f} lines/s ({two_cores / one_core:.2f}x)"
        )
        baseline = medians[("0", 0)]
        best_two = medians[("0,1", args.workers)]
        print(
            f"measured: 2 cores with {args.workers} workers / 1 core in-process: {best_two / baseline:.2f}x; "
            f"/ 1 core with {args.workers} workers: {best_two / medians[('0', args.workers)]:.2f}x"
        )


if __name__ == "__main__":
    main()
