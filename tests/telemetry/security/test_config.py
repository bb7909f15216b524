"""The auth and tls blocks as configs write them: errors name the key path and never show the token."""

from __future__ import annotations

import pytest
from certs import KeyPair
from traceharness import TraceHarness

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping
from telemetry.receivers.zipkin.config import ZipkinConfig
from telemetry.receivers.zipkin.receiver import ZipkinReceiver
from telemetry.security.config import TlsConfig
from telemetry.security.tls import TlsFilesError


def errors_of(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_mapping(Config, data, environ={})
    return raised.value.errors


def test_a_missing_certificate_file_is_an_error_naming_its_key_path() -> None:
    assert errors_of(
        {"receivers": {"otlp": {"grpc": {"tls": {"cert_file": "/nonexistent/c.pem", "key_file": ""}}}}}
    ) == [
        "receivers.otlp.grpc.tls.key_file: needed when cert_file is set",
        "receivers.otlp.grpc.tls.cert_file: cannot read '/nonexistent/c.pem': No such file or directory",
    ]


def test_a_key_that_is_not_the_certificates_is_an_error_naming_both(server_pair: KeyPair, other_pair: KeyPair) -> None:
    (error,) = errors_of({"graph": {"tls": {"cert_file": str(server_pair.cert), "key_file": str(other_pair.key)}}})
    assert error.startswith(f"graph.tls.cert_file: {str(server_pair.cert)!r} and key_file {str(other_pair.key)!r}")
    assert "KEY_VALUES_MISMATCH" in error


def test_a_client_ca_file_that_is_not_pem_is_an_error(server_pair: KeyPair) -> None:
    tls = {"cert_file": str(server_pair.cert), "key_file": str(server_pair.key), "client_ca_file": str(server_pair.key)}
    (error,) = errors_of({"receivers": {"als": {"tls": tls}}})
    assert error.startswith("receivers.als.tls.client_ca_file: ")


def test_a_client_ca_without_a_certificate_is_an_error() -> None:
    assert errors_of({"receivers": {"zipkin": {"tls": {"client_ca_file": "/etc/hostname"}}}}) == [
        "receivers.zipkin.tls.client_ca_file: needs cert_file and key_file"
    ]


def test_a_token_that_cannot_travel_in_a_header_is_an_error_that_does_not_show_it() -> None:
    (error,) = errors_of({"receivers": {"zipkin": {"auth": {"bearer_token": "my secret\n"}}}})
    assert error.startswith("receivers.zipkin.auth.bearer_token: must be printable ASCII")
    assert "my secret" not in error


def test_a_good_tls_block_loads(server_pair: KeyPair, client_pair: KeyPair) -> None:
    tls = {
        "cert_file": str(server_pair.cert),
        "key_file": str(server_pair.key),
        "client_ca_file": str(client_pair.cert),
    }
    config = load_mapping(Config, {"receivers": {"otlp": {"http": {"tls": tls}}}}, environ={})
    assert config.receivers.otlp.http.tls == TlsConfig(**tls)
    assert config.receivers.otlp.http.tls.enabled


def test_files_gone_by_the_time_the_server_starts_fail_the_start_naming_them(server_pair: KeyPair) -> None:
    harness = TraceHarness.create(start_pipeline=False)
    tls = TlsConfig(str(server_pair.cert), "/nonexistent/server.key")
    receiver = ZipkinReceiver(ZipkinConfig(endpoint="127.0.0.1:0", tls=tls), harness.ingest, harness.stats)
    with pytest.raises(TlsFilesError, match=r"zipkin receiver: cannot load its TLS files: .*key_file='/nonexistent"):
        receiver.start()
    receiver.shutdown()
