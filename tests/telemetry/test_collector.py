"""The collector assembled in-process: what one component learns reaches the others."""

from __future__ import annotations

from telemetry.envoy.parser import make_parser
from telemetry.model import Workload
from telemetry.spans.from_zipkin import resource_spans_from_json
from tests.servicegraph.graphonly import start_graph_collector

TRACE_ID = "463ac35c9f6413ad48485a3953bb6124"
REQUEST_ID = "6e7e5f5e-3b3a-9c7e-a1a0-8ac8e1f0b9a2"
ACCESS_LOG_LINE = (
    '[2024-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 503 UF,URX upstream_reset - "-" 0 91 12 - "-" "ua" '
    f'"{REQUEST_ID}" "reviews:9080" "10.244.0.12:9080" outbound|9080|v2|reviews.default.svc.cluster.local '
    "10.244.0.9:43210 10.96.0.30:9080 10.244.0.9:50212 - default"
)
ZIPKIN_PROXY_SPAN = (
    b'[{"traceId":"' + TRACE_ID.encode() + b'","id":"00f067aa0ba902b7","kind":"SERVER","name":"inbound",'
    b'"timestamp":1714564800000000,"duration":9000,"localEndpoint":{"serviceName":"reviews.default"},'
    b'"tags":{"component":"proxy","node_id":"sidecar~10.244.0.12~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local",'
    b'"upstream_cluster":"inbound|9080||","http.method":"GET","http.status_code":"503",'
    b'"guid:x-request-id":"' + REQUEST_ID.encode() + b'"}}]'
)


def test_access_log_records_get_the_trace_id_of_the_span_with_their_request_id() -> None:
    collector = start_graph_collector({})
    try:
        collector.traces.accept(resource_spans_from_json(ZIPKIN_PROXY_SPAN), "zipkin")
        parser = make_parser("istio", Workload("productpage-v1", "default", "productpage", "v1"), collector.peers)
        collector.pipeline.submit([parser.parse(ACCESS_LOG_LINE)], "filelog")
        assert collector.pipeline.flush(10)
        failed = collector.recent_traces.query(("productpage-v1", "default"), "reviews.default.svc.cluster.local")[
            "failed"
        ]
        assert [(entry["trace_id"], entry["response_code"]) for entry in failed] == [(TRACE_ID, 503)]
    finally:
        collector.shutdown()
