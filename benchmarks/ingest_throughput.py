"""End-to-end ingest throughput: access-log file -> Records -> Istio metrics aggregation, on one core.

Writes N Istio-format lines (~370 bytes each) and the same entries as Istio JSON lines, then runs
each file through meshscope's offline ingest path (chunked reading, parsing, the pipeline, the
metrics sink). Each measurement runs in a fresh process so that peak RSS is its own.

    python benchmarks/ingest_throughput.py [--lines 1000000] [--formats istio,json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetry.envoy.presets import PRESETS  # noqa: E402
from telemetry.envoy.render import compile_renderer  # noqa: E402

CALLS = [
    ("details", "", 9080, "10.244.0.10", "/details/{}"),
    ("reviews", "v1", 9080, "10.244.0.11", "/reviews/{}"),
    ("reviews", "v2", 9080, "10.244.0.12", "/reviews/{}"),
    ("reviews", "v3", 9080, "10.244.0.13", "/reviews/{}"),
    ("ratings", "v1", 9080, "10.244.0.14", "/ratings/{}"),
]
CODES = [200] * 90 + [404] * 4 + [503] * 5 + [0]


def entries(count: int, seed: int = 7):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    for index in range(count):
        service, subset, port, ip, path = CALLS[index % len(CALLS)]
        code = rng.choice(CODES)
        yield {
            "start_time": f"2024-05-04T17:{(index // 60000) % 60:02d}:{(index // 1000) % 60:02d}.{index % 1000:03d}Z",
            "method": "GET",
            "path": path.format(index % 50),
            "protocol": "HTTP/1.1",
            "response_code": str(code),
            "response_flags": "UF,URX" if code == 503 else ("DC" if code == 0 else ""),
            "response_code_details": "via_upstream",
            "bytes_received": "0",
            "bytes_sent": str(rng.randint(100, 6000)),
            "duration": str(rng.randint(1, 900)),
            "upstream_service_time": str(rng.randint(1, 800)),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) python-requests/2.31",
            "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "authority": f"{service}:{port}",
            "upstream_host": f"{ip}:{port}",
            "upstream_cluster": f"outbound|{port}|{subset}|{service}.default.svc.cluster.local",
            "upstream_local_address": f"10.244.0.9:{30000 + index % 30000}",
            "downstream_local_address": f"10.96.0.{20 + index % len(CALLS)}:{port}",
            "downstream_remote_address": f"10.244.0.9:{20000 + index % 40000}",
            "route_name": "default",
        }


def write_lines(path: Path, fmt: str, count: int) -> int:
    render = compile_renderer(PRESETS[fmt])
    size = 0
    with open(path, "w", encoding="utf-8") as handle:
        batch = []
        for entry in entries(count):
            batch.append(render(entry))
            if len(batch) == 10000:
                text = "\n".join(batch) + "\n"
                size += len(text)
                handle.write(text)
                batch = []
        if batch:
            text = "\n".join(batch) + "\n"
            size += len(text)
            handle.write(text)
    return size


def measure(path: str) -> dict[str, float]:
    """Runs in a child process: ingest one file, report time and peak RSS."""
    from telemetry.ingest import ingest

    started = time.perf_counter()
    cpu_started = time.process_time()
    result = ingest([path])
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"records": result.records, "errors": sum(result.parse_errors.values()), "seconds": elapsed, "cpu_seconds": cpu,
            "peak_rss_mb": peak_kib / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--formats", default="istio,json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory(prefix="meshscope-bench-") as tmp:
        print(
            f"{'format':8} {'lines':>9} {'bytes/line':>10} {'seconds':>8} {'lines/s':>10} {'lines/CPU-s':>11} {'MiB/s':>7} {'peak RSS MB':>11}"
        )
        for fmt in args.formats.split(","):
            path = Path(tmp) / f"{fmt}.log"
            size = write_lines(path, fmt, args.lines)
            child = subprocess.run(
                [sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )  # fmt: skip
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            assert figures["records"] == args.lines and figures["errors"] == 0, figures
            rate = args.lines / figures["seconds"]
            per_cpu = args.lines / figures["cpu_seconds"]
            print(f"{fmt:8} {args.lines:>9} {size / args.lines:>10.0f} {figures['seconds']:>8.2f} {rate:>10,.0f} {per_cpu:>11,.0f} "
                  f"{size / figures['seconds'] / 2**20:>7.1f} {figures['peak_rss_mb']:>11.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
