"""The forward sink's config as the loader reads it: keys, nested validation, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping
from telemetry.exporters.fluentforward.config import MIB
from telemetry.exporters.fluentforward.sink import ForwardSink
from telemetry.selfmetrics import SelfStats


def test_yaml_keys_and_environment_overrides_reach_the_typed_config() -> None:
    data = {"exporters": {"fluentforward": {"enabled": True, "endpoint": "fluentd:24224", "compression": "gzip",
                                            "spool": {"directory": "/var/lib/meshscope/spool", "max_bytes": 64 * MIB}}}}  # fmt: skip
    config = load_mapping(Config, data, environ={"MESHSCOPE_EXPORTERS__FLUENTFORWARD__REQUIRE_ACK": "false"})
    forward = config.exporters.fluentforward
    assert forward.address() == ("fluentd", 24224) and forward.compression == "gzip"
    assert forward.require_ack is False and forward.spool.max_bytes == 64 * MIB
    assert forward.tag == "meshscope.access.{namespace}" and forward.spool.segment_bytes == 8 * MIB


def test_mistakes_are_errors_that_name_the_key() -> None:
    data = {"exporters": {"fluentforward": {"endpoint": "nohost", "compression": "zstd",
                                            "spool": {"max_size": 1, "segment_bytes": 100}}}}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_mapping(Config, data, environ={})
    errors = caught.value.errors
    assert any(error.startswith("exporters.fluentforward.compression: must be one of") for error in errors)
    assert any(error.startswith("exporters.fluentforward.spool.max_size: unknown key") for error in errors)
    data["exporters"]["fluentforward"].pop("compression")
    data["exporters"]["fluentforward"]["spool"] = {"segment_bytes": 100}
    with pytest.raises(ConfigError) as caught:
        load_mapping(Config, data, environ={})
    assert "exporters.fluentforward.spool.segment_bytes: must be at least 4096" in caught.value.errors
    with pytest.raises(ConfigError) as caught:
        load_mapping(Config, {"exporters": {"fluentforward": {"endpoint": "nohost"}}}, environ={})
    assert caught.value.errors == ["exporters.fluentforward.endpoint: expected host:port, got 'nohost'"]


def test_an_unusable_spool_directory_leaves_the_sink_running_without_a_spool(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = load_mapping(Config, {"exporters": {"fluentforward": {"enabled": True, "endpoint": "127.0.0.1:9",
                                                                   "spool": {"directory": str(blocker / "spool")}}}},
                          environ={}).exporters.fluentforward  # fmt: skip
    stats = SelfStats()
    sink = ForwardSink(config, stats)
    sink.shutdown()
    assert sink.spool is None and stats.export_failures[("fluentforward", "spool_unusable")] == 1


@pytest.mark.parametrize(
    ("setting", "workers", "helper"),
    [("auto", 0, True), ("auto", 2, False), (True, 2, True), (False, 0, False)],
)
def test_helper_process_auto_keeps_the_helper_unless_parsing_workers_encode(
    setting: object, workers: int, helper: bool
) -> None:
    data = {"exporters": {"fluentforward": {"helper_process": setting}}, "receivers": {"filelog": {"workers": workers}}}
    config = load_mapping(Config, data, environ={})
    forward = config.exporters.fluentforward
    assert forward.uses_helper(config.receivers.filelog.worker_count()) is helper


def test_helper_process_is_a_boolean_or_auto() -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(Config, {"exporters": {"fluentforward": {"helper_process": "sometimes"}}}, environ={})
    assert caught.value.errors == [
        "exporters.fluentforward.helper_process: expected one of a boolean, 'auto', got string"
    ]
    assert load_mapping(Config, {}, environ={}).exporters.fluentforward.helper_process == "auto"
