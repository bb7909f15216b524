"""Trace exporters report whether their backend answers: unreachable with a one-line reason, reachable again
when it is back. Against real sockets: a closed port, then a real gRPC / HTTP server on that port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from telemetry.exporters.export_queue import ExportError, unreachable_why
from telemetry.exporters.otlp.config import OtlpConfig
from telemetry.exporters.otlp.factory import create_exporter as create_otlp
from telemetry.exporters.zipkin.config import ZipkinConfig
from telemetry.exporters.zipkin.factory import create_exporter as create_zipkin
from telemetry.selfmetrics import SelfStats, SelfStatsCollector
from telemetry.traces import TraceSink

from realparts import wait_for

MakeExporter = Callable[..., TraceSink]


@pytest.fixture
def make_exporter(capture: ModuleType) -> Iterator[MakeExporter]:
    made: list[TraceSink] = []

    def make(kind: str, stats: SelfStats, **config: Any) -> TraceSink:
        settings = {"enabled": True, "batch_timeout": 0.01, "retry": capture.FAST_RETRY, **config}
        if kind == "zipkin":
            exporter = create_zipkin(ZipkinConfig(**settings), stats, environ={})
        else:
            exporter = create_otlp(OtlpConfig(protocol=kind, **settings), stats, environ={})
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def dependency_up(stats: SelfStats, name: str) -> str:
    registry = CollectorRegistry()
    registry.register(SelfStatsCollector(stats))
    exposition = generate_latest(registry).decode()
    line = next(
        line for line in exposition.splitlines() if line.startswith(f'meshscope_dependency_up{{dependency="{name}"}}')
    )
    return line.rsplit(" ", 1)[1]


def test_an_otlp_grpc_exporter_to_a_closed_port_is_unreachable_until_a_backend_listens_there(
    make_exporter: MakeExporter, capture: ModuleType
) -> None:
    stats = SelfStats()
    server = capture.GrpcCapture()  # its port reserved, nothing listening yet
    exporter = make_exporter("grpc", stats, endpoint=server.endpoint)
    exporter.consume([capture.resource_spans(5)])
    detail, since = wait_for(lambda: stats.unreachable().get("otlp"), what="otlp reported unreachable")
    # What follows the status name is grpc-core's wording, which changes between releases.
    assert detail.startswith(f"{server.endpoint}: gRPC UNAVAILABLE")
    assert "\n" not in detail and len(detail) < 200 and "Traceback" not in detail
    assert since > 0 and dependency_up(stats, "otlp") == "0.0"
    server.start()
    try:
        assert exporter.flush(20)
        assert "otlp" not in stats.unreachable()
        assert dependency_up(stats, "otlp") == "1.0"
    finally:
        server.stop()


def test_a_zipkin_exporter_to_a_closed_port_says_connection_refused_then_recovers(
    make_exporter: MakeExporter, capture: ModuleType
) -> None:
    stats = SelfStats()
    server = capture.HttpCapture()
    exporter = make_exporter("zipkin", stats, endpoint=server.url)
    exporter.consume([capture.resource_spans(3)])
    detail, _ = wait_for(lambda: stats.unreachable().get("zipkin"), what="zipkin reported unreachable")
    assert detail == f"{server.url}/api/v2/spans: Connection refused"
    server.start()
    try:
        assert exporter.flush(20)
        assert stats.unreachable() == {} and len(server.captured.zipkin_spans()) == 3
    finally:
        server.stop()


def test_a_gateway_error_is_unreachable_but_a_busy_backend_is_not(
    make_exporter: MakeExporter, http_capture: Any, capture: ModuleType
) -> None:
    stats = SelfStats()
    captured = http_capture.captured
    captured.failures.extend([capture.Failure(http_status=503)] * 10_000)  # until the test has looked
    exporter = make_exporter("http/protobuf", stats, endpoint=http_capture.url)
    exporter.consume([capture.resource_spans(2)])
    detail, _ = wait_for(lambda: stats.unreachable().get("otlp"), what="otlp reported unreachable on 503")
    assert detail == f"{http_capture.url}/v1/traces: HTTP 503 Service Unavailable"
    with captured.lock:
        captured.failures.clear()
    assert exporter.flush(20) and stats.unreachable() == {}
    # 429 asks for less: the backend is there, so no banner, while the retries go on.
    captured.failures.extend([capture.Failure(http_status=429)] * 10_000)
    exporter.consume([capture.resource_spans(2, first=2)])
    wait_for(lambda: stats.export_failures.get(("otlp", "http_429"), 0) >= 2, what="429 answers")
    assert stats.unreachable() == {}
    with captured.lock:
        captured.failures.clear()
    assert exporter.flush(20) and stats.exported == {"otlp": 4}


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (ExportError("connection_error", True, detail="[Errno 111] Connection refused"), "Connection refused"),
        (ExportError("timeout", True, detail="timed out"), "no answer in time"),
        (ExportError("http_404", False, detail="Not Found b'<html>\\n...'"), "HTTP 404 Not Found"),
        (ExportError("grpc_unauthenticated", False, detail="bad token"), "gRPC UNAUTHENTICATED: bad token"),
        (
            ExportError(
                "grpc_unavailable",
                True,
                detail="failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:4317: "
                "Failed to connect to remote host: Connection refused",
            ),
            "gRPC UNAVAILABLE: ...",  # grpc-core's words after the status name are not ours to pin
        ),
        (ExportError("connection_error", True, detail="x\n" * 200), "x " * 79 + "x…"),
        (ExportError("http_400", False, detail="Bad Request"), None),
        (ExportError("http_429", True, detail="Too Many Requests"), None),
        (ExportError(f"grpc_{grpc.StatusCode.RESOURCE_EXHAUSTED.name.lower()}", True), None),
    ],
)
def test_the_reason_is_one_short_line_and_only_for_failures_that_are_not_answers(
    error: ExportError, why: str | None
) -> None:
    found = unreachable_why(error)
    if why is not None and why.endswith(": ..."):
        assert found is not None and found.startswith(why[:-3]) and "\n" not in found
        assert "ipv4:10.0.0.1" not in found  # the address is named by the caller already
    else:
        assert found == why
