from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from envoy.service.accesslog.v3.als_pb2 import (
    StreamAccessLogsMessage,
    StreamAccessLogsResponse,
)
from envoy.service.accesslog.v3.als_pb2_grpc import (
    AccessLogServiceServicer,
    add_AccessLogServiceServicer_to_server,
)

from telemetry.demo import ALS_POD, DemoConfig, SimulatedMesh, generate, pod_log_path
from telemetry.demo.als_client import AlsClient
from telemetry.demo.als_messages import http_entry, node_of
from telemetry.envoy.node import parse_node


class _Collector(AccessLogServiceServicer):
    """Keeps every message of every stream, as decoded by the real generated classes."""

    def __init__(self) -> None:
        self.streams: list[list[StreamAccessLogsMessage]] = []
        self.lock = threading.Lock()

    def StreamAccessLogs(
        self, request_iterator: Iterator[StreamAccessLogsMessage], context
    ) -> StreamAccessLogsResponse:
        messages: list[StreamAccessLogsMessage] = []
        with self.lock:
            self.streams.append(messages)
        for message in request_iterator:
            with self.lock:
                messages.append(message)
        return StreamAccessLogsResponse()

    def entries(self) -> int:
        with self.lock:
            return sum(len(m.http_logs.log_entry) + len(m.tcp_logs.log_entry) for s in self.streams for m in s)


def _serve(collector: _Collector, port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add_AccessLogServiceServicer_to_server(collector, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _eventually(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    sink = _Collector()
    server, port = _serve(sink)
    yield sink, port
    server.stop(None)


def test_details_streams_its_entries_over_als_with_its_identity_first(collector, tmp_path: Path):
    sink, port = collector
    mesh = SimulatedMesh(
        DemoConfig(rate=400.0, duration=0.25, batch_interval=0.02),
        tmp_path / "pods",
        f"127.0.0.1:{port}",
    )
    mesh.start()
    assert mesh.wait(timeout=30)
    mesh.shutdown()

    assert not pod_log_path(tmp_path / "pods", ALS_POD).exists()
    assert sink.entries() == mesh.lines_written[ALS_POD.workload] > 0
    first, *rest = sink.streams[0]
    node = first.identifier.node
    assert node.id.startswith("sidecar~10.244.0.12~details-v1-") and node.id.endswith(
        ".default~default.svc.cluster.local"
    )
    metadata = node.metadata.fields
    assert metadata["NAME"].string_value == ALS_POD.pod_name
    assert metadata["NAMESPACE"].string_value == "default"
    assert metadata["WORKLOAD_NAME"].string_value == "details-v1"
    labels = metadata["LABELS"].struct_value.fields
    assert (labels["app"].string_value, labels["version"].string_value) == (
        "details",
        "v1",
    )
    assert not any(message.HasField("identifier") for message in rest)
    workload, ip = parse_node(node)
    assert (workload.name, workload.app, workload.version, ip) == (
        "details-v1",
        "details",
        "v1",
        "10.244.0.12",
    )


def test_als_entries_carry_what_the_text_log_would_have_said(collector):
    sink, port = collector
    details = [entry for entry in generate(100) if entry.pod is ALS_POD]
    client = AlsClient(f"127.0.0.1:{port}", node_of(ALS_POD), flush_interval=0.01)
    client.start()
    client.submit(http_entry(entry) for entry in details)
    assert _eventually(lambda: sink.entries() == len(details))
    client.shutdown()

    received = [entry for message in sink.streams[0] for entry in message.http_logs.log_entry]
    expected = details[0].fields
    entry = received[0]
    common = entry.common_properties
    assert entry.request.path == "/bookinfo.Details/GetDetails"
    assert entry.request.request_id == expected["request_id"]
    assert entry.response.response_code.value == 200
    assert entry.response.response_trailers["grpc-status"] == "0"
    assert entry.protocol_version == entry.HTTP2
    assert common.upstream_cluster == "inbound|9080||"
    assert (
        f"{common.downstream_remote_address.socket_address.address}:{common.downstream_remote_address.socket_address.port_value}"
        == expected["downstream_remote_address"]
    )
    assert common.tls_properties.tls_sni_hostname == "outbound_.9080_._.details.default.svc.cluster.local"
    assert (
        common.tls_properties.peer_certificate_properties.subject_alt_name[0].uri
        == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    )
    assert common.duration.ToMilliseconds() == int(expected["duration"])


def test_an_unreachable_collector_is_retried_with_backoff_until_it_appears():
    port = _free_port()
    client = AlsClient(
        f"127.0.0.1:{port}",
        node_of(ALS_POD),
        initial_backoff=0.05,
        max_backoff=0.2,
        flush_interval=0.01,
    )
    client.start()
    details = [entry for entry in generate(20) if entry.pod is ALS_POD]
    client.submit(http_entry(entry) for entry in details)  # queued while nobody listens
    assert _eventually(lambda: client.failures >= 2)

    sink = _Collector()
    server, _ = _serve(sink, port)
    try:
        assert _eventually(lambda: sink.entries() == len(details))
        client.shutdown()
        assert sink.streams[0][0].identifier.node.id == ALS_POD.node_id
        assert client.dropped == 0
    finally:
        client.shutdown()
        server.stop(None)


def test_file_writers_keep_going_while_the_als_collector_is_away(tmp_path: Path):
    mesh = SimulatedMesh(DemoConfig(), tmp_path / "pods", f"127.0.0.1:{_free_port()}")
    mesh.start()
    mesh.emit(50)
    assert mesh.als_client is not None and _eventually(lambda: mesh.als_client.failures >= 1)
    mesh.shutdown(timeout=2.0)
    assert mesh.lines_written["istio-ingressgateway"] >= 50
    assert mesh.lines_written[ALS_POD.workload] == 0
    assert mesh.als_client.dropped > 0  # never sent, and counted


def test_als_entries_convert_back_to_the_fields_of_the_text_log():
    from telemetry.envoy.operators import FIELD_NAMES
    from telemetry.receivers.als.entries import http_fields

    def text(value: object) -> str:
        return "" if value in (None, "-") else str(value)

    # ALS has no place for the upstream peer's certificate (only outbound entries carry one).
    fields = [field for field in FIELD_NAMES if field != "upstream_peer_uri_san"]
    for entry in generate(100):
        if entry.call.protocol == "tcp":
            continue
        converted = http_fields(http_entry(entry))
        assert {f: text(getattr(converted, f)) for f in fields} == {f: text(entry.fields.get(f)) for f in fields}
