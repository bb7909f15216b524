"""The Zipkin receiver with the collector's own normaliser: JSON proxy spans become Records without
being made OTLP, and an exporter still gets the ResourceSpans the converter makes of them."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from traceharness import CountingSink, NormalisingIngest, RecordingExporter

from telemetry.pipeline import Pipeline
from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.factory import create_receiver
from telemetry.spans.from_zipkin import resource_spans_from_json

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


@contextmanager
def _collector() -> Iterator[tuple[int, Pipeline, CountingSink, RecordingExporter]]:
    """A Zipkin receiver over the collector's normaliser, a pipeline counting Records and an exporter."""
    harness = NormalisingIngest.start()
    receiver = create_receiver(ZipkinConfig(endpoint="127.0.0.1:0"), harness.ingest, harness.stats)
    receiver.start()
    try:
        yield receiver.port, harness.pipeline, harness.sink, harness.exporter
    finally:
        receiver.shutdown()
        harness.close()


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/spans", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def test_a_json_proxy_span_becomes_a_record_and_the_exporter_gets_what_the_converter_makes() -> None:
    with _collector() as (port, pipeline, sink, exporter):
        body = orjson.dumps([SPAN])
        assert post(port, body) == 202
        assert pipeline.flush(timeout=10)
        (record,) = sink.records
        assert (record.source_workload, record.destination_service, record.response_code) == (
            "productpage-v1",
            "reviews.default.svc.cluster.local",
            503,
        )
        assert (record.response_flags, record.duration_ms, record.trace_id) == ("UF,URX", 21, SPAN["traceId"])
        assert exporter.requests == [[item.SerializeToString() for item in resource_spans_from_json(body)]]


def test_a_proxys_batch_posted_again_is_read_in_columns_into_the_same_records_and_exports() -> None:
    # The second time the proxy is known: the request is read and assembled column by column.
    spans = [
        {**SPAN, "id": f"{index + 1:016x}", "remoteEndpoint": {"serviceName": "reviews", "ipv4": "10.244.0.14",
         "port": 9080}, "tags": {**SPAN["tags"], "http.url": f"http://reviews:9080/reviews/{index}"}}  # type: ignore[dict-item]
        for index in range(40)
    ]  # fmt: skip
    with _collector() as (port, pipeline, sink, exporter):
        body = orjson.dumps(spans)
        assert post(port, body) == 202 and post(port, body) == 202
        assert pipeline.flush(timeout=10)
        first, second = sink.records[:40], sink.records[40:]
        assert second == first
        assert [record.path for record in second] == [f"/reviews/{index}" for index in range(40)]
        converted = [item.SerializeToString() for item in resource_spans_from_json(body)]
        assert exporter.requests == [converted, converted]
