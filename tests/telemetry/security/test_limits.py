"""Size limits on every input: each is refused with a clear error, counted where the collector sees it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from traceharness import TraceHarness

from telemetry.config import Config
from telemetry.confload import MAX_CONFIG_BYTES, ConfigError, load_file
from telemetry.receivers.otlp.config import OtlpConfig, OtlpGrpcConfig, OtlpHttpConfig
from telemetry.receivers.otlp.factory import create_receiver
from telemetry.receivers.otlp.receiver import OtlpReceiver

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def otlp() -> Iterator[tuple[OtlpReceiver, TraceHarness]]:
    harness = TraceHarness.create()
    config = OtlpConfig(
        OtlpGrpcConfig(endpoint="127.0.0.1:0", max_body_bytes=1000), OtlpHttpConfig(endpoint="127.0.0.1:0")
    )
    receiver = create_receiver(config, harness.ingest, harness.stats)
    receiver.start()
    yield receiver, harness
    receiver.shutdown()
    harness.close()


def raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_an_http_request_line_over_64_kib_is_414_and_counted(otlp: tuple[OtlpReceiver, TraceHarness]) -> None:
    receiver, harness = otlp
    answer = raw_http(receiver.http_port, b"POST /v1/traces?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414")
    assert harness.stats.parse_errors[("otlp_http", "request_line_too_long")] == 1


def test_too_many_http_headers_is_431_and_counted(otlp: tuple[OtlpReceiver, TraceHarness]) -> None:
    receiver, harness = otlp
    headers = b"".join(b"X-%d: y\r\n" % number for number in range(150))
    answer = raw_http(receiver.http_port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert harness.stats.parse_errors[("otlp_http", "headers_too_large")] == 1


def test_a_grpc_message_over_the_limit_is_resource_exhausted_naming_the_limit(
    otlp: tuple[OtlpReceiver, TraceHarness],
) -> None:
    receiver, harness = otlp
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(EXPORT)(b"\x0a" + b"x" * 5000, timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max (5001 vs. 1000)" in raised.value.details()
    assert harness.normaliser.spans() == []


def test_a_config_file_over_the_limit_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as raised:
        load_file(Config, str(path))
    assert raised.value.errors == [f"{path}: larger than {MAX_CONFIG_BYTES} bytes: not read"]


def test_a_config_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"graph: {endpoint: '\xe9'}\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_file(Config, str(path))
