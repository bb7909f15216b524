"""The simulated mesh behind ``meshscope demo``: requests at a steady rate, written as its proxies would.

Every proxy writes its Istio-format access log to its own pod-log file, except that with an ALS
endpoint ``details-v1`` streams its entries over Envoy's gRPC Access Log Service instead. With a
Zipkin endpoint the proxies also send their spans (Zipkin v2 JSON); with an OTLP endpoint productpage
and ratings send theirs (OTLP/HTTP), from a background thread (``span_clients.SpanEmitter``).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from telemetry.demo.als_client import AlsClient
from telemetry.demo.als_messages import http_entry, node_of, tcp_entry
from telemetry.demo.config import DemoConfig
from telemetry.demo.entries import EntryGenerator, LogEntry
from telemetry.demo.files import PodLogWriter
from telemetry.demo.span_clients import SpanEmitter
from telemetry.demo.topology import DETAILS, PODS, Pod
from telemetry.envoy.render import compile_renderer

ALS_POD: Pod = DETAILS


class SimulatedMesh:
    def __init__(
        self,
        config: DemoConfig,
        log_dir: Path,
        als_endpoint: str | None = None,
        *,
        fmt: str = "istio",
        zipkin_endpoint: str | None = None,
        otlp_endpoint: str | None = None,
    ) -> None:
        errors = config.validate()
        if errors:
            raise ValueError("invalid demo config: " + "; ".join(errors))
        self.config = config
        self.log_dir = Path(log_dir)
        self._render = compile_renderer(fmt)
        self._generator = EntryGenerator(config)
        self._writers = {pod.workload: PodLogWriter(self.log_dir, pod) for pod in PODS}
        self._als: AlsClient | None = None
        if als_endpoint is not None:
            self._als = AlsClient(
                als_endpoint,
                node_of(ALS_POD),
                batch_size=config.als_batch_size,
                flush_interval=config.als_flush_interval,
                queue_size=config.als_queue_size,
            )
            del self._writers[ALS_POD.workload]
        self._spans: SpanEmitter | None = None
        if zipkin_endpoint is not None or otlp_endpoint is not None:
            self._spans = SpanEmitter(
                zipkin_endpoint,
                otlp_endpoint,
                batch_size=config.span_batch_size,
                flush_interval=config.span_flush_interval,
                queue_size=config.span_queue_size,
            )
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False
        self._requests_sent = 0

    # -- counters -----------------------------------------------------------------------------------

    @property
    def requests_sent(self) -> int:
        return self._requests_sent

    @property
    def lines_written(self) -> dict[str, int]:
        """Per workload: lines written to its file (for the ALS workload: entries handed to the stream)."""
        counts = {workload: writer.lines_written for workload, writer in self._writers.items()}
        if self._als is not None:
            counts[ALS_POD.workload] = self._als.entries_sent
        return counts

    @property
    def log_files(self) -> dict[str, Path]:
        return {workload: writer.path for workload, writer in self._writers.items()}

    @property
    def als_client(self) -> AlsClient | None:
        return self._als

    @property
    def span_emitter(self) -> SpanEmitter | None:
        return self._spans

    # -- running ------------------------------------------------------------------------------------

    def emit(self, requests: int, now_ms: float | None = None) -> None:
        """Simulates ``requests`` gateway requests finishing by now (epoch ms) and writes their entries."""
        end = time.time() * 1000.0 if now_ms is None else now_ms
        spacing = 1000.0 / self.config.rate
        with self._lock:
            if self._shut_down:
                return
            by_pod: dict[str, list[LogEntry]] = defaultdict(list)
            spans = self._spans
            for index in range(requests):
                # A batch's requests finish at the configured rate, the last one now.
                at = end - (requests - 1 - index) * spacing
                entries = self._generator.request(at, finishing=True)
                for entry in entries:
                    by_pod[entry.pod.workload].append(entry)
                if spans is not None:
                    spans.submit(entries)
            self._requests_sent += requests
            render = self._render
            for workload, entries in by_pod.items():
                writer = self._writers.get(workload)
                if writer is not None:
                    writer.write([render(entry.fields) for entry in entries])
                elif self._als is not None:
                    self._als.submit([tcp_entry(e) if e.call.protocol == "tcp" else http_entry(e) for e in entries])

    def start(self) -> None:
        if self._thread is not None or self._shut_down:
            return
        if self._als is not None:
            self._als.start()
        if self._spans is not None:
            self._spans.start()
        self._thread = threading.Thread(target=self._run, name="simulated-mesh", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the configured duration has run out (or the mesh was shut down) within ``timeout``."""
        return self._finished.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stops the traffic, flushes and closes every file, closes the ALS stream. Idempotent."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            for writer in self._writers.values():
                writer.close()
        if self._als is not None:
            self._als.shutdown(timeout)
        if self._spans is not None:
            self._spans.shutdown(timeout)
        self._finished.set()

    def _run(self) -> None:
        rate = self.config.rate
        duration = self.config.duration
        started = time.monotonic()
        try:
            while True:
                elapsed = time.monotonic() - started
                if duration is not None:
                    elapsed = min(elapsed, duration)
                # Pacing by the total due so far keeps the long-run rate exact despite batching.
                due = int(elapsed * rate) - self._requests_sent
                if due > 0:
                    self.emit(due)
                if duration is not None and elapsed >= duration:
                    return
                if self._stopping.wait(self.config.batch_interval):
                    return
        finally:
            self._finished.set()
