"""A real `meshscope run`: the OpenTelemetry SDK and Envoy-shaped Zipkin spans in; Jaeger (OTLP) and metrics out."""

from __future__ import annotations

import threading
from concurrent import futures
from pathlib import Path

import grpc
import orjson
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from realparts import free_port, http_get, meshscope_process, wait_for


class JaegerCapture(trace_service_pb2_grpc.TraceServiceServicer):
    """Stands in for Jaeger's OTLP gRPC endpoint: keeps every request it is sent, decoded."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.lock = threading.Lock()

    def Export(self, request, context):  # type: ignore[no-untyped-def]  # noqa: N802 - the generated name
        with self.lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> dict[str, object]:
        with self.lock:
            return {
                span.name: (resource_spans.resource, span)
                for request in self.requests
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            }


def _zipkin_proxy_span(trace_id: str) -> dict[str, object]:
    # As Envoy's Zipkin tracer reports a sidecar's outbound call.
    return {
        "traceId": trace_id,
        "id": "00f067aa0ba902b7",
        "kind": "CLIENT",
        "name": "reviews.default.svc.cluster.local:9080/*",
        "timestamp": 1_714_564_800_000_000,
        "duration": 24_000,
        "localEndpoint": {"serviceName": "productpage.default", "ipv4": "10.244.0.9"},
        "tags": {
            "component": "proxy",
            "node_id": "sidecar~10.244.0.9~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local",
            "istio.canonical_service": "productpage",
            "istio.canonical_revision": "v1",
            "istio.namespace": "default",
            "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local",
            "http.method": "GET",
            "http.url": "http://reviews:9080/reviews/0",
            "http.status_code": "503",
            "response_flags": "UF,URX",
            "peer.address": "10.244.0.9",
            "guid:x-request-id": "6e7e5f5e-3b3a-9c7e-a1a0-8ac8e1f0b9a2",
        },
    }


def test_spans_are_passed_to_jaeger_unchanged_and_proxy_spans_become_istio_metrics(tmp_path: Path) -> None:
    capture = JaegerCapture()
    jaeger = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(capture, jaeger)
    jaeger_port = jaeger.add_insecure_port("127.0.0.1:0")
    jaeger.start()
    metrics_port, otlp_port, zipkin_port = free_port(), free_port(), free_port()
    config = {
        "receivers": {
            "filelog": {"enabled": False},
            "als": {"enabled": False},
            "otlp": {"grpc": {"enabled": False}, "http": {"endpoint": f"127.0.0.1:{otlp_port}"}},
            "zipkin": {"endpoint": f"127.0.0.1:{zipkin_port}"},
        },
        "exporters": {
            "prometheus": {"endpoint": f"127.0.0.1:{metrics_port}"},
            "otlp": {"enabled": True, "endpoint": f"127.0.0.1:{jaeger_port}", "protocol": "grpc", "batch_timeout": 0.1},
        },
        "graph": {"endpoint": "127.0.0.1:0"},
    }
    config_path = tmp_path / "meshscope.yaml"
    config_path.write_text(yaml.safe_dump(config))
    try:
        with meshscope_process(["run", "-c", str(config_path)], tmp_path / "meshscope.log") as collector:
            wait_for(lambda: http_get(f"http://127.0.0.1:{metrics_port}/metrics"), what="the collector")

            provider = TracerProvider(
                resource=Resource.create({"service.name": "ratings", "k8s.namespace.name": "default"})
            )
            provider.add_span_processor(
                SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp_port}/v1/traces"))
            )
            tracer = provider.get_tracer("test")
            with tracer.start_as_current_span("GET /ratings", kind=SpanKind.SERVER) as server:
                server.set_attribute("http.response.status_code", 200)
                with tracer.start_as_current_span("SELECT ratings", kind=SpanKind.CLIENT) as query:
                    query.set_attribute("db.system", "mysql")
                    query.add_event("retry", {"attempt": 2})
                    query.set_status(Status(StatusCode.ERROR, "deadlock"))
            provider.shutdown()
            trace_id = format(server.get_span_context().trace_id, "032x")

            import urllib.request

            body = orjson.dumps([_zipkin_proxy_span(trace_id)])
            request = urllib.request.Request(
                f"http://127.0.0.1:{zipkin_port}/api/v2/spans", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 202

            spans = wait_for(lambda: len(capture.spans()) >= 3 and capture.spans(), timeout=30, what="spans at Jaeger")
            resource, query_span = spans["SELECT ratings"]  # type: ignore[misc]
            assert query_span.trace_id.hex() == trace_id
            assert query_span.parent_span_id == server.get_span_context().span_id.to_bytes(8, "big")
            assert query_span.status.code == StatusCode.ERROR.value and query_span.status.message == "deadlock"
            assert [(event.name, event.attributes[0].value.int_value) for event in query_span.events] == [("retry", 2)]
            assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "ratings"

            def proxy_metric() -> str:
                text = http_get(f"http://127.0.0.1:{metrics_port}/metrics").decode()
                lines = [
                    line
                    for line in text.splitlines()
                    if line.startswith("istio_requests_total{") and 'response_flags="UF,URX"' in line
                ]
                return lines[0] if lines else ""

            line = wait_for(proxy_metric, what="the proxy span's Istio metric")
            for label in (
                'reporter="source"',
                'source_workload="productpage-v1"',
                'destination_service_name="reviews"',
                'response_code="503"',
            ):
                assert label in line
        assert collector.returncode == 0, (tmp_path / "meshscope.log").read_text()
    finally:
        jaeger.stop(0)
