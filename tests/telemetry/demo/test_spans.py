from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from telemetry.demo import PODS, DemoConfig, EntryGenerator, SimulatedMesh, pod_log_path
from telemetry.demo.span_clients import SpanEmitter, endpoint_url
from telemetry.demo.spans import calls_of, derived_span_id, request_spans
from telemetry.envoy.peers import PeerTable
from telemetry.spans.from_zipkin import resource_spans_from_json
from telemetry.spans.normalize import SpanNormaliser

from realparts import serving

NOW_MS = 1_704_067_260_000.0
REQUESTS = 40


class _Bodies:
    def __init__(self) -> None:
        self.by_path: dict[str, list[tuple[str, bytes]]] = {}
        self.lock = threading.Lock()

    def add(self, path: str, content_type: str, body: bytes) -> None:
        with self.lock:
            self.by_path.setdefault(path, []).append((content_type, body))

    def of(self, path: str) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.by_path.get(path, []))


def _handler(bodies: _Bodies) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            bodies.add(self.path, self.headers.get("Content-Type", ""), body)
            if self.path == "/v1/traces":
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
            else:
                reply = b""
                self.send_response(202)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[str, _Bodies]]:
    """A tiny HTTP server standing in for the collector's Zipkin and OTLP/HTTP receivers."""
    bodies = _Bodies()
    with serving(_handler(bodies)) as server:
        yield f"127.0.0.1:{server.server_address[1]}", bodies


def _run_mesh(tmp_path: Path, address: str, *, zipkin: bool = True, otlp: bool = True) -> SimulatedMesh:
    mesh = SimulatedMesh(
        DemoConfig(),
        tmp_path / "pods",
        zipkin_endpoint=f"http://{address}/api/v2/spans" if zipkin else None,
        otlp_endpoint=f"http://{address}/v1/traces" if otlp else None,
    )
    mesh.emit(REQUESTS, now_ms=NOW_MS)
    mesh.shutdown()
    return mesh


def _expected_ids() -> dict[str, str]:
    """request id -> trace id of the mesh's requests: the same seed simulates the same requests."""
    generator = EntryGenerator(DemoConfig())
    ids = {}
    for _ in range(REQUESTS):
        request = generator.request(NOW_MS, finishing=True)[0].call.request
        ids[request.request_id] = request.trace_id
    return ids


def _zipkin_spans(bodies: _Bodies) -> list[dict[str, object]]:
    posts = bodies.of("/api/v2/spans")
    assert posts and all(content_type == "application/json" for content_type, _ in posts)
    return [span for _, body in posts for span in orjson.loads(body)]


def _otlp_requests(bodies: _Bodies) -> list[ExportTraceServiceRequest]:
    posts = bodies.of("/v1/traces")
    assert posts and all(content_type == "application/x-protobuf" for content_type, _ in posts)
    return [ExportTraceServiceRequest.FromString(body) for _, body in posts]


def test_proxies_post_zipkin_v2_json_with_the_access_logs_request_and_trace_ids(tmp_path, receiver) -> None:
    address, bodies = receiver
    mesh = _run_mesh(tmp_path, address, otlp=False)

    spans = _zipkin_spans(bodies)
    expected = _expected_ids()
    assert {span["tags"]["guid:x-request-id"] for span in spans} == set(expected)
    for span in spans:
        assert span["traceId"] == expected[span["tags"]["guid:x-request-id"]]
        assert span["kind"] in ("CLIENT", "SERVER") and span["tags"]["component"] == "proxy"
        assert len(span["id"]) == 16 and span["duration"] > 0 and span["timestamp"] > 0
    # Every request id also appears in the access-log lines the proxies wrote.
    logged = "".join(pod_log_path(tmp_path / "pods", pod).read_text() for pod in PODS if pod.workload in mesh.log_files)
    assert all(request_id in logged for request_id in expected)
    # Shared spans: a server side has the id (and parent) of its client side, from the other proxy.
    clients = {span["id"]: span for span in spans if span["kind"] == "CLIENT"}
    servers = [span for span in spans if span["kind"] == "SERVER"]
    assert servers
    for server in servers:
        client = clients[server["id"]]
        assert server["shared"] is True and server.get("parentId") == client.get("parentId")
        assert server["localEndpoint"] != client["localEndpoint"]
        assert server["tags"]["upstream_cluster"].startswith("inbound|")
        assert client["tags"]["upstream_cluster"].startswith("outbound|")
    # Each request has one root: the gateway's client span (and productpage's shared half of it).
    roots = [span for span in spans if "parentId" not in span and span["kind"] == "CLIENT"]
    assert len(roots) == REQUESTS
    assert {root["localEndpoint"]["serviceName"] for root in roots} == {"istio-ingressgateway.istio-system"}
    emitter = mesh.span_emitter
    assert emitter is not None and emitter.zipkin is not None
    assert (emitter.zipkin.failures, emitter.requests_dropped, emitter.zipkin.spans_sent) == (0, 0, len(spans))


def test_zipkin_spans_become_records_naming_both_sides_of_each_call(tmp_path, receiver) -> None:
    address, bodies = receiver
    _run_mesh(tmp_path, address, otlp=False)
    normalise = SpanNormaliser(PeerTable())
    payloads = [body for _, body in bodies.of("/api/v2/spans")]
    for _ in range(2):  # the second pass knows every proxy's address from the first one's node ids
        results = [normalise(resource_spans_from_json(body)) for body in payloads]
    records = [record for result in results for record in result.records]

    assert sum(result.rejected for result in results) == 0
    assert all(not result.spans for result in results)
    expected = _expected_ids()
    assert {record.request_id for record in records} == set(expected)
    assert all(record.trace_id == expected[record.request_id] for record in records)
    edges = {(r.reporter, r.source_workload, r.destination_workload) for r in records if r.response_code == 200}
    assert ("source", "istio-ingressgateway", "productpage-v1") in edges
    assert ("destination", "productpage-v1", "details-v1") in edges
    assert ("source", "reviews-v2", "ratings-v1") in edges or ("source", "reviews-v3", "ratings-v1") in edges
    details = next(r for r in records if r.destination_workload == "details-v1")
    assert (details.protocol, details.grpc_status) == ("grpc", "0")


def test_productpage_and_ratings_export_otlp_through_the_sdk_consistently_with_the_proxy_spans(
    tmp_path, receiver
) -> None:
    address, bodies = receiver
    mesh = _run_mesh(tmp_path, address)

    requests = _otlp_requests(bodies)
    by_service: dict[str, list[OtlpSpan]] = {}
    for request in requests:
        for resource_spans in request.resource_spans:
            attributes = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            assert attributes["k8s.namespace.name"] == "default"
            for scope in resource_spans.scope_spans:
                by_service.setdefault(attributes["service.name"], []).extend(scope.spans)
    assert set(by_service) == {"productpage", "ratings"}

    expected_traces = set(_expected_ids().values())
    proxy_spans = _zipkin_spans(bodies)
    proxy_ids = {span["id"] for span in proxy_spans}
    app_ids = {span.span_id.hex() for spans in by_service.values() for span in spans}
    for spans in by_service.values():
        for span in spans:
            assert span.trace_id.hex() in expected_traces
            if span.kind == OtlpSpan.SPAN_KIND_SERVER:
                # An app's server span is the child of its inbound proxy span (the shared call span).
                assert span.parent_span_id.hex() in proxy_ids
            else:
                assert span.kind == OtlpSpan.SPAN_KIND_CLIENT and span.parent_span_id.hex() in app_ids
    servers = [s for s in by_service["productpage"] if s.kind == OtlpSpan.SPAN_KIND_SERVER]
    assert len(servers) == REQUESTS
    # productpage's outbound proxy spans are children of productpage's app client spans.
    productpage_out = [
        s for s in proxy_spans if s["kind"] == "CLIENT" and s["localEndpoint"]["serviceName"] == "productpage.default"
    ]
    assert productpage_out and all(s["parentId"] in app_ids for s in productpage_out)
    db_spans = [
        s
        for s in by_service["ratings"]
        if s.kind == OtlpSpan.SPAN_KIND_CLIENT
        and any(kv.key == "db.system" and kv.value.string_value == "mysql" for kv in s.attributes)
    ]
    ratings_servers = [s for s in by_service["ratings"] if s.kind == OtlpSpan.SPAN_KIND_SERVER]
    assert ratings_servers and len(db_spans) == len(ratings_servers)
    emitter = mesh.span_emitter
    assert emitter is not None and emitter.otlp is not None
    assert emitter.otlp.failures == 0
    assert emitter.otlp.spans_exported == emitter.otlp.spans_recorded == sum(len(s) for s in by_service.values())


def test_app_spans_normalise_to_spans_of_their_conventions(tmp_path, receiver) -> None:
    address, bodies = receiver
    _run_mesh(tmp_path, address, zipkin=False)
    normalise = SpanNormaliser(PeerTable())

    spans = [span for request in _otlp_requests(bodies) for span in normalise(request.resource_spans).spans]

    assert any(
        s.service == "ratings" and s.kind == "client" and s.db_system == "mysql" and s.db_name == "test" for s in spans
    )
    assert any(s.service == "productpage" and s.rpc_system == "grpc" and s.peer_service == "details" for s in spans)
    assert any(s.service == "productpage" and s.kind == "server" and s.http_status == 200 for s in spans)
    assert {s.namespace for s in spans} == {"default"}


def test_an_unreachable_collector_is_counted_and_never_blocks(tmp_path) -> None:
    # A port nothing listens on: bind, note it, close.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mesh = SimulatedMesh(DemoConfig(), tmp_path / "pods", zipkin_endpoint=f"127.0.0.1:{port}")
    mesh.emit(5, now_ms=NOW_MS)
    mesh.shutdown()
    emitter = mesh.span_emitter
    assert emitter is not None and emitter.zipkin is not None
    assert emitter.zipkin.failures >= 1 and emitter.zipkin.spans_sent == 0 and emitter.zipkin.spans_failed > 0
    assert mesh.requests_sent == 5


def test_a_full_queue_drops_requests_counted() -> None:
    emitter = SpanEmitter("127.0.0.1:9", queue_size=2)
    generator = EntryGenerator(DemoConfig())
    for _ in range(5):
        emitter.submit(generator.request(NOW_MS))
    assert emitter.requests_dropped == 3


def test_span_plan_without_traced_apps_parents_proxy_spans_on_the_inbound_call() -> None:
    generator = EntryGenerator(DemoConfig())
    calls = calls_of(generator.request(NOW_MS))
    spans = request_spans(calls, frozenset())
    assert spans.app == []
    gateway_call = next(call for call in calls if call.source.gateway)
    productpage_out = [
        s for s in spans.zipkin if s["kind"] == "CLIENT" and s["localEndpoint"]["serviceName"] == "productpage.default"
    ]
    assert productpage_out and all(s["parentId"] == gateway_call.span_id for s in productpage_out)
    with_apps = request_spans(calls)
    assert all(s["parentId"] != gateway_call.span_id for s in with_apps.zipkin if s in productpage_out)
    assert derived_span_id("00f067aa0ba902b7", "x") == derived_span_id("00f067aa0ba902b7", "x")


def test_endpoints_may_omit_the_scheme_and_the_standard_path() -> None:
    assert endpoint_url("127.0.0.1:9411", "/api/v2/spans") == "http://127.0.0.1:9411/api/v2/spans"
    assert endpoint_url("http://127.0.0.1:4318/", "/v1/traces") == "http://127.0.0.1:4318/v1/traces"
    assert endpoint_url("http://h:1/custom", "/v1/traces") == "http://h:1/custom"
