"""Soak: a real `meshscope run` fed above its capacity by file tailing, OTLP/HTTP and Zipkin together.

Starts the collector as a subprocess (graph and UI on, as `meshscope run` runs) and feeds it at
``--factor`` (default 2) times its rated rate for ``--duration`` seconds (default 600): half the
offered records as Istio access-log lines appended to a tailed file (rotated by rename at 64 MiB, two
generations kept, as logrotate would), a quarter as OTLP/HTTP protobuf requests and a quarter as Zipkin
v2 JSON requests (each request 80 proxy spans, which become Records, and 10 client/server application
span pairs, which go to the span pairing store), from a pool of pre-built bodies sent round robin.
Senders do not retry: a refused request is counted.

Every ``--interval`` seconds it samples the collector process's RSS and CPU (psutil when installed, else
/proc) and scrapes /metrics (records received per receiver, drops by stage and reason, the pipeline's
queue depth). A probe writes one marker line at a time into a second, quiet pod's log file and polls
/metrics until that line's count shows, for the delay from a line written to its count visible (p50,
p99): the flooded file's own backlog is reported separately, as lines written but not yet counted.

    python benchmarks/soak.py [--duration 600] [--rated 50000] [--factor 2] [--interval 5]
    python benchmarks/soak.py --calibrate --duration 30    # feed flat out: the rated rate is what it takes

The machine's 2 cores are shared with the feeder (this process) and anything else running: say so
with the figures. Set MALLOC_ARENA_MAX=2 in the environment to run the collector as deployed: without
it glibc's per-thread malloc arenas keep freed memory and RSS creeps for many minutes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
import yaml  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROXY_SPANS = 80
APP_PAIRS = 10
ROTATE_BYTES = 64 << 20
POOL = 256  # distinct request bodies per protocol
FLOOD_POD = "default_productpage-v1-6b746f74dc-9rlmh_1111aaaa-2222-3333-4444-555566667777"
PROBE_POD = "soak_probe-v1-5d4c3b2a19-abcde_9999aaaa-2222-3333-4444-555566667777"
PROBE_SERVICE = "soak-probe-target.soak.svc.cluster.local"
CALLS = [("details", ""), ("reviews", "v1"), ("reviews", "v2"), ("reviews", "v3"), ("ratings", "v1")]
CODES = ["200"] * 18 + ["503", "404"]
LINE = (
    '[2024-05-04T17:22:59.046Z] "GET /{service}/{number} HTTP/1.1" {code} - via_upstream - "-" 0 295 24 23 "-" '
    '"python-requests/2.31.0" "{request_id}" "{service}:9080" "10.244.0.12:9080" '
    "outbound|9080|{version}|{service}.default.svc.cluster.local 10.244.0.9:43210 10.96.12.34:9080 "
    "10.244.0.9:50212 - default\n"
)
PROBE_LINE = LINE.replace("{service}.default.svc.cluster.local", PROBE_SERVICE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the collector process -----------------------------------------------------------------------------


class ProcessProbe:
    """RSS and CPU seconds of one process: psutil when installed, else /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            import psutil  # type: ignore[import-untyped]

            self._process = psutil.Process(pid)
        except ImportError:
            self._process = None
        self._ticks = os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        if self._process is not None:
            return float(self._process.memory_info().rss) / (1 << 20)
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        if self._process is not None:
            times = self._process.cpu_times()
            return float(times.user + times.system)
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks


def scrape(port: int) -> dict[tuple[str, str], float]:
    """The samples of /metrics this script reads: (name, labels text) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    samples: dict[tuple[str, str], float] = {}
    wanted = ("meshscope_", "istio_requests_total{")
    for line in text.splitlines():
        if not line.startswith(wanted):
            continue
        name_labels, _, value = line.rpartition(" ")
        name, _, labels = name_labels.partition("{")
        samples[(name, labels.rstrip("}"))] = float(value)
    return samples


def labelled(samples: dict[tuple[str, str], float], name: str, label: str) -> dict[str, float]:
    """Values of ``name`` keyed by the text of its labels (or one label's value when ``label`` is given)."""
    result: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample != name:
            continue
        match = re.search(rf'{label}="([^"]*)"', labels) if label else None
        key = match.group(1) if match else labels
        result[key] = result.get(key, 0.0) + value
    return result


def drops(samples: dict[tuple[str, str], float]) -> dict[str, float]:
    result = {}
    for (name, labels), value in samples.items():
        if name == "meshscope_dropped_total" and value:
            stage = re.search(r'stage="([^"]*)"', labels)
            reason = re.search(r'reason="([^"]*)"', labels)
            result[f"{stage.group(1) if stage else '?'}/{reason.group(1) if reason else '?'}"] = value
    return result


# -- feeding -------------------------------------------------------------------------------------------


class Bucket:
    """A token bucket shared by a sender's threads; ``rate`` None means flat out."""

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, stop: threading.Event) -> bool:
        if self._rate is None:
            return not stop.is_set()
        with self._lock:
            now = time.monotonic()
            at = max(self._next, now - 1.0)  # at most a second of catch-up after a stall
            self._next = at + 1.0 / self._rate
        delay = at - now
        return not stop.wait(delay) if delay > 0 else not stop.is_set()


@dataclass
class Fed:
    lines: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    proxy_spans_accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, kind: str, status: str, accepted: bool) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if accepted:
                self.proxy_spans_accepted += PROXY_SPANS


_ids = itertools.count(1)


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _node(number: int) -> str:
    return f"sidecar~10.244.1.{number % 50}~productpage-v1-{number % 5}.default~default.svc.cluster.local"


def otlp_body(number: int) -> tuple[bytes, bytes]:
    """A request body and the trace id it carries (every span of it is in that one trace)."""
    trace = os.urandom(16)
    start = time.time_ns()
    proxy = []
    for index in range(PROXY_SPANS):
        service, version = CALLS[index % len(CALLS)]
        proxy.append(
            Span(
                trace_id=trace,
                span_id=next(_ids).to_bytes(8, "big"),
                name=f"{service}.default.svc.cluster.local:9080/*",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 24_000_000,
                attributes=[
                    _kv("component", "proxy"),
                    _kv("node_id", _node(number)),
                    _kv("upstream_cluster", f"outbound|9080|{version}|{service}.default.svc.cluster.local"),
                    _kv("http.method", "GET"),
                    _kv("http.url", f"http://{service}:9080/{service}/{index}"),
                    _kv("http.status_code", CODES[index % len(CODES)]),
                    _kv("guid:x-request-id", f"{number}-{index}"),
                ],
            )
        )
    resources = [ResourceSpans(resource=Resource(attributes=[_kv("service.name", "productpage")]),
                               scope_spans=[ScopeSpans(spans=proxy)])]  # fmt: skip
    for index in range(APP_PAIRS):
        client_id, server_id = next(_ids).to_bytes(8, "big"), next(_ids).to_bytes(8, "big")
        caller, callee = f"app-{index % 4}", f"app-{(index + 1) % 4}"
        client = Span(trace_id=trace, span_id=client_id, name="GET /items", kind=Span.SPAN_KIND_CLIENT,
                      start_time_unix_nano=start, end_time_unix_nano=start + 9_000_000,
                      attributes=[_kv("http.request.method", "GET"), _kv("server.address", callee)])  # fmt: skip
        server = Span(trace_id=trace, span_id=server_id, parent_span_id=client_id, name="GET /items",
                      kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start + 1_000_000,
                      end_time_unix_nano=start + 8_000_000, attributes=[_kv("http.response.status_code", "200")])  # fmt: skip
        resources.append(ResourceSpans(resource=Resource(attributes=[_kv("service.name", caller)]),
                                       scope_spans=[ScopeSpans(spans=[client])]))  # fmt: skip
        resources.append(ResourceSpans(resource=Resource(attributes=[_kv("service.name", callee)]),
                                       scope_spans=[ScopeSpans(spans=[server])]))  # fmt: skip
    return ExportTraceServiceRequest(resource_spans=resources).SerializeToString(), trace


def zipkin_body(number: int) -> tuple[bytes, bytes]:
    trace = os.urandom(16).hex()
    start = time.time_ns() // 1000
    spans: list[dict[str, object]] = []
    for index in range(PROXY_SPANS):
        service, version = CALLS[index % len(CALLS)]
        spans.append({
            "traceId": trace, "id": next(_ids).to_bytes(8, "big").hex(), "kind": "CLIENT",
            "name": f"{service}.default.svc.cluster.local:9080/*", "timestamp": start, "duration": 24_000,
            "localEndpoint": {"serviceName": "productpage.default", "ipv4": "10.244.1.9"},
            "tags": {"component": "proxy", "node_id": _node(number),
                     "upstream_cluster": f"outbound|9080|{version}|{service}.default.svc.cluster.local",
                     "http.method": "GET", "http.url": f"http://{service}:9080/{service}/{index}",
                     "http.status_code": CODES[index % len(CODES)], "guid:x-request-id": f"z{number}-{index}"},
        })  # fmt: skip
    for index in range(APP_PAIRS):
        client_id, server_id = next(_ids).to_bytes(8, "big").hex(), next(_ids).to_bytes(8, "big").hex()
        caller, callee = f"zapp-{index % 4}", f"zapp-{(index + 1) % 4}"
        spans.append({"traceId": trace, "id": client_id, "kind": "CLIENT", "name": "get /items",
                      "timestamp": start, "duration": 9000, "localEndpoint": {"serviceName": caller},
                      "remoteEndpoint": {"serviceName": callee}})  # fmt: skip
        spans.append({"traceId": trace, "id": server_id, "parentId": client_id, "kind": "SERVER",
                      "name": "get /items", "timestamp": start + 1000, "duration": 7000,
                      "localEndpoint": {"serviceName": callee}})  # fmt: skip
    return orjson.dumps(spans), trace.encode()


def post_loop(kind: str, url: str, content_type: str, pool: list[tuple[bytes, bytes]], bucket: Bucket, fed: Fed,
              stop: threading.Event) -> None:  # fmt: skip
    import http.client

    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    connection: http.client.HTTPConnection | None = None
    bodies = itertools.cycle(pool)
    hexadecimal = kind == "zipkin"
    while bucket.take(stop):
        template, trace = next(bodies)
        # A fresh trace id per request: every span is new to the pairing store and the trace-id index.
        fresh = os.urandom(16)
        body = template.replace(trace, fresh.hex().encode() if hexadecimal else fresh)
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.request("POST", path, body, {"Content-Type": content_type})
            answer = connection.getresponse()
            answer.read()
            fed.answer(kind, str(answer.status), answer.status in (200, 202))
        except (OSError, http.client.HTTPException) as error:
            fed.answer(kind, type(error).__name__, False)
            if connection is not None:
                connection.close()
            connection = None


def write_lines(folder: Path, rate: float | None, fed: Fed, stop: threading.Event) -> None:
    """Append access-log lines at ``rate`` per second in 0.1 s slices; rotate by rename at ROTATE_BYTES."""
    path = folder / "0.log"
    rendered = [
        LINE.format(service=service, version=version, code=code, number=number, request_id=f"req-{number}")
        for number, ((service, version), code) in enumerate(itertools.product(CALLS, CODES))
    ]
    handle = open(path, "a")
    written = 0
    while not stop.is_set():
        started = time.monotonic()
        count = int(rate / 10) if rate is not None else 5000
        chunk = "".join(rendered[(fed.lines + index) % len(rendered)] for index in range(count))
        handle.write(chunk)
        handle.flush()
        written += len(chunk)
        with fed.lock:
            fed.lines += count
        if written >= ROTATE_BYTES:
            handle.close()
            older = folder / "0.log.1"
            if older.exists():
                os.replace(older, folder / "0.log.2")
            os.replace(path, older)
            handle, written = open(path, "a"), 0
        if rate is not None:
            stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))
    handle.close()


def probe_delays(folder: Path, metrics_port: int, delays: list[float], stop: threading.Event) -> None:
    """One marker line at a time into a quiet file; the delay until /metrics counts it."""
    path = folder / "0.log"
    seen = 0
    number = 0
    while not stop.wait(1.0):
        number += 1
        line = PROBE_LINE.format(service="probe", version="v1", code="200", number=number, request_id=f"probe-{number}")
        written = time.monotonic()
        with open(path, "a") as handle:
            handle.write(line)
        while not stop.is_set():
            try:
                count = labelled(scrape(metrics_port), "istio_requests_total", "destination_service").get(
                    PROBE_SERVICE, 0
                )
            except OSError:
                count = seen
            if count > seen:
                delays.append(time.monotonic() - written)
                seen = int(count)
                break
            stop.wait(0.25)


# -- the run -------------------------------------------------------------------------------------------


def config(workdir: Path, ports: dict[str, int]) -> dict[str, object]:
    return {
        "receivers": {
            "filelog": {"include": [str(workdir / "pods/*/istio-proxy/*.log")], "format": "istio"},
            "als": {"enabled": False},
            "otlp": {"grpc": {"enabled": False}, "http": {"endpoint": f"127.0.0.1:{ports['otlp']}"}},
            "zipkin": {"endpoint": f"127.0.0.1:{ports['zipkin']}"},
        },
        "exporters": {"prometheus": {"endpoint": f"127.0.0.1:{ports['metrics']}"}},
        "graph": {"endpoint": f"127.0.0.1:{ports['graph']}"},
    }


def wait_for_metrics(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the collector exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("the collector did not serve /metrics within 60 s")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="meshscope-soak-"))
    flood_dir = workdir / "pods" / FLOOD_POD / "istio-proxy"
    probe_dir = workdir / "pods" / PROBE_POD / "istio-proxy"
    for folder in (flood_dir, probe_dir):
        folder.mkdir(parents=True)
        (folder / "0.log").touch()
    ports = {name: free_port() for name in ("otlp", "zipkin", "metrics", "graph")}
    config_path = workdir / "meshscope.yaml"
    config_path.write_text(yaml.safe_dump(config(workdir, ports)))
    log_path = workdir / "meshscope.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "telemetry.cli", "run", "-c", str(config_path)],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_metrics(ports["metrics"], process, log_path)
        soak(args, process, ports, flood_dir, probe_dir)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        print(f"collector exit code {process.returncode}; its log: {log_path}")


def soak(args: argparse.Namespace, process: subprocess.Popen[bytes], ports: dict[str, int], flood_dir: Path,
         probe_dir: Path) -> None:  # fmt: skip
    offered = None if args.calibrate else args.rated * args.factor  # records per second, all inputs
    line_rate = None if offered is None else offered / 2
    request_rate = None if offered is None else offered / 4 / PROXY_SPANS
    stop = threading.Event()
    fed = Fed()
    delays: list[float] = []
    threads = [
        threading.Thread(target=write_lines, args=(flood_dir, line_rate, fed, stop), daemon=True),
        threading.Thread(target=probe_delays, args=(probe_dir, ports["metrics"], delays, stop), daemon=True),
    ]
    otlp_bucket, zipkin_bucket = Bucket(request_rate), Bucket(request_rate)
    # Bodies are built once and sent round robin with a fresh trace id spliced in (a bytes replace), so
    # the feeder's own CPU goes to sending.
    otlp_pool = [otlp_body(number) for number in range(POOL)]
    zipkin_pool = [zipkin_body(number) for number in range(POOL, 2 * POOL)]
    for _ in range(args.senders):
        threads.append(threading.Thread(target=post_loop, daemon=True, args=(
            "otlp", f"http://127.0.0.1:{ports['otlp']}/v1/traces", "application/x-protobuf", otlp_pool, otlp_bucket,
            fed, stop)))  # fmt: skip
        threads.append(threading.Thread(target=post_loop, daemon=True, args=(
            "zipkin", f"http://127.0.0.1:{ports['zipkin']}/api/v2/spans", "application/json", zipkin_pool,
            zipkin_bucket, fed, stop)))  # fmt: skip
    probe = ProcessProbe(process.pid)
    # glibc's per-thread malloc arenas hold freed memory: RSS creeps for many minutes without this set.
    print(f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')}")
    print(f"collector pid {process.pid}; offered {'flat out' if offered is None else f'{offered:,.0f} records/s'} "
          f"(half access-log lines, a quarter each OTLP/HTTP and Zipkin proxy spans) for {args.duration:.0f} s")  # fmt: skip
    header = (f"{'t/s':>5} {'RSS MiB':>8} {'CPU %':>6} {'in/s':>8} {'file/s':>7} {'otlp/s':>7} {'zipkin/s':>8} "
              f"{'queue':>7} {'backlog':>9} {'dropped (stage/reason: total)'}")  # fmt: skip
    print(header)
    for thread in threads:
        thread.start()
    started = time.monotonic()
    rows: list[tuple[float, float, float, float]] = []  # (t, rss, cpu%, records/s)
    last_t, last_cpu, last_received = started, probe.cpu_seconds(), {}
    samples: dict[tuple[str, str], float] = {}
    while time.monotonic() - started < args.duration:
        time.sleep(min(args.interval, max(0.0, args.duration - (time.monotonic() - started))))
        if process.poll() is not None:
            print(f"the collector died with exit code {process.returncode}")
            break
        now, cpu, rss = time.monotonic(), probe.cpu_seconds(), probe.rss_mib()
        try:
            samples = scrape(ports["metrics"])
        except OSError as error:
            print(f"scrape failed: {error}")
            continue
        received = labelled(samples, "meshscope_records_received_total", "receiver")
        seconds = now - last_t
        rates = {name: (value - last_received.get(name, 0.0)) / seconds for name, value in received.items()}
        total_rate = sum(rates.values())
        cpu_percent = 100 * (cpu - last_cpu) / seconds
        queue = labelled(samples, "meshscope_queue_depth", "stage").get("pipeline", 0.0)
        backlog = fed.lines - received.get("filelog", 0.0) + len(delays)
        dropped = ", ".join(f"{key}: {value:,.0f}" for key, value in sorted(drops(samples).items())) or "-"
        print(f"{now - started:5.0f} {rss:8.1f} {cpu_percent:6.0f} {total_rate:8,.0f} {rates.get('filelog', 0):7,.0f} "
              f"{rates.get('otlp_http', 0):7,.0f} {rates.get('zipkin', 0):8,.0f} {queue:7,.0f} {backlog:9,.0f} {dropped}",
              flush=True)  # fmt: skip
        rows.append((now - started, rss, cpu_percent, total_rate))
        last_t, last_cpu, last_received = now, cpu, received
    stop.set()
    for thread in threads:
        thread.join(60)
    summarise(args, rows, samples, fed, delays)


def summarise(args: argparse.Namespace, rows: list[tuple[float, float, float, float]],
              samples: dict[tuple[str, str], float], fed: Fed, delays: list[float]) -> None:  # fmt: skip
    if not rows:
        return
    span = 60.0 if rows[-1][0] >= 180 else rows[-1][0] / 3
    first = [rss for t, rss, _, _ in rows if t <= span]
    last = [rss for t, rss, _, _ in rows if t >= rows[-1][0] - span]
    received = labelled(samples, "meshscope_records_received_total", "receiver")
    print("\nsummary")
    print(f"  RSS: max {max(first):.1f} MiB over the first {span:.0f} s, max {max(last):.1f} MiB over the last "
          f"{span:.0f} s (peak {max(r[1] for r in rows):.1f} MiB)")  # fmt: skip
    print(f"  CPU: mean {statistics.mean(r[2] for r in rows):.0f}% of one core (the machine's 2 cores are shared)")
    print(f"  records accepted: mean {statistics.mean(r[3] for r in rows):,.0f}/s; in all "
          + ", ".join(f"{name} {value:,.0f}" for name, value in sorted(received.items())))  # fmt: skip
    print(f"  access-log lines written {fed.lines:,}; counted {received.get('filelog', 0) - len(delays):,.0f}")
    print(f"  requests answered: {dict(sorted(fed.statuses.items()))}")
    seconds = rows[-1][0]
    sent = {kind: sum(n for key, n in fed.statuses.items() if key.startswith(kind + " ")) * PROXY_SPANS / seconds
            for kind in ("otlp", "zipkin")}  # fmt: skip
    target = "flat out" if args.calibrate else f"{args.rated * args.factor:,.0f} records/s"
    print(
        f"  offered {target}; sent: lines {fed.lines / seconds:,.0f}/s, OTLP proxy spans {sent['otlp']:,.0f}/s, "
        f"Zipkin proxy spans {sent['zipkin']:,.0f}/s (senders wait for each answer, as SDK exporters do)"
    )
    print(f"  proxy spans in accepted requests {fed.proxy_spans_accepted:,}; counted "
          f"{received.get('otlp_http', 0) + received.get('zipkin', 0):,.0f}")  # fmt: skip
    for key, value in sorted(drops(samples).items()):
        print(f"  dropped {key}: {value:,.0f}")
    if delays:
        print(f"  line written -> count visible on /metrics: p50 {percentile(delays, 0.5):.2f} s, "
              f"p99 {percentile(delays, 0.99):.2f} s, max {max(delays):.2f} s over {len(delays)} probes")  # fmt: skip


# -- per-item sizes for the memory bound -----------------------------------------------------------------


def measured(build: object, count: int) -> float:
    """Bytes per item that ``build(count)`` keeps alive, by tracemalloc (the result is held until measured)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build(count)  # type: ignore[operator]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


def print_sizes(count: int = 50_000) -> None:
    """Bytes per queued Record, stored span, index entry and metric series, as the memory bound uses them."""
    from servicegraph.connector_metrics import ServiceGraphMetrics
    from servicegraph.spanpairs import SpanPairer, SpanPairingConfig
    from telemetry.envoy.parser import make_parser
    from telemetry.envoy.peers import PeerTable
    from telemetry.exporters.prometheus.istio_metrics import IstioMetrics
    from telemetry.model import Span as AppSpan
    from telemetry.model import Workload
    from telemetry.spans.correlation import RequestTraceIndex

    parser = make_parser("istio", Workload("productpage-v1", "default", "productpage", "v1"), PeerTable())

    def lines(n: int) -> list[str]:
        return [LINE.format(service="reviews", version="v2", code="200", number=i, request_id=f"{i:032x}").rstrip("\n")
                for i in range(n)]  # fmt: skip

    def records(n: int) -> list[object]:
        return [parser.parse(line) for line in lines(n)]

    sample_records = records(count)

    def app_spans(n: int) -> list[AppSpan]:
        return [AppSpan(trace_id=f"{i:032x}", span_id=f"{i:016x}", kind="client", service="reviews",
                        namespace="default", name="GET /items", start_ns=0, end_ns=9_000_000,
                        peer_service="ratings") for i in range(n)]  # fmt: skip

    def pairer(n: int) -> SpanPairer:
        store = SpanPairer(SpanPairingConfig(ttl=3600, max_items=n + 1), ServiceGraphMetrics())
        store.consume(app_spans(n))
        return store

    def index(n: int) -> RequestTraceIndex:
        trace_index = RequestTraceIndex(n + 1)
        for i in range(n):
            trace_index.remember(f"{i:08x}-3b3a-9c7e-a1a0-8ac8e1f0b9a2", f"{i:032x}")
        return trace_index

    def series(n: int) -> IstioMetrics:
        metrics = IstioMetrics(n + 2)
        metrics.consume([record._replace(path=f"/{i}", destination_service=f"svc-{i}.default.svc.cluster.local",
                                          destination_service_name=f"svc-{i}")
                         for i, record in enumerate(sample_records[:n])])  # fmt: skip
        return metrics

    print(f"per-item sizes (tracemalloc, {count:,} items each)")
    print(f"  Record from an Istio access-log line (distinct request ids and paths): {measured(records, count):,.0f} B")
    print(f"  application Span: {measured(app_spans, count):,.0f} B; stored in the span pairing store: "
          f"{measured(pairer, count):,.0f} B")  # fmt: skip
    print(f"  request-id -> trace-id index entry: {measured(index, count):,.0f} B")
    print(f"  Istio HTTP series (labels + histograms of duration, request and response bytes): "
          f"{measured(series, min(count, 10_000)):,.0f} B")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of feeding (default 600)")
    parser.add_argument("--rated", type=float, default=50_000.0,
                        help="the collector's rated rate on this machine, records/s of the mix (see --calibrate)")  # fmt: skip
    parser.add_argument("--factor", type=float, default=2.0, help="offered = factor x rated (default 2)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--senders", type=int, default=12, help="HTTP sender threads per span protocol (default 12)")
    parser.add_argument("--calibrate", action="store_true", help="feed flat out instead, to find the rated rate")
    parser.add_argument("--sizes", action="store_true", help="only print the per-item sizes the memory bound uses")
    args = parser.parse_args()
    if args.sizes:
        print_sizes()
    else:
        run(args)


if __name__ == "__main__":
    main()
