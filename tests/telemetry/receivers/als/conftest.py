"""Builders for ALS messages as Envoy sends them, and a running receiver with a real pipeline."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

import grpc
import pytest
from envoy.config.core.v3.address_pb2 import Address, SocketAddress
from envoy.config.core.v3.base_pb2 import Node, RequestMethod
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from telemetry.envoy.peers import PeerTable
from telemetry.model import Record
from telemetry.pipeline import Pipeline
from telemetry.receivers.als.config import AlsConfig
from telemetry.receivers.als.factory import create_receiver
from telemetry.receivers.als.receiver import AlsReceiver
from telemetry.selfmetrics import SelfStats

REVIEWS_NODE_ID = "sidecar~10.244.0.12~reviews-v2-7bf8c9648f-xk2zq.default~default.svc.cluster.local"
PRODUCTPAGE_NODE_ID = "sidecar~10.244.0.7~productpage-v1-6b746f74dc-9rlmh.default~default.svc.cluster.local"
GATEWAY_NODE_ID = "router~10.244.0.3~istio-ingressgateway-6c8f5c5c8b-q9z2w.istio-system~istio-system.svc.cluster.local"


def address(ip: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=ip, port_value=port))


def node(node_id: str, **metadata: Any) -> Node:
    result = Node(id=node_id)
    if metadata:
        struct = Struct()
        struct.update(metadata)
        result.metadata.CopyFrom(struct)
    return result


def common(
    cluster: str,
    *,
    upstream: tuple[str, int] | None = None,
    upstream_local: tuple[str, int] | None = None,
    downstream_local: tuple[str, int] | None = None,
    downstream_remote: tuple[str, int] | None = None,
    duration_ms: int | None = 25,
    **fields: Any,
) -> accesslog_pb2.AccessLogCommon:
    result = accesslog_pb2.AccessLogCommon(upstream_cluster=cluster, **fields)
    result.start_time.CopyFrom(Timestamp(seconds=1_714_564_800, nanos=123_456_789))
    if duration_ms is not None:
        result.time_to_last_downstream_tx_byte.CopyFrom(
            Duration(seconds=duration_ms // 1000, nanos=duration_ms % 1000 * 1_000_000)
        )
    for name, value in (
        ("upstream_remote_address", upstream),
        ("upstream_local_address", upstream_local),
        ("downstream_local_address", downstream_local),
        ("downstream_remote_address", downstream_remote),
    ):
        if value is not None:
            getattr(result, name).CopyFrom(address(*value))
    return result


def http_entry(
    common_properties: accesslog_pb2.AccessLogCommon | None,
    *,
    method: str = "GET",
    path: str = "/reviews/0",
    authority: str = "reviews:9080",
    status: int | None = 200,
    protocol: int = accesslog_pb2.HTTPAccessLogEntry.HTTP11,
    request_bytes: tuple[int, int] = (120, 0),
    response_bytes: tuple[int, int] = (80, 295),
    request_headers: dict[str, str] | None = None,
    response_trailers: dict[str, str] | None = None,
) -> accesslog_pb2.HTTPAccessLogEntry:
    entry = accesslog_pb2.HTTPAccessLogEntry(protocol_version=protocol)
    if common_properties is not None:
        entry.common_properties.CopyFrom(common_properties)
    request = entry.request
    request.request_method = RequestMethod.Value(method)
    request.path = path
    request.authority = authority
    request.request_id = "6f0c3a4e-2b7e-4c1a-9a51-0d6c1e3b8f00"
    request.user_agent = "curl/8.5.0"
    request.request_headers_bytes, request.request_body_bytes = request_bytes
    request.request_headers.update(request_headers or {})
    response = entry.response
    if status is not None:
        response.response_code.value = status
    response.response_headers_bytes, response.response_body_bytes = response_bytes
    response.response_trailers.update(response_trailers or {})
    return entry


def tcp_entry(
    common_properties: accesslog_pb2.AccessLogCommon, received: int, sent: int
) -> accesslog_pb2.TCPAccessLogEntry:
    entry = accesslog_pb2.TCPAccessLogEntry(common_properties=common_properties)
    entry.connection_properties.received_bytes = received
    entry.connection_properties.sent_bytes = sent
    return entry


def http_message(
    *entries: accesslog_pb2.HTTPAccessLogEntry, identity: Node | None = None
) -> als_pb2.StreamAccessLogsMessage:
    message = als_pb2.StreamAccessLogsMessage()
    message.http_logs.log_entry.extend(entries)
    if identity is not None:
        message.identifier.node.CopyFrom(identity)
        message.identifier.log_name = "envoy.access_loggers.http_grpc"
    return message


def tcp_message(
    *entries: accesslog_pb2.TCPAccessLogEntry, identity: Node | None = None
) -> als_pb2.StreamAccessLogsMessage:
    message = als_pb2.StreamAccessLogsMessage()
    message.tcp_logs.log_entry.extend(entries)
    if identity is not None:
        message.identifier.node.CopyFrom(identity)
        message.identifier.log_name = "envoy.access_loggers.tcp_grpc"
    return message


class CollectingSink:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.arrived = threading.Event()  # set once any record has been consumed
        self._lock = threading.Lock()

    def consume(self, batch: Sequence[Record]) -> None:
        with self._lock:
            self.records.extend(batch)
        self.arrived.set()

    def flush(self, timeout: float) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class Collector:
    """A started receiver on a free port, a real pipeline into a CollectingSink, and a stub to call it."""

    def __init__(
        self, receiver: AlsReceiver, pipeline: Pipeline, sink: CollectingSink, stats: SelfStats, peers: PeerTable
    ) -> None:
        self.receiver = receiver
        self.pipeline = pipeline
        self.sink = sink
        self.stats = stats
        self.peers = peers
        self.channel = grpc.insecure_channel(f"127.0.0.1:{receiver.port}")
        self.stub = als_pb2_grpc.AccessLogServiceStub(self.channel)

    def stream(self, *messages: als_pb2.StreamAccessLogsMessage) -> als_pb2.StreamAccessLogsResponse:
        return self.stub.StreamAccessLogs(iter(messages))

    def open_stream(self, first: als_pb2.StreamAccessLogsMessage) -> tuple[grpc.Future, threading.Event]:
        """A stream that sends ``first`` and then stays open, like Envoy's, until the event is set.

        Returns once the first message's records have reached the sink.
        """
        release = threading.Event()

        def messages() -> Iterator[als_pb2.StreamAccessLogsMessage]:
            yield first
            release.wait()

        call = self.stub.StreamAccessLogs.future(messages())
        assert self.sink.arrived.wait(30), "the open stream's first message never reached the sink"
        return call, release

    def records(self) -> list[Record]:
        assert self.pipeline.flush(timeout=30)
        return list(self.sink.records)


MakeCollector = Callable[..., Collector]


@pytest.fixture
def make_collector() -> Iterator[MakeCollector]:
    made: list[Collector] = []

    def make(start_pipeline: bool = True, queue_size: int = 1000, **config: Any) -> Collector:
        stats = SelfStats()
        peers = PeerTable()
        sink = CollectingSink()
        pipeline = Pipeline([("collect", sink)], stats, queue_size=queue_size, batch_size=100, batch_timeout=0.01)
        if start_pipeline:
            pipeline.start()
        receiver = create_receiver(AlsConfig(endpoint="127.0.0.1:0", **config), pipeline, stats, peers)
        receiver.start()
        collector = Collector(receiver, pipeline, sink, stats, peers)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.channel.close()
        collector.receiver.shutdown()
        collector.pipeline.shutdown()


@pytest.fixture
def als() -> ModuleType:
    """These builders, for tests (conftest modules cannot be imported by name under importlib mode)."""
    return sys.modules[__name__]


@pytest.fixture
def collector(make_collector: MakeCollector) -> Collector:
    return make_collector()
