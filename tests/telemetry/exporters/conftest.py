"""Capture servers for the trace exporters (a real gRPC TraceService, a real HTTP server) and span builders.

Each server decodes what it receives with opentelemetry-proto (or orjson for Zipkin) and can be told
to answer the next requests with failures, so retry and give-up paths run against real sockets.
"""

from __future__ import annotations

import gzip
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from telemetry.exporters.export_queue import RetryConfig

from realparts import free_port, start_serving, stop_serving

# Small backoffs keep outage tests short; max_elapsed 0 retries for as long as a test needs.
FAST_RETRY = RetryConfig(initial_backoff=0.02, max_backoff=0.1, max_elapsed=0)


def kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in value.items()]))
    return AnyValue(string_value=value)


def span_id(number: int) -> bytes:
    return number.to_bytes(8, "big")


def trace_id(number: int) -> bytes:
    return (0xABCDEF << 64 | number).to_bytes(16, "big")


def rich_span(number: int) -> Span:
    """A span using every field the exporters must carry unchanged."""
    start = 1_714_564_800_123_456_789 + number * 1000
    return Span(
        trace_id=trace_id(number // 4),
        span_id=span_id(number + 1),
        parent_span_id=span_id(number) if number % 4 else b"",
        trace_state="vendor=value",
        flags=0x101,
        name=f"GET /reviews/{number}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 25_000_000,
        attributes=[
            kv("http.request.method", "GET"),
            kv("http.response.status_code", 503),
            kv("retry", True),
            kv("ratio", 0.25),
            kv("payload", b"\x00\xff"),
            kv("tags", ["a", "b"]),
            kv("nested", {"k": "v", "n": 1}),
            kv("peer.service", "reviews"),
        ],
        dropped_attributes_count=2,
        events=[
            Span.Event(time_unix_nano=start + 1000, name="retry", attributes=[kv("attempt", 2)]),
            Span.Event(time_unix_nano=start + 2000, name="done"),
        ],
        dropped_events_count=1,
        links=[
            Span.Link(
                trace_id=trace_id(999),
                span_id=span_id(999),
                trace_state="other=1",
                attributes=[kv("link.kind", "follows")],
                flags=0x100,
            )
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream reset"),
    )


def resource_spans(count: int, first: int = 0, service: str = "productpage") -> ResourceSpans:
    return ResourceSpans(
        resource=Resource(attributes=[kv("service.name", service), kv("k8s.namespace.name", "default")]),
        scope_spans=[
            ScopeSpans(
                scope=InstrumentationScope(name="envoy", version="1.30"),
                spans=[rich_span(number) for number in range(first, first + count)],
                schema_url="https://opentelemetry.io/schemas/1.24.0",
            )
        ],
        schema_url="https://opentelemetry.io/schemas/1.24.0",
    )


@dataclass
class Failure:
    """How the capture server answers one request instead of accepting it."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    retry_delay: float | None = None  # gRPC RetryInfo
    http_status: int = 503
    headers: dict[str, str] = field(default_factory=dict)


class Captured:
    """What a capture server received, for tests to poll."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.zipkin_batches: list[list[dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.failures: deque[Failure] = deque()

    def next_failure(self) -> Failure | None:
        with self.lock:
            self.attempts += 1
            return self.failures.popleft() if self.failures else None

    def span_ids(self) -> list[bytes]:
        with self.lock:
            return [
                span.span_id
                for request in self.requests
                for rs in request.resource_spans
                for ss in rs.scope_spans
                for span in ss.spans
            ]

    def zipkin_spans(self) -> list[dict[str, Any]]:
        with self.lock:
            return [span for batch in self.zipkin_batches for span in batch]


class GrpcCapture(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, port: int = 0) -> None:
        self.captured = Captured()
        self.port = port or free_port()
        self._server: grpc.Server | None = None

    def start(self) -> GrpcCapture:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def Export(  # noqa: N802 - the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        failure = self.captured.next_failure()
        if failure is not None:
            if failure.retry_delay is not None:
                delay = Duration()
                delay.FromNanoseconds(int(failure.retry_delay * 1e9))
                detail = AnyMessage()
                detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
                status = status_pb2.Status(code=failure.grpc_code.value[0], message="busy", details=[detail])
                context.set_trailing_metadata([("grpc-status-details-bin", status.SerializeToString())])
            context.abort(failure.grpc_code, "scripted failure")
        with self.captured.lock:
            self.captured.requests.append(request)
            self.captured.headers.append(dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


class HttpCapture:
    """Answers OTLP protobuf posts (``/v1/traces``) and Zipkin JSON ones (``/api/v2/spans``), told apart by type."""

    def __init__(self, port: int = 0) -> None:
        self.captured = Captured()
        self.port = port or free_port()
        self.paths: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> HttpCapture:
        captured = self.captured
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                failure = captured.next_failure()
                if failure is not None:
                    self.send_response(failure.http_status)
                    for name, value in failure.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                otlp = self.headers.get("Content-Type") == "application/x-protobuf"
                with captured.lock:
                    paths.append(self.path)
                    captured.headers.append({k.lower(): v for k, v in self.headers.items()})
                    if otlp:
                        captured.requests.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                    else:
                        captured.zipkin_batches.append(orjson.loads(body))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if otlp else 202)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = start_serving(Handler, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_serving(self._server)
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def grpc_capture() -> Iterator[GrpcCapture]:
    server = GrpcCapture().start()
    yield server
    server.stop()


@pytest.fixture
def http_capture() -> Iterator[HttpCapture]:
    server = HttpCapture().start()
    yield server
    server.stop()


@pytest.fixture
def capture() -> ModuleType:
    """These builders and servers, for tests (conftest modules cannot be imported by name under importlib mode)."""
    return sys.modules[__name__]
