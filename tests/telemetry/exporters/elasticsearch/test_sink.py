"""The Elasticsearch sink against a real HTTP server playing Elasticsearch (fake_es), through elasticsearch-py.

Every bulk document is checked there against the shipped mapping; outages are real closed ports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from telemetry.exporters.elasticsearch.config import ElasticsearchConfig
from telemetry.exporters.elasticsearch.factory import create_sink
from telemetry.exporters.elasticsearch.sink import STAGE, ElasticsearchSink
from telemetry.exporters.elasticsearch.templates import ilm_policy, mapping
from telemetry.exporters.export_queue import RetryConfig
from telemetry.model import Record
from telemetry.selfmetrics import SelfStats
from tests.telemetry.exporters.elasticsearch.fake_es import FakeElasticsearch
from tests.telemetry.exporters.elasticsearch.mapping_check import leaf_types

from realparts import free_port, wait_for

FAST_RETRY = RetryConfig(initial_backoff=0.02, max_backoff=0.1, max_elapsed=0)


def http_record(number: int) -> Record:
    """A Record with every field set, so its document carries every key log_event can write."""
    return Record(
        reporter="destination" if number % 2 else "source",
        source_workload="productpage-v1",
        source_namespace="bookinfo",
        source_principal="spiffe://cluster.local/ns/bookinfo/sa/productpage",
        source_app="productpage",
        source_version="v1",
        destination_workload="reviews-v2",
        destination_namespace="bookinfo",
        destination_principal="spiffe://cluster.local/ns/bookinfo/sa/reviews",
        destination_app="reviews",
        destination_version="v2",
        destination_service="reviews.bookinfo.svc.cluster.local",
        destination_service_name="reviews",
        destination_service_namespace="bookinfo",
        connection_security_policy="mutual_tls",
        protocol="grpc" if number % 3 == 0 else "http",
        response_code=200 if number % 5 else 503,
        grpc_status="14" if number % 3 == 0 else "",
        response_flags="-" if number % 5 else "UF,URX",
        duration_ms=number,
        bytes_received=100 + number,
        bytes_sent=2000 + number,
        method="GET",
        authority="reviews:9080",
        path=f"/reviews/{number}?q=1",
        source_address="10.0.0.1:45678" if number % 4 else "[fd00::1]:45678",
        destination_address="10.0.0.2:9080",
        upstream_cluster="outbound|9080|v2|reviews.bookinfo.svc.cluster.local",
        trace_id=f"{number:032x}",
        span_id=f"{number:016x}",
        request_id=f"req-{number}",
        start_time=f"2026-11-24T10:00:{number % 60:02d}.123Z",
        user_agent="python-requests/2.32",
        route_name="default",
        original=f'[2026-11-24T10:00:00.123Z] "GET /reviews/{number} HTTP/1.1" 200 - via_upstream',
    )


def tcp_record(number: int) -> Record:
    """What a TCP connection leaves: no HTTP fields, unknown peers, a socket path as address."""
    return Record(
        reporter="source",
        protocol="tcp",
        duration_ms=1500,
        bytes_received=10,
        bytes_sent=20,
        source_address="unix:/var/run/app.sock",
        destination_address="10.0.0.9:6379",
        start_time="2026-11-24T10:00:00.000Z",
        request_id="",
        original="",
    )


def records(count: int, first: int = 0) -> list[Record]:
    return [http_record(number) for number in range(first, first + count)]


def numbers(documents: list[dict]) -> list[int]:
    return [int(document["trace.id"], 16) for document in documents]


@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch().start()
    yield server
    server.stop()


@pytest.fixture
def stats() -> SelfStats:
    return SelfStats()


@pytest.fixture
def make_sink(stats: SelfStats) -> Iterator:
    sinks: list[ElasticsearchSink] = []

    def make(url: str, **overrides: object) -> ElasticsearchSink:
        config = ElasticsearchConfig(enabled=True, hosts=[url], batch_timeout=0.05, retry=FAST_RETRY)
        sink = ElasticsearchSink(replace(config, **overrides), stats)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.shutdown()


def test_every_document_fits_the_shipped_mapping_and_uses_all_of_it(fake: FakeElasticsearch, make_sink) -> None:
    sink = make_sink(fake.url, include_original=True)
    sink.consume(records(30) + [tcp_record(0)])
    assert sink.flush(10)
    assert fake.refused == []
    documents = fake.delivered()
    assert len(documents) == 31
    # Both ways: nothing unmapped is sent (fake_es refuses it), and no mapped field is stale.
    assert set().union(*documents) == set(leaf_types(mapping()))
    first = documents[0]
    assert first["@timestamp"] == "2026-11-24T10:00:00.123Z"
    assert first["event.duration"] == 0 and documents[7]["event.duration"] == 7_000_000
    assert documents[1]["source.ip"] == "10.0.0.1" and documents[1]["source.port"] == 45678
    assert first["source.ip"] == "fd00::1" and first["source.address"] == "[fd00::1]:45678"
    assert documents[1]["url.path"] == "/reviews/1?q=1" and documents[1]["http.response.status_code"] == 200
    assert first["meshscope.grpc_status"] == "14" and first["event.outcome"] == "failure"
    tcp = documents[-1]
    assert tcp["source.address"] == "unix:/var/run/app.sock" and "source.ip" not in tcp
    assert "http.request.method" not in tcp and "meshscope.source.workload" not in tcp


def test_the_original_line_is_sent_only_when_asked_for(fake: FakeElasticsearch, make_sink) -> None:
    sink = make_sink(fake.url)
    sink.consume(records(3))
    assert sink.flush(10)
    assert all("event.original" not in document for document in fake.delivered())


def test_the_ilm_policy_and_index_template_are_put_before_the_first_document(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url, data_stream="logs-mesh", ilm_policy="mesh-7d")
    sink.consume(records(5))
    assert sink.flush(10)
    assert fake.calls() == [
        ("GET", "/_ilm/policy/mesh-7d"),
        ("PUT", "/_ilm/policy/mesh-7d"),
        ("PUT", "/_index_template/logs-mesh"),
        ("PUT", "/_bulk?require_data_stream=true"),
    ]
    assert fake.policies["mesh-7d"] == ilm_policy()
    template = fake.templates["logs-mesh"]
    assert template["index_patterns"] == ["logs-mesh"] and template["data_stream"] == {}
    assert template["template"]["settings"]["index.lifecycle.name"] == "mesh-7d"
    assert template["template"]["mappings"] == mapping()
    assert stats.exported["elasticsearch"] == 5 and stats.unreachable() == {}


def test_an_existing_ilm_policy_is_left_as_the_operator_set_it(fake: FakeElasticsearch, make_sink) -> None:
    tuned = {"policy": {"phases": {"delete": {"min_age": "30d", "actions": {"delete": {}}}}}}
    fake.policies["meshscope-access"] = tuned
    sink = make_sink(fake.url)
    sink.consume(records(1))
    assert sink.flush(10)
    assert ("PUT", "/_ilm/policy/meshscope-access") not in fake.calls()
    assert fake.policies["meshscope-access"] == tuned
    assert "meshscope-access" in fake.templates


def test_nothing_is_installed_when_install_template_is_off(fake: FakeElasticsearch, make_sink) -> None:
    fake.with_template()  # the operator's
    sink = make_sink(fake.url, install_template=False)
    sink.consume(records(2))
    assert sink.flush(10)
    assert fake.calls() == [("PUT", "/_bulk?require_data_stream=true")]
    assert len(fake.delivered()) == 2 and fake.data_streams == {"meshscope-access"}


def test_without_a_template_documents_are_refused_and_counted_never_put_in_a_plain_index(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url, install_template=False)
    sink.consume(records(3))
    assert sink.flush(10)
    assert fake.delivered() == [] and fake.plain_indices == set()
    assert stats.dropped == {(STAGE, "no_data_stream"): 3}
    assert stats.export_failures == {("elasticsearch", "no_data_stream"): 1}


def test_without_ilm_privileges_the_template_is_still_put_and_a_data_stream_created(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    fake.ilm_status = 403
    sink = make_sink(fake.url)
    sink.consume(records(4))
    assert sink.flush(10)
    assert ("PUT", "/_index_template/meshscope-access") in fake.calls()
    assert fake.data_streams == {"meshscope-access"} and fake.plain_indices == set()
    assert len(fake.delivered()) == 4 and stats.dropped == {} and stats.unreachable() == {}


def test_a_template_deleted_while_running_is_put_again_and_nothing_is_lost(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url)
    sink.consume(records(2))
    assert sink.flush(10)
    with fake.lock:  # an operator deletes the template and the data stream
        fake.templates.clear()
        fake.data_streams.clear()
    sink.consume(records(3, first=2))
    assert sink.flush(10)
    assert numbers(fake.delivered()) == [0, 1, 2, 3, 4] and fake.plain_indices == set()
    assert [call for call in fake.calls() if "_index_template" in call[1]] == [
        ("PUT", "/_index_template/meshscope-access")
    ] * 2
    assert stats.dropped == {} and stats.export_failures == {("elasticsearch", "no_data_stream"): 1}


def test_a_request_refused_as_too_large_is_split_until_it_fits(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url, batch_size=40)
    sink.consume(records(1))
    assert sink.flush(10)
    one = fake.bulk_sizes[-1]
    fake.max_body_bytes = 5 * one  # a proxy's limit: about five documents
    sink.consume(records(40, first=1))
    assert sink.flush(10)
    assert numbers(fake.delivered()) == list(range(41))
    assert stats.dropped == {}
    accepted = [size for size in fake.bulk_sizes[1:] if size <= fake.max_body_bytes]
    assert len(accepted) >= 8 and all(size > fake.max_body_bytes for size in fake.bulk_sizes[1:2])
    # The limit found holds for the next batch: no 413 first.
    refused_before = sum(size > fake.max_body_bytes for size in fake.bulk_sizes)
    sink.consume(records(4, first=41))
    assert sink.flush(10)
    assert sum(size > fake.max_body_bytes for size in fake.bulk_sizes) == refused_before
    assert stats.export_failures.get(("elasticsearch", "http_413"), 0) == 0


def test_a_single_document_larger_than_the_limit_is_dropped_as_too_large(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url)
    sink.consume(records(1))
    assert sink.flush(10)
    fake.max_body_bytes = fake.bulk_sizes[-1] + 200
    huge = http_record(5)._replace(path="/" + "x" * 5000)
    sink.consume([http_record(3), huge, http_record(4)])
    assert sink.flush(10)
    assert numbers(fake.delivered()) == [0, 3, 4]
    assert stats.dropped == {(STAGE, "too_large"): 1}
    assert stats.export_failures == {("elasticsearch", "too_large"): 1}


def test_a_mapping_error_is_counted_by_its_type_and_not_retried(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    sink = make_sink(fake.url)
    bad = http_record(7)._replace(start_time="yesterday at noon")
    sink.consume(records(3) + [bad, bad, bad] + records(3, first=10))
    assert sink.flush(10)
    assert numbers(fake.delivered()) == [0, 1, 2, 10, 11, 12]
    assert len(fake.refused) == 3 and fake.refused[0][1][0].startswith("@timestamp")
    assert fake.item_attempts == 9
    # Documents in the dropped counter; the attempt, as every exporter counts it, once in the failures.
    assert stats.dropped == {(STAGE, "document_parsing_exception"): 3}
    assert stats.export_failures == {("elasticsearch", "document_parsing_exception"): 1}
    assert stats.exported["elasticsearch"] == 6


def test_documents_refused_with_429_are_retried_alone_until_accepted(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    fake.items_to_throttle = 4  # the first four documents of the first request
    sink = make_sink(fake.url)
    sink.consume(records(6))
    assert sink.flush(10)
    assert sorted(numbers(fake.delivered())) == list(range(6))
    assert fake.item_attempts == 6 + 4  # only the refused ones went again
    assert stats.dropped == {}
    assert stats.export_failures[("elasticsearch", "http_429")] >= 1
    assert stats.exported["elasticsearch"] == 6


def test_a_whole_request_answered_503_is_sent_again(fake: FakeElasticsearch, make_sink, stats: SelfStats) -> None:
    fake.request_failures.extend([503, 503])
    sink = make_sink(fake.url)
    sink.consume(records(4))
    assert sink.flush(10)
    assert numbers(fake.delivered()) == [0, 1, 2, 3]
    assert stats.export_failures[("elasticsearch", "http_503")] == 2
    assert stats.dropped == {} and stats.unreachable() == {}


def test_a_400_for_the_whole_request_drops_the_batch_and_counts_it(
    fake: FakeElasticsearch, make_sink, stats: SelfStats
) -> None:
    fake.request_failures.append(400)
    sink = make_sink(fake.url)
    sink.consume(records(4))
    assert sink.flush(10)
    assert fake.delivered() == []
    assert stats.dropped == {(STAGE, "http_400"): 4}


def test_an_outage_queues_events_and_delivers_them_in_order_once_elasticsearch_is_back(
    make_sink, stats: SelfStats
) -> None:
    port = free_port()
    sink = make_sink(f"http://127.0.0.1:{port}", batch_size=50)
    sink.consume(records(120))
    wait_for(lambda: "elasticsearch" in stats.unreachable(), what="the outage noticed")
    assert stats.unreachable()["elasticsearch"][0] == f"http://127.0.0.1:{port}: connection refused"
    sink.consume(records(80, first=120))
    assert sink.depth() == 200
    assert not sink.flush(0.2)
    fake = FakeElasticsearch(port).start()
    try:
        assert sink.flush(10)
        assert numbers(fake.delivered()) == list(range(200))
        # A new cluster answered: the templates went in again, before any document.
        assert fake.calls()[:3] == [
            ("GET", "/_ilm/policy/meshscope-access"),
            ("PUT", "/_ilm/policy/meshscope-access"),
            ("PUT", "/_index_template/meshscope-access"),
        ]
        assert stats.dropped == {} and stats.unreachable() == {}
        assert stats.export_failures[("elasticsearch", "unreachable")] >= 1
    finally:
        fake.stop()


def test_beyond_the_queue_bound_the_oldest_are_dropped_and_counted(make_sink, stats: SelfStats) -> None:
    port = free_port()
    sink = make_sink(f"http://127.0.0.1:{port}", queue_size=100, batch_size=10, install_template=False)
    for first in range(0, 250, 50):
        sink.consume(records(50, first=first))
    assert stats.dropped == {(STAGE, "queue_full"): 150}
    assert sink.depth() == 100
    fake = FakeElasticsearch(port).with_template().start()
    try:
        assert sink.flush(10)
        delivered = numbers(fake.delivered())
        # The batch already in hand when the queue overflowed stays; the rest are the newest.
        assert len(delivered) == 100 and delivered == sorted(delivered)
        assert delivered[-90:] == list(range(160, 250))
    finally:
        fake.stop()


def test_shutdown_delivers_what_is_queued_and_refuses_what_comes_after(
    fake: FakeElasticsearch, stats: SelfStats
) -> None:
    sink = ElasticsearchSink(ElasticsearchConfig(enabled=True, hosts=[fake.url], batch_timeout=30), stats)
    sink.consume(records(25))
    sink.shutdown()
    assert len(fake.delivered()) == 25
    sink.shutdown()
    sink.consume(records(5))
    assert stats.dropped == {(STAGE, "shutdown"): 5}


def test_shutdown_during_an_outage_counts_the_undelivered_events(stats: SelfStats) -> None:
    config = ElasticsearchConfig(
        enabled=True, hosts=[f"http://127.0.0.1:{free_port()}"], retry=FAST_RETRY, shutdown_timeout=0.2
    )
    sink = ElasticsearchSink(config, stats)
    sink.consume(records(30))
    sink.shutdown()
    assert stats.dropped == {(STAGE, "shutdown"): 30}
    assert sink.depth() == 0


def test_a_server_that_is_not_elasticsearch_is_reported_and_nothing_is_lost(make_sink, stats: SelfStats) -> None:
    impostor = FakeElasticsearch(product_header=False).start()
    try:
        sink = make_sink(impostor.url, shutdown_timeout=0.1)
        sink.consume(records(3))
        wait_for(lambda: "elasticsearch" in stats.unreachable(), what="the impostor noticed")
        assert "not Elasticsearch" in stats.unreachable()["elasticsearch"][0]
        assert stats.dropped == {} and sink.depth() == 3
        # It is asked again (the templates first), not written to.
        wait_for(lambda: len(impostor.calls()) >= 4, what="a retry")
        assert ("PUT", "/_bulk") not in impostor.calls()
    finally:
        impostor.stop()


def test_the_api_key_or_basic_credentials_are_sent(fake: FakeElasticsearch, make_sink) -> None:
    sink = make_sink(fake.url, api_key="aWQ6a2V5", install_template=False)
    sink.consume(records(1))
    assert sink.flush(10)
    other = make_sink(fake.url, username="meshscope", password="s3cret", install_template=False)
    other.consume(records(1))
    assert other.flush(10)
    authorizations = [headers["authorization"] for headers in fake.headers]
    assert authorizations == ["ApiKey aWQ6a2V5", "Basic bWVzaHNjb3BlOnMzY3JldA=="]


def test_the_factory_builds_a_working_sink_from_the_config(fake: FakeElasticsearch, stats: SelfStats) -> None:
    sink = create_sink(ElasticsearchConfig(enabled=True, hosts=[fake.url], batch_timeout=0.05), stats)
    try:
        sink.consume(records(2))
        assert sink.flush(10)
        assert len(fake.delivered()) == 2
        assert stats.queue_depth(STAGE) == 0
    finally:
        sink.shutdown()


def test_a_full_queue_holds_file_tailing_back_while_elasticsearch_is_slow_not_while_it_is_away(
    make_sink, stats: SelfStats
) -> None:
    # What Pipeline.wait_for_room asks of the sink for file tailing: wait for room rather than drop the
    # oldest, but only while Elasticsearch answers: an outage must not stop tailing (and its metrics).
    port = free_port()
    sink = make_sink(
        f"http://127.0.0.1:{port}", queue_size=100, batch_size=10, install_template=False, when_full="wait"
    )
    sink.consume(records(100))
    wait_for(lambda: "elasticsearch" in stats.unreachable(), what="the outage noticed")
    assert sink.hold_back(50, 0.0)  # away: no waiting; consume drops the oldest, counted
    fake = FakeElasticsearch(port).with_template()
    fake.bulk_delay = 0.2
    fake.start()
    try:
        wait_for(lambda: "elasticsearch" not in stats.unreachable(), what="Elasticsearch answering")
        sink.consume(records(100, first=100))
        assert not sink.hold_back(50, 0.05)  # answering slowly, queue full: file tailing waits
        assert sink.hold_back(50, 30)
        fake.bulk_delay = 0.0
        sink.consume(records(50, first=200))
        assert sink.flush(30)
        assert numbers(fake.delivered())[-50:] == list(range(200, 250))
    finally:
        fake.stop()
    sink.shutdown()
    assert sink.hold_back(1000, 0.0)  # shut down: waiting cannot help, consume counts what it refuses
