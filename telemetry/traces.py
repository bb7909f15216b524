"""Where received spans go: unchanged to the trace exporters, and reduced to Records and Spans for the rest.

Every trace receiver (OTLP gRPC, OTLP HTTP, Zipkin) hands its decoded request to
``TraceIngest.accept``: OTLP ``ResourceSpans`` messages, or a ``SpanBatch`` that also carries the form
the request came in (OTLP protobuf bytes, Zipkin's decoded JSON) for a normaliser that reads that form
faster. The OTLP messages are handed to each trace exporter (each has its own bounded queue, so a slow
backend never slows ingestion; a Zipkin request is made OTLP only when there is an exporter); proxy
spans (Envoy's and Istio's) become Records for the metrics pipeline, as access-log lines do;
application spans become Spans for the service graph's client/server pairing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.model import Record, Span
from telemetry.pipeline import Pipeline
from telemetry.selfmetrics import SelfStats

log = logging.getLogger(__name__)

if not hasattr(trace_pb2, "ScopeSpans"):  # pragma: no cover - an install-order accident, not a code path
    raise ImportError(
        "opentelemetry/proto was overwritten by the old copy inside xds-protos; run "
        "'pip install --force-reinstall --no-deps opentelemetry-proto' (make install does this)"
    )


class SpanBatch(Protocol):
    """One request's spans as received; ``resource_spans`` is them as OTLP (made on first use if need be)."""

    @property
    def resource_spans(self) -> Sequence[ResourceSpans]: ...


class OtlpSpans:
    """OTLP ResourceSpans, with the protobuf bytes they were decoded from when there are any.

    ``body`` is an ExportTraceServiceRequest's (or TracesData's: the same field 1) serialised bytes;
    ``lean`` what ``spans.otlp_lean`` parsed of them, if anything. ``resource_spans`` None means: parse
    them from ``body`` on first use (bytes the receiver has already checked).
    """

    def __init__(self, resource_spans: Sequence[ResourceSpans] | None, body: bytes = b"", lean: Any = None) -> None:
        self._resource_spans = resource_spans
        self.body = body
        self.lean = lean
        self._lock = threading.Lock()

    @property
    def resource_spans(self) -> Sequence[ResourceSpans]:
        with self._lock:
            if self._resource_spans is None:
                self._resource_spans = ExportTraceServiceRequest.FromString(self.body).resource_spans
            return self._resource_spans


class TraceSink(Protocol):
    """A trace exporter: ``consume`` only enqueues (bounded, drops counted) and never blocks."""

    def consume(self, batch: Sequence[ResourceSpans]) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


class SpanSink(Protocol):
    def consume(self, batch: Sequence[Span]) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def shutdown(self) -> None: ...


@dataclass
class Normalised:
    records: list[Record]
    spans: list[Span]
    rejected: int = 0  # spans that could not be read (counted as parse errors here)
    error: str = ""  # why, for the OTLP partial-success message
    refused: bool = False  # the pipeline was full: the receiver should ask the sender to retry


Normaliser = Callable[[Sequence[ResourceSpans]], Normalised]
BatchNormaliser = Callable[[SpanBatch], Normalised]


class TraceIngest:
    def __init__(
        self,
        pipeline: Pipeline,
        stats: SelfStats,
        normalise: Normaliser,
        exporters: Sequence[tuple[str, TraceSink]] = (),
        span_sinks: Sequence[tuple[str, SpanSink]] = (),
    ) -> None:
        self._pipeline = pipeline
        self._stats = stats
        self._normalise = normalise
        # A normaliser that reads requests in the form they came in says so with normalise_batch.
        self._normalise_batch: BatchNormaliser | None = getattr(normalise, "normalise_batch", None)
        self._exporters = list(exporters)
        self._span_sinks = list(span_sinks)

    def accept(self, spans: Sequence[ResourceSpans] | SpanBatch, receiver: str) -> Normalised:
        """Route one request's spans; returns what was made of them (rejections for partial success).

        Admission comes first: when the pipeline refuses the request's Records the sender is told to
        retry, so nothing of this request may have gone to the exporters or span sinks yet (a retry
        would deliver it twice).
        """
        # Not isinstance(spans, SpanBatch): a runtime protocol check would read the property, making
        # OTLP of a Zipkin request that no exporter asked for.
        batch = OtlpSpans(spans) if isinstance(spans, Sequence) else spans
        if self._normalise_batch is not None:
            result = self._normalise_batch(batch)
        else:
            result = self._normalise(batch.resource_spans)
        if result.rejected:
            self._stats.parse_error(receiver, "bad_span", result.rejected)
        if result.records and not self._pipeline.submit(result.records, receiver, wait=0.5):
            result.refused = True
            return result
        for name, exporter in self._exporters:
            try:
                exporter.consume(batch.resource_spans)
            except Exception:
                log.exception("trace exporter %s failed to enqueue", name)
        for name, sink in self._span_sinks:
            try:
                sink.consume(result.spans)
            except Exception:
                log.exception("span sink %s failed", name)
        return result

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush and stop every exporter and span sink within one shared ``timeout``."""
        deadline = time.monotonic() + timeout
        for _, sink in [*self._span_sinks, *self._exporters]:
            sink.flush(max(0.0, deadline - time.monotonic()))
            sink.shutdown()
