"""The Elasticsearch sink's config: defaults that work against a local Elasticsearch, and exact errors."""

from __future__ import annotations

import pytest

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping
from telemetry.exporters.elasticsearch.config import ElasticsearchConfig


def test_the_defaults_are_valid_and_point_at_a_local_elasticsearch_data_stream() -> None:
    config = ElasticsearchConfig()
    assert config.validate() == []
    assert config.hosts == ["http://127.0.0.1:9200"]
    assert config.data_stream == "meshscope-access" and config.install_template


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"hosts": []}, "hosts: at least one URL is needed"),
        ({"hosts": ["elasticsearch:9200"]}, "hosts[0]: expected http://host:port or https://host:port"),
        ({"hosts": ["http://es:port"]}, "hosts[0]: not a URL"),
        ({"hosts": ["https://elastic:pw@es:9200"]}, "hosts[0]: put credentials in username/password or api_key"),
        ({"data_stream": "Meshscope"}, "data_stream: lowercase letters"),
        ({"ilm_policy": "_hidden"}, "ilm_policy: lowercase letters"),
        ({"password": "x"}, "password: set username too"),
        ({"username": "u", "api_key": "k"}, "api_key: use either api_key or username/password"),
        ({"batch_size": 10, "queue_size": 5}, "queue_size: must be at least batch_size"),
        ({"request_timeout": 0}, "request_timeout: must be positive"),
    ],
)
def test_a_bad_value_is_named_by_its_key(change: dict, error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_mapping(Config, {"exporters": {"elasticsearch": change}}, environ={})
    assert any(message.startswith(f"exporters.elasticsearch.{error}") for message in raised.value.errors), raised


def test_secrets_come_from_the_environment_and_are_never_printed_with_the_config() -> None:
    environ = {
        "MESHSCOPE_EXPORTERS__ELASTICSEARCH__ENABLED": "true",
        "MESHSCOPE_EXPORTERS__ELASTICSEARCH__USERNAME": "meshscope",
        "MESHSCOPE_EXPORTERS__ELASTICSEARCH__PASSWORD": "s3cret-value",
    }
    config = load_mapping(Config, {}, environ=environ).exporters.elasticsearch
    assert config.enabled and config.password == "s3cret-value"
    assert "s3cret-value" not in repr(config)
    assert "s3cret-value" not in repr(ElasticsearchConfig(api_key="s3cret-value"))


def test_retry_settings_are_checked_under_their_own_key() -> None:
    with pytest.raises(ConfigError) as raised:
        load_mapping(Config, {"exporters": {"elasticsearch": {"retry": {"initial_backoff": 0}}}}, environ={})
    assert "exporters.elasticsearch.retry.initial_backoff: must be positive" in raised.value.errors
