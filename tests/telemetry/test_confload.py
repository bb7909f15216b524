from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from telemetry.config import Config
from telemetry.confload import ConfigError, load_file, load_mapping


def errors_of(data: object, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_mapping(Config, data, environ or {})
    return caught.value.errors


def test_empty_config_gives_the_design_defaults() -> None:
    config = load_mapping(Config, {}, {})
    assert config.exporters.prometheus.endpoint == "127.0.0.1:9464"
    assert config.receivers.als.endpoint == "127.0.0.1:9001"
    assert config.receivers.filelog.include == ["/var/log/pods/*/istio-proxy/*.log"]


def test_unknown_key_is_an_error_naming_its_path() -> None:
    errors = errors_of({"receivers": {"filelog": {"inclde": ["x"]}}})
    # The known keys are listed sorted (which ones is the filelog receiver's business).
    (error,) = errors
    assert error.startswith("receivers.filelog.inclde: unknown key (known keys here: checkpoint_file, ")
    known = error.partition("known keys here: ")[2].rstrip(")").split(", ")
    assert "include" in known and known == sorted(known)


def test_mistyped_values_are_all_reported_with_paths() -> None:
    errors = errors_of(
        {
            "pipeline": {"queue_size": "big"},
            "receivers": {"filelog": {"include": "not-a-list", "workloads": [{"glob": "*", "gateway": "yes"}]}},
            "exporters": {"prometheus": {"max_series_per_metric": 0}},
        }
    )
    assert "pipeline.queue_size: expected an integer, got string" in errors
    assert "receivers.filelog.include: expected a list, got string" in errors
    assert "receivers.filelog.workloads[0].gateway: expected a boolean, got string" in errors
    assert "exporters.prometheus.max_series_per_metric: must be at least 1" in errors


def test_literal_values_are_checked() -> None:
    assert errors_of({"receivers": {"filelog": {"start_at": "middle"}}}) == [
        "receivers.filelog.start_at: must be one of 'beginning', 'end', got 'middle'"
    ]


def test_environment_overrides_nested_keys_with_yaml_typed_values() -> None:
    config = load_mapping(
        Config,
        {"exporters": {"prometheus": {"endpoint": "127.0.0.1:1"}}},
        {"MESHSCOPE_EXPORTERS__PROMETHEUS__ENDPOINT": "0.0.0.0:9999", "MESHSCOPE_PIPELINE__BATCH_SIZE": "17"},
    )
    assert config.exporters.prometheus.endpoint == "0.0.0.0:9999"
    assert config.pipeline.batch_size == 17


def test_environment_override_of_an_unknown_key_is_an_error() -> None:
    assert errors_of({}, {"MESHSCOPE_PIPELINE__QUEUE": "1"})[0].startswith("pipeline.queue: unknown key")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("receivers: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_file(Config, str(path), {})
    assert caught.value.errors[0].startswith(f"{path}: not valid YAML")


def test_check_config_command_prints_ok_or_each_error(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("exporters:\n  prometheus:\n    endpoint: 127.0.0.1:9464\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline:\n  batch_size: many\nreceiver: {}\n")
    ok = subprocess.run(
        [sys.executable, "-m", "telemetry.cli", "check-config", str(good)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.strip() == f"{good}: OK"
    failed = subprocess.run(
        [sys.executable, "-m", "telemetry.cli", "check-config", str(bad)], capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert "pipeline.batch_size: expected an integer, got string" in failed.stderr
    assert "receiver: unknown key" in failed.stderr


def test_values_run_would_refuse_are_refused_by_check_config_too() -> None:
    errors = errors_of(
        {
            "correlation": {"max_request_ids": 0},
            "receivers": {"filelog": {"poll_interval": float("inf")}},
            "pipeline": {"batch_timeout": float("nan")},
        }
    )
    assert "correlation.max_request_ids: must be at least 1" in errors
    assert "receivers.filelog.poll_interval: expected a finite number, got inf" in errors
    assert "pipeline.batch_timeout: expected a finite number, got nan" in errors
    [format_error] = errors_of({"receivers": {"filelog": {"format": "%BOGUS% no operators"}}})
    assert format_error.startswith("receivers.filelog.format: format '%BOGUS% no operators' has no command operator")


def test_an_error_in_an_environment_override_names_the_variable() -> None:
    assert errors_of({}, {"MESHSCOPE_DEBUG": "1"}) == [
        "debug: unknown key (known keys here: correlation, exporters, graph, pipeline, receivers) (from MESHSCOPE_DEBUG)"
    ]


def test_nested_sections_are_validated_by_the_loader_itself() -> None:
    # Configs need not validate their nested dataclasses: the loader calls each one's validate().
    errors = errors_of({"exporters": {"elasticsearch": {"retry": {"initial_backoff": 0}}}})
    assert errors == ["exporters.elasticsearch.retry.initial_backoff: must be positive"]
