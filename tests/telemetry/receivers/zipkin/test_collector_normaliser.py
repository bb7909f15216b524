"""The Zipkin receiver with the collector's own normaliser: JSON proxy spans become Records without
being made OTLP, and an exporter still gets the ResourceSpans the converter makes of them."""

from __future__ import annotations

import urllib.request

import orjson
from traceharness import CountingSink, RecordingExporter

from telemetry.envoy.peers import PeerTable
from telemetry.pipeline import Pipeline
from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.factory import create_receiver
from telemetry.selfmetrics import SelfStats
from telemetry.spans.from_zipkin import resource_spans_from_json
from telemetry.spans.normalize import SpanNormaliser
from telemetry.traces import TraceIngest

NODE = "sidecar~10.244.0.11~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local"
SPAN = {
    "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "id": "00f067aa0ba902b7", "kind": "CLIENT",
    "name": "reviews.default.svc.cluster.local:9080/*", "timestamp": 1_714_564_800_000_000, "duration": 21_000,
    "localEndpoint": {"serviceName": "productpage.default", "ipv4": "10.244.0.11"},
    "remoteEndpoint": {"ipv4": "10.244.0.14", "port": 9080},
    "tags": {"component": "proxy", "node_id": NODE, "http.method": "GET", "http.status_code": "503",
             "http.url": "http://reviews:9080/reviews/0", "response_flags": "UF,URX", "error": "true",
             "upstream_cluster": "outbound|9080|v2|reviews.default.svc.cluster.local"},
}  # fmt: skip


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/spans", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_a_json_proxy_span_becomes_a_record_and_the_exporter_gets_what_the_converter_makes() -> None:
    stats = SelfStats()
    sink = CountingSink()
    pipeline = Pipeline([("count", sink)], stats, batch_timeout=0.01)
    pipeline.start()
    exporters = [("capture", RecordingExporter())]
    ingest = TraceIngest(pipeline, stats, normalise=SpanNormaliser(PeerTable()), exporters=exporters)
    receiver = create_receiver(ZipkinConfig(endpoint="127.0.0.1:0"), ingest, stats)
    receiver.start()
    try:
        body = orjson.dumps([SPAN])
        assert post(receiver.port, body) == 202
        assert pipeline.flush(timeout=10)
        (record,) = sink.records
        assert (record.source_workload, record.destination_service, record.response_code) == (
            "productpage-v1",
            "reviews.default.svc.cluster.local",
            503,
        )
        assert (record.response_flags, record.duration_ms, record.trace_id) == ("UF,URX", 21, SPAN["traceId"])
        assert exporters[0][1].requests == [[item.SerializeToString() for item in resource_spans_from_json(body)]]
    finally:
        receiver.shutdown()
        pipeline.shutdown(timeout=5)
