"""The standard OTEL_EXPORTER_OTLP_* variables fill what the config leaves unset; the config wins."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from telemetry.confload import ConfigError, load
from telemetry.exporters.otlp.config import OtlpConfig
from telemetry.exporters.otlp.factory import create_exporter
from telemetry.exporters.otlp.settings import resolve_otlp
from telemetry.selfmetrics import SelfStats
from telemetry.traces import TraceSink

from realparts import wait_for

OTEL_VARIABLES = [
    f"OTEL_EXPORTER_OTLP_{signal}{key}"
    for signal in ("", "TRACES_")
    for key in ("ENDPOINT", "PROTOCOL", "HEADERS", "TIMEOUT", "COMPRESSION")
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exporters() -> Iterator[list[TraceSink]]:
    made: list[TraceSink] = []
    yield made
    for exporter in made:
        exporter.shutdown()


def test_variables_configure_an_exporter_whose_config_only_enables_it(
    monkeypatch: pytest.MonkeyPatch, http_capture: Any, capture: ModuleType, exporters: list[TraceSink]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{http_capture.url}/custom/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=mesh%20a, x-team=obs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
    stats = SelfStats()
    config = OtlpConfig(enabled=True, batch_timeout=0.01, retry=capture.FAST_RETRY)
    exporters.append(exporter := create_exporter(config, stats))
    exporter.consume([capture.resource_spans(2)])
    assert exporter.flush(10)
    assert http_capture.paths == ["/custom/traces"]  # the signal's own endpoint is used as it is
    headers = http_capture.captured.headers[0]
    assert (headers["x-tenant"], headers["x-team"], headers["content-encoding"]) == ("mesh a", "obs", "gzip")


def test_config_values_win_over_the_variables(
    monkeypatch: pytest.MonkeyPatch, grpc_capture: Any, capture: ModuleType, exporters: list[TraceSink]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from=env")
    stats = SelfStats()
    config = OtlpConfig(
        enabled=True,
        endpoint=grpc_capture.endpoint,
        protocol="grpc",
        headers={"x-from": "config"},
        batch_timeout=0.01,
        retry=capture.FAST_RETRY,
    )
    exporters.append(exporter := create_exporter(config, stats))
    exporter.consume([capture.resource_spans(2)])
    wait_for(lambda: len(grpc_capture.captured.span_ids()) == 2, what="delivery to the configured endpoint")
    assert grpc_capture.captured.headers[0]["x-from"] == "config"


def test_signal_specific_variables_win_over_the_general_ones() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
    }
    settings = resolve_otlp(OtlpConfig(), environ)
    assert settings.protocol == "http/protobuf"
    assert settings.endpoint == "http://collector:4318/v1/traces"  # the general endpoint is a base
    assert settings.timeout == 2.5  # milliseconds in the variable, seconds in the settings
    assert settings.compression == "none"


def test_grpc_endpoint_scheme_chooses_tls_and_defaults_apply() -> None:
    secure = resolve_otlp(OtlpConfig(endpoint="https://jaeger.example:4317"), {})
    assert (secure.protocol, secure.endpoint, secure.secure, secure.timeout) == (
        "grpc",
        "jaeger.example:4317",
        True,
        10.0,
    )
    plain = resolve_otlp(OtlpConfig(endpoint="jaeger:4317"), {})
    assert (plain.endpoint, plain.secure) == ("jaeger:4317", False)
    http = resolve_otlp(OtlpConfig(endpoint="jaeger:4318", protocol="http/protobuf"), {})
    assert http.endpoint == "http://jaeger:4318/v1/traces"


def test_enabled_without_any_endpoint_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as error:
        load(OtlpConfig, {"enabled": True}, "exporters.otlp")
    assert error.value.errors[0].startswith("exporters.otlp.endpoint: not set")


def test_unusable_variable_is_reported_with_its_key_and_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(ConfigError) as error:
        load(OtlpConfig, {"enabled": True}, "exporters.otlp")
    assert error.value.errors == [
        "exporters.otlp.protocol: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json' is not one of grpc, http/protobuf"
    ]


def test_yaml_keys_load_into_the_typed_config() -> None:
    config = load(
        OtlpConfig,
        {
            "enabled": True,
            "endpoint": "jaeger:4317",
            "queue_size": 20000,
            "retry": {"initial_backoff": 1, "max_backoff": 10, "max_elapsed": 60},
        },
    )
    assert (config.queue_size, config.batch_size, config.batch_timeout) == (20000, 512, 1.0)
    assert (config.retry.initial_backoff, config.retry.max_elapsed) == (1.0, 60.0)
    with pytest.raises(ConfigError) as error:
        load(OtlpConfig, {"retry": {"max_backof": 1}}, "exporters.otlp")
    assert error.value.errors[0].startswith("exporters.otlp.retry.max_backof: unknown key")
