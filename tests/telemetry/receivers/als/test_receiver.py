"""The ALS receiver end to end: a real grpc channel with Envoy's stub, a real pipeline, a collecting sink.

Fixtures and message builders are in conftest.py (``collector`` is its Collector, ``als`` the module).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import grpc
import pytest
from envoy.config.core.v3.base_pb2 import Node
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.receiver import AlsReceiver
from telemetry.selfmetrics import SelfStats

OUTBOUND_REVIEWS_V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
REVIEWS_IP, PRODUCTPAGE_IP = "10.244.0.12", "10.244.0.7"
BOOKINFO_LABELS = {
    "productpage": {"app": "productpage", "version": "v1"},
    "reviews": {"app": "reviews", "version": "v2"},
}


def productpage(als: ModuleType) -> Node:
    return als.node(
        als.PRODUCTPAGE_NODE_ID, LABELS=BOOKINFO_LABELS["productpage"], SERVICE_ACCOUNT="bookinfo-productpage"
    )


def reviews(als: ModuleType) -> Node:
    return als.node(als.REVIEWS_NODE_ID, LABELS=BOOKINFO_LABELS["reviews"], SERVICE_ACCOUNT="bookinfo-reviews")


def outbound_call(als: ModuleType, **entry: Any) -> HTTPAccessLogEntry:
    """productpage's sidecar calling reviews v2."""
    common = als.common(
        OUTBOUND_REVIEWS_V2,
        upstream=(REVIEWS_IP, 9080),
        upstream_local=(PRODUCTPAGE_IP, 41234),
        downstream_remote=(PRODUCTPAGE_IP, 52110),
        downstream_local=("10.96.12.5", 9080),
    )
    return als.http_entry(common, **entry)


def only(records: list[Record]) -> Record:
    assert len(records) == 1, records
    return records[0]


def test_outbound_http_entry_becomes_a_source_reported_record(collector: Any, als: ModuleType) -> None:
    # reviews' proxy announces itself first, so productpage's entries can name the workload they reached.
    collector.stream(als.http_message(identity=reviews(als)))
    collector.stream(als.http_message(outbound_call(als), identity=productpage(als)))

    record = only(collector.records())
    assert record.reporter == "source"
    assert (record.source_workload, record.source_namespace, record.source_app, record.source_version) == (
        "productpage-v1",
        "default",
        "productpage",
        "v1",
    )
    assert record.source_principal == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    assert (record.destination_service, record.destination_service_name, record.destination_service_namespace) == (
        "reviews.default.svc.cluster.local",
        "reviews",
        "default",
    )
    assert (record.destination_workload, record.destination_app, record.destination_version) == (
        "reviews-v2",
        "reviews",
        "v2",
    )
    assert (record.protocol, record.method, record.path, record.response_code) == ("http", "GET", "/reviews/0", 200)
    assert (record.bytes_received, record.bytes_sent, record.duration_ms) == (0, 295, 25)  # body bytes
    assert (record.response_flags, record.upstream_cluster, record.destination_address) == (
        "-",
        OUTBOUND_REVIEWS_V2,
        "10.244.0.12:9080",
    )
    assert record.start_time == "2024-05-01T12:00:00.123Z"
    assert collector.stats.records_received == {"als": 1}


def test_response_flags_and_failure_status_reach_the_record(collector: Any, als: ModuleType) -> None:
    entry = outbound_call(als, status=503, response_bytes=(60, 91))
    entry.common_properties.response_flags.upstream_connection_failure = True
    entry.common_properties.response_flags.upstream_retry_limit_exceeded = True
    collector.stream(als.http_message(entry, identity=productpage(als)))

    record = only(collector.records())
    assert (record.response_code, record.response_flags, record.bytes_sent) == (503, "UF,URX", 91)


def test_grpc_entry_is_a_grpc_record_with_its_status(collector: Any, als: ModuleType) -> None:
    entry = outbound_call(
        als, method="POST", path="/reviews.Reviews/Get", protocol=3, response_trailers={"grpc-status": "14"}
    )
    collector.stream(als.http_message(entry, identity=productpage(als)))

    record = only(collector.records())
    assert (record.protocol, record.grpc_status, record.method) == ("grpc", "14", "POST")


def test_inbound_tcp_entry_becomes_a_destination_reported_record(collector: Any, als: ModuleType) -> None:
    collector.stream(als.http_message(identity=productpage(als)))
    common = als.common(
        "inbound|9080||",
        upstream=("127.0.0.6", 9080),
        downstream_local=(REVIEWS_IP, 9080),
        downstream_remote=(PRODUCTPAGE_IP, 52110),
        duration_ms=1500,
    )
    common.tls_properties.tls_sni_hostname = "outbound_.9080_.v2_.reviews.default.svc.cluster.local"
    san = common.tls_properties.peer_certificate_properties.subject_alt_name.add()
    san.uri = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    collector.stream(als.tcp_message(als.tcp_entry(common, received=512, sent=2048), identity=reviews(als)))

    record = only(collector.records())
    assert record.reporter == "destination"
    assert (record.protocol, record.bytes_received, record.bytes_sent, record.duration_ms) == ("tcp", 512, 2048, 1500)
    assert (record.destination_workload, record.destination_service) == (
        "reviews-v2",
        "reviews.default.svc.cluster.local",
    )
    assert (record.source_workload, record.source_principal) == (
        "productpage-v1",
        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
    )
    assert record.connection_security_policy == "mutual_tls"


def test_gateway_node_reports_as_source(collector: Any, als: ModuleType) -> None:
    common = als.common("outbound|9080||productpage.default.svc.cluster.local", upstream=(PRODUCTPAGE_IP, 9080))
    entry = als.http_entry(common, path="/productpage", authority="bookinfo.example.com")
    collector.stream(als.http_message(entry, identity=als.node(als.GATEWAY_NODE_ID)))

    record = only(collector.records())
    assert (record.reporter, record.source_workload, record.source_namespace) == (
        "source",
        "istio-ingressgateway",
        "istio-system",
    )
    assert record.destination_service_name == "productpage"


def test_later_messages_without_identifier_keep_the_first_identity(collector: Any, als: ModuleType) -> None:
    collector.stream(
        als.http_message(outbound_call(als, path="/first"), identity=productpage(als)),
        als.http_message(outbound_call(als, path="/second")),
        # Envoy never renames a stream; if a message did, the stream's first identity still stands.
        als.http_message(outbound_call(als, path="/third"), identity=reviews(als)),
    )

    records = collector.records()
    assert [record.path for record in records] == ["/first", "/second", "/third"]
    assert {record.source_workload for record in records} == {"productpage-v1"}


def test_node_identity_teaches_the_peer_table(collector: Any, als: ModuleType) -> None:
    collector.stream(als.http_message(identity=reviews(als)))
    learned = collector.peers.lookup(REVIEWS_IP)
    assert learned is not None and learned.name == "reviews-v2"


def test_malformed_entry_aborts_the_stream_and_keeps_its_other_entries(collector: Any, als: ModuleType) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        collector.stream(
            als.http_message(outbound_call(als, path="/earlier"), identity=productpage(als)),
            als.http_message(
                outbound_call(als, path="/before"),
                outbound_call(als, path="/bad", status=1000),
                outbound_call(als, path="/after"),
            ),
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bad_response_code" in caught.value.details()
    assert sorted(record.path for record in collector.records()) == ["/after", "/before", "/earlier"]
    assert collector.stats.parse_errors == {("als", "bad_response_code"): 1}
    assert collector.stats.records_received == {"als": 3}


def test_first_message_without_identifier_is_invalid(collector: Any, als: ModuleType) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        collector.stream(als.http_message(outbound_call(als), outbound_call(als)))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "missing_identifier" in caught.value.details()
    assert collector.records() == []
    assert collector.stats.parse_errors == {("als", "missing_identifier"): 2}


def undecodable_stream(collector: Any) -> grpc.RpcError:
    raw = collector.channel.stream_unary(
        "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    with pytest.raises(grpc.RpcError) as caught:
        raw(iter([b"\x0a\xff\xff\xff\xff\x0f"]))  # field 1 claims a length far beyond the message
    return caught.value


def test_undecodable_message_is_invalid_and_counted(collector: Any) -> None:
    error = undecodable_stream(collector)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "undecodable_message" in error.details()
    assert collector.stats.parse_errors == {("als", "undecodable_message"): 1}


def test_server_keeps_serving_after_bad_and_undecodable_streams(collector: Any, als: ModuleType) -> None:
    with pytest.raises(grpc.RpcError):
        collector.stream(als.http_message(outbound_call(als)))
    undecodable_stream(collector)

    collector.stream(als.http_message(outbound_call(als), identity=productpage(als)))
    assert only(collector.records()).source_workload == "productpage-v1"


def test_shutdown_after_undecodable_streams_stops_the_server_cleanly(
    collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # grpcio's own rejection of undecodable requests could leave Server.stop waiting forever.
    for _ in range(5):
        undecodable_stream(collector)
    with caplog.at_level(logging.WARNING, logger="telemetry.receivers.als.receiver"):
        collector.receiver.shutdown()
    assert "did not stop" not in caplog.text


def test_full_pipeline_refuses_the_stream_with_resource_exhausted(make_collector: Any, als: ModuleType) -> None:
    # The pipeline's worker is not running, so the queue (one record) stays full after the first message.
    collector = make_collector(start_pipeline=False, queue_size=1, backpressure_wait=0.0)
    with pytest.raises(grpc.RpcError) as caught:
        collector.stream(
            als.http_message(outbound_call(als), identity=productpage(als)),
            als.http_message(outbound_call(als), outbound_call(als)),
        )

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert collector.stats.dropped == {("pipeline", "queue_full"): 2}
    assert collector.stats.records_received == {"als": 1}


def test_message_larger_than_max_message_bytes_is_refused_by_grpc(make_collector: Any, als: ModuleType) -> None:
    collector = make_collector(max_message_bytes=1024)
    big = als.http_message(*(outbound_call(als) for _ in range(50)), identity=productpage(als))
    assert big.ByteSize() > 1024
    with pytest.raises(grpc.RpcError) as caught:
        collector.stream(big)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert collector.records() == []


def test_shutdown_cancels_open_streams_and_keeps_what_they_sent(make_collector: Any, als: ModuleType) -> None:
    collector = make_collector(shutdown_grace=0.0)
    call, release = collector.open_stream(als.http_message(outbound_call(als), identity=productpage(als)))
    try:
        collector.receiver.shutdown()
        with pytest.raises(grpc.RpcError) as caught:
            call.result(timeout=30)
        assert caught.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    finally:
        release.set()
    assert only(collector.records()).source_workload == "productpage-v1"


def test_streams_beyond_max_concurrent_streams_are_refused(make_collector: Any, als: ModuleType) -> None:
    collector = make_collector(max_concurrent_streams=1)
    call, release = collector.open_stream(als.http_message(outbound_call(als), identity=productpage(als)))
    try:
        with pytest.raises(grpc.RpcError) as caught:
            collector.stream(als.http_message(outbound_call(als), identity=reviews(als)))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        release.set()
    call.result(timeout=30)
    assert only(collector.records()).source_workload == "productpage-v1"


def test_receiver_exposes_its_port_and_shuts_down_idempotently(collector: Any) -> None:
    assert collector.receiver.port > 0
    collector.receiver.shutdown()
    collector.receiver.shutdown()


def test_port_already_in_use_fails_to_start(collector: Any) -> None:
    stats = SelfStats()
    pipeline = Pipeline([], stats)
    second = AlsReceiver(AlsConfig(endpoint=f"127.0.0.1:{collector.receiver.port}"), pipeline, stats, PeerTable())
    with pytest.raises(OSError, match="cannot listen"):
        second.start()
    second.shutdown()


def test_config_validation_names_bad_values() -> None:
    errors = AlsConfig(endpoint="nowhere", max_concurrent_streams=0).validate()
    assert any(error.startswith("endpoint:") for error in errors)
    assert "max_concurrent_streams: must be at least 1" in errors


def test_concurrent_streams_keep_their_own_reporters(collector: Any, als: ModuleType) -> None:
    """Two proxies whose entries look alike, interleaved on two open streams, each keep their identity."""
    import threading

    def entry() -> HTTPAccessLogEntry:
        return als.http_entry(
            als.common(OUTBOUND_REVIEWS_V2, upstream=(REVIEWS_IP, 9080), downstream_remote=("10.244.0.99", 40000))
        )

    turns = [threading.Event() for _ in range(4)]

    def stream(identity: Node, mine: tuple[int, int]) -> Any:
        def messages() -> Any:
            for index, turn in enumerate(mine):
                turns[turn].wait(10)
                yield als.http_message(entry(), identity=identity if index == 0 else None)
                turns[turn + 1].set() if turn + 1 < len(turns) else None

        return collector.stub.StreamAccessLogs.future(messages())

    first = stream(productpage(als), (0, 2))
    second = stream(
        als.node("sidecar~10.244.0.30~details-v1-7bf8c9648f-xk2zq.default~default.svc.cluster.local"), (1, 3)
    )
    turns[0].set()
    first.result(timeout=30)
    second.result(timeout=30)
    by_workload = sorted(record.source_workload for record in collector.records())
    assert by_workload == ["details-v1", "details-v1", "productpage-v1", "productpage-v1"]
