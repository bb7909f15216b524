"""The collector under overload: a flood it cannot keep up with is refused in a way senders retry, and
nothing it accepted is lost.

A real in-process Collector (real receivers on free loopback ports, real pipeline, real Prometheus
exposition) with a tiny pipeline queue. Two test-only stand-ins are plugged in through the Collector's
own factory methods: a log sink that sleeps on every batch (so the pipeline overflows) and a trace
exporter that keeps every span it is handed (so every accepted span can be found). Clients are the real
ones: requests and urllib for OTLP/HTTP, a grpc stub for OTLP/gRPC, requests for Zipkin; an access-log
file grows meanwhile and is tailed.
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from prometheus_client.parser import text_string_to_metric_families
from traceharness import TraceHarness

from telemetry.collector import Collector
from telemetry.config import Config
from telemetry.confload import load_mapping
from telemetry.model import Record
from telemetry.pipeline import Sink
from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver as create_otlp
from telemetry.traces import TraceSink

FLOOD_SECONDS = 20.0  # the "a flood of concurrent requests for ~20 s"
PROXY_SPANS_PER_REQUEST = 20
APP_SPANS_PER_REQUEST = 5
SINK_DELAY = 0.1  # seconds per batch of at most BATCH_SIZE records: at most 640 records/s
QUEUE_SIZE = 256
BATCH_SIZE = 64
LOG_LINES = 2000
NODE_ID = "sidecar~10.244.0.9~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"
POD_DIR = "pods/default_reviews-v2-7bf8c9648f-xk2zq_4c1e2d3a-1111-2222-3333-444455556666/istio-proxy"
ISTIO_LINE = (
    '[2024-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 295 24 23 "-" '
    '"python-requests/2.31.0" "line-{number}" "reviews:9080" "10.244.0.12:9080" '
    "outbound|9080|v2|reviews.default.svc.cluster.local 10.244.0.9:43210 10.96.12.34:9080 "
    "10.244.0.9:50212 - default\n"
)


class SlowSink:
    """A log sink that cannot keep up: it sleeps on every batch, then counts it."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def consume(self, batch: Sequence[Record]) -> None:
        time.sleep(SINK_DELAY)
        with self._lock:
            self.count += len(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class CaptureExporter:
    """A trace exporter that keeps the id of every span handed to it."""

    def __init__(self) -> None:
        self.span_ids: Counter[bytes] = Counter()
        self._lock = threading.Lock()

    def consume(self, batch: Sequence[ResourceSpans]) -> None:
        ids = [span.span_id for resource in batch for scope in resource.scope_spans for span in scope.spans]
        with self._lock:
            self.span_ids.update(ids)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@dataclass
class Outcome:
    """What one client thread saw: per answer, the span ids sent; and anything that must not happen."""

    accepted: list[tuple[str, list[bytes]]] = field(default_factory=list)  # (receiver, span ids)
    refused: list[tuple[str, list[bytes]]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # 500s, resets, unexpected codes


_span_numbers = itertools.count(1)
_numbers_lock = threading.Lock()


def new_ids(count: int) -> list[bytes]:
    with _numbers_lock:
        return [next(_span_numbers).to_bytes(8, "big") for _ in range(count)]


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otlp_request(proxy_ids: list[bytes], app_ids: list[bytes]) -> trace_service_pb2.ExportTraceServiceRequest:
    """Envoy's proxy spans (they become Records, so they need the pipeline) and application spans."""
    trace_id = proxy_ids[0] * 2
    proxy = [
        Span(
            trace_id=trace_id,
            span_id=span_id,
            name="reviews.default.svc.cluster.local:9080/*",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=1_714_564_800_000_000_000,
            end_time_unix_nano=1_714_564_800_024_000_000,
            attributes=[
                _attribute("component", "proxy"),
                _attribute("node_id", NODE_ID),
                _attribute("upstream_cluster", "outbound|9080|v2|reviews.default.svc.cluster.local"),
                _attribute("http.method", "GET"),
                _attribute("http.url", "http://reviews:9080/reviews/0"),
                _attribute("http.status_code", "200"),
            ],
        )
        for span_id in proxy_ids
    ]
    app = [
        Span(
            trace_id=trace_id,
            span_id=span_id,
            name="SELECT ratings",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=1_714_564_800_000_000_000,
            end_time_unix_nano=1_714_564_800_003_000_000,
            attributes=[_attribute("db.system", "mysql")],
        )
        for span_id in app_ids
    ]
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_attribute("service.name", "productpage")]),
                scope_spans=[ScopeSpans(spans=proxy + app)],
            )
        ]
    )


def zipkin_body(proxy_ids: list[bytes], app_ids: list[bytes]) -> bytes:
    trace_id = (proxy_ids[0] * 2).hex()
    spans = [
        {
            "traceId": trace_id,
            "id": span_id.hex(),
            "kind": "CLIENT",
            "name": "reviews.default.svc.cluster.local:9080/*",
            "timestamp": 1_714_564_800_000_000,
            "duration": 24_000,
            "localEndpoint": {"serviceName": "productpage.default", "ipv4": "10.244.0.9"},
            "tags": {
                "component": "proxy",
                "node_id": NODE_ID,
                "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
                "http.method": "GET",
                "http.url": "http://reviews:9080/reviews/0",
                "http.status_code": "200",
            },
        }
        for span_id in proxy_ids
    ] + [
        {
            "traceId": trace_id,
            "id": span_id.hex(),
            "kind": "CLIENT",
            "name": "select ratings",
            "timestamp": 1_714_564_800_000_000,
            "duration": 3_000,
            "localEndpoint": {"serviceName": "ratings"},
            "tags": {"db.system": "mysql"},
        }
        for span_id in app_ids
    ]
    return orjson.dumps(spans)


def retry_delay(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay of a RESOURCE_EXHAUSTED answer, read from the google.rpc.Status details."""
    trailers = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    raw = trailers.get("grpc-status-details-bin")
    if raw is None:
        return None
    status = status_pb2.Status.FromString(raw)
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            alone = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
            assert alone == info  # the copy the OpenTelemetry Python SDK reads
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


Sender = Callable[[Outcome], None]


class Flood:
    def __init__(self, collector: Collector) -> None:
        otlp = collector.receiver("otlp")
        zipkin = collector.receiver("zipkin")
        self.http_url = f"http://127.0.0.1:{otlp.http_port}/v1/traces"  # type: ignore[union-attr]
        self.grpc_target = f"127.0.0.1:{otlp.grpc_port}"  # type: ignore[union-attr]
        self.zipkin_url = f"http://127.0.0.1:{zipkin.port}/api/v2/spans"  # type: ignore[union-attr]

    @staticmethod
    def _judge_http(outcome: Outcome, receiver: str, status: int, retry_after: str | None, ids: list[bytes]) -> None:
        outcome.statuses[f"{receiver} {status}"] += 1
        if status in (200, 202):
            outcome.accepted.append((receiver, ids))
        elif status in (429, 503):
            if not (retry_after and retry_after.isdigit()):
                outcome.failures.append(f"{receiver} {status} without Retry-After")
            outcome.refused.append((receiver, ids))
        else:
            outcome.failures.append(f"{receiver} answered {status}")

    def otlp_http_requests(self, outcome: Outcome) -> None:
        with requests.Session() as session:  # keep-alive, as SDK exporters send
            while not self.stop.is_set():
                proxy, app = new_ids(PROXY_SPANS_PER_REQUEST), new_ids(APP_SPANS_PER_REQUEST)
                body = otlp_request(proxy, app).SerializeToString()
                try:
                    answer = session.post(
                        self.http_url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
                    )
                except requests.RequestException as error:
                    outcome.failures.append(f"otlp_http: {error!r}")
                    continue
                if answer.status_code == 200:
                    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.content)
                    if response.partial_success.rejected_spans:
                        outcome.failures.append(f"otlp_http partial success: {response.partial_success}")
                self._judge_http(
                    outcome, "otlp_http", answer.status_code, answer.headers.get("Retry-After"), proxy + app
                )

    def otlp_http_urllib(self, outcome: Outcome) -> None:
        while not self.stop.is_set():
            proxy, app = new_ids(PROXY_SPANS_PER_REQUEST), new_ids(APP_SPANS_PER_REQUEST)
            request = urllib.request.Request(
                self.http_url,
                data=otlp_request(proxy, app).SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, retry_after = answer.status, answer.headers.get("Retry-After")
            except urllib.error.HTTPError as error:
                status, retry_after = error.code, error.headers.get("Retry-After")
            except OSError as error:
                outcome.failures.append(f"otlp_http (urllib): {error!r}")
                continue
            self._judge_http(outcome, "otlp_http", status, retry_after, proxy + app)

    def otlp_grpc(self, outcome: Outcome) -> None:
        with grpc.insecure_channel(self.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            while not self.stop.is_set():
                proxy, app = new_ids(PROXY_SPANS_PER_REQUEST), new_ids(APP_SPANS_PER_REQUEST)
                try:
                    stub.Export(otlp_request(proxy, app), timeout=30)
                except grpc.RpcError as error:
                    code = error.code()  # type: ignore[attr-defined]
                    outcome.statuses[f"otlp_grpc {code.name}"] += 1
                    if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        outcome.failures.append(f"otlp_grpc answered {code.name}: {error.details()}")  # type: ignore[attr-defined]
                    elif retry_delay(error) is None:
                        outcome.failures.append("otlp_grpc RESOURCE_EXHAUSTED without RetryInfo")
                    outcome.refused.append(("otlp_grpc", proxy + app))
                    continue
                outcome.statuses["otlp_grpc OK"] += 1
                outcome.accepted.append(("otlp_grpc", proxy + app))

    def zipkin_requests(self, outcome: Outcome) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                proxy, app = new_ids(PROXY_SPANS_PER_REQUEST), new_ids(APP_SPANS_PER_REQUEST)
                try:
                    answer = session.post(
                        self.zipkin_url,
                        data=zipkin_body(proxy, app),
                        headers={"Content-Type": "application/json"},
                        timeout=30,
                    )
                except requests.RequestException as error:
                    outcome.failures.append(f"zipkin: {error!r}")
                    continue
                self._judge_http(outcome, "zipkin", answer.status_code, answer.headers.get("Retry-After"), proxy + app)

    @staticmethod
    def _guarded(sender: Sender, outcome: Outcome) -> None:
        try:
            sender(outcome)
        except Exception as error:  # a client that died would otherwise only thin the flood
            outcome.failures.append(f"client thread died: {error!r}")

    def run(self, seconds: float, senders: list[tuple[Sender, int]]) -> Outcome:
        self.stop = threading.Event()
        outcomes: list[Outcome] = []
        threads = []
        for sender, count in senders:
            for _ in range(count):
                outcome = Outcome()
                outcomes.append(outcome)
                threads.append(threading.Thread(target=self._guarded, args=(sender, outcome), daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a client thread hung"
        total = Outcome()
        for outcome in outcomes:
            total.accepted += outcome.accepted
            total.refused += outcome.refused
            total.statuses += outcome.statuses
            total.failures += outcome.failures
        return total


def write_log_lines(path: Path, count: int, seconds: float) -> None:
    """Append ``count`` access-log lines to ``path`` spread over ``seconds``, in small writes."""
    chunk = 50
    pause = seconds / (count / chunk)
    with open(path, "a") as handle:
        for start in range(0, count, chunk):
            handle.write("".join(ISTIO_LINE.format(number=number) for number in range(start, start + chunk)))
            handle.flush()
            time.sleep(pause)


@pytest.fixture
def overloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Collector, SlowSink, CaptureExporter, Path]]:
    slow, capture = SlowSink(), CaptureExporter()

    def log_sinks(self: Collector) -> list[tuple[str, Sink]]:
        return [("slow", slow)]

    def trace_exporters(self: Collector) -> list[tuple[str, TraceSink]]:
        return [("capture", capture)]

    monkeypatch.setattr(Collector, "_log_sinks", log_sinks)
    monkeypatch.setattr(Collector, "_trace_exporters", trace_exporters)
    log_dir = tmp_path / POD_DIR
    log_dir.mkdir(parents=True)
    log_file = log_dir / "0.log"
    log_file.touch()
    config = load_mapping(
        Config,
        {
            "pipeline": {"queue_size": QUEUE_SIZE, "batch_size": BATCH_SIZE, "batch_timeout": 0.05},
            "receivers": {
                "filelog": {"include": [str(tmp_path / "pods/*/istio-proxy/*.log")], "format": "istio",
                            "poll_interval": 0.05},
                "als": {"enabled": False},
                "otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
                "zipkin": {"endpoint": "127.0.0.1:0"},
            },
            "exporters": {"prometheus": {"endpoint": "127.0.0.1:0"}},
            "graph": {"enabled": False},
        },
        {},
    )  # fmt: skip
    collector = Collector(config)
    collector.start()
    try:
        yield collector, slow, capture, log_file
    finally:
        collector.shutdown()


def scrape(collector: Collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert collector.metrics is not None
    body = requests.get(f"http://127.0.0.1:{collector.metrics.port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_flood_is_refused_retryably_and_every_accepted_span_and_line_is_accounted_for(
    overloaded: tuple[Collector, SlowSink, CaptureExporter, Path],
) -> None:
    collector, slow, capture, log_file = overloaded
    flood = Flood(collector)
    writer = threading.Thread(target=write_log_lines, args=(log_file, LOG_LINES, FLOOD_SECONDS / 2), daemon=True)
    writer.start()
    outcome = flood.run(
        FLOOD_SECONDS,
        [(flood.otlp_http_requests, 6), (flood.otlp_http_urllib, 4), (flood.otlp_grpc, 8), (flood.zipkin_requests, 8)],
    )
    writer.join(60)
    print(f"answers: {dict(outcome.statuses)}")  # shown with -s: how hard the flood pushed

    # Refused, never failed: no 500, no reset connection, no status outside 200/202/429/503 (gRPC OK /
    # RESOURCE_EXHAUSTED with RetryInfo), and every receiver both accepted and refused some.
    assert outcome.failures == []
    for expected in ("otlp_http 200", "otlp_http 503", "otlp_grpc OK", "otlp_grpc RESOURCE_EXHAUSTED",
                     "zipkin 202", "zipkin 503"):  # fmt: skip
        assert outcome.statuses[expected] > 0, outcome.statuses

    # The file fell behind while the pipeline was full and catches up: every line, once.
    deadline = time.monotonic() + 120
    while collector.stats.records_received.get("filelog", 0) < LOG_LINES and time.monotonic() < deadline:
        time.sleep(0.1)
    assert collector.pipeline.flush(timeout=60)
    stats = collector.stats
    assert stats.records_received.get("filelog") == LOG_LINES

    # Every span of an accepted request reached the exporter exactly once; none of a refused one did.
    accepted_ids = Counter(span_id for _, ids in outcome.accepted for span_id in ids)
    refused_ids = {span_id for _, ids in outcome.refused for span_id in ids}
    assert capture.span_ids == accepted_ids
    assert not refused_ids & set(capture.span_ids)

    # Accepted proxy spans were counted as received Records, refused ones as dropped (queue_full) only.
    per_receiver = Counter(receiver for receiver, _ in outcome.accepted)
    for receiver in ("otlp_http", "otlp_grpc", "zipkin"):
        assert stats.records_received.get(receiver) == per_receiver[receiver] * PROXY_SPANS_PER_REQUEST, receiver
    assert stats.dropped == {("pipeline", "queue_full"): len(outcome.refused) * PROXY_SPANS_PER_REQUEST}
    assert slow.count == stats.total_received()

    # The same accounts on /metrics, as Prometheus would read them.
    metrics = scrape(collector)
    for receiver, count in stats.records_received.items():
        assert metrics[("meshscope_records_received_total", (("receiver", receiver),))] == count
    assert (
        metrics[("meshscope_dropped_total", (("reason", "queue_full"), ("stage", "pipeline")))]
        == len(outcome.refused) * PROXY_SPANS_PER_REQUEST
    )
    requests_total = sum(value for (name, _), value in metrics.items() if name == "istio_requests_total")
    assert requests_total == stats.total_received()

    # Still serving once the flood is over: a request of each kind is accepted again.
    answer = requests.post(
        flood.http_url,
        data=otlp_request(new_ids(2), new_ids(1)).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    with grpc.insecure_channel(flood.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(otlp_request(new_ids(2), new_ids(1)), timeout=30)
    zipkin = requests.post(
        flood.zipkin_url,
        data=zipkin_body(new_ids(2), new_ids(1)),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert (answer.status_code, zipkin.status_code) == (200, 202)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_sdk_exporter_refused_by_a_full_pipeline_retries_and_is_delivered(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The answers to a full pipeline are ones the OpenTelemetry SDK's own exporters retry (503 with
    Retry-After; RESOURCE_EXHAUSTED with RetryInfo), so a refusal delays spans instead of losing them."""
    harness = TraceHarness.create(start_pipeline=False, queue_size=1)
    harness.pipeline.submit([Record()], "prefill")  # the queue is full until the worker starts
    config = OtlpConfig(grpc=OtlpGrpcConfig(endpoint="127.0.0.1:0"), http=OtlpHttpConfig(endpoint="127.0.0.1:0"))
    receiver = create_otlp(config, harness.ingest, harness.stats)
    receiver.start()
    exporter: SpanExporter = (
        HttpSpanExporter(endpoint=f"http://127.0.0.1:{receiver.http_port}/v1/traces", timeout=30)
        if transport == "http"
        else GrpcSpanExporter(endpoint=f"127.0.0.1:{receiver.grpc_port}", insecure=True, timeout=30)
    )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # exports (and retries) as the span ends

    def emit() -> None:
        with provider.get_tracer("overload").start_as_current_span("GET /ratings"):
            pass

    sender = threading.Thread(target=emit, daemon=True)
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while not harness.stats.dropped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert harness.stats.dropped == {("pipeline", "queue_full"): 1}  # the first attempt was refused
        harness.pipeline.start()
        sender.join(60)
        assert not sender.is_alive()
        assert harness.pipeline.flush(timeout=30)
        # Normalised twice (the refused attempt and the retry), delivered once.
        assert [span.name for span in harness.normaliser.spans()] == ["GET /ratings"] * 2
        assert harness.stats.records_received == {"prefill": 1, f"otlp_{transport}": 1}
        assert len(harness.sink.records) == 2
        if transport == "grpc":
            # The SDK waited the RetryInfo delay (its own backoff would be jittered, never exactly 1.00 s).
            assert "retrying in 1.00s" in caplog.text
    finally:
        provider.shutdown()
        receiver.shutdown()
        harness.close()
