"""Span pairing throughput and memory: Spans -> SpanPairer -> ServiceGraphMetrics, on one core.

A mesh of ``--services`` services (default 40) in 4 namespaces; each trace is a chain of 5 calls, each
call a client span and the callee's server span (the callee's client span is the child of its server
span), so ``--pairs`` pairs are 2 x pairs spans and every span belongs to one pair. Spans arrive as SDK
batch exporters send them: children before parents within a trace, traces interleaved, batches of 512.
Spans are built before the clock starts (the normaliser's work is measured by span_normalise.py).

The pairer runs on a simulated clock: ``--rate`` spans per simulated second, the graph's ticker calling
``expire()`` every 2 simulated seconds, ttl 10 s and max_items 100,000 (the defaults), so the store
reaches its steady state (and its bound) as it would in a collector receiving that rate. Each run is a
fresh process: the throughput run without tracing allocations, the memory runs under tracemalloc.

    python benchmarks/span_pairing.py [--pairs 500000] [--services 40] [--rate 20000]
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servicegraph.connector_metrics import ServiceGraphMetrics  # noqa: E402
from servicegraph.spanpairs import SpanPairer, SpanPairingConfig  # noqa: E402
from telemetry.model import Span  # noqa: E402
from telemetry.pipeline import tune_gc  # noqa: E402

BATCH = 512
CALLS_PER_TRACE = 5
TICK = 2.0  # simulated seconds between expire() calls
START_NS = 1_714_843_200_000_000_000
MIB = 1024 * 1024


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_spans(pairs: int, services: int) -> list[Span]:
    rng = random.Random(7)
    names = [(f"svc-{n:02d}", f"ns-{n % 4}") for n in range(services)]
    traces = []
    for trace_number in range((pairs + CALLS_PER_TRACE - 1) // CALLS_PER_TRACE):
        trace_id = f"{rng.getrandbits(128):032x}"
        path = rng.sample(names, CALLS_PER_TRACE + 1)
        spans = []
        parent = ""
        for call in range(min(CALLS_PER_TRACE, pairs - trace_number * CALLS_PER_TRACE)):
            (caller, caller_ns), (callee, callee_ns) = path[call], path[call + 1]
            client_id, server_id = f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016x}"
            server_ms = rng.lognormvariate(2.5, 1.0)
            client_ns = int((server_ms + rng.uniform(0.2, 3)) * 1e6)
            error = rng.random() < 0.02
            spans.append(Span(trace_id, client_id, parent, "client", caller, caller_ns, "GET", START_NS, START_NS + client_ns, error, peer_service=callee))  # fmt: skip
            spans.append(Span(trace_id, server_id, client_id, "server", callee, callee_ns, "GET /", START_NS, START_NS + int(server_ms * 1e6), error))  # fmt: skip
            parent = server_id
        traces.append(spans[::-1])  # the deepest call ends first
    # Interleave traces: each batch holds the tails of some traces and the heads of others.
    out: list[Span] = []
    window = 64
    for first in range(0, len(traces), window):
        group = traces[first : first + window]
        cursors = [0] * len(group)
        live = list(range(len(group)))
        while live:
            index = rng.choice(live)
            take = rng.randint(1, 4)
            out.extend(group[index][cursors[index] : cursors[index] + take])
            cursors[index] += take
            if cursors[index] >= len(group[index]):
                live.remove(index)
    return out


def run_pairing(spans: list[Span], rate: float) -> tuple[SpanPairer, ServiceGraphMetrics, float]:
    clock = SimulatedClock()
    metrics = ServiceGraphMetrics()
    pairer = SpanPairer(SpanPairingConfig(), metrics, clock)
    per_batch = BATCH / rate
    next_tick = TICK
    started = time.perf_counter()
    for first in range(0, len(spans), BATCH):
        pairer.consume(spans[first : first + BATCH])
        clock.now += per_batch
        if clock.now >= next_tick:
            pairer.expire()
            next_tick += TICK
    elapsed = time.perf_counter() - started
    return pairer, metrics, elapsed


def throughput(pairs: int, services: int, rate: float) -> None:
    spans = make_spans(pairs, services)
    tune_gc()
    gc.collect()
    pairer, metrics, elapsed = run_pairing(spans, rate)
    paired = int(metrics.table().values[:, 0].sum())
    started = time.perf_counter()
    table = metrics.table()
    table_ms = (time.perf_counter() - started) * 1000
    print(
        f"throughput  {len(spans):,} spans, {pairs:,} pairs, {services} services, {rate:,.0f} spans/simulated s\n"
        f"  {len(spans) / elapsed:>10,.0f} spans/s   {paired / elapsed:>10,.0f} pairs/s   ({elapsed:.2f} s)\n"
        f"  paired {paired:,} of {pairs:,}; in store {len(pairer):,} (waiting {pairer.waiting:,});"
        f" evicted {metrics.evicted:,}, dropped {metrics.dropped:,}, unpaired {metrics.unpaired:,};"
        f" {len(table):,} series, table() {table_ms:.2f} ms\n"
        f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB (spans prebuilt in memory)"
    )


def memory(pairs: int, services: int, rate: float) -> None:
    spans = make_spans(pairs, services)
    tune_gc()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    pairer, metrics, _ = run_pairing(spans, rate)
    current, peak = tracemalloc.get_traced_memory()
    print(
        f"memory      the same run under tracemalloc: peak {(peak - baseline) / MIB:,.1f} MiB above the prebuilt spans,"
        f" {(current - baseline) / MIB:,.1f} MiB held at the end ({len(pairer):,} spans stored)"
    )


def full_store(max_items: int) -> None:
    """max_items unpaired client spans, each of its own trace: the store's worst case."""
    rng = random.Random(11)
    services = [(f"svc-{n:02d}", f"ns-{n % 4}") for n in range(40)]

    def make(count: int) -> list[Span]:
        out = []
        for _ in range(count):
            service, namespace = rng.choice(services)
            out.append(Span(f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(64):016x}", "client", service, namespace, "GET", START_NS, START_NS + 5_000_000, peer_service="reviews"))  # fmt: skip
        return out

    tracemalloc.start()
    prebuilt = make(max_items)
    base = tracemalloc.get_traced_memory()[0]
    pairer = SpanPairer(SpanPairingConfig(max_items=max_items), ServiceGraphMetrics(), SimulatedClock())
    for first in range(0, max_items, BATCH):
        pairer.consume(prebuilt[first : first + BATCH])
    overhead = tracemalloc.get_traced_memory()[0] - base
    del pairer, prebuilt
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    pairer = SpanPairer(SpanPairingConfig(max_items=max_items), ServiceGraphMetrics(), SimulatedClock())
    for _ in range(0, max_items, BATCH):
        pairer.consume(make(BATCH))  # the store now holds the only reference to each Span
    with_spans = tracemalloc.get_traced_memory()[0] - base
    assert len(pairer) == max_items
    print(
        f"full store  {max_items:,} waiting spans (each with a parent not yet seen): "
        f"{overhead / MIB:,.1f} MiB of store ({overhead / max_items:,.0f} B/span), "
        f"{with_spans / MIB:,.1f} MiB with the Spans it keeps alive ({with_spans / max_items:,.0f} B/span)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=500_000)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--rate", type=float, default=20_000, help="simulated arrival rate, spans per second")
    parser.add_argument("--max-items", type=int, default=SpanPairingConfig().max_items)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "throughput":
        throughput(args.pairs, args.services, args.rate)
    elif args.child == "memory":
        memory(args.pairs, args.services, args.rate)
    elif args.child == "full_store":
        full_store(args.max_items)
    else:
        for child in ("throughput", "memory", "full_store"):
            subprocess.run(
                [sys.executable, __file__, "--child", child, "--pairs", str(args.pairs), "--services",
                 str(args.services), "--rate", str(args.rate), "--max-items", str(args.max_items)],
                check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
