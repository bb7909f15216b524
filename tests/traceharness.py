"""A real TraceIngest and a real Pipeline for trace receiver tests; only the normaliser is the test's.

The normaliser keeps a copy of every ResourceSpans it is given and turns each span into one Record,
so that the pipeline (and its refusal when full) is exercised as the real normaliser will.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.selfmetrics import SelfStats
from telemetry.spans.normalize import SpanNormaliser
from telemetry.traces import Normalised, TraceIngest


class RecordingNormaliser:
    def __init__(self) -> None:
        self.received: list[ResourceSpans] = []
        self.reject = 0  # spans to report as rejected on every call
        self.error = ""
        self._lock = threading.Lock()

    def __call__(self, resource_spans: Sequence[ResourceSpans]) -> Normalised:
        copies = [ResourceSpans.FromString(item.SerializeToString()) for item in resource_spans]
        with self._lock:
            self.received.extend(copies)
        records = [
            Record(trace_id=span.trace_id.hex(), span_id=span.span_id.hex())
            for item in copies
            for scope in item.scope_spans
            for span in scope.spans
        ]
        return Normalised(records, [], rejected=self.reject, error=self.error)

    def spans(self) -> list[Span]:
        with self._lock:
            return [span for item in self.received for scope in item.scope_spans for span in scope.spans]

    def span_named(self, name: str) -> Span:
        matches = [span for span in self.spans() if span.name == name]
        assert len(matches) == 1, [span.name for span in self.spans()]
        return matches[0]

    def resource_of(self, span_id: bytes) -> dict[str, object]:
        with self._lock:
            for item in self.received:
                for scope in item.scope_spans:
                    if any(span.span_id == span_id for span in scope.spans):
                        return attributes(item.resource.attributes)
        raise AssertionError(f"no span {span_id.hex()}")


class RecordingExporter:
    """A trace exporter that keeps each batch it is given, serialised (what the wire would carry)."""

    def __init__(self) -> None:
        self.requests: list[list[bytes]] = []

    def consume(self, batch: Sequence[ResourceSpans]) -> None:
        self.requests.append([item.SerializeToString() for item in batch])

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class CountingSink:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def consume(self, batch: Sequence[Record]) -> None:
        self.records.extend(batch)

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@dataclass
class TraceHarness:
    stats: SelfStats
    normaliser: RecordingNormaliser
    sink: CountingSink
    pipeline: Pipeline
    ingest: TraceIngest

    @classmethod
    def create(cls, start_pipeline: bool = True, queue_size: int = 100_000) -> TraceHarness:
        stats = SelfStats()
        normaliser = RecordingNormaliser()
        sink = CountingSink()
        pipeline = Pipeline([("count", sink)], stats, queue_size=queue_size, batch_size=1000, batch_timeout=0.01)
        if start_pipeline:
            pipeline.start()
        return cls(stats, normaliser, sink, pipeline, TraceIngest(pipeline, stats, normalise=normaliser))

    def close(self) -> None:
        self.pipeline.shutdown(timeout=5)


@dataclass
class NormalisingIngest:
    """The collector's own span path: the real SpanNormaliser, a pipeline counting Records, and an
    exporter recording what it is sent."""

    stats: SelfStats
    pipeline: Pipeline
    sink: CountingSink
    exporter: RecordingExporter
    ingest: TraceIngest

    @classmethod
    def start(cls) -> NormalisingIngest:
        stats = SelfStats()
        sink = CountingSink()
        pipeline = Pipeline([("count", sink)], stats, batch_timeout=0.01)
        pipeline.start()
        exporter = RecordingExporter()
        ingest = TraceIngest(pipeline, stats, normalise=SpanNormaliser(PeerTable()), exporters=[("capture", exporter)])
        return cls(stats, pipeline, sink, exporter, ingest)

    def close(self) -> None:
        self.pipeline.shutdown(timeout=5)


def any_value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(items: Sequence[KeyValue]) -> dict[str, object]:
    return {item.key: any_value(item.value) for item in items}


@dataclass
class SampleTrace:
    """What ``emit_sample_trace`` sent: a SERVER span with an event and ERROR status, its CLIENT child
    with a link to another trace."""

    server: SpanContext
    client: SpanContext
    linked: SpanContext


def emit_sample_trace(exporter: SpanExporter) -> SampleTrace:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "k8s.namespace.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("meshscope.tests", "1.2")
    linked = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    attributes = {"http.request.method": "GET", "http.response.status_code": 500, "retry": True, "ratio": 0.5}
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER, attributes=attributes) as server:
        server.add_event("cache miss", {"cache.key": "cart:42"})
        with tracer.start_as_current_span(
            "SELECT carts", kind=SpanKind.CLIENT, links=[Link(linked, {"link.kind": "follows"})]
        ) as client:
            client.set_attribute("db.system", "postgresql")
        server.set_status(Status(StatusCode.ERROR, "upstream failed"))
    provider.shutdown()
    return SampleTrace(server.get_span_context(), client.get_span_context(), linked)


def check_otlp_sample_trace(normaliser: RecordingNormaliser, sent: SampleTrace) -> None:
    """Everything the SDK put into the sample trace arrived at the normaliser unchanged."""
    server = normaliser.span_named("GET /cart")
    client = normaliser.span_named("SELECT carts")
    assert server.trace_id == sent.server.trace_id.to_bytes(16, "big")
    assert server.span_id == sent.server.span_id.to_bytes(8, "big")
    assert client.trace_id == server.trace_id
    assert client.parent_span_id == server.span_id
    assert (server.kind, client.kind) == (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT)
    assert attributes(server.attributes) == {
        "http.request.method": "GET",
        "http.response.status_code": 500,
        "retry": True,
        "ratio": 0.5,
    }
    assert attributes(client.attributes) == {"db.system": "postgresql"}
    assert [(event.name, attributes(event.attributes)) for event in server.events] == [
        ("cache miss", {"cache.key": "cart:42"})
    ]
    assert server.status.code == server.status.STATUS_CODE_ERROR
    assert server.status.message == "upstream failed"
    (link,) = client.links
    assert link.trace_id == sent.linked.trace_id.to_bytes(16, "big")
    assert link.span_id == sent.linked.span_id.to_bytes(8, "big")
    assert attributes(link.attributes) == {"link.kind": "follows"}
    assert server.end_time_unix_nano >= server.start_time_unix_nano > 0
    resource = normaliser.resource_of(server.span_id)
    assert resource["service.name"] == "checkout"
    assert resource["k8s.namespace.name"] == "shop"
