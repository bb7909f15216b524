"""OTLP over HTTP to a real HTTP server: protobuf (optionally gzipped) at /v1/traces, 503 retried, 400 given up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

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
        settings = {"enabled": True, "protocol": "http/protobuf", "batch_timeout": 0.01, "retry": capture.FAST_RETRY}
        exporter = create_exporter(OtlpConfig(**{**settings, **config}), stats, environ={})
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_batch_is_posted_as_protobuf_to_v1_traces_with_every_field_unchanged(
    make_exporter: MakeExporter, http_capture: Any, capture: ModuleType, compression: str
) -> None:
    stats = SelfStats()
    exporter = make_exporter(
        stats, endpoint=http_capture.url, compression=compression, headers={"Authorization": "Bearer t"}
    )
    sent = [capture.resource_spans(3), capture.resource_spans(2, first=3, service="reviews")]
    exporter.consume(sent)
    assert exporter.flush(10)
    (request,) = http_capture.captured.requests
    assert list(request.resource_spans) == sent
    assert http_capture.paths == ["/v1/traces"]
    headers = http_capture.captured.headers[0]
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["authorization"] == "Bearer t"
    assert headers.get("content-encoding") == ("gzip" if compression == "gzip" else None)
    assert stats.exported == {"otlp": 5}


def test_503_with_retry_after_is_retried_after_the_given_delay_then_delivered(
    make_exporter: MakeExporter, http_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    http_capture.captured.failures.append(capture.Failure(http_status=503, headers={"Retry-After": "1"}))
    # An hour of backoff: only the server's Retry-After can make the retry happen within the flush.
    retry = capture.RetryConfig(initial_backoff=3600, max_backoff=3600, max_elapsed=0)
    exporter = make_exporter(stats, endpoint=http_capture.url, retry=retry)
    exporter.consume([capture.resource_spans(6)])
    assert exporter.flush(15)
    assert http_capture.captured.attempts == 2
    assert stats.export_failures == {("otlp", "http_503"): 1}
    assert stats.exported == {"otlp": 6}
    assert len(http_capture.captured.span_ids()) == 6


def test_400_gives_up_at_once_and_is_counted(
    make_exporter: MakeExporter, http_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    http_capture.captured.failures.append(capture.Failure(http_status=400))
    exporter = make_exporter(stats, endpoint=http_capture.url)
    exporter.consume([capture.resource_spans(6)])
    assert exporter.flush(10)
    exporter.consume([capture.resource_spans(1, first=6)])
    assert exporter.flush(10)
    assert http_capture.captured.attempts == 2  # the 400 once, then the next batch; no retry
    assert stats.export_failures == {("otlp", "http_400"): 1, ("otlp", "gave_up"): 1}
    assert stats.dropped == {("exporter:otlp", "gave_up"): 6}
    assert stats.exported == {"otlp": 1}


def test_connection_refused_is_retried_until_the_server_listens(
    make_exporter: MakeExporter, capture: ModuleType
) -> None:
    stats = SelfStats()
    server = capture.HttpCapture()
    exporter = make_exporter(stats, endpoint=server.url, queue_size=1000, batch_size=100)
    for first in range(0, 900, 300):
        exporter.consume([capture.resource_spans(300, first=first)])
    wait_for(lambda: stats.export_failures.get(("otlp", "connection_error"), 0) >= 2, what="failed attempts")
    server.start()
    try:
        assert exporter.flush(20)
        assert sorted(server.captured.span_ids()) == [capture.span_id(n + 1) for n in range(900)]
        assert stats.dropped == {}
    finally:
        server.stop()
