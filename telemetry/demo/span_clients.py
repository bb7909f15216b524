"""Sending the simulated mesh's spans: Zipkin v2 JSON from its proxies, OTLP from two of its apps.

``SpanEmitter`` takes one request's log entries at a time (``submit`` never blocks: a full queue
drops the request, counted) and, on its own thread, turns them into spans (``demo.spans``): the
proxies' Zipkin spans are POSTed in batches to ``/api/v2/spans`` as Envoy's Zipkin tracer does; the
apps' spans are recorded through the real OpenTelemetry SDK (a TracerProvider per app, a
BatchSpanProcessor, the OTLP/HTTP exporter), with ids planned by ``demo.spans`` so that they are
consistent with the proxies' spans and the access logs. Failures are counted, never raised.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from telemetry.demo.entries import LogEntry
from telemetry.demo.spans import TRACED_APPS, AppSpan, calls_of, request_spans
from telemetry.demo.topology import PODS, Pod

log = logging.getLogger(__name__)

ZIPKIN_PATH = "/api/v2/spans"
OTLP_TRACES_PATH = "/v1/traces"
_POLL = 0.05
_KINDS = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT}


def endpoint_url(endpoint: str, default_path: str) -> str:
    """``127.0.0.1:9411`` or ``http://127.0.0.1:9411`` -> ``http://127.0.0.1:9411/api/v2/spans``; a URL with a path is kept."""
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        url = urlunsplit(parts._replace(path=default_path))
    return url


class ZipkinSender:
    """POSTs lists of Zipkin v2 spans as JSON; one attempt per batch, failures counted."""

    def __init__(self, endpoint: str, timeout: float = 2.0) -> None:
        self.url = endpoint_url(endpoint, ZIPKIN_PATH)
        self._timeout = timeout
        self.spans_sent = 0
        self.posts = 0
        self.failures = 0  # batches the collector did not accept (or could not be reached for)
        self.spans_failed = 0

    def send(self, spans: Sequence[dict[str, Any]]) -> bool:
        request = urllib.request.Request(
            self.url, data=orjson.dumps(list(spans)), headers={"Content-Type": "application/json"}, method="POST"
        )
        self.posts += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            self.failures += 1
            self.spans_failed += len(spans)
            log.debug("zipkin POST to %s failed: %s", self.url, error)
            return False
        self.spans_sent += len(spans)
        return True


class _PlannedIds(IdGenerator):
    """Span ids chosen by the caller for the next span started (random otherwise); one thread uses it."""

    def __init__(self) -> None:
        self.next_span_id = 0

    def generate_span_id(self) -> int:
        span_id, self.next_span_id = self.next_span_id, 0
        return span_id or random.getrandbits(64)

    def generate_trace_id(self) -> int:
        return random.getrandbits(128)


class _CountingExporter(SpanExporter):
    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self.spans_exported = 0
        self.failures = 0  # export calls that failed
        self.spans_failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:
            log.debug("OTLP export failed", exc_info=True)
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.spans_exported += len(spans)
        else:
            self.failures += 1
            self.spans_failed += len(spans)
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class OtlpApps:
    """The traced apps' OpenTelemetry SDKs: one TracerProvider each, exporting OTLP over HTTP."""

    def __init__(
        self,
        endpoint: str,
        apps: frozenset[str] = TRACED_APPS,
        *,
        flush_interval: float = 0.2,
        queue_size: int = 10_000,
        timeout: float = 2.0,
    ) -> None:
        self.url = endpoint_url(endpoint, OTLP_TRACES_PATH)
        self._ids = _PlannedIds()
        self._exporters: list[_CountingExporter] = []
        self._providers: dict[str, TracerProvider] = {}
        self._tracers: dict[str, trace.Tracer] = {}
        for app in sorted(apps):
            pod = _pod_of(app)
            exporter = _CountingExporter(OTLPSpanExporter(endpoint=self.url, timeout=timeout))
            provider = TracerProvider(
                resource=Resource.create(
                    {
                        "service.name": pod.app,
                        "service.version": pod.version,
                        "service.namespace": pod.namespace,
                        "k8s.namespace.name": pod.namespace,
                        "k8s.pod.name": pod.pod_name,
                        "k8s.deployment.name": pod.workload,
                    }
                ),
                id_generator=self._ids,
                shutdown_on_exit=False,
            )
            provider.add_span_processor(
                BatchSpanProcessor(
                    exporter,
                    max_queue_size=queue_size,
                    schedule_delay_millis=flush_interval * 1000,
                    export_timeout_millis=timeout * 1000,
                )
            )
            self._exporters.append(exporter)
            self._providers[app] = provider
            self._tracers[app] = provider.get_tracer("meshscope.demo." + app)
        self.spans_recorded = 0

    @property
    def spans_exported(self) -> int:
        return sum(exporter.spans_exported for exporter in self._exporters)

    @property
    def failures(self) -> int:
        return sum(exporter.failures for exporter in self._exporters)

    @property
    def spans_failed(self) -> int:
        return sum(exporter.spans_failed for exporter in self._exporters)

    def record(self, spans: Sequence[AppSpan]) -> None:
        """Records each span with its planned ids and times; the SDK batches and exports them."""
        for planned in spans:
            tracer = self._tracers.get(planned.app)
            if tracer is None:
                continue
            parent = SpanContext(
                trace_id=int(planned.trace_id, 16),
                span_id=int(planned.parent_span_id, 16),
                is_remote=planned.kind == "server",  # a server span's parent is the caller's
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            self._ids.next_span_id = int(planned.span_id, 16)
            span = tracer.start_span(
                planned.name,
                context=trace.set_span_in_context(NonRecordingSpan(parent)),
                kind=_KINDS[planned.kind],
                attributes=planned.attributes,
                start_time=planned.start_ns,
            )
            if planned.error:
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=planned.end_ns)
            self.spans_recorded += 1

    def shutdown(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for provider in self._providers.values():
            provider.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000))
            provider.shutdown()


def _pod_of(app: str) -> Pod:
    for pod in PODS:
        if pod.app == app:
            return pod
    raise ValueError(f"no pod of app {app!r} in the demo mesh")


class SpanEmitter:
    """Requests in (``submit``, non-blocking), spans out to Zipkin and/or OTLP from one thread."""

    def __init__(
        self,
        zipkin_endpoint: str | None = None,
        otlp_endpoint: str | None = None,
        *,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        queue_size: int = 10_000,
        timeout: float = 2.0,
    ) -> None:
        self.zipkin = ZipkinSender(zipkin_endpoint, timeout) if zipkin_endpoint is not None else None
        self.otlp = (
            OtlpApps(otlp_endpoint, flush_interval=flush_interval, queue_size=queue_size, timeout=timeout)
            if otlp_endpoint is not None
            else None
        )
        self._traced_apps = TRACED_APPS if self.otlp is not None else frozenset()
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue: queue.Queue[list[LogEntry]] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False
        self.requests_dropped = 0  # the queue was full, or still queued at shutdown

    def submit(self, entries: list[LogEntry]) -> None:
        """One request's entries (all sharing one request); never blocks."""
        try:
            self._queue.put_nowait(entries)
        except queue.Full:
            self.requests_dropped += 1

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="demo-span-emitter", daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Sends what is queued (for at most ``timeout`` s), then flushes and stops the SDKs. Idempotent."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        elif not self._shut_down and not self._queue.empty():
            self._run()  # never started: what was submitted is still sent, here
        if self._shut_down:
            return
        self._shut_down = True
        self.requests_dropped += self._queue.qsize()
        if self.otlp is not None:
            self.otlp.shutdown(max(0.5, deadline - time.monotonic()))

    def _run(self) -> None:
        zipkin, otlp = self.zipkin, self.otlp
        pending: list[dict[str, Any]] = []
        first_pending = 0.0
        while True:
            try:
                entries = self._queue.get(timeout=_POLL)
            except queue.Empty:
                entries = None
                if self._stopping.is_set():
                    break
            if entries is not None:
                spans = request_spans(calls_of(entries), self._traced_apps)
                if zipkin is not None and spans.zipkin:
                    if not pending:
                        first_pending = time.monotonic()
                    pending.extend(spans.zipkin)
                if otlp is not None and spans.app:
                    try:
                        otlp.record(spans.app)
                    except Exception:
                        log.exception("recording demo app spans failed")
            if pending and (
                len(pending) >= self._batch_size or time.monotonic() - first_pending >= self._flush_interval
            ):
                assert zipkin is not None
                zipkin.send(pending)
                pending = []
        if pending:
            assert zipkin is not None
            zipkin.send(pending)
