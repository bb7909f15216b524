"""Secrets never printed: config dumps mask them, error messages (check-config's output) never carry them."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.cli import main
from telemetry.config import Config
from telemetry.confload import ConfigError, load_mapping
from telemetry.security.redact import MASK, redacted, scrub, secret_values

SECRET = "hunter2-0a1b2c3d4e5f"


def test_a_dump_of_the_config_masks_tokens_headers_and_url_passwords() -> None:
    config = load_mapping(
        Config,
        {
            "graph": {"auth": {"bearer_token": SECRET}, "source": "prometheus=http://admin:pw0rd@prom:9090"},
            "exporters": {"otlp": {"headers": {"x-api-key": SECRET, "x-tenant": "blue"}}},
            "receivers": {"zipkin": {"auth": {"bearer_token": ""}}},
        },
        environ={},
    )
    dump = redacted(config)
    assert dump["graph"]["auth"] == {"bearer_token": MASK}
    assert dump["graph"]["source"] == f"prometheus=http://{MASK}@prom:9090"
    assert dump["exporters"]["otlp"]["headers"] == {"x-api-key": MASK, "x-tenant": MASK}
    assert dump["receivers"]["zipkin"]["auth"] == {"bearer_token": ""}  # unset stays visible
    assert dump["graph"]["endpoint"] == "127.0.0.1:8050"  # the rest is as it is
    assert SECRET not in repr(dump) and "pw0rd" not in repr(dump)


@pytest.mark.parametrize("key", ["bearer_token", "password", "api_key", "apiKey", "client_secret", "Authorization"])
def test_keys_that_name_secrets(key: str) -> None:
    assert redacted({key: "v4lue"}) == {key: MASK}
    assert secret_values({"a": {key: "v4lue"}}) == {"v4lue"}


def test_scrub_masks_each_secret_and_url_passwords_in_a_message() -> None:
    message = f"x: {SECRET!r} is not host:port; y: 'https://bob:s3cr3t@host:1' failed"
    assert scrub(message, {SECRET}) == f"x: '{MASK}' is not host:port; y: 'https://{MASK}@host:1' failed"


def test_config_errors_do_not_carry_a_secret_even_when_a_message_would_echo_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load_mapping(
            Config,
            {
                "exporters": {"otlp": {"headers": {"authorization": f"Bearer {SECRET}"}}},
                # A secret pasted where it does not belong: the message quotes the value.
                "graph": {"endpoint": f"Bearer {SECRET}"},
            },
            environ={},
        )
    (error,) = raised.value.errors
    assert error.startswith("graph.endpoint: ")
    assert SECRET not in error and MASK in error


def test_check_config_prints_errors_without_the_secret_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECURE_TEST_TOKEN", SECRET)
    path = tmp_path / "meshscope.yaml"
    path.write_text(
        "receivers:\n"
        "  otlp:\n"
        "    http: {auth: {bearer_token: '${env:SECURE_TEST_TOKEN}'}}\n"
        "graph:\n"
        "  endpoint: 'prometheus=http://me:${env:SECURE_TEST_TOKEN}@x'\n"
    )
    assert main(["check-config", str(path)]) == 1
    output = capsys.readouterr()
    assert "graph.endpoint" in output.err
    assert SECRET not in output.err + output.out
