"""The collector with exporters.elasticsearch enabled: parsed access-log lines end up as documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemetry.collector import Collector
from telemetry.config import Config
from telemetry.confload import load_mapping
from telemetry.envoy.parser import make_parser
from telemetry.model import Workload
from tests.telemetry.exporters.elasticsearch.fake_es import FakeElasticsearch

LINE = (
    '[2024-05-04T17:22:59.046Z] "GET /reviews/0 HTTP/1.1" 503 UF,URX upstream_reset - "-" 0 91 12 - "-" "ua" '
    '"6e7e5f5e-3b3a-9c7e-a1a0-8ac8e1f0b9a2" "reviews:9080" "10.244.0.12:9080" '
    "outbound|9080|v2|reviews.default.svc.cluster.local 10.244.0.9:43210 10.96.0.30:9080 10.244.0.9:50212 - default"
)


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch().start()
    yield server
    server.stop()


def test_records_from_the_pipeline_are_indexed_when_the_collector_stops(fake: FakeElasticsearch) -> None:
    off = {"enabled": False}
    config = load_mapping(
        Config,
        {
            "receivers": {"filelog": off, "als": off, "otlp": {"grpc": off, "http": off}, "zipkin": off},
            "exporters": {
                "prometheus": {"endpoint": "127.0.0.1:0"},
                "elasticsearch": {"enabled": True, "hosts": [fake.url], "batch_timeout": 30},
            },
            "graph": {"enabled": False},
        },
        {},
    )
    collector = Collector(config)
    collector.start()
    try:
        parser = make_parser("istio", Workload("productpage-v1", "default", "productpage", "v1"), collector.peers)
        collector.pipeline.submit([parser.parse(LINE)] * 3, "filelog")
    finally:
        collector.shutdown()
    documents = fake.delivered()
    assert len(documents) == 3 and fake.refused == []
    document = documents[0]
    assert document["@timestamp"] == "2024-05-04T17:22:59.046Z"
    assert document["http.response.status_code"] == 503 and document["meshscope.response_flags"] == "UF,URX"
    assert document["meshscope.source.workload"] == "productpage-v1" and document["event.duration"] == 12_000_000
    assert document["destination.ip"] == "10.244.0.12" and document["destination.port"] == 9080
