"""${env:NAME} in config values, as the OpenTelemetry Collector reads them."""

from __future__ import annotations

import pytest

from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping

ENVIRON = {"GRAPH_TOKEN": "tok-1f2e3d4c5b6a", "GRAPH_PORT": "18050", "EMPTY": "", "RATE": "0.5"}


def load(data: dict[str, object], environ: dict[str, str] = ENVIRON) -> Config:
    return load_mapping(Config, data, environ)


def errors_of(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(data)
    return raised.value.errors


def errors_of_env(data: dict[str, object], environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(data, environ)
    return raised.value.errors


def test_a_reference_is_replaced_by_the_variables_value() -> None:
    config = load({"graph": {"auth": {"bearer_token": "${env:GRAPH_TOKEN}"}}})
    assert config.graph.auth.bearer_token == "tok-1f2e3d4c5b6a"


def test_references_inside_a_value_are_replaced_as_text() -> None:
    config = load({"graph": {"endpoint": "127.0.0.1:${env:GRAPH_PORT}"}})
    assert config.graph.endpoint == "127.0.0.1:18050"


def test_a_whole_reference_takes_the_type_of_its_key() -> None:
    config = load({"graph": {"points_per_window": "${env:GRAPH_PORT}", "resolution": "${env:RATE}"}})
    assert (config.graph.points_per_window, config.graph.resolution) == (18050, 0.5)
    # ... and a string key keeps digits as text.
    assert (
        load({"exporters": {"elasticsearch": {"username": "${env:GRAPH_PORT}"}}}).exporters.elasticsearch.username
        == "18050"
    )


def test_a_default_is_used_when_the_variable_is_unset_or_empty() -> None:
    config = load({"graph": {"resolution": "${env:UNSET:-3}", "points_per_window": "${env:EMPTY:-7}"}})
    assert (config.graph.resolution, config.graph.points_per_window) == (3.0, 7)


def test_dollar_dollar_is_a_literal_dollar() -> None:
    assert load({"graph": {"prometheus_selector": 'job=~"mesh$$"'}}).graph.prometheus_selector == 'job=~"mesh$"'
    assert (
        load({"graph": {"prometheus_selector": "$${env:GRAPH_TOKEN}"}}).graph.prometheus_selector
        == "${env:GRAPH_TOKEN}"
    )


def test_a_lone_dollar_is_kept() -> None:
    assert load({"graph": {"prometheus_selector": 'job=~"mesh$"'}}).graph.prometheus_selector == 'job=~"mesh$"'


def test_an_unset_variable_is_an_error_naming_the_key_and_the_variable() -> None:
    assert errors_of({"receivers": {"otlp": {"grpc": {"auth": {"bearer_token": "${env:OTLP_TOKEN}"}}}}}) == [
        "receivers.otlp.grpc.auth.bearer_token: environment variable OTLP_TOKEN is not set (${env:OTLP_TOKEN})"
    ]


def test_every_unset_variable_is_listed_with_its_path_in_lists_too() -> None:
    errors = errors_of({"graph": {"windows": ["1m", "${env:W1}"], "endpoint": "${env:W2}:1"}})
    assert errors == [
        "graph.windows[1]: environment variable W1 is not set (${env:W1})",
        "graph.endpoint: environment variable W2 is not set (${env:W2})",
    ]


def test_the_old_unprefixed_form_is_an_error_that_shows_the_right_one() -> None:
    assert errors_of({"graph": {"endpoint": "${GRAPH_PORT}"}}) == [
        "graph.endpoint: '${GRAPH_PORT}' is not a reference: use ${env:NAME} (or $$ for a literal $)"
    ]


def test_a_meshscope_override_is_taken_verbatim_dollars_and_all() -> None:
    # A password is set as it is: neither "$$" nor "${" in it is read as a reference.
    for password in ("x$$y-long-enough", "a${env:GRAPH_TOKEN}b", "${oops-0123456789", "$0123456789abcdef"):
        environ = {**ENVIRON, "MESHSCOPE_GRAPH__AUTH__BEARER_TOKEN": password}
        assert load({}, environ).graph.auth.bearer_token == password


def test_an_override_replaces_a_file_reference_to_an_unset_variable() -> None:
    environ = {**ENVIRON, "MESHSCOPE_GRAPH__AUTH__BEARER_TOKEN": "from-the-override-1234"}
    config = load({"graph": {"auth": {"bearer_token": "${env:UNSET_TOKEN}"}}}, environ)
    assert config.graph.auth.bearer_token == "from-the-override-1234"


def test_a_value_from_a_variable_is_masked_in_errors_whatever_its_key() -> None:
    environ = {**ENVIRON, "PROTO": "grpc-private-0xBEEF"}
    errors = errors_of_env({"exporters": {"otlp": {"protocol": "${env:PROTO}"}}}, environ)
    assert len(errors) == 1 and errors[0].startswith("exporters.otlp.protocol: must be one of")
    assert "0xBEEF" not in errors[0] and "***" in errors[0]


def test_a_mistyped_expanded_value_is_an_error_of_its_key() -> None:
    assert errors_of({"graph": {"points_per_window": "${env:GRAPH_TOKEN}"}}) == [
        "graph.points_per_window: expected an integer, got string"
    ]
