"""OTLP over gRPC to a real TraceService: spans arrive unchanged, outages are ridden out, failures counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import grpc
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from telemetry.exporters.otlp.config import OtlpConfig
from telemetry.exporters.otlp.factory import create_exporter
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceSink

from realparts import wait_for

MakeExporter = Callable[..., TraceSink]


@pytest.fixture
def make_exporter(capture: ModuleType) -> Iterator[MakeExporter]:
    made: list[TraceSink] = []

    def make(stats: SelfStats, **config: Any) -> TraceSink:
        settings = {"enabled": True, "protocol": "grpc", "batch_timeout": 0.01, "retry": capture.FAST_RETRY, **config}
        exporter = create_exporter(OtlpConfig(**settings), stats, environ={})
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def test_batch_arrives_as_one_request_with_every_field_unchanged(
    make_exporter: MakeExporter, grpc_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    exporter = make_exporter(stats, endpoint=grpc_capture.endpoint, headers={"X-Tenant": "mesh-a"})
    sent = [capture.resource_spans(3), capture.resource_spans(2, first=3, service="reviews")]
    exporter.consume(sent)
    assert exporter.flush(10)
    (request,) = grpc_capture.captured.requests
    assert list(request.resource_spans) == sent
    assert grpc_capture.captured.headers[0]["x-tenant"] == "mesh-a"
    assert stats.exported == {"otlp": 5}


def test_spans_consumed_while_the_backend_is_down_are_all_delivered_when_it_comes_up(
    make_exporter: MakeExporter, capture: ModuleType
) -> None:
    stats = SelfStats()
    server = capture.GrpcCapture()  # a reserved port, nothing listening yet
    exporter = make_exporter(stats, endpoint=server.endpoint, queue_size=2000, batch_size=100)
    for first in range(0, 1500, 150):
        exporter.consume([capture.resource_spans(150, first=first)])
    wait_for(lambda: stats.export_failures.get(("otlp", "grpc_unavailable"), 0) >= 2, what="failed attempts")
    server.start()
    try:
        assert exporter.flush(20)
        assert sorted(server.captured.span_ids()) == [capture.span_id(n + 1) for n in range(1500)]
        assert stats.dropped == {}
        assert stats.exported == {"otlp": 1500}
    finally:
        server.stop()


def test_outage_beyond_the_queue_bound_drops_exactly_the_excess(
    make_exporter: MakeExporter, capture: ModuleType
) -> None:
    stats = SelfStats()
    server = capture.GrpcCapture()
    exporter = make_exporter(stats, endpoint=server.endpoint, queue_size=1000, batch_size=100)
    for first in range(0, 1500, 150):
        exporter.consume([capture.resource_spans(150, first=first)])
    server.start()
    try:
        assert exporter.flush(20)
        assert stats.dropped == {("exporter:otlp", "queue_full"): 500}
        delivered = server.captured.span_ids()
        assert len(delivered) == len(set(delivered)) == 1000
        assert capture.span_id(1500) in delivered  # the newest span was kept
    finally:
        server.stop()


def test_resource_exhausted_with_retry_info_is_retried_after_the_given_delay(
    make_exporter: MakeExporter, grpc_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    grpc_capture.captured.failures.append(
        capture.Failure(grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay=0.05)
    )
    # An hour of backoff: only the server's RetryInfo can make the retry happen within the flush.
    retry = capture.RetryConfig(initial_backoff=3600, max_backoff=3600, max_elapsed=0)
    exporter = make_exporter(stats, endpoint=grpc_capture.endpoint, retry=retry)
    exporter.consume([capture.resource_spans(4)])
    assert exporter.flush(10)
    assert stats.export_failures == {("otlp", "grpc_resource_exhausted"): 1}
    assert stats.exported == {"otlp": 4}


def test_invalid_argument_gives_up_at_once_and_is_counted(
    make_exporter: MakeExporter, grpc_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    grpc_capture.captured.failures.append(capture.Failure(grpc_code=grpc.StatusCode.INVALID_ARGUMENT))
    exporter = make_exporter(stats, endpoint=grpc_capture.endpoint)
    exporter.consume([capture.resource_spans(4)])
    assert exporter.flush(10)
    assert grpc_capture.captured.attempts == 1
    assert stats.export_failures == {("otlp", "grpc_invalid_argument"): 1, ("otlp", "gave_up"): 1}
    assert stats.dropped == {("exporter:otlp", "gave_up"): 4}


def test_gzip_compressed_export_over_an_http_scheme_endpoint_arrives_unchanged(
    make_exporter: MakeExporter, grpc_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    exporter = make_exporter(stats, endpoint=f"http://{grpc_capture.endpoint}", compression="gzip")
    sent: list[ResourceSpans] = [capture.resource_spans(20)]
    exporter.consume(sent)
    assert exporter.flush(10)
    # grpc decompresses before the servicer sees the message (the encoding is not in its metadata).
    assert list(grpc_capture.captured.requests[0].resource_spans) == sent


def test_message_split_across_batches_keeps_resource_scope_and_spans(
    make_exporter: MakeExporter, grpc_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    exporter = make_exporter(stats, endpoint=grpc_capture.endpoint, batch_size=4, queue_size=100)
    sent = capture.resource_spans(10)
    exporter.consume([sent])
    assert exporter.flush(10)
    requests = grpc_capture.captured.requests
    assert len(requests) == 3
    received = []
    for request in requests:
        (resource_spans,) = request.resource_spans
        assert resource_spans.resource == sent.resource and resource_spans.schema_url == sent.schema_url
        (scope_spans,) = resource_spans.scope_spans
        assert scope_spans.scope == sent.scope_spans[0].scope
        assert scope_spans.schema_url == sent.scope_spans[0].schema_url
        received.extend(scope_spans.spans)
    assert received == list(sent.scope_spans[0].spans)
