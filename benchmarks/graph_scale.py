"""The service graph at scale: cost per Record into the graph, and a 2,000-node, 10,000-edge graph.

A synthetic mesh of W workloads, each serving its own service and calling C others (client- and
server-side Records, some failing): W=1000, C=10 gives 2,000 nodes and 11,000 edges in the workload
graph (10,000 caller -> service, 1,000 service -> workload).

1. Records into the graph: the graph reads the metrics sink's aggregation, so a Record costs what the
   metrics sink costs (measured), plus the ticks reading the counters (measured per tick, amortised).
2. Memory: an hour of ticks (simulated clock) filling every window's ring; tracemalloc peak and RSS.
3. /api/graph for the whole graph over HTTP from the real server (ticking every 2 s and rebuilding
   the views in use after each tick), polled every second while another thread ingests, as the UI
   does; plus the cost of one build, which the ticker pays per view in use per tick.

    python benchmarks/graph_scale.py [--workloads 1000] [--calls 10] [--polls 20]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servicegraph.builder import GraphOptions, build_graph  # noqa: E402
from servicegraph.config import GraphConfig  # noqa: E402
from servicegraph.runtime import GraphRuntime  # noqa: E402
from servicegraph.sources.live import LiveSource  # noqa: E402
from telemetry.exporters.prometheus.istio_metrics import IstioMetrics  # noqa: E402
from telemetry.model import Record  # noqa: E402
from telemetry.pipeline import tune_gc  # noqa: E402
from telemetry.selfmetrics import SelfStats  # noqa: E402


def mesh_records(workloads: int, calls: int, seed: int = 1) -> list[Record]:
    """One client-side and one server-side Record per caller -> service, 5% of them failing."""
    rng = random.Random(seed)
    records = []
    for caller in range(workloads):
        namespace = f"ns{caller % 20}"
        for callee in rng.sample(range(workloads), calls):
            callee_ns = f"ns{callee % 20}"
            code = 503 if rng.random() < 0.05 else 200
            common = dict(
                source_workload=f"svc{caller}-v1", source_namespace=namespace, source_app=f"svc{caller}",
                source_version="v1", destination_workload=f"svc{callee}-v1", destination_namespace=callee_ns,
                destination_app=f"svc{callee}", destination_version="v1",
                destination_service=f"svc{callee}.{callee_ns}.svc.cluster.local",
                destination_service_name=f"svc{callee}", destination_service_namespace=callee_ns,
                response_code=code, duration_ms=rng.choice((3, 8, 20, 70, 300)), bytes_received=200, bytes_sent=2000,
            )  # fmt: skip
            records.append(Record(reporter="source", **common))
            records.append(Record(reporter="destination", connection_security_policy="mutual_tls", **common))
    return records


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--ingest-rate", type=float, default=50_000, help="Records/s fed while polling")
    args = parser.parse_args()
    tune_gc()  # as the collector does at start

    records = mesh_records(args.workloads, args.calls)
    metrics = IstioMetrics(max_series_per_metric=200_000)
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        metrics.consume(records)
    consume_s = time.perf_counter() - started
    per_record_us = consume_s / (rounds * len(records)) * 1e6
    print(f"mesh: {args.workloads} workloads x {args.calls} calls: {len(records):,} Records per round, "
          f"{metrics.series_count():,} series")  # fmt: skip
    print(f"records into the metrics the graph reads: {rounds * len(records) / consume_s:,.0f}/s "
          f"({per_record_us:.2f} us per Record, one core)")  # fmt: skip

    # An hour of ticks every 25 s (simulated), with traffic on every series between ticks.
    clock = [1_000_000.0]
    live = LiveSource(metrics, windows=(60, 300, 900, 3600), points=12, idle_expiry=3600, clock=lambda: clock[0])
    tracemalloc.start()
    tick_times = []
    one_per_series = records  # every label set moves between ticks
    for _ in range(3600 // 25):
        metrics.consume(one_per_series)
        clock[0] += 25
        started = time.perf_counter()
        live.tick()
        tick_times.append(time.perf_counter() - started)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tick_ms = statistics.median(tick_times) * 1000
    print(f"tick (read every counter, cut the windows): {tick_ms:.0f} ms median; at one tick per 2 s that is "
          f"{tick_ms / 2000 * 100:.1f}% of a core, {tick_ms / 2000 * 1e6 / max(1, len(records)):.3f} us per series/s")  # fmt: skip
    print(
        f"memory of an hour of windows (tracemalloc peak, ticks only): {peak / 2**20:.0f} MiB; RSS so far {rss_mb():.0f} MB"
    )

    builds = []
    for _ in range(5):
        started = time.perf_counter()
        graph = build_graph(live.traffic(300), GraphOptions())
        builds.append(time.perf_counter() - started)
    print(f"graph: {graph.number_of_nodes():,} nodes, {graph.number_of_edges():,} edges; "
          f"build alone {statistics.median(builds) * 1000:.0f} ms median")  # fmt: skip

    # The real server, polled every second while ingestion continues on another thread.
    config = GraphConfig(endpoint="127.0.0.1:0", resolution=2.0)
    runtime = GraphRuntime(config, SelfStats(), metrics)
    runtime.live = live  # keep the hour of history built above
    runtime.service.source = live
    runtime.start()
    stop = threading.Event()

    def ingest() -> None:
        chunk = max(1, int(args.ingest_rate * 0.05))
        position = 0
        while not stop.is_set():
            started = time.perf_counter()
            metrics.consume(records[position : position + chunk])
            position = (position + chunk) % len(records)
            time.sleep(max(0.0, 0.05 - (time.perf_counter() - started)))

    feeder = threading.Thread(target=ingest, daemon=True)
    feeder.start()
    url = f"http://127.0.0.1:{runtime.port}/api/graph?window=5m"
    latencies, sizes = [], []
    for _ in range(args.polls):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
        latencies.append(time.perf_counter() - started)
        sizes.append(len(body))
        time.sleep(max(0.0, 1.0 - latencies[-1]))
    stop.set()
    feeder.join()
    runtime.shutdown()
    latencies.sort()
    print(f"/api/graph, whole graph, polled every 1 s while {args.ingest_rate:,.0f} Records/s are ingested: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
          f"{statistics.median(sizes) / 2**20:.1f} MiB JSON")  # fmt: skip
    print(f"peak RSS: {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
